"""What the hub publishes from what it recorded, beside the ledger itself.

- the directory where node agents read it: an admitted authority's card (KV ``card.<ID>`` and
  its key history) and its two consumers; a revoked authority's ``revoked.<ID>`` marker;
- a batch's answers, once its checkpoint is signed: each delivery and verdict with the entry,
  the checkpoint and the entry's inclusion proof (:func:`answers`, pure; what goes to one
  addressee in one message, deliveries and verdicts apart), all published in flight together
  (:func:`send_all`).

The service (``hub.gateway.service``) decides and records; it calls these in its order.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import msgspec
import nats.errors
from nats.js import JetStreamContext
from nats.js.kv import KeyValue

from hub import subjects
from hub.errors import UnavailableError
from hub.gateway.admission import Item, Reject
from hub.gateway.nats_security import ensure_authority_consumers
from hub.ledger.pipeline import Pipeline
from hub.ledger.projections.directory import DirectoryChange, DirectoryRecord
from hub.ledger.store import when_ready
from hub.ledger.transparency import SignedCheckpoint, TransparencyLog
from schemas.codec import encode
from schemas.transport import Deliveries, Delivery, Verdict, Verdicts

__all__ = [
    "ANSWER_TIMEOUT_S",
    "Outcome",
    "Publish",
    "Recorded",
    "answers",
    "publish_directory_change",
    "recorded_pairs",
    "rejection",
    "send_all",
    "verdict_for",
]

ANSWER_TIMEOUT_S = 5.0  # for every ack of a batch's deliveries and verdicts (nats-py's default)

Publish = tuple[str, bytes, str]  # subject, data, Nats-Msg-Id


@dataclass(frozen=True, slots=True)
class Recorded:
    """Where a submission's entry sits in the ledger, and its bytes."""

    index: int
    recorded_at: datetime
    entry: bytes


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one submission still needs once the batch's checkpoint is signed."""

    reply_to: str
    verdict: Verdict
    token: str
    recorded: Recorded
    deliveries: tuple[tuple[str, Item], ...] = ()


async def publish_directory_change(
    js: JetStreamContext, kv: KeyValue, change: DirectoryChange
) -> None:
    """Materialize a directory change where node agents read it (idempotent, so a replay of
    the ledger may write it again). An admission: the authority's two consumers, its card and
    its key history entry. A revocation: its ``card.<ID>`` leaves the KV for a
    ``revoked.<ID>`` marker (its key history stays)."""
    if isinstance(change, DirectoryRecord):
        authority, data = change.card.id, encode(change.admitted)
        await when_ready(lambda: ensure_authority_consumers(js, authority))
        await when_ready(lambda: kv.put(subjects.card_key(authority), data))
        history = subjects.key_history_key(authority, change.card.keys.key_id)
        await when_ready(lambda: kv.put(history, data))
        return
    revoked = change
    await when_ready(lambda: kv.put(subjects.revoked_key(revoked.authority), encode(revoked)))
    await when_ready(lambda: kv.delete(subjects.card_key(revoked.authority)))


def verdict_for(message_id: str, status: str, recorded: Recorded) -> Verdict:
    """The verdict for a recorded submission, before its proof is attached."""
    return Verdict(
        message_id=message_id,
        status=status,  # type: ignore[arg-type]
        ledger_index=recorded.index,
        recorded_at=recorded.recorded_at,
    )


def rejection(decision: Reject, recorded: Recorded) -> Outcome:
    """What a refused submission gets: its recorded ``SubmissionRejected`` and the reason."""
    error = decision.error
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
    return Outcome(decision.reply_to, verdict, token, recorded)


def recorded_pairs(outcomes: Sequence[Outcome]) -> dict[str, list[tuple[str, int]]]:
    """(message id, ledger index) of what a batch accepted, and of its duplicates."""
    pairs: dict[str, list[tuple[str, int]]] = {"accepted": [], "duplicate": []}
    for outcome in outcomes:
        if (status := outcome.verdict.status) in pairs:
            pairs[status].append((outcome.token, outcome.recorded.index))
    return pairs


