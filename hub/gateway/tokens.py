"""Bearer tokens for the read API: issue, list, revoke, authenticate (DESIGN.md 7; issue 5).

A token reads ``mlah_<id>_<secret>``: 16 hex characters naming the record, then 256 random bits
(URL-safe base64). The hub stores only a labelled SHA-256 of the whole token in
``<data>/access/tokens.json`` (0600, written atomically under a lock), compares it in constant
time, and re-reads the file whenever it changes, so a token issued or revoked with the CLI takes
effect at once in a running hub.
"""

from __future__ import annotations

import contextlib
import fcntl
import hmac
import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import msgspec

from hub.crypto.digest import sha256
from hub.errors import ValidationError
from hub.gateway.access import Principal, Unauthenticated, principal_of
from schemas.access import AccessToken, Role, TokenFile
from schemas.codec import decode_json

__all__ = ["Issued", "TokenStore", "token_hash", "tokens_path"]

_PREFIX = "mlah"
_LABEL = b"mla-hub/v1/access-token\x00"
_MAX_DAYS = 3660


def tokens_path(root: Path) -> Path:
    """Where the hub in data folder ``root`` keeps its token records."""
    return root / "access" / "tokens.json"


def token_hash(token: str) -> bytes:
    """What the hub stores for ``token``: SHA-256 over a label and the whole token string."""
    return sha256(_LABEL + token.encode())


@dataclass(frozen=True, slots=True)
class Issued:
    """A newly issued token: its record and the secret, shown to the operator once."""

    record: AccessToken
    token: str


class TokenStore:
    """The token file of one hub, with a cache refreshed when the file changes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock_path = path.with_name(path.name + ".lock")
        self._seen: tuple[int, int, int] | None = None
        self._by_id: dict[str, AccessToken] = {}

    # --- reading -----------------------------------------------------------------------------

    def _read(self) -> list[AccessToken]:
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return []
        return list(decode_json(data, TokenFile, what=str(self.path)).tokens)

    def _refresh(self) -> None:
        try:
            st = self.path.stat()
            seen: tuple[int, int, int] | None = (st.st_ino, st.st_mtime_ns, st.st_size)
        except FileNotFoundError:
            seen = None
        if seen != self._seen or seen is None:
            self._by_id = {t.token_id: t for t in self._read()}
            self._seen = seen

    def records(self) -> list[AccessToken]:
        """Every token record, in issue order."""
        self._refresh()
        return sorted(self._by_id.values(), key=lambda t: (t.issued_at, t.token_id))

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
        if prefix != _PREFIX or len(token_id) != 16 or not secret:
            raise Unauthenticated("authorization: not a hub access token")
        self._refresh()
        record = self._by_id.get(token_id)
        expected = record.secret_sha256 if record is not None else bytes(32)
        if not hmac.compare_digest(expected, token_hash(token)) or record is None:
            raise Unauthenticated("authorization: unknown token")
        return self.check_live(record, now=now)

    def check_live(self, record: AccessToken, *, now: datetime) -> Principal:
        """The principal of ``record`` if it is neither revoked nor expired at ``now``."""
        if record.revoked_at is not None:
            raise Unauthenticated(f"authorization: token {record.token_id} was revoked")
        if record.expires_at <= now:
            raise Unauthenticated(f"authorization: token {record.token_id} expired")
        return principal_of(record)

    def still_live(self, token_id: str, *, now: datetime) -> bool:
        """True while the token is known, unrevoked and unexpired (long-lived streams ask)."""
        self._refresh()
        record = self._by_id.get(token_id)
        if record is None:
            return False
        try:
            self.check_live(record, now=now)
        except Unauthenticated:
            return False
        return True

    # --- writing (the operator's CLI) --------------------------------------------------------

    def issue(
        self,
        role: Role,
        *,
        now: datetime,
        valid_for: timedelta,
        label: str = "",
        authority: str | None = None,
        officer: str | None = None,
        home: str | None = None,
        host: str | None = None,
        not_after: datetime | None = None,
        consent_digest: bytes | None = None,
        accreditation_id: str | None = None,
    ) -> Issued:
        """Mint a token, store its hash, and return the secret (never stored, never logged)."""
        if not timedelta(0) < valid_for <= timedelta(days=_MAX_DAYS):
            raise ValidationError(
                f"expires: a token is valid for 1 to {_MAX_DAYS} days", field="expires"
            )
        _check_scope(
            role,
            authority=authority,
            officer=officer,
            home=home,
            host=host,
            accreditation_id=accreditation_id,
        )
        expires_at = now + valid_for
        if not_after is not None:
            expires_at = min(expires_at, not_after)
        token_id = secrets.token_hex(8)
        token = f"{_PREFIX}_{token_id}_{secrets.token_urlsafe(32)}"
        record = AccessToken(
            token_id=token_id,
            role=role,
            label=label,
            authority=authority,
            officer=officer,
            home=home,
            host=host,
            secret_sha256=token_hash(token),
            issued_at=now,
            expires_at=expires_at,
            consent_digest=consent_digest,
            accreditation_id=accreditation_id,
        )
        # Struct constructors do not check patterns; decoding does (a bad id names its field).
        decode_json(msgspec.json.encode(record), AccessToken, what="token")
        with self._locked() as tokens:
            tokens.append(record)
        return Issued(record=record, token=token)

    def revoke(self, token_id: str, *, now: datetime) -> AccessToken:
        """Revoke one token (idempotent: revoking twice keeps the first time)."""
        with self._locked() as tokens:
            for i, record in enumerate(tokens):
                if record.token_id == token_id:
                    if record.revoked_at is None:
                        tokens[i] = msgspec.structs.replace(record, revoked_at=now)
                    return tokens[i]
        raise ValidationError(f"--id: no token {token_id}", field="id")

    def revoke_accreditations(self, ids: set[str], *, now: datetime) -> list[AccessToken]:
        """Revoke every live token issued for one of the accreditations ``ids``."""
        revoked = []
        with self._locked() as tokens:
            for i, record in enumerate(tokens):
                if record.accreditation_id in ids and record.revoked_at is None:
                    tokens[i] = msgspec.structs.replace(record, revoked_at=now)
                    revoked.append(tokens[i])
        return revoked

    @contextlib.contextmanager
    def _locked(self) -> Iterator[list[AccessToken]]:
        """Read-modify-write under an exclusive lock; the file is replaced atomically."""
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            tokens = self._read()
            yield tokens
            self._write(tokens)
        finally:
            os.close(fd)  # releases the lock

    def _write(self, tokens: list[AccessToken]) -> None:
        data = msgspec.json.format(msgspec.json.encode(TokenFile(tokens=tokens))) + b"\n"
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)
        dir_fd = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
        self._seen = None  # re-read on next use


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
