"""The node agent's NATS link to the hub: publish submissions, read verdicts and deliveries,
fetch directory cards.

Each agent reads its deliveries through its own durable consumer, so messages sent while it was
offline wait in the DELIVER stream and arrive when it comes back. Inbound items are handed over
in batches (whatever has arrived, up to a bound) so that the agent can keep a batch with one
commit.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.errors import BucketNotFoundError, NotFoundError

from hub import subjects
from hub.errors import HubError, UnavailableError
from hub.gateway.connection import connect
from hub.gateway.intake_client import IntakeClient
from hub.gateway.nats_security import delivery_consumer, verdict_consumer
from hub.ledger.pull import PullConsumer
from hub.logs import get_logger
from schemas.codec import decode
from schemas.directory import AdmittedCard
from schemas.transport import Deliveries, Delivery, Verdict, Verdicts

__all__ = ["HubLink", "Inbound", "connect"]


_log = get_logger("node_agent.transport")
_BATCH = 64  # inbound items handed over at most at once (the pull size of each consumer)


@dataclass(frozen=True, slots=True)
class Inbound:
    """One message for this agent with its ack handle: deliveries (one, or all of one hub
    batch for us), or verdicts (one on a request; those on our receipts of one hub batch)."""

    deliveries: tuple[Delivery, ...]
    verdicts: tuple[Verdict, ...]
    msg: Msg

    async def ack(self) -> None:
        await self.msg.ack()


class HubLink(IntakeClient):
    """What an authority's agent does over NATS, beyond submitting."""

    def __init__(self, nc: NatsClient, authority: str) -> None:
        super().__init__(nc, authority)
        self.authority = authority

    async def card(self, authority: str) -> AdmittedCard | None:
        return await self._directory_get(subjects.card_key(authority))

    async def key_card(self, authority: str, key_id: str) -> AdmittedCard | None:
        return await self._directory_get(subjects.key_history_key(authority, key_id))

    async def _directory_get(self, key: str) -> AdmittedCard | None:
        try:
            kv = await self.js.key_value(subjects.DIRECTORY_BUCKET)
            entry = await kv.get(key)
        except (BucketNotFoundError, NotFoundError):
            return None
        except TimeoutError as e:  # nats-py raises its own or the builtin one
            raise UnavailableError("directory: not answered in time") from e
        return decode(entry.value or b"", AdmittedCard, what="directory card")

    async def inbound(
        self, stop: asyncio.Event, *, batch: int = _BATCH
    ) -> AsyncIterator[list[Inbound]]:
        """Deliveries and verdicts for this authority, through its two durable consumers, in
        batches of what has arrived (1 to ``batch`` items, in arrival order).

        The hub creates them at admission (an authority may not create consumers); binding to
        them needs only the rights to pull from and ack one's own.
        """
        delivery, verdict = delivery_consumer(self.authority), verdict_consumer(self.authority)
        await _wait_for_consumer(self.js, subjects.DELIVER_STREAM, delivery, stop)
        await _wait_for_consumer(self.js, subjects.VERDICT_STREAM, verdict, stop)
        deliveries = await self._bind(subjects.DELIVER_STREAM, delivery)
        verdicts = await self._bind(subjects.VERDICT_STREAM, verdict)
        queue: asyncio.Queue[Inbound] = asyncio.Queue(maxsize=256)
        pumps = [
            asyncio.create_task(_pump(verdicts, stop, queue, _as_verdicts)),
            asyncio.create_task(_pump(deliveries, stop, queue, _as_deliveries)),
        ]
        try:
            while not stop.is_set():
                getter = asyncio.ensure_future(queue.get())
                stopper = asyncio.ensure_future(stop.wait())
                done, _ = await asyncio.wait({getter, stopper}, return_when=asyncio.FIRST_COMPLETED)
                stopper.cancel()
                if getter not in done:
                    getter.cancel()
                    continue
                items = [getter.result()]
                while len(items) < batch and not queue.empty():
                    items.append(queue.get_nowait())
                yield items
        finally:
            for pump in pumps:
                pump.cancel()
            await asyncio.gather(*pumps, return_exceptions=True)
            for consumer in (deliveries, verdicts):
                with contextlib.suppress(Exception):  # the connection may be closing already
                    await consumer.close()

    async def _bind(self, stream: str, durable: str) -> PullConsumer:
        return await PullConsumer.bind(self.js, stream, durable)


def _as_verdicts(msg: Msg) -> Inbound:
    answer = decode(msg.data, Verdict | Verdicts, what="verdict")
    verdicts = (answer,) if isinstance(answer, Verdict) else tuple(answer.verdicts)
    return Inbound((), verdicts, msg)


def _as_deliveries(msg: Msg) -> Inbound:
    sent = decode(msg.data, Delivery | Deliveries, what="delivery")
    deliveries = (sent,) if isinstance(sent, Delivery) else tuple(sent.items)
    return Inbound(deliveries, (), msg)


async def _pump(
    sub: PullConsumer,
    stop: asyncio.Event,
    queue: asyncio.Queue[Inbound],
    convert: Callable[[Msg], Inbound],
) -> None:
    while not stop.is_set():
        try:
            msgs = await sub.fetch(_BATCH, timeout=1.0)
        except TimeoutError:  # nats-py raises its own or the builtin one
            continue
        for msg in msgs:
            try:
                item = convert(msg)
            except HubError as e:  # undecodable: park it, keep serving the rest
                _log.error("inbound_undecodable", subject=msg.subject, reason=e.code, detail=str(e))
                await msg.term()
                continue
            await queue.put(item)


async def _wait_for_consumer(
    js: JetStreamContext, stream: str, durable: str, stop: asyncio.Event
) -> None:
    """The hub creates each authority's consumers at admission; until then, wait for them."""
    while not stop.is_set():
        try:
            await js.consumer_info(stream, durable)
            return
        except NotFoundError:
            await asyncio.sleep(0.5)
