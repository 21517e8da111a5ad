"""The hub's write path without the intake loop: ``Ledger.append`` and ``HubService.process``.

``ledger_appends``: encoded entries appended with ``Ledger.append`` (dedup id and expected last
sequence) the way ``HubService._append`` does inside a batch: started in index order, up to a
window of 256 in flight, each window confirmed before the next (the hub confirms a batch of up
to 256 before it answers). Appends awaited one by one (a single submission, a directory change)
are reported beside it.
``hub_process``: ``HubService.process`` called directly on real sealed envelopes and their
receipts, one at a time as the intake loop does; each call admits, stores, appends, delivers and
answers. Compared with the e2e rate it shows what the intake loop and the agents add.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from dataclasses import dataclass
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

__all__ = ["LedgerAppends", "log_to_file", "measure_hub_process", "measure_ledger_appends"]

_WINDOW = 256  # the hub's intake batch: appends in flight before it confirms them


def log_to_file(path: Path) -> None:
    """Configure the hub's structlog JSON logs as ``hub up`` does, but into ``path``."""
    stream = path.open("a")  # kept open for the life of the bench process
    saved, sys.stderr = sys.stderr, stream
    try:
        logs.configure("info")
    finally:
        sys.stderr = saved


@dataclass(frozen=True, slots=True)
class LedgerAppends:
    """Appends per second: pipelined as a hub batch does, and awaited one by one."""

    pipelined_per_s: float
    sequential_per_s: float


async def _sequential(ledger: Ledger, entries: list[bytes], start: int, limit_s: float) -> int:
    began, done = time.perf_counter(), 0
    for i, data in enumerate(entries):
        await ledger.append(data, index=start + i, dedup_id=f"bench:{start + i}")
        done += 1
        if time.perf_counter() - began > limit_s:
            break
    return done


async def _pipelined(ledger: Ledger, entries: list[bytes], start: int, limit_s: float) -> int:
    began, done = time.perf_counter(), 0
    while done < len(entries) and time.perf_counter() - began <= limit_s:
        window = entries[done : done + _WINDOW]
        # Tasks start in the order they are made: the appends reach the server in index order,
        # each with its expected last sequence, as in HubService._append.
        appends = [
            asyncio.ensure_future(
                ledger.append(data, index=start + done + k, dedup_id=f"bench:{start + done + k}")
            )
            for k, data in enumerate(window)
        ]
        stored = await asyncio.gather(*appends)
        if stored != list(range(start + done, start + done + len(window))):
            raise RuntimeError("bench: pipelined appends were not stored in index order")
        done += len(window)
    return done


async def measure_ledger_appends(url: str, count: int, limit_s: float) -> LedgerAppends:
    """``Ledger.append`` of realistic entries on a fresh LEDGER stream: ``count`` one by one,
    then ``4 * count`` pipelined; entries/s of each."""
    nc = await connect(url, name="bench-ledger")
    try:
        js = nc.jetstream(timeout=10)
        await ensure_topology(js)
        ledger = Ledger(js)
        if await ledger.size():
            raise RuntimeError("bench: ledger appends need a fresh server")
        entries = list(EntryFactory().entries(5 * count))
        began = time.perf_counter()
        sequential = await _sequential(ledger, entries[:count], 0, limit_s)
        sequential_per_s = sequential / (time.perf_counter() - began)
        began = time.perf_counter()
        pipelined = await _pipelined(ledger, entries[sequential:], sequential, limit_s)
        return LedgerAppends(pipelined / (time.perf_counter() - began), sequential_per_s)
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
