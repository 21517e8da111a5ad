"""Signed receipts: non-repudiation of receipt over the envelope digest (DESIGN.md section 4)."""

from __future__ import annotations

from datetime import datetime

from schemas.codec import Strict
from schemas.common import AuthorityId, Digest, MessageId

__all__ = ["Receipt", "ReceiptBody"]


class ReceiptBody(Strict, frozen=True, kw_only=True, tag="mla.receipt.body.v1"):
    """What the recipient signs: that it received, decrypted and verified this exact envelope."""

    receipt_id: MessageId
    message_id: MessageId
    case_id: MessageId
    envelope_digest: Digest
    sender: AuthorityId
    recipient: AuthorityId
    recipient_key_id: str
    received_at: datetime
    ledger_index: int


class Receipt(Strict, frozen=True, kw_only=True, tag="mla.receipt.v1"):
    """Receipt body bytes and the recipient's signature over them."""

    body: bytes
    signature: bytes
