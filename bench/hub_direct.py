"""The hub's write path without the intake loop: ``Ledger.append`` and ``HubService.process``.

``ledger_appends``: encoded entries appended one by one with ``Ledger.append`` (dedup id and
expected last sequence), awaiting each ack, exactly as ``HubService._append`` does.
``hub_process``: ``HubService.process`` called directly on real sealed envelopes and their
receipts, one at a time as the intake loop does; each call admits, stores, appends, delivers and
answers. Compared with the e2e rate it shows what the intake loop and the agents add.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from bench.ledger_gen import EntryFactory
from bench.world import StaticResolver, admission_bytes, issue_receipt, make_party, seal_request
from hub import logs, subjects
from hub.clock import SystemClock
from hub.crypto.keys import OperatorKey
from hub.gateway.connection import close, connect
from hub.gateway.service import HubService
from hub.ledger.store import Ledger, ensure_topology
from hub.ledger.transparency import new_log_key

__all__ = ["log_to_file", "measure_hub_process", "measure_ledger_appends"]


def log_to_file(path: Path) -> None:
    """Configure the hub's structlog JSON logs as ``hub up`` does, but into ``path``."""
    stream = path.open("a")  # kept open for the life of the bench process
    saved, sys.stderr = sys.stderr, stream
    try:
        logs.configure("info")
    finally:
        sys.stderr = saved


async def measure_ledger_appends(url: str, count: int, limit_s: float) -> float:
    """Sequential ``Ledger.append`` of realistic entries on a fresh LEDGER stream; entries/s."""
    nc = await connect(url, name="bench-ledger")
    try:
        js = nc.jetstream(timeout=10)
        await ensure_topology(js)
        ledger = Ledger(js)
        start_index = await ledger.size()
        if start_index:
            raise RuntimeError("bench: ledger appends need a fresh server")
        entries = list(EntryFactory().entries(count))
        start = time.perf_counter()
        done = 0
        for i, data in enumerate(entries):
            await ledger.append(data, index=start_index + i, dedup_id=f"bench:{i}")
            done += 1
            if time.perf_counter() - start > limit_s:
                break
        return done / (time.perf_counter() - start)
    finally:
        await close(nc)


async def measure_hub_process(url: str, pairs: int, limit_s: float) -> float:
    """``HubService.process`` on envelopes and receipts, alternating; submissions/s."""
    operator = OperatorKey.generate()
    senders = [make_party(a, operator) for a in ("XA-MOJ", "XB-MOJ")]
    recipients = [make_party(a, operator) for a in ("YA-MOJ", "YB-MOJ")]
    resolver = StaticResolver(senders + recipients)
    nc = await connect(url, name="bench-hub-direct")
    try:
        service = await HubService.open(
            nc,
            operator_key=operator.public,
            log_key=new_log_key("bench.mla-hub.example", os.urandom(32)),
        )
        for party in senders + recipients:
            verdict = await service.process(admission_bytes(party, operator)[1], subjects.OPERATOR)
            assert verdict.status == "accepted", verdict
        now = SystemClock().now()
        work: list[tuple[bytes, str]] = []
        for k in range(pairs):
            s, r = senders[k % 2], recipients[(k // 2) % 2]
            _, sealed = seal_request(s, r, now)
            work.append((sealed, s.id))
            work.append((issue_receipt(sealed, r, resolver, 0, now)[1], r.id))
        start = time.perf_counter()
        done = 0
        for raw, sender in work:
            verdict = await service.process(raw, sender)
            if verdict.status != "accepted":
                raise RuntimeError(f"bench: hub refused a bench submission: {verdict}")
            done += 1
            if time.perf_counter() - start > limit_s:
                break
        return done / (time.perf_counter() - start)
    finally:
        await close(nc)
