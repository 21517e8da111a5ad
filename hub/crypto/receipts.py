"""Signed receipts: the recipient's proof that it received and verified an exact envelope.

``signature`` = Ed25519(recipient, "mla-hub/v1/receipt" 0x00 || receipt body bytes), made over
the canonical bytes carried in ``Receipt.body`` and checked over those same bytes.
"""

from __future__ import annotations

from datetime import datetime

from hub.crypto import _primitives as p
from hub.crypto.keys import AuthorityKeys, KeyResolver
from schemas.codec import decode, encode
from schemas.envelope import Header
from schemas.receipt import Receipt, ReceiptBody

__all__ = ["issue", "signed_message", "verify"]

_LABEL = b"mla-hub/v1/receipt\x00"


def issue(
    *,
    header: Header,
    envelope_digest: bytes,
    recipient: str,
    keys: AuthorityKeys,
    ledger_index: int,
    receipt_id: str,
    now: datetime,
) -> Receipt:
    """Sign a receipt for the envelope described by ``header`` and ``envelope_digest``."""
    body = ReceiptBody(
        receipt_id=receipt_id,
        message_id=header.message_id,
        case_id=header.case_id,
        envelope_digest=envelope_digest,
        sender=header.sender,
        recipient=recipient,
        recipient_key_id=keys.key_id,
        received_at=now,
        ledger_index=ledger_index,
    )
    body_bytes = encode(body)
    decode(body_bytes, ReceiptBody, what="receipt")  # constraints are checked on decode only
    return Receipt(body=body_bytes, signature=keys.sign(_LABEL + body_bytes))


def verify(receipt: Receipt, resolver: KeyResolver) -> ReceiptBody:
    """Decode the receipt body and check the recipient's signature with the key valid then."""
    body = decode(receipt.body, ReceiptBody, what="receipt")
    key = resolver.signing_key(body.recipient, body.recipient_key_id, body.received_at)
    p.ed25519_verify(key, receipt.signature, signed_message(receipt.body))
    return body


def signed_message(body: bytes) -> bytes:
    """The exact bytes a recipient signs for the receipt body ``body``."""
    return _LABEL + body
