"""The node agent as a witness of the hub's log (issue 4; DESIGN.md section 4, "Witnesses").

For every verdict and delivery that carries one, the agent checks (1) the checkpoint's
signature by the hub's log key, (2) that the entry is exactly what it sent or received, and
(3) the RFC 9162 inclusion proof of the entry in that checkpoint. It keeps the newest
checkpoint it verified; for every other one it asks the hub for a consistency proof between the
two and verifies it. Then it cosigns the newer checkpoint (C2SP tlog-cosignature, with its
authority signing key) and hands the cosignature to the hub. Any failure is an **alarm**:
written to the agent's database for good, logged as an error, shown by ``node-agent status``;
never retried quietly, because it means the hub showed this authority a history that does not
add up.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from datetime import datetime

import nats.errors
from nats.aio.client import Client as NatsClient

from hub import subjects
from hub.crypto.checkpoint import cosign_with
from hub.crypto.digest import sha256
from hub.crypto.keys import AuthorityKeys
from hub.errors import HubError, UnavailableError, VerificationError
from hub.ledger.merkle import leaf_hash, verify_consistency, verify_inclusion
from hub.ledger.transparency import LogVerifier, SignedCheckpoint
from hub.logs import get_logger
from node_agent.store import AgentStore
from node_agent.witness_store import Alarm, WitnessStore
from schemas.codec import decode, encode
from schemas.envelope import Envelope
from schemas.ledger import EnvelopeRecorded, LedgerEntry, ReceiptRecorded, SubmissionRejected
from schemas.receipt import Receipt
from schemas.transparency import ConsistencyRequest, CosignatureSubmission, TransparencyReply
from schemas.transport import Delivery, Verdict

__all__ = [
    "Alarm",
    "TransparencyAlarm",
    "Witness",
    "WitnessStore",
    "check_inclusion",
    "matches_item",
    "matches_submission",
    "witness_delivery",
    "witness_verdicts",
    "witness_verdict",
]

_REQUEST_TIMEOUT_S = 5.0
# Every checkpoint seen is checked; cosigning the newest once a second is plenty for the hub to
# serve fresh cosignatures, and keeps a busy agent from doubling its requests.
_COSIGN_EVERY_S = 1.0
_OPENED_KEPT = 256
# How long a hub may answer "not yet" to a consistency proof for a checkpoint it signed (an
# instance catching up, or rebuilding after a lost race: seconds) before that is an alarm: a
# hub that signed a checkpoint and never proves it consistent hides a fork.
UNPROVEN_PATIENCE_S = 60.0


class TransparencyAlarm(VerificationError):
    """The hub's log does not add up for this agent (bad proof, split view, bad signature)."""

    code = "transparency_alarm"


class NotProvenYet(UnavailableError):
    """The hub answered that it cannot prove this consistency yet (see UNPROVEN_PATIENCE_S)."""


def check_inclusion(
    log: LogVerifier,
    *,
    entry: bytes,
    index: int,
    note: str,
    proof: list[bytes],
    expected: Callable[[LedgerEntry], bool],
) -> SignedCheckpoint:
    """(1) checkpoint signature, (2) the entry is ours, (3) inclusion. Pure; raises an alarm."""
    try:
        checkpoint = log.open(note)  # (1)
    except HubError as e:
        raise TransparencyAlarm(f"checkpoint: {e}") from e
    return check_entry(checkpoint, entry=entry, index=index, proof=proof, expected=expected)


def check_entry(
    checkpoint: SignedCheckpoint,
    *,
    entry: bytes,
    index: int,
    proof: list[bytes],
    expected: Callable[[LedgerEntry], bool],
) -> SignedCheckpoint:
    """(2) and (3) of :func:`check_inclusion`, against an already verified checkpoint."""
    try:
        recorded = decode(entry, LedgerEntry, what="ledger entry")
    except HubError as e:
        raise TransparencyAlarm(f"entry {index}: {e}") from e
    if recorded.index != index or not expected(recorded):  # (2)
        raise TransparencyAlarm(f"entry {index}: the hub recorded something else than this item")
    try:
        verify_inclusion(leaf_hash(entry), index, checkpoint.size, proof, checkpoint.root)  # (3)
    except HubError as e:
        raise TransparencyAlarm(f"entry {index}: inclusion proof: {e}") from e
    return checkpoint


