"""Connecting to NATS with a clear error when nobody answers."""

from __future__ import annotations

import nats
import nats.errors
from nats.aio.client import Client as NatsClient

from hub.errors import UnavailableError

__all__ = ["connect"]

_CONNECT_TIMEOUT_S = 3.0


async def _quiet(_e: Exception) -> None:
    return None  # connection trouble is reported through the typed errors of each call


async def connect(url: str, *, name: str) -> NatsClient:
    """Connect once (no endless retry at start); raise UnavailableError if nobody answers.

    Once connected, the client reconnects by itself if the server goes away for a while.
    """
    try:
        return await nats.connect(
            url,
            name=name,
            connect_timeout=_CONNECT_TIMEOUT_S,
            allow_reconnect=True,
            max_reconnect_attempts=-1,
            reconnect_time_wait=0.5,
            error_cb=_quiet,
        )
    except (OSError, nats.errors.NoServersError, nats.errors.TimeoutError) as e:
        raise UnavailableError(f"hub: cannot reach NATS at {url} ({e.__class__.__name__})") from e
