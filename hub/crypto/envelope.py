"""Sealing and opening envelopes: the safe recipe in front of HPKE, AES-GCM and Ed25519.

Construction (version 1, every derivation labelled):

1. ``header_bytes`` = canonical msgpack of the :class:`~schemas.envelope.Header`;
   ``header_digest`` = SHA-256("mla-hub/v1/header" 0x00 || header_bytes).
2. A fresh 32-byte content key per message. Part 0 is the encoded ``Body``, parts 1..n the
   attachments; part *i* is AES-256-GCM with nonce = i (96-bit big-endian; safe because the key
   is never reused) and AAD = header_digest || u32(i).
3. The content key is wrapped for each recipient with HPKE base mode,
   ``info`` = "mla-hub/v1/envelope" || header_digest || recipient id, which binds a wrapped key
   to its message and its recipient. A liaison officer the sender copies (``Header.observers``)
   holds a key wrapped the same way to ``liaison:<accreditation id>``.
4. ``envelope_digest`` = SHA-256(label || header_digest || body digest || u32(n) || attachment
   digests || wrapped-keys digest), where part digests are plain SHA-256 of the ciphertexts.
5. ``signature`` = Ed25519(sender, "mla-hub/v1/envelope-signature" 0x00 || envelope_digest).
   HPKE base mode does not authenticate the sender, so the signature is mandatory.

The ledger keeps the header bytes, the digests and the signature, so anyone holding only the
ledger can check who sent what (:func:`verify_recorded`).
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from hub.crypto import _primitives as p
from hub.crypto.keys import AuthorityKeys, KeyResolver
from hub.errors import (
    AttachmentMismatch,
    DecryptionFailed,
    DigestMismatch,
    NotARecipient,
    RecipientMismatch,
    SchemaInvalid,
    UnsupportedVersion,
    ValidationError,
)
from schemas.codec import decode, encode
from schemas.envelope import (
    OBSERVER_PREFIX,
    ActionMeta,
    Body,
    CaseMeta,
    Envelope,
    Header,
    WrappedKey,
)
from schemas.ledger import EnvelopeRecorded, PartRef

__all__ = [
    "Opened",
    "key_holders",
    "observer_holder",
    "Recipient",
    "Verified",
    "envelope_digest",
    "header_digest",
    "open",
    "record_of",
    "recorded_signed_message",
    "decrypt_with_key",
    "seal",
    "new_content_key",
    "verify_envelope",
    "verify_recorded",
]

_HEADER_LABEL = b"mla-hub/v1/header\x00"
_DIGEST_LABEL = b"mla-hub/v1/envelope-digest\x00"
_WRAPPED_LABEL = b"mla-hub/v1/wrapped-keys\x00"
_SIGNATURE_LABEL = b"mla-hub/v1/envelope-signature\x00"
_HPKE_INFO = b"mla-hub/v1/envelope"
_HEADER_TAG_PREFIX = "mla.envelope.header."


@dataclass(frozen=True, slots=True)
class Recipient:
    """A recipient's directory entry as the sender needs it to seal."""

    id: str
    key_id: str
    suite: p.KemSuite
    encryption_public: bytes


@dataclass(frozen=True, slots=True)
class Verified:
    """An envelope whose structure and sender signature checked out (content still sealed)."""

    header: Header
    header_digest: bytes
    envelope_digest: bytes
    body: PartRef
    attachments: tuple[PartRef, ...]
    wrapped_keys_digest: bytes


@dataclass(frozen=True, slots=True)
class Opened:
    """A decrypted, verified message as its recipient sees it."""

    verified: Verified
    body: Body
    attachments: tuple[bytes, ...]
    content_key: bytes


def observer_holder(accreditation_id: str) -> str:
    """Who holds a copied liaison officer's wrapped key (never an authority id)."""
    return OBSERVER_PREFIX + accreditation_id


