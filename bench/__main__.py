"""``python -m bench`` (``make bench``): floors, product figures, ratios, targets, results.json.

Modes: default (~2-4 min on 2 cores), ``--quick`` (~30 s smoke run), ``--tiny`` (a few seconds,
for the test suite; figures are noisy). ``--bulk N`` adds a memory/growth run of N entries (the
default run does 100,000; ``--bulk 1000000`` takes ~30 s more and ~1.5 GB). ``--no-cluster``
skips the 3-node R3 cluster. ``--profile DIR`` runs only the saturating e2e (fsync) with
cProfile in the hub and agents processes and prints where their time goes.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

from bench import report
from bench.children import REPO_ROOT
from bench.e2e import E2EConfig
from bench.profiling import run_profile
from bench.run import Plan, run_all

PLANS = {
    "full": Plan(
        js_sync=3000,
        js_pipelined=40_000,
        js_limit_s=5.0,
        crypto_count=5000,
        crypto_limit_s=1.5,
        ledger_appends=3000,
        hub_pairs=1000,
        direct_limit_s=6.0,
        projection=100_000,
        audit=20_000,
        bulk=(100_000,),
        cluster=True,
        e2e=E2EConfig(paced_count=1500, saturated_count=6000, phase_limit_s=60.0),
        # 512 in flight: with 256 the rate still rose with the window (see bench/run.py NOTES)
        e2e_replicated=E2EConfig(
            paced_count=1500, saturated_count=8000, phase_limit_s=60.0, window=512
        ),
        e2e_cluster=E2EConfig(
            paced_count=1000, saturated_count=4000, phase_limit_s=45.0, replicas=3
        ),
    ),
    "quick": Plan(
        js_sync=600,
        js_pipelined=6000,
        js_limit_s=1.5,
        crypto_count=500,
        crypto_limit_s=0.3,
        ledger_appends=600,
        hub_pairs=200,
        direct_limit_s=2.0,
        projection=20_000,
        audit=4_000,
        bulk=(20_000,),
        cluster=False,
        e2e=E2EConfig(paced_count=300, saturated_count=1000, phase_limit_s=15.0, warmup=16),
        e2e_replicated=E2EConfig(
            paced_count=200, saturated_count=1000, phase_limit_s=15.0, warmup=16
        ),
        e2e_cluster=None,
    ),
    "tiny": Plan(
        js_sync=100,
        js_pipelined=1024,
        js_limit_s=0.5,
        crypto_count=30,
        crypto_limit_s=0.05,
        ledger_appends=100,
        hub_pairs=30,
        direct_limit_s=0.5,
        projection=2000,
        audit=300,
        bulk=(2000,),
        cluster=False,
        e2e=E2EConfig(paced_count=30, saturated_count=120, phase_limit_s=8.0, warmup=8, window=64),
        e2e_replicated=E2EConfig(
            paced_count=10, saturated_count=80, phase_limit_s=8.0, warmup=4, window=64
        ),
        e2e_cluster=None,
    ),
}
_TIME_BOX_S = {"full": 570.0, "quick": 120.0, "tiny": 60.0}


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="~30 s smoke run")
    size.add_argument("--tiny", action="store_true", help="a few seconds (test suite)")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "bench" / "results.json")
    parser.add_argument(
        "--bulk",
        type=int,
        action="append",
        metavar="N",
        help="memory/growth run of N entries (repeatable), e.g. 1000000",
    )
    parser.add_argument("--no-cluster", action="store_true", help="skip the R3 loopback cluster")
    parser.add_argument(
        "--profile",
        type=Path,
        metavar="DIR",
        help="only profile the saturating e2e run; write pstats to DIR",
    )
    parser.add_argument(
        "--profile-nofsync",
        action="store_true",
        help="with --profile: the replicated stand-in (no fsync) instead of the fsync default",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    mode = "tiny" if args.tiny else "quick" if args.quick else "full"
    plan = PLANS[mode]
    if args.bulk:
        plan = plan.with_bulk(tuple(args.bulk))
    if args.no_cluster:
        plan = plan.without_cluster()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="mla-bench-") as tmp:
        if args.profile is not None:
            asyncio.run(
                run_profile(Path(tmp), args.profile, plan.e2e, fsync=not args.profile_nofsync)
            )
            return 0
        results = asyncio.run(
            asyncio.wait_for(
                run_all(Path(tmp), plan, mode), _TIME_BOX_S[mode] + 60 * len(plan.bulk)
            )
        )
    results["seconds"] = round(time.perf_counter() - started, 1)
    report.write_results(args.out, results)
    print(report.render(results))
    print(f"\nwrote {args.out} in {results['seconds']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
