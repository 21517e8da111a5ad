"""The JetStream floor: raw nats-py publishes of envelope-sized messages, nothing else.

Three ways, on the server(s) given: acks awaited one by one (``sync``), and many in flight
(``pipelined``: ``asyncio.gather`` windows of 256 publishes). No hub code runs here; this is what
no implementation on nats-py + nats-server can beat on this machine, in the same durability mode.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from dataclasses import dataclass

import nats
from nats.js import api as js_api

__all__ = ["JsFloor", "measure_js_floor"]

_SUBJECT = "floor.publish"
_STREAM = "FLOOR"


@dataclass(frozen=True, slots=True)
class JsFloor:
    """Publishes per second, and the mean latency of one awaited publish."""

    sync_per_s: float
    sync_latency_ms: float
    pipelined_per_s: float


async def _sync(js: nats.js.JetStreamContext, payload: bytes, count: int, limit_s: float) -> float:
    start = time.perf_counter()
    done = 0
    while done < count and time.perf_counter() - start < limit_s:
        await js.publish(_SUBJECT, payload)
        done += 1
    return done / (time.perf_counter() - start)


async def _pipelined(
    js: nats.js.JetStreamContext, payload: bytes, count: int, window: int, limit_s: float
) -> float:
    start = time.perf_counter()
    done = 0
    while done < count and time.perf_counter() - start < limit_s:
        n = min(window, count - done)
        await asyncio.gather(*(js.publish(_SUBJECT, payload) for _ in range(n)))
        done += n
    return done / (time.perf_counter() - start)


async def measure_js_floor(
    url: str,
    *,
    payload_size: int,
    replicas: int = 1,
    sync_count: int = 3000,
    pipelined_count: int = 40_000,
    window: int = 256,
    limit_s: float = 5.0,
) -> JsFloor:
    """Publish to a fresh file-backed stream on ``url``; each way bounded by count and time."""
    nc = await nats.connect(url, connect_timeout=3)
    try:
        js = nc.jetstream(timeout=30)
        await js.add_stream(
            js_api.StreamConfig(
                name=_STREAM,
                subjects=[_SUBJECT],
                storage=js_api.StorageType.FILE,
                num_replicas=replicas,
            )
        )
        payload = os.urandom(payload_size)
        await _pipelined(js, payload, 512, window, limit_s)  # warm up
        sync = await _sync(js, payload, sync_count, limit_s)
        pipelined = await _pipelined(js, payload, pipelined_count, window, limit_s)
        await js.delete_stream(_STREAM)
        return JsFloor(sync, 1000.0 / sync, pipelined)
    finally:
        with contextlib.suppress(Exception):
            await nc.close()