def key_holders(header: Header) -> list[str]:
    """Everyone the header says holds a wrapped key: recipients, then copied officers."""
    return [*header.recipients, *(observer_holder(o) for o in header.observers)]


def header_digest(header_bytes: bytes) -> bytes:
    return p.sha256(_HEADER_LABEL + header_bytes)


def _part_aad(hdigest: bytes, part: int) -> bytes:
    return hdigest + struct.pack(">I", part)


def _nonce(part: int) -> bytes:
    return part.to_bytes(12, "big")


def _hpke_info(hdigest: bytes, recipient: str) -> bytes:
    return _HPKE_INFO + hdigest + recipient.encode()


def _length_prefixed(*fields: bytes) -> bytes:
    return b"".join(struct.pack(">I", len(f)) + f for f in fields)


def _wrapped_keys_digest(wrapped: Sequence[WrappedKey]) -> bytes:
    # A defined transcript of the fields, not a re-encoding of the struct (STYLE rule 4).
    parts = [
        _length_prefixed(w.recipient.encode(), w.key_id.encode(), w.suite.encode(), w.enc)
        for w in wrapped
    ]
    return p.sha256(_WRAPPED_LABEL + struct.pack(">I", len(parts)) + b"".join(parts))


def envelope_digest(
    hdigest: bytes, body: PartRef, attachments: Sequence[PartRef], wrapped_keys_digest: bytes
) -> bytes:
    """The digest the sender signs and the recipient's receipt acknowledges."""
    return p.sha256(
        _DIGEST_LABEL
        + hdigest
        + body.digest
        + struct.pack(">I", len(attachments))
        + b"".join(a.digest for a in attachments)
        + wrapped_keys_digest
    )


def _part_ref(ciphertext: bytes) -> PartRef:
    return PartRef(digest=p.sha256(ciphertext), size=len(ciphertext))


def new_content_key() -> bytes:
    """A fresh random content key, for a caller that keeps it (to disclose the message later)."""
    return p.random_bytes(p.CONTENT_KEY_SIZE)


def seal(
    *,
    sender: str,
    sender_keys: AuthorityKeys,
    recipients: Sequence[Recipient],
    message_id: str,
    case_id: str,
    type: str,
    body: Body,
    attachments: Sequence[bytes] = (),
    now: datetime,
    in_reply_to: str | None = None,
    meta: CaseMeta | None = None,
    action: ActionMeta | None = None,
    content_key: bytes | None = None,
    observers: Sequence[tuple[str, Recipient]] = (),
) -> Envelope:
    """Encrypt ``body`` and ``attachments`` for ``recipients`` and sign as ``sender``.

    ``observers`` are (accreditation id, officer key) of liaison officers the sender copies.

    ``now`` and ``message_id`` are arguments: the caller owns the clock and the id minting.
    ``content_key`` (from :func:`new_content_key`) lets the sender keep the key of this one
    message, to disclose it later; never reuse one.
    """
    if len(body.attachments) != len(attachments):
        raise AttachmentMismatch(
            "attachments: the body describes "
            f"{len(body.attachments)} attachment(s) but {len(attachments)} were given",
            field="attachments",
        )
    header = Header(
        message_id=message_id,
        case_id=case_id,
        type=type,  # type: ignore[arg-type]  # validated just below
        sender=sender,
        sender_key_id=sender_keys.key_id,
        recipients=[r.id for r in recipients],
        sent_at=now,
        in_reply_to=in_reply_to,
        meta=meta,
        attachment_count=len(attachments),
        action=action,
        observers=[accreditation_id for accreditation_id, _ in observers],
    )
    header_bytes = encode(header)
    # msgspec checks constraints on decode only: validate every field before encrypting.
    decode(header_bytes, Header, what="header")
    hdigest = header_digest(header_bytes)
    if content_key is None:
        content_key = new_content_key()
    elif len(content_key) != p.CONTENT_KEY_SIZE:
        raise ValidationError("content_key: must be 32 bytes", field="content_key")
    plaintexts = [encode(body), *attachments]
    ciphertexts = [
        p.aead_encrypt(content_key, _nonce(i), part, _part_aad(hdigest, i))
        for i, part in enumerate(plaintexts)
    ]
    holders = [(r.id, r) for r in recipients]
    holders += [(observer_holder(a), officer) for a, officer in observers]
    wrapped = [
        WrappedKey(
            recipient=holder,
            key_id=r.key_id,
            suite=r.suite,
            enc=p.hpke_wrap(r.suite, r.encryption_public, content_key, _hpke_info(hdigest, holder)),
        )
        for holder, r in holders
    ]
    refs = [_part_ref(c) for c in ciphertexts]
    digest = envelope_digest(hdigest, refs[0], refs[1:], _wrapped_keys_digest(wrapped))
    return Envelope(
        header=header_bytes,
        wrapped_keys=wrapped,
        body=ciphertexts[0],
        attachments=ciphertexts[1:],
        signature=sender_keys.sign(_SIGNATURE_LABEL + digest),
    )