def answers(
    log: TransparencyLog, checkpoint: SignedCheckpoint, outcomes: Sequence[Outcome]
) -> list[Publish]:
    """Every delivery and verdict of ``outcomes``, proved against ``checkpoint``: what goes to
    one addressee in one message (``Deliveries``, ``Verdicts``; split so that none exceeds
    :data:`GROUP_BYTES`); an addressee's only verdict alone on its own subject (where
    ``IntakeClient.watch_verdicts`` looks first), and an only delivery alone."""
    to_deliver: dict[str, list[tuple[int, bytes]]] = {}
    to_answer: dict[str, list[tuple[Outcome, Verdict, bytes]]] = {}
    for outcome in outcomes:
        recorded = outcome.recorded
        proof = log.inclusion(recorded.index, checkpoint.size)
        for recipient, item in outcome.deliveries:
            delivery = Delivery(
                ledger_index=recorded.index,
                recorded_at=recorded.recorded_at,
                item=item,
                entry=recorded.entry,
                checkpoint=checkpoint.note,
                inclusion_proof=proof,
            )
            to_deliver.setdefault(recipient, []).append((recorded.index, encode(delivery)))
        if not subjects.is_token(outcome.reply_to):
            continue  # nowhere to answer; still recorded
        answer = msgspec.structs.replace(
            outcome.verdict, entry=recorded.entry, checkpoint=checkpoint.note, inclusion_proof=proof
        )
        to_answer.setdefault(outcome.reply_to, []).append((outcome, answer, encode(answer)))
    publishes: list[Publish] = []
    for recipient, items in to_deliver.items():
        first = 0
        for group in _groups([data for _, data in items]):
            low, high = items[first][0], items[first + len(group) - 1][0]
            first += len(group)
            if len(group) == 1:  # alone, as it always was
                publishes.append((subjects.deliver(recipient), group[0], f"d:{low}:{recipient}"))
            else:
                msg_id = f"d:{low}-{high}:{recipient}:{len(group)}"
                publishes.append((subjects.deliver(recipient), _deliveries(group), msg_id))
    for authority, answered in to_answer.items():
        publishes += _verdicts(authority, answered)
    return publishes


def _verdicts(authority: str, answered: list[tuple[Outcome, Verdict, bytes]]) -> list[Publish]:
    """An addressee's verdicts of one batch: together, except one alone, and one that names no
    message (a refused submission without an id: only its subject says whose it is)."""
    publishes: list[Publish] = []
    grouped: list[bytes] = []
    for outcome, answer, data in answered:
        if len(answered) == 1 or answer.message_id is None:
            subject = subjects.verdict(authority, outcome.token)
            msg_id = f"v:{authority}:{outcome.token}:{answer.status}"
            publishes.append((subject, data, msg_id))
        else:
            grouped.append(data)
    for group in _groups(grouped):
        # Named by their content: a retried batch is the same message (the stream drops it).
        digest = hashlib.sha256(b"".join(group)).hexdigest()[:32]
        subject = subjects.verdict(authority, f"batch-{digest}")
        publishes.append((subject, _verdicts_message(group), f"v:{authority}:batch:{digest}"))
    return publishes


GROUP_BYTES = 1024 * 1024
"""At most this much per grouped message (an item larger than that goes alone): far below the
server's 8 MiB, as a batch can hold many 4 MiB submissions to one addressee."""


def _groups(encoded: list[bytes]) -> list[list[bytes]]:
    """Consecutive runs of ``encoded`` of at most :data:`GROUP_BYTES` each (one item alone
    when it is larger)."""
    groups: list[list[bytes]] = []
    size = 0
    for data in encoded:
        if groups and size + len(data) <= GROUP_BYTES:
            groups[-1].append(data)
            size += len(data)
        else:
            groups.append([data])
            size = len(data)
    return groups


class _RawDeliveries(msgspec.Struct, tag_field="schema", tag=Deliveries.__struct_config__.tag):
    """``Deliveries`` from its items' bytes (each was encoded once, to measure it)."""

    items: list[msgspec.Raw]


class _RawVerdicts(msgspec.Struct, tag_field="schema", tag=Verdicts.__struct_config__.tag):
    verdicts: list[msgspec.Raw]


def _deliveries(group: list[bytes]) -> bytes:
    return encode(_RawDeliveries(items=[msgspec.Raw(data) for data in group]))


def _verdicts_message(group: list[bytes]) -> bytes:
    return encode(_RawVerdicts(verdicts=[msgspec.Raw(data) for data in group]))


async def send_all(
    pipeline: Pipeline, publishes: Sequence[Publish], timeout: float = ANSWER_TIMEOUT_S
) -> None:
    """Publish every message at once, then wait until JetStream acked each one (or raise
    :class:`UnavailableError`). All in flight with one timeout for the whole batch, not a
    ``js.publish`` per message: each is a request with its own task, timer and reply future
    (nats-py requests were a fifth of the hub's CPU at saturation)."""
    acks: list[asyncio.Future[int]] = []
    try:
        try:
            for subject, data, msg_id in publishes:
                acks.append(await pipeline.publish(subject, data, {"Nats-Msg-Id": msg_id}))
            results = await asyncio.wait_for(asyncio.gather(*acks, return_exceptions=True), timeout)
        except (TimeoutError, nats.errors.Error) as e:
            raise UnavailableError(f"deliveries and verdicts: not acknowledged ({e})") from e
    finally:
        for ack in acks:  # on failure: no pending publish is left waiting for its ack
            ack.cancel()
    failed = [r for r in results if isinstance(r, BaseException)]
    if failed:
        raise UnavailableError(f"deliveries and verdicts: a publish failed ({failed[0]})")
