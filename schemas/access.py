"""Access to the hub's read API: liaison consents and bearer-token records (DESIGN.md 7; issue 5).

A liaison officer (resolution 7/4 rec. 16) is accredited by the hub operator on the signed
consent of the officer's home authority: ``LiaisonConsent`` is signed by the home authority's
Ed25519 key over its canonical bytes (``SignedConsent.consent``, never re-encoded), and the hub
checks it against that authority's key in the directory before it issues a token.

Bearer tokens are stored by the hub as ``AccessToken`` records holding only the SHA-256 of the
secret; the secret is printed once, when it is issued.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Final, Literal

import msgspec

from schemas.codec import Strict
from schemas.common import AuthorityId, Digest, MessageId
from schemas.directory import KeyId

__all__ = [
    "ROLES",
    "AccessToken",
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


class TokenFile(Strict, frozen=True, kw_only=True, tag="mla.access.token_file.v1"):
    """The hub's token store (``<data>/access/tokens.json``), written atomically."""

    tokens: list[AccessToken] = []
