"""What the hub sends back over NATS: deliveries to recipients and verdicts to senders."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import msgspec

from schemas.access import AccessRequest
from schemas.codec import Strict
from schemas.common import MessageId
from schemas.directory import AdmissionRequest, RevocationRequest
from schemas.envelope import Envelope
from schemas.receipt import Receipt

__all__ = ["Deliveries", "Delivery", "Submission", "Verdict", "Verdicts"]

Submission = Envelope | Receipt | AdmissionRequest | RevocationRequest | AccessRequest


class Delivery(Strict, frozen=True, kw_only=True, tag="mla.transport.delivery.v1"):
    """A recorded envelope or receipt, handed to an addressee with its ledger position.

    ``entry``, ``checkpoint`` and ``inclusion_proof`` let the addressee check that the hub
    recorded exactly this item at ``ledger_index`` in the log it signed (schemas.transparency).
    """

    ledger_index: int
    recorded_at: datetime
    item: Envelope | Receipt
    entry: bytes | None = None
    checkpoint: str | None = None
    inclusion_proof: list[bytes] = []


class Deliveries(Strict, frozen=True, kw_only=True, tag="mla.transport.deliveries.v1"):
    """Everything one hub batch delivers to one addressee, in ledger order, in one message
    (several, each under 1 MiB, for a batch of large ones): one JetStream write and one ack
    instead of one per item. Each keeps its own entry and
    inclusion proof; the addressee checks and keeps each on its own."""

    items: Annotated[list[Delivery], msgspec.Meta(min_length=1)]


class Verdict(Strict, frozen=True, kw_only=True, tag="mla.transport.verdict.v1"):
    """The hub's answer to one submission.

    ``duplicate`` means the message id was already recorded; ``ledger_index`` then points at
    the original entry, so a retrying sender learns where its message landed.
    """

    message_id: MessageId | None
    status: Literal["accepted", "duplicate", "rejected"]
    ledger_index: int | None = None
    recorded_at: datetime | None = None
    reason: str | None = None
    detail: str | None = None
    rule: str | None = None  # for invalid_transition: the lifecycle rule that refused it
    entry: bytes | None = None  # the exact ledger entry at ledger_index
    checkpoint: str | None = None  # a signed checkpoint note covering ledger_index
    inclusion_proof: list[bytes] = []  # RFC 9162 inclusion proof of entry in that checkpoint


class Verdicts(Strict, frozen=True, kw_only=True, tag="mla.transport.verdicts.v1"):
    """One authority's verdicts of one hub batch, in one message (several, each under 1 MiB,
    for a batch of large ones).

    One JetStream write and one ack for the batch instead of one per submission; each keeps
    its own entry and inclusion proof. A lone verdict (the only one of its batch for that
    authority, or one that names no message) stays a :class:`Verdict` on its own subject. A
    sender waiting for one (``IntakeClient.watch_verdicts``) subscribes before publishing.
    """

    verdicts: Annotated[list[Verdict], msgspec.Meta(min_length=1)]
