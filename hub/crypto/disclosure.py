"""Checking a selective disclosure against the ledger (pure; DESIGN.md section 4).

# (1) the disclosed envelope is the one the ledger recorded at that index (envelope digest)
# (2) the sender's signature over it verifies with the key valid when it was made
# (3) the content key decrypts every part under the signed header (AES-GCM, header as AAD)
Nothing else is needed or revealed: the key opens this message only.
"""

from __future__ import annotations

from dataclasses import dataclass

from hub.crypto.envelope import decrypt_with_key, header_digest, verify_envelope, verify_recorded
from hub.crypto.keys import KeyResolver
from hub.errors import DigestMismatch, ValidationError
from schemas.disclosure import Disclosure
from schemas.envelope import Body, Header
from schemas.ledger import EnvelopeRecorded, LedgerEntry

__all__ = ["DisclosedMessage", "check_disclosure"]


@dataclass(frozen=True, slots=True)
class DisclosedMessage:
    header: Header
    body: Body
    attachments: tuple[bytes, ...]
    ledger_index: int


def check_disclosure(
    disclosure: Disclosure, entry: LedgerEntry, resolver: KeyResolver
) -> DisclosedMessage:
    """Prove ``disclosure`` against the ledger ``entry`` at its index, or raise a typed error."""
    event = entry.event
    if entry.index != disclosure.ledger_index or not isinstance(event, EnvelopeRecorded):
        raise ValidationError(
            f"ledger_index: entry {disclosure.ledger_index} does not record an envelope",
            field="ledger_index",
        )
    verified = verify_envelope(disclosure.envelope, resolver)  # (2) on the disclosed bytes
    if verified.envelope_digest != event.envelope_digest:  # (1)
        raise DigestMismatch(
            f"envelope: not the one recorded at ledger index {entry.index}", field="envelope"
        )
    header = verify_recorded(event, resolver)  # (2) as recorded, with the same key
    if header.message_id != disclosure.message_id:
        raise ValidationError("message_id: differs from the recorded header", field="message_id")
    body, attachments = decrypt_with_key(  # (3)
        disclosure.envelope, header_digest(event.header), disclosure.content_key
    )
    return DisclosedMessage(header, body, attachments, entry.index)
