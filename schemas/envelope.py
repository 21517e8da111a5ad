"""The sealed envelope: a signed cleartext header and an encrypted body (DESIGN.md section 4).

Wire layout (version 1):

- ``Header``: what the hub and the ledger may read (ids, parties, type, time, and the metadata
  that tracking and statistics need). Carried as canonical bytes in ``Envelope.header``.
- ``Body``: the content, encrypted once with a fresh content key (AES-256-GCM, the header
  digest and the part number as AAD). Attachments are further parts under the same key.
- ``WrappedKey``: the content key wrapped with HPKE for each recipient, and for each liaison
  officer the sender copies (``Header.observers``; resolution 7/4 rec. 16): such a key is held
  by ``liaison:<accreditation id>``, never by an authority, and the hub delivers nothing to it.
- ``Envelope.signature``: Ed25519 by the sender over the envelope digest, which commits to the
  header bytes, every ciphertext digest and the wrapped keys (``hub.crypto.envelope``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import msgspec

from schemas.codec import Evolving, Strict
from schemas.common import AUTHORITY_ID_PATTERN, AuthorityId, Kind, MessageId, MessageType

__all__ = [
    "OBSERVER_PREFIX",
    "ActionMeta",
    "AttachmentMeta",
    "Body",
    "CaseMeta",
    "Envelope",
    "Handling",
    "Header",
    "WrappedKey",
]

Urgency = Literal["normal", "urgent"]

OBSERVER_PREFIX = "liaison:"
KeyHolder = Annotated[
    str,
    msgspec.Meta(
        pattern=(
            f"(?:{AUTHORITY_ID_PATTERN})|"
            r"(?:^liaison:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$)"
        ),
        description="A recipient authority, or liaison:<accreditation id> for a copied officer",
    ),
]


class Handling(Evolving, frozen=True, kw_only=True, tag="mla.envelope.handling.v1"):
    """Conditions that travel signed with a request (UNTOC art. 18(19), 18(20))."""

    use_limitation: bool = True
    confidential: bool = True
    code: Literal["H0", "H1", "H2", "H3"] = "H1"


class CaseMeta(Evolving, frozen=True, kw_only=True, tag="mla.envelope.case_meta.v1"):
    """Cleartext metadata for tracking and statistics; facts and persons stay encrypted."""

    kind: Kind = "mla"
    nature: list[str] = []
    legal_basis: str | None = None
    urgency: Urgency = "normal"
    deadline: datetime | None = None
    provisional_arrest: bool = False  # extradition: a provisional-arrest time limit runs
    handling: Handling | None = None
    language: str | None = None


class ActionMeta(Evolving, frozen=True, kw_only=True, tag="mla.envelope.action.v1"):
    """Signed facts of one case action that tracking needs (all optional, per action type)."""

    partial: bool = False  # request.execute: partial result, the case stays in execution
    reference: str | None = None  # acknowledge/transfer: the handling authority's reference
    competent_authority: str | None = None  # transfer: who holds the request now
    competent_authority_id: AuthorityId | None = None  # transfer: its directory id, if any
    until: datetime | None = None  # postpone: until when
    after_consultation: MessageId | None = None  # submit: the consultation case it follows
    accept_incomplete: bool = False  # submit: sent although requirements were unmet
    unmet_requirements: list[str] = []  # submit: which ones, by name


class Header(Strict, frozen=True, kw_only=True, tag="mla.envelope.header.v1"):
    """Signed cleartext header. Unknown fields are refused (outer wire struct)."""

    message_id: MessageId
    case_id: MessageId
    type: MessageType
    sender: AuthorityId
    sender_key_id: str
    recipients: Annotated[list[AuthorityId], msgspec.Meta(min_length=1, max_length=16)]
    sent_at: datetime
    in_reply_to: MessageId | None = None
    meta: CaseMeta | None = None
    aead: Literal["aes-256-gcm"] = "aes-256-gcm"
    attachment_count: Annotated[int, msgspec.Meta(ge=0, le=64)] = 0
    action: ActionMeta | None = None
    # Liaison officers of the sender copied on this message, by accreditation id: each holds a
    # wrapped key (``liaison:<id>``); signed here so the hub and auditors see who could read it.
    observers: Annotated[list[MessageId], msgspec.Meta(max_length=8)] = []


class WrappedKey(Strict, frozen=True, kw_only=True, tag="mla.envelope.wrapped_key.v1"):
    """The content key, HPKE-wrapped to one recipient's (or copied officer's) encryption key."""

    recipient: KeyHolder
    key_id: str
    suite: Literal["mlkem768x25519", "x25519"]
    enc: bytes


class Envelope(Strict, frozen=True, kw_only=True, tag="mla.envelope.v1"):
    """What a sender submits: header bytes, wrapped keys, ciphertexts, signature."""

    header: bytes
    wrapped_keys: list[WrappedKey]
    body: bytes
    attachments: list[bytes] = []
    signature: bytes


class AttachmentMeta(Evolving, frozen=True, kw_only=True, tag="mla.envelope.attachment.v1"):
    """Describes one attachment inside the encrypted body (names are content, not metadata)."""

    name: str
    role: str | None = None  # e.g. "translation", "legal-provisions" (quality control)
    media_type: str = "application/octet-stream"
    size: int
    sha256: bytes


class Body(Evolving, frozen=True, kw_only=True, tag="mla.envelope.body.v1"):
    """The encrypted content of a message."""

    text: str = ""
    attachments: list[AttachmentMeta] = []
    fields: dict[str, str] = {}
