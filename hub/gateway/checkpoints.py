"""Signed checkpoints at rest and on request: the CHECKPOINTS bucket and the ``mla.hub.*``
transparency responder (schemas.transparency).

Every checkpoint the hub signs is kept under ``cp.<size>`` (zero-padded, so keys sort in
issue order) and the newest under ``latest``; witnesses' cosignatures are merged into the stored
note with compare-and-set, so two hub instances never lose one. Node agents ask for the latest
checkpoint and for consistency proofs, and hand in their cosignatures, over core NATS
request/reply (queue group ``hub``: any instance answers).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

import nats.errors
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js import JetStreamContext
from nats.js.errors import (
    KeyNotFoundError,
    KeyWrongLastSequenceError,
    NotFoundError,
)
from nats.js.kv import KeyValue

from hub import subjects
from hub.errors import HubError, UnavailableError, UnknownSender, ValidationError
from hub.ledger.projections.directory import Directory
from hub.ledger.store import kv_items
from hub.ledger.transparency import SignedCheckpoint, TransparencyLog, witness_verifier
from hub.logs import get_logger
from schemas.codec import decode, encode
from schemas.transparency import (
    ConsistencyProof,
    ConsistencyRequest,
    CosignatureSubmission,
    TransparencyReply,
)

__all__ = ["CheckpointStore", "TransparencyResponder", "checkpoint_key"]

_LATEST = "latest"
_CAS_RETRIES = 20
_FRESH_EVERY_S = 1.0
_log = get_logger("hub.service")  # the ticker's events, as when it lived in the service


def checkpoint_key(size: int) -> str:
    return f"cp.{size:012d}"


class CheckpointStore:
    """Checkpoints as signed notes in the CHECKPOINTS key-value bucket."""

    def __init__(self, kv: KeyValue, log: TransparencyLog) -> None:
        self._kv = kv
        self._log = log
        self._published = -1

    @classmethod
    async def open(cls, js: JetStreamContext, log: TransparencyLog) -> CheckpointStore:
        return cls(await js.key_value(subjects.CHECKPOINTS_BUCKET), log)

    async def publish(self, checkpoint: SignedCheckpoint) -> None:
        """Store a newly signed checkpoint (idempotent per size; keeps gathered cosignatures)."""
        if checkpoint.size <= self._published:
            return
        note = checkpoint.note.encode()
        try:
            # Both in flight at once: one round trip (one fsync wait) on the batch's path, not
            # two. They go out on one connection to one stream, so cp.<size> is still stored
            # before ``latest``; the caller publishes deliveries only once both are stored.
            await asyncio.gather(self._create(checkpoint.size, note), self._kv.put(_LATEST, note))
        except (TimeoutError, nats.errors.Error) as e:
            raise UnavailableError(f"checkpoints: not stored ({e})") from e
        self._published = checkpoint.size

    async def keep_fresh(
        self,
        stop: asyncio.Event,
        *,
        catch_up: Callable[[], Awaitable[object]],
        busy: Callable[[], bool],
        every: float = _FRESH_EVERY_S,
    ) -> None:
        """Until ``stop``: every ``every`` seconds, fold what other instances appended
        (``catch_up``) and store the log's checkpoint, so it is at most that far behind. While
        ``busy()`` (an append of ours in flight), skip both: a catch-up would fold our stored
        but not yet folded entries a second time, and the batch signs its own checkpoint."""
        while not stop.is_set():
            await asyncio.sleep(every)
            try:
                if busy():
                    continue
                await catch_up()
                if busy():  # one may have started while catch_up waited for the ledger
                    continue
                checkpoint = self._log.checkpoint()  # no await since the check above
                await self.publish(checkpoint)
            except HubError as e:
                _log.warning("checkpoint_deferred", reason=e.code, detail=str(e))
            except Exception:  # an untyped transport error: the ticker must not die with it
                _log.exception("checkpoint_ticker_error")

    async def _create(self, size: int, note: bytes) -> None:
        with contextlib.suppress(KeyWrongLastSequenceError):
            await self._kv.create(checkpoint_key(size), note)

    async def get(self, size: int | None = None) -> str | None:
        """The stored note of ``size`` (default: the latest), cosignatures included."""
        key = _LATEST if size is None else checkpoint_key(size)
        try:
            entry = await self._kv.get(key)
        except (KeyNotFoundError, NotFoundError):
            return None
        except (TimeoutError, nats.errors.Error) as e:
            raise UnavailableError(f"checkpoints: not read ({e})") from e
        return (entry.value or b"").decode()

    async def add_cosignature(self, size: int, line: str, witness_id: str, signing: bytes) -> str:
        """Verify and merge one cosignature into the checkpoint of ``size``; returns the note."""
        witness = witness_verifier(witness_id, signing)
        for _ in range(_CAS_RETRIES):
            try:
                entry = await self._kv.get(checkpoint_key(size))
            except (KeyNotFoundError, NotFoundError) as e:
                raise ValidationError(f"size: no checkpoint of size {size}", field="size") from e
            stored = self._log.open((entry.value or b"").decode())
            updated = self._log.with_cosignature(stored, line, witness)
            try:
                await self._kv.update(checkpoint_key(size), updated.note.encode(), entry.revision)
            except KeyWrongLastSequenceError:
                continue  # another witness got in first: merge again
            await self._refresh_latest(size)
            return updated.note
        raise UnavailableError("checkpoints: too many concurrent cosignatures; retry")

    async def _refresh_latest(self, size: int) -> None:
        """``latest`` takes the cosignatures of ``size`` while it is that checkpoint; compare
        and set, so a newer checkpoint stored meanwhile is never replaced by an older one."""
        for _ in range(_CAS_RETRIES):
            try:
                latest = await self._kv.get(_LATEST)
            except (KeyNotFoundError, NotFoundError):
                return
            if self._log.open((latest.value or b"").decode()).size != size:
                return  # a newer checkpoint is the latest: it stays
            note = await self.get(size)  # with every cosignature gathered so far
            if note is None:
                return  # nothing to copy (never an empty latest)
            with contextlib.suppress(KeyWrongLastSequenceError):  # changed meanwhile: look again
                await self._kv.update(_LATEST, note.encode(), latest.revision)
                return

    async def all_notes(self) -> list[str]:
        """Every stored checkpoint note, in issue (size) order."""
        items = await kv_items(self._kv)
        return [items[key].decode() for key in sorted(items) if key.startswith("cp.")]


class TransparencyResponder:
    """Answers ``mla.hub.checkpoint``, ``mla.hub.consistency`` and ``mla.hub.cosign.<ID>``."""

    def __init__(
        self,
        nc: NatsClient,
        log: TransparencyLog,
        store: CheckpointStore,
        directory: Callable[[], Directory],
        *,
        provable: Callable[[], int] | None = None,
    ) -> None:
        """``provable()``: how many leaves of ``log`` are confirmed in the ledger (a batch
        folds its entries before their appends are acknowledged, and one that loses a race
        to another instance is rebuilt away); by default all of them."""
        self._nc = nc
        self._log = log
        self._provable = provable or (lambda: log.size)
        self._store = store
        self._directory = directory
        self._subs: list[Subscription] = []
        self._logger = get_logger("hub.transparency")

    async def start(self) -> None:
        for subject, handler in (
            (subjects.HUB_CHECKPOINT, self._checkpoint),
            (subjects.HUB_CONSISTENCY, self._consistency),
            (subjects.hub_cosign("*"), self._cosign),
        ):
            self._subs.append(await self._nc.subscribe(subject, queue="hub", cb=_answer(handler)))

    async def stop(self) -> None:
        for sub in self._subs:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()

    async def _checkpoint(self, msg: Msg) -> TransparencyReply:
        note = await self._store.get()
        if note is None:
            return TransparencyReply(status="error", detail="no checkpoint yet")
        return TransparencyReply(status="ok", note=note)

    async def _consistency(self, msg: Msg) -> TransparencyReply:
        request = decode(msg.data, ConsistencyRequest, what="consistency request")
        provable = self._provable()
        if 0 <= request.from_size <= request.to_size and request.to_size > provable:
            # Another instance signed it, or this one is catching up, rebuilding its log after
            # a lost race, or waiting for a batch's acks: not a refusal to prove (an agent
            # would raise an alarm), and never a proof over entries not confirmed yet.
            raise UnavailableError(
                f"to_size: this hub instance holds {provable} entries so far, not "
                f"{request.to_size}; ask again"
            )
        if not 0 <= request.from_size <= request.to_size <= self._log.size:
            raise ValidationError(
                f"sizes: need 0 <= from_size <= to_size <= {self._log.size}, "
                f"got {request.from_size} and {request.to_size}",
                field="to_size",
            )
        hashes = self._log.consistency(request.from_size, request.to_size)
        proof = ConsistencyProof(
            from_size=request.from_size, to_size=request.to_size, hashes=hashes
        )
        return TransparencyReply(status="ok", proof=proof)

    async def _cosign(self, msg: Msg) -> TransparencyReply:
        witness_id = msg.subject.rsplit(".", 1)[-1]
        submission = decode(msg.data, CosignatureSubmission, what="cosignature")
        directory = self._directory()
        record = directory.get(witness_id)
        if record is None or not directory.is_admitted(witness_id):
            raise UnknownSender(f"witness: {witness_id} is not admitted to the directory")
        note = await self._store.add_cosignature(
            submission.size, submission.line, witness_id, record.card.keys.signing
        )
        self._logger.info("cosignature_added", witness=witness_id, size=submission.size)
        return TransparencyReply(status="ok", note=note)


def _answer(
    handler: Callable[[Msg], Awaitable[TransparencyReply]],
) -> Callable[[Msg], Awaitable[None]]:
    async def respond(msg: Msg) -> None:
        try:
            reply = await handler(msg)
        except HubError as e:
            reply = TransparencyReply(status="error", detail=f"{e.code}: {e}", code=e.code)
        if msg.reply:
            with contextlib.suppress(Exception):
                await msg.respond(encode(reply))

    return respond