def _decode_header(header_bytes: bytes) -> Header:
    try:
        return decode(header_bytes, Header, what="header")
    except SchemaInvalid:
        tag = _peek_tag(header_bytes)
        if tag is not None and tag != "mla.envelope.header.v1":
            raise UnsupportedVersion(
                f"header: schema {tag!r} is not accepted (this hub accepts mla.envelope.header.v1)",
                field="header.schema",
            ) from None
        raise


def _peek_tag(data: bytes) -> str | None:
    try:
        raw = decode(data, dict[str, object], what="header")
    except SchemaInvalid:
        return None
    tag = raw.get("schema")
    return tag if isinstance(tag, str) and tag.startswith(_HEADER_TAG_PREFIX) else None


def _check_signature(
    resolver: KeyResolver, header: Header, digest: bytes, signature: bytes
) -> None:
    key = resolver.signing_key(header.sender, header.sender_key_id, header.sent_at)
    p.ed25519_verify(key, signature, _SIGNATURE_LABEL + digest)


def verify_envelope(envelope: Envelope, resolver: KeyResolver) -> Verified:
    """Check an envelope without decrypting it (what the hub and auditors can do).

    # (1) version and schema of the header
    # (2) structure: attachment count and wrapped-key recipients match the header
    # (3) signature, with the sender key valid at the header's time (resolver)
    """
    header = _decode_header(envelope.header)  # (1)
    if header.attachment_count != len(envelope.attachments):  # (2)
        raise AttachmentMismatch(
            f"attachments: header announces {header.attachment_count}, "
            f"envelope carries {len(envelope.attachments)}",
            field="attachments",
        )
    wrapped_for = [w.recipient for w in envelope.wrapped_keys]
    holders = key_holders(header)
    if sorted(wrapped_for) != sorted(set(holders)) or len(set(wrapped_for)) != len(wrapped_for):
        raise RecipientMismatch(
            "wrapped_keys: must hold exactly one key per header recipient and copied officer "
            f"(holders {holders}, keys for {wrapped_for})",
            field="wrapped_keys",
        )
    hdigest = header_digest(envelope.header)
    body_ref = _part_ref(envelope.body)
    attachment_refs = tuple(_part_ref(a) for a in envelope.attachments)
    wk_digest = _wrapped_keys_digest(envelope.wrapped_keys)
    digest = envelope_digest(hdigest, body_ref, attachment_refs, wk_digest)
    _check_signature(resolver, header, digest, envelope.signature)  # (3)
    return Verified(header, hdigest, digest, body_ref, attachment_refs, wk_digest)


def record_of(verified: Verified, envelope: Envelope) -> EnvelopeRecorded:
    """The ledger's record of a verified envelope: everything but the ciphertexts."""
    return EnvelopeRecorded(
        header=envelope.header,
        envelope_digest=verified.envelope_digest,
        body=verified.body,
        attachments=list(verified.attachments),
        wrapped_keys_digest=verified.wrapped_keys_digest,
        signature=envelope.signature,
    )