class Witness:
    """Verifies what the hub shows this authority, and cosigns what adds up."""

    def __init__(
        self,
        authority: str,
        keys: AuthorityKeys,
        log: LogVerifier,
        store: WitnessStore,
        clock: Callable[[], datetime],
        nc: NatsClient,
    ) -> None:
        self._nc = nc
        self._last_cosign = -_COSIGN_EVERY_S
        self._opened: dict[str, SignedCheckpoint] = {}  # notes whose signature checked out
        self._pending: dict[int, SignedCheckpoint] = {}  # seen, consistency not checked yet
        self._unproven_since: dict[int, float] = {}  # size -> first "not yet" from the hub
        self.patience_s = UNPROVEN_PATIENCE_S
        self._worker: asyncio.Task[None] | None = None
        self._authority = authority
        self._keys = keys
        self.log = log
        self.store = store
        self._now = clock
        self._log = get_logger("node_agent.witness").bind(authority=authority)

    def alarm(self, error: HubError) -> None:
        self.store.raise_alarm(error.code, str(error), self._now())
        self._log.error("transparency_alarm", reason=error.code, detail=str(error))

    async def observe(
        self,
        *,
        entry: bytes | None,
        index: int | None,
        note: str | None,
        proof: list[bytes],
        expected: Callable[[LedgerEntry], bool],
    ) -> bool:
        """Check one proof-carrying item and advance our view; False (and an alarm) if bad."""
        if entry is None or index is None or note is None:
            return True  # an older hub without proofs: nothing to check
        try:
            checkpoint = self._open(note)  # (1), once per checkpoint
            check_entry(checkpoint, entry=entry, index=index, proof=proof, expected=expected)
            self._same_size_same_root(checkpoint)
        except TransparencyAlarm as e:
            self.alarm(e)
            return False
        # Consistency with what we hold needs a round trip to the hub: done beside the inbound
        # flow (never blocking it), for every distinct checkpoint seen, in size order.
        self._pending.setdefault(checkpoint.size, checkpoint)
        if self._worker is None or self._worker.done():
            self._worker = asyncio.create_task(self._drain())
        return True

    async def stop(self) -> None:
        """Stop checking (what is left pending is checked again at the next start)."""
        if self._worker is not None and not self._worker.done():
            self._worker.cancel()
            await asyncio.gather(self._worker, return_exceptions=True)

    async def settle(self) -> None:
        """Wait until every checkpoint seen so far has been checked (tests, shutdown)."""
        while self._worker is not None and not self._worker.done():
            await asyncio.shield(self._worker)

    def _open(self, note: str) -> SignedCheckpoint:
        opened = self._opened.get(note)
        if opened is None:
            try:
                opened = self.log.open(note)
            except HubError as e:
                raise TransparencyAlarm(f"checkpoint: {e}") from e
            if len(self._opened) >= _OPENED_KEPT:
                self._opened.clear()
            self._opened[note] = opened
        return opened

    def _same_size_same_root(self, checkpoint: SignedCheckpoint) -> None:
        """Two checkpoints of one size with different roots: a split view, caught at once."""
        known = self._pending.get(checkpoint.size)
        latest = self.store.latest_known()
        for size, root in (
            (known.size, known.root) if known else (-1, b""),
            (latest[0], latest[1]) if latest else (-1, b""),
        ):
            if size == checkpoint.size and root != checkpoint.root:
                raise TransparencyAlarm(
                    f"split view: two checkpoints of size {size} with different roots "
                    f"({root.hex()[:16]}... and {checkpoint.root.hex()[:16]}...)"
                )

    async def _drain(self) -> None:
        while self._pending:
            size = min(self._pending)
            checkpoint = self._pending.pop(size)
            try:
                await self._advance(self._nc, checkpoint)
            except TransparencyAlarm as e:
                self.alarm(e)
            except NotProvenYet as e:
                first = self._unproven_since.setdefault(size, time.monotonic())
                if time.monotonic() - first < self.patience_s:
                    self._pending.setdefault(size, checkpoint)
                    self._log.warning("witness_deferred", detail=str(e))
                    return
                self.alarm(TransparencyAlarm(f"{e} (still after {self.patience_s:.0f} s)"))
            except UnavailableError as e:  # the hub did not answer: keep it for the next turn
                self._pending.setdefault(size, checkpoint)
                self._log.warning("witness_deferred", detail=str(e))
                return
            self._unproven_since.pop(size, None)  # settled: proven, or an alarm raised

    async def _advance(self, nc: NatsClient, checkpoint: SignedCheckpoint) -> None:
        latest = self.store.latest()
        if latest is None:
            self.store.keep(checkpoint, self._now())
            await self._cosign(nc, checkpoint)
            return
        size, root, _ = latest
        if checkpoint.size == size:
            if checkpoint.root != root:
                raise TransparencyAlarm(
                    f"split view: two checkpoints of size {size} with different roots "
                    f"({root.hex()[:16]}... and {checkpoint.root.hex()[:16]}...)"
                )
            return
        older, newer = ((size, root), (checkpoint.size, checkpoint.root))
        if checkpoint.size < size:
            older, newer = newer, older
        hashes = await self._consistency(nc, older[0], newer[0])
        try:
            verify_consistency(older[0], newer[0], older[1], newer[1], hashes)
        except HubError as e:
            raise TransparencyAlarm(
                f"consistency {older[0]} -> {newer[0]}: the hub's log was rewritten ({e})"
            ) from e
        if checkpoint.size > size:
            # One fsync on the loop: cheaper than a thread hand-off (see node_agent.store).
            self.store.keep(checkpoint, self._now())
            if time.monotonic() - self._last_cosign >= _COSIGN_EVERY_S:
                await self._cosign(nc, checkpoint)

    async def _request(self, nc: NatsClient, subject: str, payload: bytes) -> TransparencyReply:
        try:
            msg = await nc.request(subject, payload, timeout=_REQUEST_TIMEOUT_S)
        except (TimeoutError, nats.errors.Error) as e:
            raise UnavailableError(f"{subject}: no answer from the hub ({e})") from e
        return decode(msg.data, TransparencyReply, what="transparency reply")

    async def _consistency(self, nc: NatsClient, old: int, new: int) -> list[bytes]:
        request = encode(ConsistencyRequest(from_size=old, to_size=new))
        reply = await self._request(nc, subjects.HUB_CONSISTENCY, request)
        if reply.status != "ok" and reply.code == UnavailableError.code:
            raise NotProvenYet(f"consistency {old} -> {new}: the hub cannot prove it yet")
        if reply.status != "ok" or reply.proof is None:
            raise TransparencyAlarm(f"consistency {old} -> {new}: the hub refused: {reply.detail}")
        if (reply.proof.from_size, reply.proof.to_size) != (old, new):
            raise TransparencyAlarm(f"consistency {old} -> {new}: the hub answered another one")
        return reply.proof.hashes

    async def _cosign(self, nc: NatsClient, checkpoint: SignedCheckpoint) -> None:
        self._last_cosign = time.monotonic()
        line = cosign_with(
            checkpoint.text,
            self._authority,
            self._keys.signing_public,
            self._keys.sign,
            int(self._now().timestamp()),
        )
        submission = encode(CosignatureSubmission(size=checkpoint.size, line=line))
        reply = await self._request(nc, subjects.hub_cosign(self._authority), submission)
        if reply.status != "ok":
            self._log.warning("cosignature_refused", size=checkpoint.size, detail=reply.detail)


