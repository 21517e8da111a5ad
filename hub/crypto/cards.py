"""Authority cards: self-signature by the authority, admission signature by the operator.

Self-signature: Ed25519(card key, "mla-hub/v1/card" 0x00 || card bytes).
Admission: Ed25519(operator, "mla-hub/v1/admission" 0x00 || SHA-256(card bytes)).
"""

from __future__ import annotations

from datetime import datetime

from hub.crypto import _primitives as p
from hub.crypto.keys import AuthorityKeys, OperatorKey, compute_key_id
from hub.errors import CardInvalid, SignatureInvalid
from schemas.codec import decode, encode
from schemas.directory import AuthorityCard, SignedCard

__all__ = ["admit", "card_digest", "open_card", "sign_card", "verify_admission"]

_CARD_LABEL = b"mla-hub/v1/card\x00"
_ADMISSION_LABEL = b"mla-hub/v1/admission\x00"


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
