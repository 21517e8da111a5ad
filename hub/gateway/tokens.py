"""Bearer tokens for the read API, the pure part: records, hashes, scopes, the in-memory index
(DESIGN.md 7; issue 5).

A token reads ``mlah_<id>_<secret>``: 16 hex characters naming the record, then 256 random bits
(URL-safe base64). The hub stores only a labelled SHA-256 of the whole token, as an
``AccessToken`` record under its id in the JetStream bucket ``ACCESS_TOKENS``
(:mod:`hub.gateway.token_store` does that I/O). Here: building a record from a freshly minted
id and secret, checking its scope, encoding it for the bucket and decoding it back (naming the
key when it does not decode), and :class:`TokenIndex`, the records one read API knows, against
which a bearer header is checked synchronously, hashes compared in constant time.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TypedDict, Unpack

import msgspec

from hub import subjects
from hub.crypto.digest import sha256
from hub.errors import ValidationError
from hub.gateway.access import Principal, Unauthenticated, principal_of
from schemas.access import AccessToken, Role
from schemas.codec import decode_json, encode_json

__all__ = [
    "PREFIX",
    "Issued",
    "TokenIndex",
    "TokenScope",
    "check_live",
    "decode_record",
    "encode_record",
    "new_token",
    "revoked",
    "token_hash",
    "tokens_path",
]

PREFIX = "mlah"
_LABEL = b"mla-hub/v1/access-token\x00"
_MAX_DAYS = 3660


def tokens_path(root: Path) -> Path:
    """Where a hub in data folder ``root`` kept its token records before the bucket; ``hub up``
    imports that file once (:func:`hub.gateway.token_store.import_token_file`)."""
    return root / "access" / "tokens.json"


def token_hash(token: str) -> bytes:
    """What the hub stores for ``token``: SHA-256 over a label and the whole token string."""
    return sha256(_LABEL + token.encode())


class TokenScope(TypedDict, total=False):
    """What a token is for beyond its role, as :func:`new_token` and ``TokenStore.issue`` take
    it (which fields each role needs or forbids: ``_check_scope``)."""

    label: str
    authority: str | None
    officer: str | None
    home: str | None
    host: str | None
    not_after: datetime | None  # the expiry, if earlier than ``now + valid_for``
    consent_digest: bytes | None
    accreditation_id: str | None


@dataclass(frozen=True, slots=True)
class Issued:
    """A newly issued token: its record and the secret, shown to the operator once."""

    record: AccessToken
    token: str


def new_token(
    role: Role,
    *,
    token_id: str,
    secret: str,
    now: datetime,
    valid_for: timedelta,
    **scope: Unpack[TokenScope],
) -> Issued:
    """The record and token string for a minted ``token_id`` and ``secret`` (the caller draws
    both at random), once the term and the scope fit the role."""
    if not timedelta(0) < valid_for <= timedelta(days=_MAX_DAYS):
        raise ValidationError(
            f"expires: a token is valid for 1 to {_MAX_DAYS} days", field="expires"
        )
    unknown = scope.keys() - TokenScope.__optional_keys__  # as a keyword parameter would
    if unknown:
        raise TypeError(f"new_token: unknown scope field(s): {', '.join(sorted(unknown))}")
    authority, officer = scope.get("authority"), scope.get("officer")
    home, host = scope.get("home"), scope.get("host")
    accreditation_id = scope.get("accreditation_id")
    _check_scope(
        role,
        authority=authority,
        officer=officer,
        home=home,
        host=host,
        accreditation_id=accreditation_id,
    )
    expires_at = now + valid_for
    if (not_after := scope.get("not_after")) is not None:
        expires_at = min(expires_at, not_after)
    token = f"{PREFIX}_{token_id}_{secret}"
    record = AccessToken(
        token_id=token_id,
        role=role,
        label=scope.get("label", ""),
        authority=authority,
        officer=officer,
        home=home,
        host=host,
        secret_sha256=token_hash(token),
        issued_at=now,
        expires_at=expires_at,
        consent_digest=scope.get("consent_digest"),
        accreditation_id=accreditation_id,
    )
    # Struct constructors do not check patterns; decoding does (a bad id names its field).
    decode_json(msgspec.json.encode(record), AccessToken, what="token")
    return Issued(record=record, token=token)


def revoked(record: AccessToken, *, now: datetime) -> AccessToken | None:
    """``record`` revoked at ``now``; None if it already was (the first revocation stands)."""
    if record.revoked_at is not None:
        return None
    return msgspec.structs.replace(record, revoked_at=now)


def encode_record(record: AccessToken) -> bytes:
    """The bucket value of ``record``: deterministic JSON, so ``nats kv get`` shows it as is."""
    return encode_json(record)


def decode_record(key: str, value: bytes) -> AccessToken:
    """The record stored under ``key``; :class:`ValidationError` naming the key if the value
    does not decode, or names another token (a record is only valid under its own id)."""
    what = f"{subjects.ACCESS_TOKENS_BUCKET} key {key!r}"
    record = decode_json(value, AccessToken, what=what)
    if record.token_id != key:
        raise ValidationError(f"{what}: holds token {record.token_id}", field="token_id")
    return record


def check_live(record: AccessToken, *, now: datetime) -> Principal:
    """The principal of ``record`` if it is neither revoked nor expired at ``now``."""
    if record.revoked_at is not None:
        raise Unauthenticated(f"authorization: token {record.token_id} was revoked")
    if record.expires_at <= now:
        raise Unauthenticated(f"authorization: token {record.token_id} expired")
    return principal_of(record)


class TokenIndex:
    """The token records one read API knows, by id, each with the bucket revision it came from.

    Fed from two sides (the bucket watcher, and this instance's own writes so that it reads
    them at once), so an update is applied only if it is newer than what is held: a late
    watcher entry never undoes a revocation already seen.
    """

    def __init__(self) -> None:
        self._records: dict[str, AccessToken] = {}
        self._revisions: dict[str, int] = {}  # deleted keys too, so they stay deleted

    def apply(self, key: str, revision: int, record: AccessToken | None) -> None:
        """Hold ``record`` (None: the key was deleted) if ``revision`` is newer than held."""
        if revision <= self._revisions.get(key, 0):
            return
        self._revisions[key] = revision
        if record is None:
            self._records.pop(key, None)
        else:
            self._records[key] = record

    def get(self, token_id: str) -> AccessToken | None:
        return self._records.get(token_id)

    def records(self) -> list[AccessToken]:
        """Every token record, in issue order."""
        return sorted(self._records.values(), key=lambda t: (t.issued_at, t.token_id))

    def authenticate(self, authorization: str | None, *, now: datetime) -> Principal:
        """The principal of an ``Authorization: Bearer ...`` header, or :class:`Unauthenticated`."""
        if not authorization:
            raise Unauthenticated("authorization: a bearer token is required")
        scheme, _, token = authorization.strip().partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise Unauthenticated("authorization: expected 'Bearer <token>'")
        token = token.strip()
        prefix, _, rest = token.partition("_")
        token_id, _, secret = rest.partition("_")
        if prefix != PREFIX or len(token_id) != 16 or not secret:
            raise Unauthenticated("authorization: not a hub access token")
        record = self._records.get(token_id)
        # Hash and compare even for an unknown id, so timing does not tell which ids exist.
        expected = record.secret_sha256 if record is not None else bytes(32)
        if not hmac.compare_digest(expected, token_hash(token)) or record is None:
            raise Unauthenticated("authorization: unknown token")
        return check_live(record, now=now)

    def still_live(self, token_id: str, *, now: datetime) -> bool:
        """True while the token is known, unrevoked and unexpired (long-lived streams ask)."""
        record = self._records.get(token_id)
        if record is None:
            return False
        try:
            check_live(record, now=now)
        except Unauthenticated:
            return False
        return True


def _check_scope(
    role: Role,
    *,
    authority: str | None,
    officer: str | None,
    home: str | None,
    host: str | None,
    accreditation_id: str | None,
) -> None:
    if (role in ("liaison", "auditor")) != (accreditation_id is not None):
        raise ValidationError(
            "accreditation: liaison and auditor tokens, and only they, name the ledger's "
            "accreditation they stand on",
            field="accreditation",
        )
    if role == "authority" and (authority is None or officer or home or host):
        raise ValidationError("--authority: an authority token names exactly its authority")
    if role == "liaison" and not (officer and home and host and home != host and not authority):
        raise ValidationError("a liaison token names its officer and two different authorities")
    if role in ("operator", "auditor") and (authority or officer or home or host):
        raise ValidationError(f"--role {role}: sees every case; it takes no authority or pair")
