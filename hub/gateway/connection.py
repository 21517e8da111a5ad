"""Connecting to NATS with a clear error when nobody answers."""

from __future__ import annotations

import asyncio
import contextlib

import nats
import nats.errors
from nats.aio.client import Client as NatsClient

from hub.errors import UnavailableError

__all__ = ["close", "connect"]

_CONNECT_TIMEOUT_S = 3.0
_FIRST_CONNECT_ATTEMPTS = 2


async def _quiet(_e: Exception) -> None:
    return None  # connection trouble is reported through the typed errors of each call


async def connect(url: str, *, name: str) -> NatsClient:
    """Connect once (no endless retry at start); raise UnavailableError if nobody answers.

    Once connected, the client reconnects by itself if the server goes away for a while.
    """
    try:
        nc = await nats.connect(
            url,
            name=name,
            connect_timeout=_CONNECT_TIMEOUT_S,
            allow_reconnect=True,
            # nats-py applies this limit to the first connection too: -1 would retry forever.
            max_reconnect_attempts=_FIRST_CONNECT_ATTEMPTS,
            reconnect_time_wait=0.2,
            error_cb=_quiet,
        )
    except (OSError, nats.errors.NoServersError, nats.errors.TimeoutError) as e:
        raise UnavailableError(f"hub: cannot reach NATS at {url} ({e.__class__.__name__})") from e
    nc.options["max_reconnect_attempts"] = -1  # once connected, ride out server restarts
    nc.options["reconnect_time_wait"] = 0.5
    return nc


async def close(nc: NatsClient) -> None:
    """Flush what is buffered (acks included), then close without waiting on open fetches.

    ``drain()`` waits for in-flight pull requests to expire, up to its 30 s timeout; after our
    loops have stopped nothing is left to drain, so flush and close is enough and immediate.
    """
    if nc.is_closed:
        return
    with contextlib.suppress(Exception):
        await asyncio.wait_for(nc.flush(), 2.0)
    with contextlib.suppress(Exception):
        await nc.close()
