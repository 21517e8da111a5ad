"""The hub service: take submissions from the intake, decide, record, deliver, answer.

Work goes in batches of what one fetch from the durable intake consumer returns (the consumer
is shared by every hub instance). For each submission, in order: run the pure admission rules,
store the sealed bytes in the content store while appending the entry to the ledger at the next
index, and fold it into the state and the transparency log. Then, once for the batch: sign a
checkpoint, publish every delivery and verdict with the entry, the checkpoint and its inclusion
proof, all in flight together, and only then ack the intake messages. A crash at any point
redelivers the submissions; the message index turns each retry into a ``Duplicate`` that
re-delivers and re-answers without appending again. Nothing accepted is lost or applied twice.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

import nats.errors
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js import api as js_api
from nats.js.api import PubAck
from nats.js.kv import KeyValue

from hub import subjects
from hub.clock import Clock, SystemClock
from hub.errors import HubError, UnavailableError
from hub.gateway.admission import Accept, Decision, Duplicate, Item, Limits, Reject, admit
from hub.gateway.checkpoints import CheckpointStore, TransparencyResponder
from hub.gateway.nats_security import ensure_authority_consumers
from hub.ledger.folding import collector_paused
from hub.ledger.projections.directory import Directory, DirectoryChange, DirectoryRecord
from hub.ledger.projections.state import HubState
from hub.ledger.store import (
    ContentStore,
    Ledger,
    LedgerConflict,
    StreamLayout,
    ensure_topology,
    when_ready,
)
from hub.ledger.transparency import SignedCheckpoint, TransparencyLog
from hub.logs import get_logger
from schemas.codec import decode, encode
from schemas.directory import RevokedAuthority
from schemas.ledger import AuthorityAdmitted, AuthorityRevoked, LedgerEntry, LedgerEvent
from schemas.transport import Delivery, Verdict

__all__ = ["BatchFailed", "HubService"]

_MAX_CONFLICT_RETRIES = 50
_DURABLE = "hub"
_CHECKPOINT_EVERY_S = 1.0
_ANSWER_TIMEOUT_S = 5.0  # for every ack of a batch's deliveries and verdicts (nats-py's default)


class BatchFailed(UnavailableError):
    """A batched ledger append was not stored; the state was rebuilt from the ledger."""

    code = "batch_failed"


@dataclass(frozen=True, slots=True)
class _Recorded:
    index: int
    recorded_at: datetime
    entry: bytes


@dataclass(frozen=True, slots=True)
class _Outcome:
    """What one submission still needs once the batch's checkpoint is signed."""

    reply_to: str
    verdict: Verdict
    token: str
    recorded: _Recorded
    deliveries: tuple[tuple[str, Item], ...] = ()