def matches_submission(entry: LedgerEntry, payload: bytes) -> bool:
    """Does ``entry`` record exactly the submission whose bytes are ``payload``?"""
    event = entry.event
    if isinstance(event, SubmissionRejected):
        return event.submission_digest == sha256(payload)
    try:
        item = decode(payload, Envelope | Receipt, what="submission")
    except HubError:
        return False
    return matches_item(entry, item)


def matches_item(entry: LedgerEntry, item: Envelope | Receipt) -> bool:
    """Does ``entry`` record exactly this envelope or receipt (signed bytes, signature)?"""
    event = entry.event
    if isinstance(item, Envelope):
        return (
            isinstance(event, EnvelopeRecorded)
            and event.header == item.header
            and event.signature == item.signature
        )
    return (
        isinstance(event, ReceiptRecorded)
        and event.body == item.body
        and event.signature == item.signature
    )


async def witness_verdict(witness: Witness, verdict: Verdict, payload: bytes) -> bool:
    """Check the proof a verdict carries for the submission this agent sent."""
    return await witness.observe(
        entry=verdict.entry,
        index=verdict.ledger_index,
        note=verdict.checkpoint,
        proof=verdict.inclusion_proof,
        expected=lambda entry: matches_submission(entry, payload),
    )


async def witness_verdicts(
    witness: Witness, verdicts: Sequence[Verdict], store: AgentStore
) -> bool:
    """Check the proof each verdict carries, for the submissions of ours they answer."""
    good = True
    for verdict in verdicts:
        row = store.outbox_get(verdict.message_id or "")
        if row is not None:  # else not ours to check (an old or foreign verdict)
            good &= await witness_verdict(witness, verdict, row.payload)
    return good


async def witness_delivery(witness: Witness, delivery: Delivery) -> bool:
    """Check the proof a delivery carries for the item it hands over."""
    item = delivery.item
    return await witness.observe(
        entry=delivery.entry,
        index=delivery.ledger_index,
        note=delivery.checkpoint,
        proof=delivery.inclusion_proof,
        expected=lambda entry: matches_item(entry, item),
    )
