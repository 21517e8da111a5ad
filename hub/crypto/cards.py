"""Authority cards: self-signature by the authority, admission signature by the operator.

Self-signature: Ed25519(card key, "mla-hub/v1/card" 0x00 || card bytes).
Admission: Ed25519(operator, "mla-hub/v1/admission" 0x00 || SHA-256(card bytes)).
Rotation: Ed25519(previous card key, "mla-hub/v1/rotation" 0x00 || new card bytes).
Revocation: Ed25519(operator, "mla-hub/v1/revocation" 0x00 || u32 len || authority id ||
u32 len || reason, UTF-8), a defined transcript of the two fields, never a re-encoding.
Directory snapshot: Ed25519(operator, "mla-hub/v1/directory-snapshot" 0x00 || snapshot bytes).
"""

from __future__ import annotations

import struct
from datetime import datetime

import msgspec

from hub.crypto import _primitives as p
from hub.crypto.keys import AuthorityKeys, OperatorKey, compute_key_id
from hub.errors import CardInvalid, RotationInvalid, SignatureInvalid
from schemas.codec import decode, encode
from schemas.directory import AuthorityCard, DirectorySnapshot, SignedCard, SignedSnapshot

__all__ = [
    "admit",
    "card_digest",
    "open_card",
    "open_snapshot",
    "revocation_transcript",
    "revoke",
    "sign_card",
    "sign_rotation",
    "sign_snapshot",
    "verify_admission",
    "verify_revocation",
    "verify_rotation",
]

_CARD_LABEL = b"mla-hub/v1/card\x00"
_ADMISSION_LABEL = b"mla-hub/v1/admission\x00"
_ROTATION_LABEL = b"mla-hub/v1/rotation\x00"
_REVOCATION_LABEL = b"mla-hub/v1/revocation\x00"
_SNAPSHOT_LABEL = b"mla-hub/v1/directory-snapshot\x00"


def sign_card(card: AuthorityCard, keys: AuthorityKeys) -> SignedCard:
    """Self-sign ``card``; its published keys must be the public half of ``keys``."""
    published, own = card.keys, keys.public()
    if (published.key_id, published.signing, published.encryption, published.suite) != (
        own.key_id,
        own.signing,
        own.encryption,
        own.suite,
    ):
        raise CardInvalid("keys: the card's public keys are not those of the signing key pair")
    card_bytes = encode(card)
    _check(decode(card_bytes, AuthorityCard, what="card"))
    return SignedCard(card=card_bytes, signature=keys.sign(_CARD_LABEL + card_bytes))


def open_card(signed: SignedCard) -> AuthorityCard:
    """Decode a signed card and verify its key id and self-signature."""
    card = _check(decode(signed.card, AuthorityCard, what="card"))
    try:
        p.ed25519_verify(card.keys.signing, signed.signature, _CARD_LABEL + signed.card)
    except SignatureInvalid as e:
        raise CardInvalid("signature: the card's self-signature does not verify") from e
    return card


def _check(card: AuthorityCard) -> AuthorityCard:
    expected = compute_key_id(card.keys.signing, card.keys.suite, card.keys.encryption)
    if card.keys.key_id != expected:
        raise CardInvalid(f"keys.key_id: is {card.keys.key_id}, the keys give {expected}")
    if not card.kinds:
        raise CardInvalid("kinds: a card must name at least one kind of request it handles")
    return card


def card_digest(signed: SignedCard) -> bytes:
    return p.sha256(signed.card)


def admit(signed: SignedCard, operator: OperatorKey, *, now: datetime) -> bytes:
    """Check a card and return the operator's admission signature over it."""
    card = open_card(signed)
    if card.valid_until is not None and card.valid_until <= now:
        raise CardInvalid(f"valid_until: the card expired at {card.valid_until.isoformat()}")
    return operator.sign(_ADMISSION_LABEL + card_digest(signed))


def verify_admission(signed: SignedCard, operator_public: bytes, signature: bytes) -> None:
    """Raise :class:`SignatureInvalid` unless the operator admitted exactly this card."""
    p.ed25519_verify(operator_public, signature, _ADMISSION_LABEL + card_digest(signed))


def sign_rotation(signed: SignedCard, previous: AuthorityKeys) -> SignedCard:
    """Add the previous key's rotation signature to a new card (``previous_key_id`` must name
    ``previous``, and the card must publish other keys)."""
    card = open_card(signed)
    if card.previous_key_id != previous.key_id:
        raise RotationInvalid(
            f"previous_key_id: is {card.previous_key_id}, the signing key is {previous.key_id}",
            field="previous_key_id",
        )
    if card.keys.key_id == previous.key_id:
        raise RotationInvalid("keys: a rotated card must publish new keys", field="keys")
    return msgspec.structs.replace(
        signed, rotation_signature=previous.sign(_ROTATION_LABEL + signed.card)
    )


def verify_rotation(signed: SignedCard, previous_signing_public: bytes) -> None:
    """Raise :class:`RotationInvalid` unless the previous key signed exactly this card."""
    if signed.rotation_signature is None:
        raise RotationInvalid(
            "rotation_signature: missing; a card with new keys must be signed by the current "
            "key (`node-agent rotate`)",
            field="rotation_signature",
        )
    try:
        p.ed25519_verify(
            previous_signing_public, signed.rotation_signature, _ROTATION_LABEL + signed.card
        )
    except SignatureInvalid as e:
        raise RotationInvalid(
            "rotation_signature: not made by the authority's current key over this card",
            field="rotation_signature",
        ) from e


def revocation_transcript(authority: str, reason: str) -> bytes:
    """The exact bytes the operator signs to revoke ``authority`` for ``reason``."""
    fields = (authority.encode(), reason.encode())
    return _REVOCATION_LABEL + b"".join(struct.pack(">I", len(f)) + f for f in fields)


def revoke(authority: str, reason: str, operator: OperatorKey) -> bytes:
    """The operator's signature revoking ``authority``."""
    return operator.sign(revocation_transcript(authority, reason))


def verify_revocation(
    authority: str, reason: str, operator_public: bytes, signature: bytes
) -> None:
    """Raise :class:`SignatureInvalid` unless the operator signed this revocation."""
    p.ed25519_verify(operator_public, signature, revocation_transcript(authority, reason))


def sign_snapshot(snapshot: DirectorySnapshot, operator: OperatorKey) -> SignedSnapshot:
    """Encode ``snapshot`` and sign its bytes with the operator key."""
    data = encode(snapshot)
    return SignedSnapshot(
        snapshot=data, operator_key=operator.public, signature=operator.sign(_SNAPSHOT_LABEL + data)
    )


def open_snapshot(signed: SignedSnapshot, operator_public: bytes) -> DirectorySnapshot:
    """Verify a snapshot against the pinned operator key, then decode it.

    # (1) signed by the pinned operator key (not merely by the key it names)
    # (2) the signature over the exact bytes received
    # (3) the bytes decode as a ``DirectorySnapshot``
    """
    if signed.operator_key != operator_public:  # (1)
        raise SignatureInvalid(
            "directory snapshot: signed by another operator key than the one pinned",
            field="operator_key",
        )
    try:
        p.ed25519_verify(operator_public, signed.signature, _SNAPSHOT_LABEL + signed.snapshot)
    except SignatureInvalid as e:  # (2)
        raise SignatureInvalid(
            "directory snapshot: the operator's signature does not verify", field="signature"
        ) from e
    return decode(signed.snapshot, DirectorySnapshot, what="directory snapshot")  # (3)