class HubService:
    """One hub instance bound to a NATS connection."""

    def __init__(
        self,
        nc: NatsClient,
        *,
        operator_key: bytes,
        log: TransparencyLog,
        limits: Limits,
        clock: Clock,
        directory_kv: KeyValue,
        content: ContentStore,
        checkpoints: CheckpointStore,
        on_entry: Callable[[LedgerEntry], None] | None = None,
        on_admitted: Callable[[Directory], Awaitable[None]] | None = None,
    ) -> None:
        self._nc = nc
        self._js: JetStreamContext = nc.jetstream()
        self._operator_key = operator_key
        self.log = log
        self._limits = limits
        self._clock = clock
        self._directory_kv = directory_kv
        self._content = content
        self.checkpoints = checkpoints
        self._on_entry = on_entry
        self._on_admitted = on_admitted
        self.ledger = Ledger(self._js)
        self._batched_changes = False
        self._pipelining = False
        self._inflight: list[tuple[asyncio.Future[None], LedgerEntry, DirectoryChange | None]] = []
        self.state = HubState()
        self._log = get_logger("hub.service")

    @classmethod
    async def open(
        cls,
        nc: NatsClient,
        *,
        operator_key: bytes,
        log_key: str,
        limits: Limits = Limits(),
        clock: Clock | None = None,
        layout: StreamLayout = StreamLayout(),
        on_entry: Callable[[LedgerEntry], None] | None = None,
        on_admitted: Callable[[Directory], Awaitable[None]] | None = None,
    ) -> HubService:
        """Create the topology if needed and fold the whole ledger into memory."""
        js = nc.jetstream()
        await ensure_topology(js, layout)
        log = TransparencyLog(log_key)
        service = cls(
            nc,
            operator_key=operator_key,
            log=log,
            limits=limits,
            clock=clock or SystemClock(),
            directory_kv=await js.key_value(subjects.DIRECTORY_BUCKET),
            content=await ContentStore.open(js),
            checkpoints=await CheckpointStore.open(js, log),
            on_entry=on_entry,
            on_admitted=on_admitted,
        )
        with collector_paused():  # the whole ledger at start: see hub.ledger.folding
            await service.catch_up()
        await service.checkpoints.publish(log.checkpoint())
        # Agents that did not pin the log key at init learn it here (trust on first use).
        await service._directory_kv.put(subjects.LOG_KEY, log.verifier_key.encode())
        return service

    async def catch_up(self) -> int:
        """Fold entries appended since our position (restart, or another instance's appends)."""
        folded = 0
        self._batched_changes, changed = True, False
        try:
            async for index, data in self.ledger.read(self.state.next_index):
                changed |= await self._fold(
                    decode(data, LedgerEntry, what=f"ledger entry {index}"), data
                )
                folded += 1
        finally:
            self._batched_changes = False
        if changed:
            await self._directory_changed()  # once for the whole catch-up, not per admission
        if folded:
            self._log.info("ledger_caught_up", entries=folded, next_index=self.state.next_index)
        return folded

    async def _fold(self, entry: LedgerEntry, data: bytes) -> bool:
        """Apply one entry everywhere; True when it changed the directory."""
        change = self._apply(entry, data)
        await self._announce(entry, change)
        return change is not None

    def _apply(self, entry: LedgerEntry, data: bytes) -> DirectoryChange | None:
        change = self.state.apply(entry)
        self.log.append(data)
        return change

    async def _announce(self, entry: LedgerEntry, change: DirectoryChange | None) -> None:
        """What follows a durable entry: directory publication, the live feed."""
        if isinstance(change, DirectoryRecord):
            await self._publish_card(change)
        elif change is not None:
            await self._publish_revocation(change)
        if self._on_entry is not None:
            self._on_entry(entry)

    async def _publish_revocation(self, revoked: RevokedAuthority) -> None:
        """Drop a revoked authority: its ``card.<ID>`` leaves the KV for a ``revoked.<ID>``
        marker (its key history stays), then the runtime stops it connecting."""
        kv = self._directory_kv
        await when_ready(lambda: kv.put(subjects.revoked_key(revoked.authority), encode(revoked)))
        await when_ready(lambda: kv.delete(subjects.card_key(revoked.authority)))
        await self._directory_changed()

    async def _publish_card(self, record: DirectoryRecord) -> None:
        """Materialize the directory where node agents read it (KV), create the authority's
        two consumers, then let the runtime update who may connect (``on_admitted``)."""
        kv, authority, data = self._directory_kv, record.card.id, encode(record.admitted)
        await when_ready(lambda: ensure_authority_consumers(self._js, authority))
        await when_ready(lambda: kv.put(subjects.card_key(authority), data))
        history = subjects.key_history_key(authority, record.card.keys.key_id)
        await when_ready(lambda: kv.put(history, data))
        await self._directory_changed()

    async def _directory_changed(self) -> None:
        # Last: the runtime reloads the NATS configuration, and JetStream answers "not ready"
        # for a moment after a reload; everything above is written before that.
        if self._on_admitted is not None and not self._batched_changes:
            await self._on_admitted(self.state.directory)

    # --- deciding and recording ------------------------------------------------------------

    async def process(self, raw: bytes, intake_sender: str) -> Verdict:
        """Decide, record, deliver and answer one submission; returns the verdict sent."""
        outcome = await self._record(raw, intake_sender)
        await self._publish([outcome])
        return outcome.verdict

    async def _record(self, raw: bytes, intake_sender: str) -> _Outcome:
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

    async def _carry_out(self, decision: Decision) -> _Outcome:
        if isinstance(decision, Accept):
            content = None
            if decision.content is not None and decision.content_digest is not None:
                # Concurrent with the append: a crash between the two is repaired by the retry,
                # whose Duplicate path stores the content again (idempotent, keyed by digest).
                content = self._content.put(decision.content_digest, decision.content)
            recorded = await self._append(decision.event, decision.dedup_id, content)
            self._log.info(
                "submission_accepted", message_id=decision.message_id, index=recorded.index
            )
            return _Outcome(
                decision.reply_to,
                _verdict(decision.message_id, "accepted", recorded),
                decision.message_id,
                recorded,
                decision.deliveries,
            )
        if isinstance(decision, Duplicate):
            recorded = await self._recorded(decision.ledger_index)
            if decision.content is not None and decision.content_digest is not None:
                await self._content.put(decision.content_digest, decision.content)
            self._log.info(
                "submission_duplicate", message_id=decision.message_id, index=recorded.index
            )
            return _Outcome(
                decision.reply_to,
                _verdict(decision.message_id, "duplicate", recorded),
                decision.message_id,
                recorded,
                decision.deliveries,
            )
        return await self._reject(decision)

    async def _reject(self, decision: Reject) -> _Outcome:
        if decision.recorded_index is None:
            recorded = await self._append(decision.event, decision.dedup_id)
        else:
            recorded = await self._recorded(decision.recorded_index)
        error = decision.error
        self._log.warning(
            "submission_rejected",
            reason=error.code,
            detail=str(error),
            sender=decision.reply_to,
            message_id=decision.message_id,
            index=recorded.index,
        )
        verdict = Verdict(
            message_id=decision.message_id,
            status="rejected",
            ledger_index=recorded.index,
            recorded_at=recorded.recorded_at,
            reason=error.code,
            detail=str(error),
            rule=getattr(error, "rule", None),
        )
        token = decision.message_id or f"digest-{decision.event.submission_digest.hex()}"
        return _Outcome(decision.reply_to, verdict, token, recorded)

    async def _append(
        self, event: LedgerEvent, dedup_id: str, alongside: Awaitable[None] | None = None
    ) -> _Recorded:
        """Append ``event`` at the next index. Inside a batch (``_pipelining``) the append is
        only started: the entry is folded at once, so the next decision sees it, and
        :meth:`_confirm` waits for the whole batch's acks. Directory changes (which reload the
        NATS configuration) and single submissions wait for their own ack."""
        sequential = not self._pipelining or isinstance(event, AuthorityAdmitted | AuthorityRevoked)
        if sequential:
            await self._confirm()  # what came before is stored first (or the batch fails)
        entry = LedgerEntry(index=self.state.next_index, recorded_at=self._clock.now(), event=event)
        data = encode(entry)
        # Started here, in index order: tasks begin in the order they are made, so the appends
        # reach the server in index order and each finds its expected last sequence.
        append = asyncio.ensure_future(
            self.ledger.append(data, index=entry.index, dedup_id=dedup_id)
        )
        stored = self._store(append, entry.index, dedup_id, alongside)
        if sequential:
            await stored
            await self._fold(entry, data)
        else:
            change = self._apply(entry, data)
            self._inflight.append((asyncio.ensure_future(stored), entry, change))
        return _Recorded(entry.index, entry.recorded_at, data)

    async def _store(
        self,
        append: asyncio.Future[int],
        index: int,
        dedup_id: str,
        alongside: Awaitable[None] | None,
    ) -> None:
        if alongside is None:
            got = await append
        else:
            got, _ = await asyncio.gather(append, alongside)
        if got != index:
            # The dedup id was already stored (a retried publish): fold it and decide again.
            raise LedgerConflict(f"ledger: {dedup_id} already stored at index {got}")

    async def _confirm(self) -> None:
        """Wait for every started append; if one failed, the state ran ahead of the ledger:
        rebuild it from the ledger and fail the batch (its submissions come back)."""
        inflight, self._inflight = self._inflight, []
        if not inflight:
            return
        results = await asyncio.gather(*(task for task, _, _ in inflight), return_exceptions=True)
        failed = next((r for r in results if isinstance(r, BaseException)), None)
        if failed is not None:
            await self._rebuild()
            raise BatchFailed(f"ledger: a batched append failed ({failed}); state rebuilt")
        for _, entry, change in inflight:
            await self._announce(entry, change)

    async def _rebuild(self) -> None:
        self._log.warning("state_rebuild", reason="an append of the batch was not stored")
        self.state = HubState()
        self.log.reset()
        with collector_paused():
            await self.catch_up()

    async def _recorded(self, index: int) -> _Recorded:
        data = await self.ledger.get(index)
        entry = decode(data, LedgerEntry, what=f"ledger entry {index}")
        return _Recorded(entry.index, entry.recorded_at, data)

    # --- answering -----------------------------------------------------------------------------

    async def _publish(self, outcomes: Sequence[_Outcome]) -> SignedCheckpoint:
        """Sign the batch's checkpoint, then deliver and answer everything at once."""
        checkpoint = self.log.checkpoint()
        # Stored first: a witness cosigns (and a client asks for) the checkpoint it was shown.
        await self.checkpoints.publish(checkpoint)
        publishes: list[tuple[str, bytes, str]] = []  # subject, data, Nats-Msg-Id
        for outcome in outcomes:
            recorded = outcome.recorded
            proof = self.log.inclusion(recorded.index, checkpoint.size)
            for recipient, item in outcome.deliveries:
                delivery = Delivery(
                    ledger_index=recorded.index,
                    recorded_at=recorded.recorded_at,
                    item=item,
                    entry=recorded.entry,
                    checkpoint=checkpoint.note,
                    inclusion_proof=proof,
                )
                msg_id = f"d:{recorded.index}:{recipient}"
                publishes.append((subjects.deliver(recipient), encode(delivery), msg_id))
            if subjects.is_token(outcome.reply_to):  # else: nowhere to answer; still recorded
                verdict = _with_proof(outcome.verdict, recorded, checkpoint, proof)
                subject = subjects.verdict(outcome.reply_to, outcome.token)
                msg_id = f"v:{outcome.reply_to}:{outcome.token}:{verdict.status}"
                publishes.append((subject, encode(verdict), msg_id))
        await self._send_all(publishes)
        return checkpoint

    async def _send_all(self, publishes: Sequence[tuple[str, bytes, str]]) -> None:
        """Publish every message at once, then wait until JetStream acked each one (or raise
        :class:`UnavailableError`). ``publish_async`` and one timeout for the whole batch, not a
        ``js.publish`` per message: each is a request with its own task, timer and reply future
        (nats-py requests were a fifth of the hub's CPU at saturation)."""
        acks: list[asyncio.Future[PubAck]] = []
        try:
            try:
                for subject, data, msg_id in publishes:
                    headers = {"Nats-Msg-Id": msg_id}
                    acks.append(await self._js.publish_async(subject, data, headers=headers))
                results = await asyncio.wait_for(
                    asyncio.gather(*acks, return_exceptions=True), _ANSWER_TIMEOUT_S
                )
            except (TimeoutError, nats.errors.Error) as e:
                raise UnavailableError(f"deliveries and verdicts: not acknowledged ({e})") from e
        finally:
            for ack in acks:  # on failure: no pending publish is left waiting for its ack
                ack.cancel()
        failed = [r for r in results if isinstance(r, BaseException)]
        if failed:
            raise UnavailableError(f"deliveries and verdicts: a publish failed ({failed[0]})")

    # --- the intake loop ---------------------------------------------------------------------

    async def run(self, stop: asyncio.Event, *, batch: int = 256) -> None:
        """Consume the intake until ``stop`` is set; checkpoint at least once a second."""
        config = js_api.ConsumerConfig(
            durable_name=_DURABLE,
            ack_policy=js_api.AckPolicy.EXPLICIT,
            ack_wait=30.0,
            max_ack_pending=4096,
        )
        sub = await when_ready(
            lambda: self._js.pull_subscribe(
                "mla.submit.>", durable=_DURABLE, stream=subjects.SUBMIT_STREAM, config=config
            )
        )
        ticker = asyncio.create_task(self._checkpoint_ticker(stop))
        responder = TransparencyResponder(
            self._nc, self.log, self.checkpoints, lambda: self.state.directory
        )
        await responder.start()
        self._log.info("hub_consuming", next_index=self.state.next_index)
        try:
            while not stop.is_set():
                try:
                    msgs = await sub.fetch(batch, timeout=0.5)
                except TimeoutError:  # nats-py raises its own or the builtin one
                    continue
                except nats.errors.Error as e:  # e.g. a reconnect in progress: keep serving
                    self._log.warning("intake_fetch_failed", detail=str(e))
                    await asyncio.sleep(0.5)
                    continue
                await self._handle(msgs)
        finally:
            await responder.stop()
            ticker.cancel()
            await asyncio.gather(ticker, return_exceptions=True)

    async def _handle(self, msgs: Sequence[Msg]) -> None:
        done: list[tuple[Msg, _Outcome]] = []
        self._pipelining = True
        try:
            for msg in msgs:
                intake_sender = msg.subject.split(".", 2)[2] if msg.subject.count(".") >= 2 else ""
                try:
                    done.append((msg, await self._record(msg.data, intake_sender)))
                except BatchFailed:
                    raise  # earlier outcomes of this batch may not be stored: all come back
                except HubError as e:
                    self._log.error("submission_deferred", reason=e.code, detail=str(e))
                    with contextlib.suppress(Exception):
                        await msg.nak(delay=1.0)
                except Exception:  # a bug or a transport error we did not type: keep serving
                    self._log.exception("submission_failed", subject=msg.subject)
                    with contextlib.suppress(Exception):
                        await msg.nak(delay=5.0)
            await self._confirm()
        except HubError as e:  # a batched append failed: the state was rebuilt; all come back
            self._log.error("batch_deferred", reason=e.code, detail=str(e), size=len(msgs))
            for msg in msgs:
                with contextlib.suppress(Exception):
                    await msg.nak(delay=1.0)
            return
        finally:
            self._pipelining = False
        if not done:
            return
        try:
            await self._publish([outcome for _, outcome in done])
        except HubError as e:
            self._log.error("batch_answer_deferred", reason=e.code, detail=str(e), size=len(done))
            for msg, _ in done:  # recorded; the retry re-answers as Duplicate
                with contextlib.suppress(Exception):
                    await msg.nak(delay=1.0)
            return
        await asyncio.gather(*(msg.ack() for msg, _ in done), return_exceptions=True)

    async def _checkpoint_ticker(self, stop: asyncio.Event) -> None:
        """Entries may arrive from other instances: keep the checkpoint at most 1 s behind."""
        while not stop.is_set():
            await asyncio.sleep(_CHECKPOINT_EVERY_S)
            try:
                await self.catch_up()
                if self._pipelining:
                    continue  # a batch is in flight: it signs its own checkpoint once confirmed
                checkpoint = self.log.checkpoint()  # no await since the check above
                await self.checkpoints.publish(checkpoint)
            except HubError as e:
                self._log.warning("checkpoint_deferred", reason=e.code, detail=str(e))
            except Exception:  # an untyped transport error: the ticker must not die with it
                self._log.exception("checkpoint_ticker_error")


def _verdict(message_id: str, status: str, recorded: _Recorded) -> Verdict:
    return Verdict(
        message_id=message_id,
        status=status,  # type: ignore[arg-type]
        ledger_index=recorded.index,
        recorded_at=recorded.recorded_at,
    )


def _with_proof(
    verdict: Verdict, recorded: _Recorded, checkpoint: SignedCheckpoint, proof: list[bytes]
) -> Verdict:
    import msgspec

    return msgspec.structs.replace(
        verdict, entry=recorded.entry, checkpoint=checkpoint.note, inclusion_proof=proof
    )
