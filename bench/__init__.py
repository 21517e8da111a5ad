"""``make bench``: throughput, latency and memory of the hub against the floor of its dependencies.

Every figure is printed next to the floor measured in the same run (raw JetStream publishes with
nats-py, and the crypto one request + receipt cannot avoid), as DESIGN.md section 8 asks. Run
``python -m bench --help`` for the modes; results go to ``bench/results.json``.
"""
