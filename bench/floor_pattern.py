"""The hub's write pattern on raw JetStream: how fast one submission's writes can go.

One accepted envelope costs the hub four writes: the sealed bytes (content), the ledger entry
(with ``Nats-Expected-Last-Sequence``, which keeps one total order), the delivery, the verdict.
``sequential`` awaits them one after another, submission after submission, as
``HubService.process`` does today. ``batched`` does what a hub that decides a fetched batch at
once could do: all content writes in flight, then all ledger appends in flight with consecutive
expected sequences (one connection keeps their order), then all deliveries and verdicts. No
hub code runs: this is the JetStream ceiling of each strategy, in submissions per second.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any

import nats
from nats.js import JetStreamContext
from nats.js import api as js_api

__all__ = ["PatternFloor", "measure_write_pattern"]

_STREAMS = {
    "PCONTENT": "pattern.content",
    "PLEDGER": "pattern.ledger",
    "PDELIVER": "pattern.deliver",
    "PVERDICT": "pattern.verdict",
}


@dataclass(frozen=True, slots=True)
class PatternFloor:
    """Submissions per second (4 writes each)."""

    sequential_per_s: float
    batched_per_s: float


class _Writer:
    def __init__(self, js: JetStreamContext, envelope: bytes, entry: bytes) -> None:
        self.js, self.envelope, self.entry = js, envelope, entry
        self.next_seq = 0

    def _ledger(self, seq: int) -> Coroutine[Any, Any, js_api.PubAck]:
        headers = {"Nats-Expected-Last-Sequence": str(seq), "Nats-Msg-Id": f"l{seq}"}
        return self.js.publish("pattern.ledger", self.entry, headers=headers)

    async def one(self) -> None:
        await self.js.publish("pattern.content", self.envelope)
        await self._ledger(self.next_seq)
        self.next_seq += 1
        await self.js.publish("pattern.deliver", self.envelope)
        await self.js.publish("pattern.verdict", b"v" * 120)

    async def batch(self, n: int) -> None:
        await asyncio.gather(*(self.js.publish("pattern.content", self.envelope) for _ in range(n)))
        first, self.next_seq = self.next_seq, self.next_seq + n
        await asyncio.gather(*(self._ledger(first + i) for i in range(n)))
        await asyncio.gather(
            *(self.js.publish("pattern.deliver", self.envelope) for _ in range(n)),
            *(self.js.publish("pattern.verdict", b"v" * 120) for _ in range(n)),
        )


async def measure_write_pattern(
    url: str, *, payload_size: int, count: int, batch: int = 64, limit_s: float = 5.0
) -> PatternFloor:
    """Both strategies on fresh file streams on ``url``, bounded by count and time."""
    nc = await nats.connect(url, connect_timeout=3)
    try:
        js = nc.jetstream(timeout=30)
        for name, subject in _STREAMS.items():
            await js.add_stream(
                js_api.StreamConfig(name=name, subjects=[subject], storage=js_api.StorageType.FILE)
            )
        writer = _Writer(js, os.urandom(payload_size), os.urandom(700))
        start, done = time.perf_counter(), 0
        while done < count and time.perf_counter() - start < limit_s:
            await writer.one()
            done += 1
        sequential = done / (time.perf_counter() - start)
        start, done = time.perf_counter(), 0
        while done < count and time.perf_counter() - start < limit_s:
            await writer.batch(min(batch, count - done))
            done += min(batch, count - done)
        batched = done / (time.perf_counter() - start)
        for name in _STREAMS:
            await js.delete_stream(name)
        return PatternFloor(sequential, batched)
    finally:
        with contextlib.suppress(Exception):
            await nc.close()
