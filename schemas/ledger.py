"""Ledger entries: the tamper-evident event log's records (DESIGN.md sections 3 and 4).

An entry holds what an auditor needs to check every signature without the content: the signed
header bytes, the digests of the sealed body and attachments, the wrapped-keys digest and the
sender's signature. The sealed bytes live in the content store beside the ledger, keyed by the
envelope digest, so content can be erased under a retention policy without breaking the log.
The time the hub recorded the entry is inside the hashed entry.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec

from schemas.codec import Strict
from schemas.common import AuthorityId, Digest, MessageId
from schemas.directory import SignedCard

__all__ = [
    "AccessRecorded",
    "AuthorityAdmitted",
    "AuthorityRevoked",
    "EnvelopeRecorded",
    "LedgerEntry",
    "LedgerEvent",
    "PartRef",
    "ReceiptRecorded",
    "SubmissionRejected",
]


class PartRef(Strict, frozen=True, kw_only=True, tag="mla.ledger.part.v1"):
    """Digest and size of one sealed part (body or attachment ciphertext)."""

    digest: Digest
    size: Annotated[int, msgspec.Meta(ge=0)]


class EnvelopeRecorded(Strict, frozen=True, kw_only=True, tag="mla.ledger.envelope.v1"):
    """An accepted envelope: signed header, ciphertext digests, signature."""

    header: bytes
    envelope_digest: Digest
    body: PartRef
    attachments: list[PartRef]
    wrapped_keys_digest: Digest
    signature: bytes


class ReceiptRecorded(Strict, frozen=True, kw_only=True, tag="mla.ledger.receipt.v1"):
    """An accepted receipt: the recipient's signed receipt body."""

    body: bytes
    signature: bytes


class SubmissionRejected(Strict, frozen=True, kw_only=True, tag="mla.ledger.rejected.v1"):
    """A submission the hub refused, with the typed reason it sent back."""

    submission_digest: Digest
    claimed_sender: str
    message_id: MessageId | None
    reason: str
    detail: str


class AuthorityAdmitted(Strict, frozen=True, kw_only=True, tag="mla.ledger.authority_admitted.v1"):
    """The operator admitted (or re-admitted after rotation) an authority card."""

    authority: AuthorityId
    signed: SignedCard
    operator_key: Annotated[bytes, msgspec.Meta(min_length=32, max_length=32)]
    operator_signature: bytes


class AuthorityRevoked(Strict, frozen=True, kw_only=True, tag="mla.ledger.authority_revoked.v1"):
    """The operator revoked an authority: from this entry's ``recorded_at`` on, it may neither
    submit nor be addressed, and signatures by its keys made after that time do not verify."""

    authority: AuthorityId
    reason: Annotated[str, msgspec.Meta(min_length=1, max_length=500)]
    operator_key: Annotated[bytes, msgspec.Meta(min_length=32, max_length=32)]
    operator_signature: bytes


class AccessRecorded(Strict, frozen=True, kw_only=True, tag="mla.ledger.access.v1"):
    """The operator's signed access statement (``schemas.access.AccessStatement`` bytes): a
    liaison officer accredited, an auditor admitted, or an accreditation revoked."""

    statement: bytes
    operator_key: Annotated[bytes, msgspec.Meta(min_length=32, max_length=32)]
    operator_signature: bytes


LedgerEvent = (
    EnvelopeRecorded
    | ReceiptRecorded
    | SubmissionRejected
    | AuthorityAdmitted
    | AuthorityRevoked
    | AccessRecorded
)


class LedgerEntry(Strict, frozen=True, kw_only=True, tag="mla.ledger.entry.v1"):
    """One leaf of the ledger: its index, when the hub recorded it, and what happened."""

    index: Annotated[int, msgspec.Meta(ge=0)]
    recorded_at: datetime
    event: LedgerEvent
