"""Connecting to NATS with a clear error when nobody answers."""

from __future__ import annotations

import asyncio
import contextlib

import nats
import nats.errors
from nats.aio.client import Client as NatsClient

from hub.errors import AccessRefused, UnavailableError
from hub.gateway.nats_security import ClientCredentials

__all__ = ["close", "connect"]

_CONNECT_TIMEOUT_S = 3.0
_FIRST_CONNECT_ATTEMPTS = 2
_CONNECT_DEADLINE_S = 8.0
_AUTH_VIOLATION = "authorization violation"


class _Errors:
    """Remembers whether the server refused our credentials; then stops reconnecting."""

    def __init__(self) -> None:
        self.refused = False
        self.client: NatsClient | None = None

    async def record(self, error: Exception) -> None:
        if _AUTH_VIOLATION in str(error).lower():
            self.refused = True
            if self.client is not None and not self.client.is_closed:
                # Revoked: retrying forever would only hammer the server with refused logins.
                asyncio.get_running_loop().create_task(self.client.close())


async def connect(
    url: str, *, name: str, credentials: ClientCredentials | None = None
) -> NatsClient:
    """Connect once (no endless retry at start); raise a typed error if that fails.

    ``url`` may list several servers of a cluster, comma-separated.

    With ``credentials`` the connection is TLS (the hub's CA only) with the user's nkey and
    its own reply-inbox prefix. Once connected, the client reconnects by itself if the server
    goes away for a while, but gives up for good if the server refuses its credentials.
    """
    errors = _Errors()
    secure: dict[str, object] = {}
    if credentials is not None:
        secure = {
            "tls": credentials.tls_context(),
            "nkeys_seed_str": credentials.seed.decode(),
            "inbox_prefix": credentials.inbox_prefix,
        }
    try:
        nc = await asyncio.wait_for(
            nats.connect(
                [server.strip() for server in url.split(",") if server.strip()],
                name=name,
                connect_timeout=_CONNECT_TIMEOUT_S,
                allow_reconnect=True,
                # nats-py applies this limit to the first connection too: -1 would retry forever.
                max_reconnect_attempts=_FIRST_CONNECT_ATTEMPTS,
                reconnect_time_wait=0.2,
                error_cb=errors.record,
                **secure,
            ),
            _CONNECT_DEADLINE_S,  # nats-py can stall on a TLS mismatch; never hang a command
        )
    except (OSError, nats.errors.Error, TimeoutError) as e:
        if errors.refused or _AUTH_VIOLATION in str(e).lower():
            raise AccessRefused(
                f"hub: NATS at {url} refused {name}'s credentials (nkey not admitted or revoked)"
            ) from e
        hint = "" if credentials else "; if the hub requires TLS, init with --hub-ca"
        raise UnavailableError(
            f"hub: cannot reach NATS at {url} ({e.__class__.__name__}{hint})"
        ) from e
    errors.client = nc
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
