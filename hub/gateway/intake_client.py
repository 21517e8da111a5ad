"""Submitting to the hub's intake and reading the verdict: what every sender does.

Used by node agents (as their authority) and by ``hub admit`` (as the operator).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence

import nats.errors
from nats.aio.client import Client as NatsClient
from nats.aio.subscription import Subscription
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError

from hub import subjects
from hub.errors import HubError, UnavailableError
from hub.gateway.connection import close as close_connection
from hub.ledger.pipeline import Pipeline
from schemas.codec import decode
from schemas.transport import Verdict, Verdicts

__all__ = ["IntakeClient", "VerdictWatch"]


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

    @contextlib.asynccontextmanager
    async def watch_verdicts(self) -> AsyncIterator[VerdictWatch]:
        """Every verdict addressed to us from now on: open it before publishing, then
        :meth:`VerdictWatch.wait` finds the answer whether the hub sent it alone or among a
        batch's (``Verdicts``). A plain subscription and a direct get are all an authority's
        permissions allow."""
        try:
            sub = await self.nc.subscribe(subjects.verdict(self.sender, ">"))
        except nats.errors.Error as e:
            raise UnavailableError(f"hub verdicts: {e}") from e
        try:
            yield VerdictWatch(self.js, self.sender, sub)
        finally:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()


class VerdictWatch:
    """The verdicts published to one sender since the watch opened (see
    :meth:`IntakeClient.watch_verdicts`); it remembers those it read, for later waits."""

    def __init__(self, js: JetStreamContext, sender: str, sub: Subscription) -> None:
        self._js = js
        self._sender = sender
        self._sub = sub
        self._seen: dict[str, Verdict] = {}

    async def wait(self, token: str, timeout: float) -> Verdict | None:
        """The verdict on ``token`` (a message id, or ``digest-<hex>`` for a submission that
        named none), or None after ``timeout`` seconds. One stored on its own subject before
        the watch opened is found too (a resubmission the intake dropped as a duplicate is
        not answered again)."""
        if token in self._seen:
            return self._seen[token]
        subject = subjects.verdict(self._sender, token)
        try:
            stored = await self._js.get_last_msg(subjects.VERDICT_STREAM, subject, direct=True)
            return decode(stored.data or b"", Verdict, what="verdict")
        except NotFoundError:
            pass
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while (left := deadline - loop.time()) > 0:
            try:
                msg = await self._sub.next_msg(timeout=left)
            except TimeoutError:  # nats-py raises its own or the builtin one
                return None
            if msg.subject == subject:
                return decode(msg.data, Verdict, what="verdict")
            self._keep(msg.subject, msg.data)
            if token in self._seen:
                return self._seen[token]
        return None

    def _keep(self, subject: str, data: bytes) -> None:
        """Remember another's verdict (alone, by its subject) or a group's (by message id);
        bytes that do not decode are no verdict of ours."""
        try:
            answer = decode(data, Verdict | Verdicts, what="verdict")
        except HubError:
            return
        if isinstance(answer, Verdict):
            self._seen[subject.rsplit(".", 1)[-1]] = answer
            return
        for verdict in answer.verdicts:
            if verdict.message_id is not None:
                self._seen[verdict.message_id] = verdict
