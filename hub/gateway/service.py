"""The hub service: take submissions from the intake, decide, record, deliver, answer.

Work goes in batches of what one fetch from the durable intake consumer returns (the consumer
is shared by every hub instance). For each submission, in order: run the pure admission rules,
store the sealed bytes in the content store while appending the entry to the ledger at the next
index, and fold it into the state and the transparency log. Then, once for the batch: sign a
checkpoint, publish every delivery and verdict with the entry, the checkpoint and its inclusion
proof, all in flight together, and only then ack the intake messages. A crash at any point
redelivers the submissions; the message index turns each retry into a ``Duplicate`` that
re-delivers and re-answers without appending again. Nothing accepted is lost or applied twice.

Beside this module: the ledger writes, one at a time or a batch in flight
(``hub.gateway._appends``); what is published from the recorded entries, directory KV,
deliveries and verdicts (``hub.gateway._publication``); the checkpoint ticker, with the
checkpoints (``CheckpointStore.keep_fresh``).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence

import nats.errors
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.kv import KeyValue

from hub import subjects
from hub.clock import Clock, SystemClock
from hub.errors import HubError, UnavailableError
from hub.gateway._appends import Appends
from hub.gateway._publication import (
    Outcome,
    Recorded,
    answers,
    publish_directory_change,
    recorded_pairs,
    rejection,
    send_all,
    verdict_for,
)
from hub.gateway.admission import Accept, Decision, Duplicate, Limits, Reject, admit
from hub.gateway.checkpoints import CheckpointStore, TransparencyResponder
from hub.gateway.decisions import Decoded
from hub.ledger.batches import LedgerBatch, enable_atomic_batches
from hub.ledger.folding import HeapSettler, collector_paused
from hub.ledger.pipeline import Pipeline
from hub.ledger.projections.directory import Directory, DirectoryChange
from hub.ledger.projections.state import HubState
from hub.ledger.store import (
    ContentStore,
    Ledger,
    LedgerConflict,
    StreamLayout,
    ensure_topology,
    intake_subscription,
    when_ready,
)
from hub.ledger.transparency import SignedCheckpoint, TransparencyLog
from hub.logs import get_logger
from schemas.codec import decode, encode
from schemas.ledger import AuthorityAdmitted, AuthorityRevoked, LedgerEntry, LedgerEvent
from schemas.transport import Verdict

__all__ = ["BatchFailed", "HubService"]

_MAX_CONFLICT_RETRIES = 50


class BatchFailed(UnavailableError):
    """A batched ledger append was not stored; the state was rebuilt from the ledger."""

    code = "batch_failed"


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
        self._pipeline = Pipeline(nc)  # appends, content, deliveries, verdicts of a batch
        self._appends = Appends(self.ledger, content, self._pipeline)
        self._batched_changes = False
        self._pipelining = False
        self._appending = 0
        self.state = HubState()
        self._settler = HeapSettler()
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
        atomic_batches: bool = False,
    ) -> HubService:
        """Create the topology if needed and fold the whole ledger into memory (a batch's
        appends in one atomic batch if ``atomic_batches``: see ``hub.ledger.batches``)."""
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
        if atomic_batches and await enable_atomic_batches(js, nc):
            service._appends.batch = LedgerBatch(nc, service._pipeline)
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

    async def _fold(self, entry: LedgerEntry, data: bytes, decoded: Decoded | None = None) -> bool:
        """Apply one entry everywhere; True when it changed the directory."""
        if entry.index < self.state.next_index:
            return False  # folded already (see _apply)
        change = self._apply(entry, data, decoded)
        await self._announce(entry, change)
        return change is not None

    def _apply(
        self, entry: LedgerEntry, data: bytes, decoded: Decoded | None = None
    ) -> DirectoryChange | None:
        if entry.index < self.state.next_index:
            # Folded already: a second leaf for it would shift every later proof off its
            # entry (the ticker's catch-up once did this to an append in flight; _busy).
            return None
        change = self.state.apply(entry, decoded)
        self.log.append(data)
        self._settler.applied()  # collections stay short however large the state grows
        return change

    async def _announce(self, entry: LedgerEntry, change: DirectoryChange | None) -> None:
        """What follows a durable entry: directory publication (then the runtime updates who
        may connect: ``on_admitted``), the live feed."""
        if change is not None:
            await publish_directory_change(self._js, self._directory_kv, change)
            await self._directory_changed()
        if self._on_entry is not None:
            self._on_entry(entry)

    async def _directory_changed(self) -> None:
        # Last: the runtime reloads the NATS configuration, and JetStream answers "not ready"
        # for a moment after a reload; everything above is written before that.
        if self._on_admitted is not None and not self._batched_changes:
            await self._on_admitted(self.state.directory)

    def _busy(self) -> bool:
        """An append of ours is in flight: stored entries may not be folded yet, and a
        catch-up now would fold them a second time."""
        return self._pipelining or self._appending > 0

    # --- deciding and recording ------------------------------------------------------------

    async def process(self, raw: bytes, intake_sender: str) -> Verdict:
        """Decide, record, deliver and answer one submission; returns the verdict sent."""
        outcome = await self._record(raw, intake_sender)
        self._log_recorded([outcome])
        await self._publish([outcome])
        return outcome.verdict

    async def _record(self, raw: bytes, intake_sender: str) -> Outcome:
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

    async def _carry_out(self, decision: Decision) -> Outcome:
        if isinstance(decision, Accept):
            recorded = await self._append(
                decision.event, decision.dedup_id, decision.stored_content, decision.decoded
            )
            status = "accepted"
        elif isinstance(decision, Duplicate):
            recorded = await self._recorded(decision.ledger_index)
            if decision.stored_content is not None:
                await self._content.put(*decision.stored_content)
            status = "duplicate"
        else:
            return await self._reject(decision)
        verdict = verdict_for(decision.message_id, status, recorded)
        return Outcome(
            decision.reply_to, verdict, decision.message_id, recorded, decision.deliveries
        )

    def _log_recorded(self, outcomes: Sequence[Outcome]) -> None:
        """One line for what a batch recorded: a line per submission was a tenth of the hub's
        Python time at saturation. Rejections have their own warning each."""
        pairs = recorded_pairs(outcomes)
        if pairs["accepted"] or pairs["duplicate"]:
            self._log.info("submissions_recorded", **pairs)

    async def _reject(self, decision: Reject) -> Outcome:
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
        return rejection(decision, recorded)

    async def _append(
        self,
        event: LedgerEvent,
        dedup_id: str,
        content: tuple[bytes, bytes] | None = None,
        decoded: Decoded | None = None,
    ) -> Recorded:
        """Append ``event`` at the next index, and store ``content`` (digest, sealed bytes)
        beside it: concurrent with the append, as a crash between the two is repaired by the
        retry, whose Duplicate path stores the content again (idempotent, keyed by digest).

        Inside a batch (``_pipelining``) both are only sent: the entry is folded at once, so
        the next decision sees it, and :meth:`_confirm` waits for the whole batch's acks.
        Directory changes (which reload the NATS configuration) and single submissions wait
        for their own ack."""
        sequential = not self._pipelining or isinstance(event, AuthorityAdmitted | AuthorityRevoked)
        if sequential:
            await self._confirm()  # what came before is stored first (or the batch fails)
        entry = LedgerEntry(index=self.state.next_index, recorded_at=self._clock.now(), event=event)
        data, index = encode(entry), entry.index
        if sequential:
            self._appending += 1  # stored but not folded yet: no catch-up meanwhile (_busy)
            try:
                await self._appends.store(data, index=index, dedup_id=dedup_id, content=content)
                await self._fold(entry, data, decoded)
            finally:
                self._appending -= 1
        else:
            sent = await self._appends.send(data, index=index, dedup_id=dedup_id, content=content)
            self._appends.hold(sent, entry, self._apply(entry, data, decoded))
        return Recorded(entry.index, entry.recorded_at, data)

    async def _confirm(self) -> None:
        """Wait for every sent append; if one failed, the state ran ahead of the ledger:
        rebuild it from the ledger and fail the batch (its submissions come back)."""
        try:
            confirmed = await self._appends.confirm()
        except HubError as e:
            await self._rebuild()
            raise BatchFailed(f"ledger: a batched append failed ({e}); state rebuilt") from e
        for entry, change in confirmed:
            await self._announce(entry, change)

    async def _rebuild(self) -> None:
        self._log.warning("state_rebuild", reason="an append of the batch was not stored")
        self.state = HubState()
        self.log.reset()
        self._appends.forget_unconfirmed()
        with collector_paused():
            await self.catch_up()

    async def _recorded(self, index: int) -> Recorded:
        data = await self.ledger.get(index)
        entry = decode(data, LedgerEntry, what=f"ledger entry {index}")
        return Recorded(entry.index, entry.recorded_at, data)

    # --- answering -----------------------------------------------------------------------------

    async def _publish(self, outcomes: Sequence[Outcome]) -> SignedCheckpoint:
        """Sign the batch's checkpoint, then deliver and answer everything at once."""
        checkpoint = self.log.checkpoint()
        # Stored first: a witness cosigns (and a client asks for) the checkpoint it was shown.
        await self.checkpoints.publish(checkpoint)
        await send_all(self._pipeline, answers(self.log, checkpoint, outcomes))
        return checkpoint

    # --- the intake loop ---------------------------------------------------------------------

    async def run(self, stop: asyncio.Event, *, batch: int = 256) -> None:
        """Consume the intake until ``stop`` is set; checkpoint at least once a second."""
        sub = await when_ready(lambda: intake_subscription(self._js))
        ticker = asyncio.create_task(
            self.checkpoints.keep_fresh(stop, catch_up=self.catch_up, busy=self._busy)
        )
        responder = TransparencyResponder(
            self._nc,
            self.log,
            self.checkpoints,
            lambda: self.state.directory,
            provable=lambda: self.log.size - self._appends.unconfirmed,
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
            with contextlib.suppress(nats.errors.Error):  # the connection may be closed already
                await sub.close()
            await responder.stop()
            ticker.cancel()
            await asyncio.gather(ticker, return_exceptions=True)

    async def _handle(self, msgs: Sequence[Msg]) -> None:
        done: list[tuple[Msg, Outcome]] = []
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
            self._log_recorded([outcome for _, outcome in done])
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
        for msg, _ in done:  # each only queues a publish on the connection: no task per ack
            with contextlib.suppress(Exception):
                await msg.ack()
