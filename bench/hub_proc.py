"""A hub in its own OS process: ``python -m bench.hub_proc --url URL --operator-key HEX``.

This is ``hub up`` pointed at an external NATS (the bench's server), minus the data folder: the
real :class:`hub.gateway.service.HubService`, structlog JSON logs on stderr (the parent sends
them to a file), consuming the intake until stdin closes.
"""

from __future__ import annotations

import argparse
import asyncio
import os
from pathlib import Path

from bench._child import run_child, say_ready
from hub import logs
from hub.gateway.connection import close, connect
from hub.gateway.service import HubService
from hub.ledger.store import StreamLayout
from hub.ledger.transparency import new_log_key


async def _serve(args: argparse.Namespace, stop: asyncio.Event) -> None:
    nc = await connect(args.url, name="bench-hub")
    try:
        service = await HubService.open(
            nc,
            operator_key=bytes.fromhex(args.operator_key),
            log_key=new_log_key("bench.mla-hub.example", os.urandom(32)),
            layout=StreamLayout(replicas=args.replicas),
            atomic_batches=args.atomic_batches,
        )
        say_ready(f"next_index={service.state.next_index}")
        await service.run(stop)
    finally:
        await close(nc)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.hub_proc")
    parser.add_argument("--url", required=True)
    parser.add_argument("--operator-key", required=True)
    parser.add_argument("--replicas", type=int, default=1)
    parser.add_argument("--atomic-batches", action="store_true")
    parser.add_argument("--profile", type=Path)
    args = parser.parse_args()
    logs.configure("info")
    run_child(lambda stop: _serve(args, stop), args.profile)


if __name__ == "__main__":
    main()
