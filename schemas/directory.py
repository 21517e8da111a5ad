"""Authority cards: who a central authority is, what it handles, and its public keys.

DESIGN.md sections 2 (rec. 3, 7, 21) and 4 (identities). A card is self-signed by the
authority's Ed25519 key and admitted by the hub operator's signature; both signatures are over
the card's canonical bytes, carried as bytes (``SignedCard.card``), never re-encoded.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import msgspec

from schemas.codec import Evolving, Strict
from schemas.common import AuthorityId, Digest, Kind, MessageId, StateCode

__all__ = [
    "AdmissionRequest",
    "AdmittedCard",
    "AuthorityCard",
    "CardFile",
    "ContactPoint",
    "KindRequirements",
    "PublicKeys",
    "SignedCard",
]

Language = Annotated[str, msgspec.Meta(pattern=r"^[a-z]{2,3}$", description="ISO 639 code")]
KeyId = Annotated[str, msgspec.Meta(pattern=r"^[0-9a-f]{16}$", description="hex key id")]


class PublicKeys(Evolving, frozen=True, kw_only=True, tag="mla.directory.keys.v1"):
    """An authority's public keys; ``key_id`` names the pair in headers and wrapped keys."""

    key_id: KeyId
    signing: Annotated[bytes, msgspec.Meta(min_length=32, max_length=32)]
    encryption: bytes
    suite: Literal["mlkem768x25519", "x25519"] = "mlkem768x25519"
    nats: str | None = None  # the authority's NATS user nkey (U...), for transport access


class KindRequirements(Evolving, frozen=True, kw_only=True, tag="mla.directory.requirements.v1"):
    """What a request of one kind must carry to be accepted (rec. 7, 9, 21)."""

    kind: Kind
    languages: list[Language] = []
    attachments_required: list[str] = []
    fields_required: list[str] = []


class ContactPoint(Evolving, frozen=True, kw_only=True, tag="mla.directory.contact.v1"):
    name: str
    email: str | None = None
    phone: str | None = None
    available_24_7: bool = False


class AuthorityCard(Evolving, frozen=True, kw_only=True, tag="mla.directory.card.v1"):
    """The public description of one central authority (decision 2/2: designate and publish)."""

    id: AuthorityId
    state: StateCode
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    kinds: list[Kind]
    languages: list[Language]
    requirements: list[KindRequirements] = []
    contacts: list[ContactPoint] = []
    keys: PublicKeys
    valid_from: datetime
    valid_until: datetime | None = None
    previous_key_id: KeyId | None = None


class SignedCard(Strict, frozen=True, kw_only=True, tag="mla.directory.signed_card.v1"):
    """A card's canonical bytes with the authority's self-signature over them."""

    card: bytes
    signature: bytes
    rotation_signature: bytes | None = None


class CardFile(Strict, frozen=True, kw_only=True, tag="mla.directory.card_file.v1"):
    """What ``node-agent card`` prints: the signed bytes plus a readable copy for the operator.

    ``hub admit`` refuses the file unless ``readable`` equals the decoded ``signed.card``.
    """

    signed: SignedCard
    readable: AuthorityCard


class AdmittedCard(Strict, frozen=True, kw_only=True, tag="mla.directory.admitted.v1"):
    """A card as the directory serves it: with the operator's admission signature."""

    signed: SignedCard
    operator_signature: bytes
    operator_key: Annotated[bytes, msgspec.Meta(min_length=32, max_length=32)]
    card_digest: Digest
    ledger_index: int


class AdmissionRequest(Strict, frozen=True, kw_only=True, tag="mla.directory.admission_request.v1"):
    """The operator's command to admit a card, submitted through the intake like any message."""

    request_id: MessageId
    signed: SignedCard
    operator_signature: bytes
