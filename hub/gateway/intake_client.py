"""Submitting to the hub's intake and reading the verdict: what every sender does.

Used by node agents (as their authority) and by ``hub admit`` (as the operator).
"""

from __future__ import annotations

import contextlib

import nats.errors
from nats.aio.client import Client as NatsClient
from nats.js import JetStreamContext

from hub import subjects
from hub.errors import UnavailableError
from hub.gateway.connection import close as close_connection
from schemas.codec import decode
from schemas.transport import Verdict

__all__ = ["IntakeClient"]


class IntakeClient:
    """Publish submissions as ``sender`` and wait for their verdicts."""

    def __init__(self, nc: NatsClient, sender: str) -> None:
        self.nc = nc
        self.js: JetStreamContext = nc.jetstream()
        self.sender = sender

    async def close(self) -> None:
        await close_connection(self.nc)

    async def publish(self, message_id: str, payload: bytes) -> None:
        """Hand a submission to the intake; returns once JetStream holds it (on disk)."""
        try:
            await self.js.publish(
                subjects.submit(self.sender),
                payload,
                headers={"Nats-Msg-Id": message_id},
                timeout=5.0,
            )
        except (nats.errors.TimeoutError, nats.errors.NoRespondersError, OSError) as e:
            raise UnavailableError(f"hub intake: not acknowledged ({e.__class__.__name__})") from e
        except nats.errors.Error as e:
            raise UnavailableError(f"hub intake: {e}") from e

    async def wait_verdict(self, message_id: str, timeout: float) -> Verdict | None:
        """The verdict on ``message_id``, whether it was published before or after this call."""
        subject = subjects.verdict(self.sender, message_id)
        try:
            sub = await self.js.subscribe(subject, ordered_consumer=True)
        except nats.errors.Error as e:
            raise UnavailableError(f"hub verdicts: {e}") from e
        try:
            msg = await sub.next_msg(timeout=timeout)
        except nats.errors.TimeoutError:
            return None
        finally:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()
        return decode(msg.data, Verdict, what="verdict")
