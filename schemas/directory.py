"""Authority cards: who a central authority is, what it handles, and its public keys.

DESIGN.md sections 2 (rec. 3, 7, 21) and 4 (identities). A card is self-signed by the
authority's Ed25519 key and admitted by the hub operator's signature; both signatures are over
the card's canonical bytes, carried as bytes (``SignedCard.card``), never re-encoded.

Key lifecycle: a rotated card names its ``previous_key_id`` and carries a
``rotation_signature`` by that previous key; a revocation is the operator's signed
``RevocationRequest``. The directory as a whole is served as a ``SignedSnapshot``, signed by
the operator key that node agents pin (``node-agent init --operator-key``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import msgspec

from schemas.codec import Evolving, Strict
from schemas.common import AuthorityId, Digest, Kind, MessageId, StateCode

__all__ = [
    "LiaisonEntry",
    "AdmissionRequest",
    "AdmittedCard",
    "AuthorityCard",
    "CardFile",
    "ContactPoint",
    "DirectorySnapshot",
    "KeyStatus",
    "KindRequirements",
    "PublicKeys",
    "RevocationRequest",
    "RevokedAuthority",
    "SignedCard",
    "SignedSnapshot",
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
    """Who to call or write to; ``available_24_7`` marks the contact for urgent requests."""

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
    """A card's canonical bytes with the authority's self-signature over them.

    ``rotation_signature``: for a card replacing an admitted one with new keys, the signature
    by the previous signing key (the card's ``previous_key_id``) over the same card bytes.
    """

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


Reason = Annotated[str, msgspec.Meta(min_length=1, max_length=500)]


class RevocationRequest(
    Strict, frozen=True, kw_only=True, tag="mla.directory.revocation_request.v1"
):
    """The operator's command to revoke an authority, submitted through the intake.

    ``operator_signature`` is over the labelled transcript of ``authority`` and ``reason``
    (``hub.crypto.cards.revocation_transcript``).
    """

    request_id: MessageId
    authority: AuthorityId
    reason: Reason
    operator_signature: bytes


class RevokedAuthority(Strict, frozen=True, kw_only=True, tag="mla.directory.revoked.v1"):
    """A revocation as the directory serves it (``revoked.<ID>`` and in the snapshot).

    Verifiable on its own: the operator's signature covers ``authority`` and ``reason``.
    """

    authority: AuthorityId
    reason: Reason
    ledger_index: int
    revoked_at: datetime
    operator_key: Annotated[bytes, msgspec.Meta(min_length=32, max_length=32)]
    operator_signature: bytes


class KeyStatus(Strict, frozen=True, kw_only=True, tag="mla.directory.key_status.v1"):
    """One key an authority ever published, and until when its signatures count.

    A signature made at ``t`` verifies only if ``valid_from <= t``, and ``t`` is before each
    of ``valid_until`` (the card's end), ``retired_at`` (when the rotation replacing it was
    recorded) and ``revoked_at`` (when the authority's revocation was recorded).
    """

    authority: AuthorityId
    key_id: KeyId
    status: Literal["current", "retired", "revoked"]
    admitted_index: int
    valid_from: datetime
    valid_until: datetime | None = None
    retired_at: datetime | None = None
    retired_index: int | None = None
    superseded_by: KeyId | None = None
    revoked_at: datetime | None = None


class LiaisonEntry(Strict, frozen=True, kw_only=True, tag="mla.directory.liaison.v1"):
    """A liaison officer whose home authority may copy them on its messages to ``host``: the
    ledger accredited them on a consent that carried their public keys (resolution 7/4 rec. 16).
    """

    accreditation_id: MessageId
    officer: str
    home: AuthorityId
    host: AuthorityId
    officer_keys: PublicKeys
    valid_until: datetime
    ledger_index: int


class DirectorySnapshot(Strict, frozen=True, kw_only=True, tag="mla.directory.snapshot.v1"):
    """The whole directory after the first ``ledger_size`` ledger entries.

    ``cards`` are the current cards of admitted, unrevoked authorities; ``keys`` every key ever
    admitted; ``revoked`` every revocation; ``liaisons`` the unrevoked liaison accreditations
    that carry officer keys (each with its term: the reader checks it against its clock). A
    pure function of the ledger: an auditor rebuilds the same bytes.
    """

    ledger_size: Annotated[int, msgspec.Meta(ge=0)]
    recorded_at: datetime | None
    cards: list[AdmittedCard]
    keys: list[KeyStatus]
    revoked: list[RevokedAuthority] = []
    liaisons: list[LiaisonEntry] = []


class SignedSnapshot(Strict, frozen=True, kw_only=True, tag="mla.directory.signed_snapshot.v1"):
    """A snapshot's canonical bytes and the operator's signature over them (DIRECTORY
    ``snapshot``); node agents verify it against the operator key they pinned."""

    snapshot: bytes
    operator_key: Annotated[bytes, msgspec.Meta(min_length=32, max_length=32)]
    signature: bytes
