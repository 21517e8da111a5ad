"""The hub service: take submissions from the intake, decide, record, deliver, answer.

For each submission on ``mla.submit.<ID>`` (a durable pull consumer shared by every hub
instance): run the pure admission rules, store the sealed bytes in the content store, append the
entry to the ledger at the next index, fold it into the state, deliver to the addressees'
streams, publish the verdict for the sender, and only then ack the intake message. A crash at any
point redelivers the submission; the message index turns the retry into a ``Duplicate`` that
re-delivers and re-answers without appending again. Nothing accepted is lost or applied twice.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

import nats.errors
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js import api as js_api
from nats.js.kv import KeyValue

from hub import subjects
from hub.clock import Clock, SystemClock
from hub.errors import HubError, UnavailableError
from hub.gateway.admission import Accept, Decision, Duplicate, Item, Limits, Reject, admit
from hub.gateway.nats_security import ensure_authority_consumers
from hub.ledger.projections.directory import Directory, DirectoryRecord
from hub.ledger.projections.state import HubState
from hub.ledger.store import ContentStore, Ledger, LedgerConflict, StreamLayout, ensure_topology
from hub.logs import get_logger
from schemas.codec import decode, encode
from schemas.ledger import LedgerEntry, LedgerEvent
from schemas.transport import Delivery, Verdict

__all__ = ["HubService"]

_MAX_CONFLICT_RETRIES = 50
_DURABLE = "hub"


@dataclass(frozen=True, slots=True)
class _Recorded:
    index: int
    recorded_at: datetime


class HubService:
    """One hub instance bound to a NATS connection."""

    def __init__(
        self,
        js: JetStreamContext,
        *,
        operator_key: bytes,
        limits: Limits,
        clock: Clock,
        directory_kv: KeyValue,
        content: ContentStore,
        on_entry: Callable[[LedgerEntry], None] | None = None,
        on_admitted: Callable[[Directory], Awaitable[None]] | None = None,
    ) -> None:
        self._js = js
        self._on_admitted = on_admitted
        self._operator_key = operator_key
        self._limits = limits
        self._clock = clock
        self._directory_kv = directory_kv
        self._content = content
        self._on_entry = on_entry
        self.ledger = Ledger(js)
        self.state = HubState()
        self._log = get_logger("hub.service")

    @classmethod
    async def open(
        cls,
        nc: NatsClient,
        *,
        operator_key: bytes,
        limits: Limits = Limits(),
        clock: Clock | None = None,
        layout: StreamLayout = StreamLayout(),
        on_entry: Callable[[LedgerEntry], None] | None = None,
        on_admitted: Callable[[Directory], Awaitable[None]] | None = None,
    ) -> HubService:
        """Create the topology if needed and fold the whole ledger into memory."""
        js = nc.jetstream()
        await ensure_topology(js, layout)
        service = cls(
            js,
            operator_key=operator_key,
            limits=limits,
            clock=clock or SystemClock(),
            directory_kv=await js.key_value(subjects.DIRECTORY_BUCKET),
            content=await ContentStore.open(js),
            on_entry=on_entry,
            on_admitted=on_admitted,
        )
        await service.catch_up()
        return service

    async def catch_up(self) -> int:
        """Fold entries appended since our position (restart, or another instance's appends)."""
        folded = 0
        async for index, data in self.ledger.read(self.state.next_index):
            await self._fold(decode(data, LedgerEntry, what=f"ledger entry {index}"))
            folded += 1
        if folded:
            self._log.info("ledger_caught_up", entries=folded, next_index=self.state.next_index)
        return folded

    async def _fold(self, entry: LedgerEntry) -> None:
        admitted = self.state.apply(entry)
        if admitted is not None:
            await self._publish_card(admitted)
        if self._on_entry is not None:
            self._on_entry(entry)

    async def _publish_card(self, record: DirectoryRecord) -> None:
        """Materialize the directory where node agents read it (KV), create the authority's
        two consumers, and let the runtime update who may connect (``on_admitted``)."""
        await ensure_authority_consumers(self._js, record.card.id)
        if self._on_admitted is not None:
            await self._on_admitted(self.state.directory)
        data = encode(record.admitted)
        await self._directory_kv.put(subjects.card_key(record.card.id), data)
        await self._directory_kv.put(
            subjects.key_history_key(record.card.id, record.card.keys.key_id), data
        )

    # --- one submission --------------------------------------------------------------------

    async def process(self, raw: bytes, intake_sender: str) -> Verdict:
        """Decide, record, deliver and answer one submission; returns the verdict sent."""
        for _ in range(_MAX_CONFLICT_RETRIES):
            decision = admit(
                raw,
                intake_sender=intake_sender,
                state=self.state,
                limits=self._limits,
                now=self._clock.now(),
                operator_key=self._operator_key,
            )
            try:
                return await self._carry_out(decision)
            except LedgerConflict:
                await self.catch_up()  # someone else appended: decide again on fresh state
        raise UnavailableError("ledger: too many concurrent writers; will retry")

    async def _carry_out(self, decision: Decision) -> Verdict:
        if isinstance(decision, Accept):
            if decision.content is not None and decision.content_digest is not None:
                await self._content.put(decision.content_digest, decision.content)
            recorded = await self._append(decision.event, decision.dedup_id)
            await self._deliver(decision.deliveries, recorded)
            verdict = Verdict(
                message_id=decision.message_id,
                status="accepted",
                ledger_index=recorded.index,
                recorded_at=recorded.recorded_at,
            )
            self._log.info(
                "submission_accepted", message_id=decision.message_id, index=recorded.index
            )
            return await self._answer(decision.reply_to, verdict)
        if isinstance(decision, Duplicate):
            recorded = await self._recorded(decision.ledger_index)
            await self._deliver(decision.deliveries, recorded)
            self._log.info(
                "submission_duplicate", message_id=decision.message_id, index=recorded.index
            )
            return await self._answer(
                decision.reply_to,
                Verdict(
                    message_id=decision.message_id,
                    status="duplicate",
                    ledger_index=recorded.index,
                    recorded_at=recorded.recorded_at,
                ),
            )
        return await self._reject(decision)

    async def _reject(self, decision: Reject) -> Verdict:
        if decision.recorded_index is None:
            recorded = await self._append(decision.event, decision.dedup_id)
        else:
            recorded = await self._recorded(decision.recorded_index)
        self._log.warning(
            "submission_rejected",
            reason=decision.error.code,
            detail=str(decision.error),
            sender=decision.reply_to,
            message_id=decision.message_id,
            index=recorded.index,
        )
        return await self._answer(
            decision.reply_to,
            Verdict(
                message_id=decision.message_id,
                status="rejected",
                ledger_index=recorded.index,
                recorded_at=recorded.recorded_at,
                reason=decision.error.code,
                detail=str(decision.error),
                rule=getattr(decision.error, "rule", None),
            ),
            fallback_id=decision.event.submission_digest.hex(),
        )

    async def _append(self, event: LedgerEvent, dedup_id: str) -> _Recorded:
        entry = LedgerEntry(index=self.state.next_index, recorded_at=self._clock.now(), event=event)
        index = await self.ledger.append(encode(entry), index=entry.index, dedup_id=dedup_id)
        if index != entry.index:
            # The dedup id was already stored (a retried publish): fold it and decide again.
            raise LedgerConflict(f"ledger: {dedup_id} already stored at index {index}")
        await self._fold(entry)
        return _Recorded(entry.index, entry.recorded_at)

    async def _recorded(self, index: int) -> _Recorded:
        msg = await self._js.get_msg(subjects.LEDGER_STREAM, seq=index + 1, direct=True)
        entry = decode(msg.data or b"", LedgerEntry, what=f"ledger entry {index}")
        return _Recorded(entry.index, entry.recorded_at)

    async def _deliver(self, deliveries: tuple[tuple[str, Item], ...], at: _Recorded) -> None:
        for recipient, item in deliveries:
            delivery = Delivery(ledger_index=at.index, recorded_at=at.recorded_at, item=item)
            await self._js.publish(
                subjects.deliver(recipient),
                encode(delivery),
                headers={"Nats-Msg-Id": f"d:{at.index}:{recipient}"},
            )

    async def _answer(self, reply_to: str, verdict: Verdict, fallback_id: str = "") -> Verdict:
        token = verdict.message_id or f"digest-{fallback_id}"
        if not subjects.is_token(reply_to):
            return verdict  # a subject we cannot answer on; the rejection is still recorded
        await self._js.publish(
            subjects.verdict(reply_to, token),
            encode(verdict),
            headers={"Nats-Msg-Id": f"v:{reply_to}:{token}:{verdict.status}"},
        )
        return verdict

    # --- the intake loop ---------------------------------------------------------------------

    async def run(self, stop: asyncio.Event, *, batch: int = 64) -> None:
        """Consume the intake until ``stop`` is set."""
        config = js_api.ConsumerConfig(
            durable_name=_DURABLE,
            ack_policy=js_api.AckPolicy.EXPLICIT,
            ack_wait=30.0,
            max_ack_pending=4096,
        )
        sub = await self._js.pull_subscribe(
            "mla.submit.>", durable=_DURABLE, stream=subjects.SUBMIT_STREAM, config=config
        )
        self._log.info("hub_consuming", next_index=self.state.next_index)
        while not stop.is_set():
            try:
                msgs = await sub.fetch(batch, timeout=0.5)
            except TimeoutError:  # nats-py raises its own or the builtin one
                continue
            except nats.errors.Error as e:  # e.g. a reconnect in progress: keep serving
                self._log.warning("intake_fetch_failed", detail=str(e))
                await asyncio.sleep(0.5)
                continue
            for msg in msgs:
                await self._handle(msg)

    async def _handle(self, msg: Msg) -> None:
        intake_sender = msg.subject.split(".", 2)[2] if msg.subject.count(".") >= 2 else ""
        try:
            await self.process(msg.data, intake_sender)
        except HubError as e:
            self._log.error("submission_deferred", reason=e.code, detail=str(e))
            with contextlib.suppress(Exception):
                await msg.nak(delay=1.0)
            return
        await msg.ack()