def verify_recorded(record: EnvelopeRecorded, resolver: KeyResolver) -> Header:
    """Check a ledger record's sender signature from the ledger alone (auditors)."""
    header = _decode_header(record.header)
    message = recorded_signed_message(record)
    key = resolver.signing_key(header.sender, header.sender_key_id, header.sent_at)
    p.ed25519_verify(key, record.signature, message)
    return header


def recorded_signed_message(record: EnvelopeRecorded) -> bytes:
    """The exact bytes the sender signed for a ledger record, once the recorded envelope digest
    is checked against the recorded header and parts (:class:`DigestMismatch` otherwise). An
    auditor checks many such signatures elsewhere with :func:`hub.crypto.keys.verify_signature`.
    """
    digest = envelope_digest(
        header_digest(record.header), record.body, record.attachments, record.wrapped_keys_digest
    )
    if digest != record.envelope_digest:
        raise DigestMismatch(
            "envelope_digest: does not match the recorded header and part digests",
            field="envelope_digest",
        )
    return _SIGNATURE_LABEL + digest


def open(
    envelope: Envelope,
    *,
    recipient: str,
    keys: Sequence[AuthorityKeys],
    resolver: KeyResolver,
) -> Opened:
    """Verify and decrypt an envelope addressed to ``recipient``.

    Runs (1)-(3) of :func:`verify_envelope`, then
    # (4) unwrap the content key and decrypt every part (one opaque error on failure)
    # (5) attachments match what the signed body describes
    Replay (a message id seen before) is the caller's check: it owns the store of seen ids.
    """
    verified = verify_envelope(envelope, resolver)
    mine = [w for w in envelope.wrapped_keys if w.recipient == recipient]
    if not mine:
        holders = key_holders(verified.header)
        raise NotARecipient(f"recipients: {recipient} is not among {holders}")
    wrapped = mine[0]
    key = next((k for k in keys if k.key_id == wrapped.key_id and k.suite == wrapped.suite), None)
    if key is None:
        raise DecryptionFailed("message could not be decrypted")
    content_key = key.unwrap(wrapped.enc, _hpke_info(verified.header_digest, recipient))  # (4)
    body, attachments = decrypt_with_key(envelope, verified.header_digest, content_key)  # (5)
    return Opened(verified, body, attachments, content_key)


def decrypt_with_key(
    envelope: Envelope, hdigest: bytes, content_key: bytes
) -> tuple[Body, tuple[bytes, ...]]:
    """Decrypt every part with a known content key (the recipient's, or a disclosed one).

    AES-GCM under the header digest as AAD: only the exact signed ciphertexts of this exact
    header decrypt; anything else is the one opaque :class:`DecryptionFailed`.
    """
    body_bytes = p.aead_decrypt(content_key, _nonce(0), envelope.body, _part_aad(hdigest, 0))
    body = decode(body_bytes, Body, what="body")
    attachments = tuple(
        p.aead_decrypt(content_key, _nonce(i), part, _part_aad(hdigest, i))
        for i, part in enumerate(envelope.attachments, start=1)
    )
    _check_attachments(body, attachments)
    return body, attachments


def _check_attachments(body: Body, attachments: Sequence[bytes]) -> None:
    if len(body.attachments) != len(attachments):
        raise AttachmentMismatch(
            f"attachments: body describes {len(body.attachments)}, found {len(attachments)}"
        )
    for i, (meta, data) in enumerate(zip(body.attachments, attachments, strict=True)):
        if meta.size != len(data) or meta.sha256 != p.sha256(data):
            raise AttachmentMismatch(
                f"attachments[{i}] ({meta.name!r}): size or SHA-256 differs from the signed body",
                field=f"attachments[{i}]",
            )
