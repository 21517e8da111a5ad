"""Submitting to the hub's intake and reading the verdict: what every sender does.

Used by node agents (as their authority) and by ``hub admit`` (as the operator).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence

import nats.errors
from nats.aio.client import Client as NatsClient
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError

from hub import subjects
from hub.errors import UnavailableError
from hub.gateway.connection import close as close_connection
from hub.ledger.store import Pipeline
from schemas.codec import decode
from schemas.transport import Verdict

__all__ = ["IntakeClient"]


class IntakeClient:
    """Publish submissions as ``sender`` and wait for their verdicts."""

    def __init__(self, nc: NatsClient, sender: str) -> None:
        self.nc = nc
        self.js: JetStreamContext = nc.jetstream()
        self.sender = sender
        self._pipeline = Pipeline(nc)  # JetStream publishes and their acks

    async def close(self) -> None:
        await close_connection(self.nc)

    async def publish(self, message_id: str, payload: bytes) -> None:
        """Hand a submission to the intake; returns once JetStream holds it (on disk)."""
        try:  # the pipeline's one reply subscription, not a request each (see Pipeline)
            ack = await self._pipeline.publish(
                subjects.submit(self.sender), payload, {"Nats-Msg-Id": message_id}
            )
            try:
                await asyncio.wait_for(ack, 5.0)
            finally:
                ack.cancel()
        except (TimeoutError, nats.errors.NoRespondersError, OSError) as e:
            raise UnavailableError(f"hub intake: not acknowledged ({e.__class__.__name__})") from e
        except nats.errors.Error as e:
            raise UnavailableError(f"hub intake: {e}") from e

    async def publish_all(self, submissions: Sequence[tuple[str, bytes]]) -> int:
        """Hand several submissions (message id, payload) to the intake, all in flight at once
        and in order; returns how many, from the first, JetStream acknowledged (within one
        timeout for them all). A later one acknowledged after an earlier failure is not
        counted: sending it again is a duplicate the intake drops (``Nats-Msg-Id``)."""
        acks: list[asyncio.Future[int]] = []
        try:
            try:
                subject = subjects.submit(self.sender)
                for message_id, payload in submissions:
                    headers = {"Nats-Msg-Id": message_id}
                    acks.append(await self._pipeline.publish(subject, payload, headers))
                await asyncio.wait_for(asyncio.gather(*acks, return_exceptions=True), 5.0)
            except (TimeoutError, nats.errors.Error, OSError):
                pass  # what was acknowledged in time still counts
            done = 0
            for ack in acks:
                if not ack.done() or ack.cancelled() or ack.exception() is not None:
                    break
                done += 1
            return done
        finally:
            for ack in acks:  # no pending publish is left waiting for its ack
                ack.cancel()

    async def wait_verdict(self, message_id: str, timeout: float) -> Verdict | None:
        """The verdict on ``message_id``, whether it was published before or after this call."""
        # Subscribe first, then look for one already stored: no verdict can fall in between.
        # (A plain subscription and a direct get are all an authority's permissions allow.)
        subject = subjects.verdict(self.sender, message_id)
        try:
            sub = await self.nc.subscribe(subject, max_msgs=1)
        except nats.errors.Error as e:
            raise UnavailableError(f"hub verdicts: {e}") from e
        try:
            try:
                stored = await self.js.get_last_msg(subjects.VERDICT_STREAM, subject, direct=True)
                data = stored.data or b""
            except NotFoundError:
                try:
                    data = (await sub.next_msg(timeout=timeout)).data
                except TimeoutError:  # nats-py raises its own or the builtin one
                    return None
        finally:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()
        return decode(data, Verdict, what="verdict")
