"""Access to the hub's read API: consents, accreditations and bearer tokens (DESIGN.md 7; issue 5).

A liaison officer (resolution 7/4 rec. 16) is accredited by the hub operator on the signed
consent of the officer's home authority: ``LiaisonConsent`` is signed by the home authority's
Ed25519 key over its canonical bytes (``SignedConsent.consent``, never re-encoded), and the hub
checks it against that authority's key in the directory.

Accreditations are ledger events, like admissions: the operator signs an ``AccessStatement``
(a liaison accreditation, an auditor admission, or the revocation of either) and submits it in
an ``AccessRequest`` on the operator intake; the hub checks it and records it as
``AccessRecorded``. Every token of a liaison officer or auditor names its accreditation and
stops working when the ledger says the accreditation ended.

Bearer tokens are stored by the hub as ``AccessToken`` records holding only the SHA-256 of the
secret; the secret is printed once, when it is issued.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Final, Literal

import msgspec

from schemas.codec import Strict
from schemas.common import AuthorityId, Digest, MessageId
from schemas.directory import KeyId, PublicKeys

__all__ = [
    "ROLES",
    "CaseCopies",
    "SealedCopy",
    "AccessRequest",
    "AccessRevocation",
    "AccessStatement",
    "AccessToken",
    "AuditorAccreditation",
    "LiaisonAccreditation",
    "ConsentFile",
    "LiaisonConsent",
    "OfficerId",
    "Role",
    "SignedConsent",
    "TokenFile",
    "TokenId",
]

Role = Literal["operator", "auditor", "authority", "liaison"]
ROLES: Final[tuple[str, ...]] = Role.__args__  # type: ignore[attr-defined]

OfficerId = Annotated[
    str,
    msgspec.Meta(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._@-]{1,63}$",
        description="The home authority's identifier for a liaison officer",
        examples=["XA-LO-0042"],
    ),
]
TokenId = Annotated[str, msgspec.Meta(pattern=r"^[0-9a-f]{16}$", description="hex token id")]


class LiaisonConsent(Strict, frozen=True, kw_only=True, tag="mla.access.liaison_consent.v1"):
    """The home authority agrees that ``officer``, posted with ``host``, may watch their cases.

    Strict on purpose: a field this hub does not know could be a restriction it would ignore.
    """

    consent_id: MessageId
    officer: OfficerId
    name: Annotated[str, msgspec.Meta(max_length=200)] = ""
    home: AuthorityId
    host: AuthorityId
    key_id: KeyId  # the home authority's signing key that signed this consent
    issued_at: datetime
    valid_until: datetime
    # The officer's own public keys, vouched for by the home authority: with them the home
    # authority may seal its messages of the pair's cases to the officer too.
    officer_keys: PublicKeys | None = None


class SignedConsent(Strict, frozen=True, kw_only=True, tag="mla.access.signed_consent.v1"):
    """A consent's canonical bytes and the home authority's signature over them."""

    consent: bytes
    signature: bytes


class ConsentFile(Strict, frozen=True, kw_only=True, tag="mla.access.consent_file.v1"):
    """What the home authority hands the operator: the signed bytes plus a readable copy.

    ``hub liaison accredit`` refuses the file unless ``readable`` equals the decoded bytes.
    """

    signed: SignedConsent
    readable: LiaisonConsent


Reason = Annotated[str, msgspec.Meta(min_length=1, max_length=500)]


class LiaisonAccreditation(Strict, frozen=True, kw_only=True, tag="mla.access.liaison.v1"):
    """The operator accredits the officer of ``consent`` for the pair it names, until
    ``valid_until`` (no later than the consent's own end)."""

    accreditation_id: MessageId
    consent: SignedConsent
    issued_at: datetime
    valid_until: datetime


class AuditorAccreditation(Strict, frozen=True, kw_only=True, tag="mla.access.auditor.v1"):
    """The operator admits an auditor: the whole ledger's metadata and checkpoints, no content."""

    accreditation_id: MessageId
    auditor: OfficerId
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    organisation: Annotated[str, msgspec.Meta(max_length=200)] = ""
    issued_at: datetime
    valid_until: datetime


class AccessRevocation(Strict, frozen=True, kw_only=True, tag="mla.access.revocation.v1"):
    """The operator ends an accreditation (liaison or auditor) before its term."""

    accreditation_id: MessageId
    reason: Reason
    issued_at: datetime


AccessStatement = LiaisonAccreditation | AuditorAccreditation | AccessRevocation


class AccessRequest(Strict, frozen=True, kw_only=True, tag="mla.access.request.v1"):
    """An operator's access statement (canonical bytes) and signature, for the operator intake.

    Signature: Ed25519(operator, "mla-hub/v1/access" 0x00 || statement bytes).
    """

    request_id: MessageId
    statement: bytes
    operator_signature: bytes


class AccessToken(Strict, frozen=True, kw_only=True, tag="mla.access.token.v1"):
    """One bearer credential for the read API, as the hub stores it (hash only, never the secret).

    Scope by role: ``operator`` and ``auditor`` see every case's metadata (``auditor`` cannot
    change anything; nothing in the API can); ``authority`` sees the cases ``authority`` is
    party to; ``liaison`` sees the cases between ``home`` and ``host``.
    """

    token_id: TokenId
    role: Role
    label: Annotated[str, msgspec.Meta(max_length=200)] = ""
    authority: AuthorityId | None = None
    officer: OfficerId | None = None
    home: AuthorityId | None = None
    host: AuthorityId | None = None
    secret_sha256: Digest
    issued_at: datetime
    expires_at: datetime
    revoked_at: datetime | None = None
    consent_digest: Digest | None = None  # SHA-256 of the signed consent bytes (liaison)
    accreditation_id: MessageId | None = None  # liaison and auditor: the ledger's accreditation


class TokenFile(Strict, frozen=True, kw_only=True, tag="mla.access.token_file.v1"):
    """The former token file (``<data>/access/tokens.json``): ``hub up`` imports it once into
    the ``ACCESS_TOKENS`` bucket and renames it ``tokens.json.imported``."""

    tokens: list[AccessToken] = []


class SealedCopy(Strict, frozen=True, kw_only=True, tag="mla.access.sealed_copy.v1"):
    """One message a liaison officer was copied on, exactly as its sender sealed and signed it,
    with the admitted card (``schemas.directory.AdmittedCard`` bytes) of the signing key."""

    message_id: MessageId
    ledger_index: int
    type: str
    sender: AuthorityId
    envelope: bytes
    sender_card: bytes | None = None


class CaseCopies(Strict, frozen=True, kw_only=True, tag="mla.access.case_copies.v1"):
    """What the read API gives a copied liaison officer for one case: the copies, and the
    operator-signed directory snapshot (``SignedSnapshot`` bytes) to check them against."""

    case_id: MessageId
    accreditation_id: MessageId
    snapshot: bytes | None
    copies: list[SealedCopy] = []
