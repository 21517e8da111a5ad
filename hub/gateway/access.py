"""Who is asking, and what they may see: the scopes of the read API's roles (DESIGN.md 7; issue 5).

Pure. A :class:`Principal` is what a valid bearer token stands for. Scopes:

- ``operator``, ``auditor``: every case's metadata, the ledger listing, checkpoints, metrics
  (there is no case content in the hub to see; auditors and operators alike read metadata)
- ``authority``: the cases its authority is party to; reviews with it as one of the pair
- ``liaison``: the cases between its home and host authorities, their review, live updates

Everyone with a valid token reads the directory. Refusals are typed: :class:`Unauthenticated`
(no, unknown, expired or revoked token), :class:`Forbidden` (valid token, out of scope),
:class:`NotFound` (in scope but absent; only answered to roles that see everything, so the
existence of other pairs' cases is never revealed).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from hub.errors import ValidationError, VerificationError
from hub.ledger.projections.access import Accreditation
from hub.ledger.projections.state import HubState
from schemas.access import AccessToken, Role

__all__ = [
    "Forbidden",
    "NotFound",
    "Principal",
    "Unauthenticated",
    "accreditation_problem",
    "principal_of",
]


class Unauthenticated(VerificationError):
    """No bearer token, or one that is unknown, malformed, expired or revoked."""

    code = "unauthenticated"


class Forbidden(VerificationError):
    """A valid token asking for something outside its scope."""

    code = "forbidden"


class NotFound(ValidationError):
    """Nothing of that name (answered only to principals that may see everything)."""

    code = "not_found"


@dataclass(frozen=True, slots=True)
class Principal:
    """The scope a token grants."""

    token_id: str
    role: Role
    expires_at: datetime
    authority: str | None = None
    officer: str | None = None
    home: str | None = None
    host: str | None = None
    accreditation_id: str | None = None  # liaison, auditor: ends when the ledger ends it

    @property
    def sees_everything(self) -> bool:
        return self.role in ("operator", "auditor")

    @property
    def pair(self) -> tuple[str, str] | None:
        """The liaison pair (home, host), or ``None``."""
        if self.role == "liaison" and self.home and self.host:
            return (self.home, self.host)
        return None

    def describe(self) -> str:
        if self.role == "liaison":
            return f"liaison officer {self.officer} ({self.home} <-> {self.host})"
        if self.role == "authority":
            return f"staff of {self.authority}"
        return self.role

    def sees_case(self, requesting: str, requested: str) -> bool:
        """True when this principal may see a case between these two authorities."""
        if self.sees_everything:
            return True
        if self.role == "authority":
            return self.authority in (requesting, requested)
        pair = self.pair
        return pair is not None and {requesting, requested} == set(pair)

    def sees_authority(self, authority: str) -> bool:
        """True when some case involving ``authority`` may be in scope."""
        if self.sees_everything:
            return True
        if self.role == "authority":
            return True  # filtering by a partner narrows the principal's own cases
        pair = self.pair
        return pair is not None and authority in pair

    def require(self, *roles: Role, what: str) -> None:
        """Raise :class:`Forbidden` unless this principal has one of ``roles``."""
        if self.role not in roles:
            raise Forbidden(f"{what}: not available to {self.describe()}")

    def require_pair(self, first: str, second: str) -> None:
        """Raise :class:`Forbidden` unless a review of ``first`` and ``second`` is in scope."""
        if self.sees_everything:
            return
        if self.role == "authority" and self.authority in (first, second):
            return
        pair = self.pair
        if pair is not None and {first, second} == set(pair):
            return
        raise Forbidden(f"review of {first} and {second}: not available to {self.describe()}")


def principal_of(token: AccessToken) -> Principal:
    """The scope ``token`` grants (the token store has already checked it is live)."""
    return Principal(
        token_id=token.token_id,
        role=token.role,
        expires_at=token.expires_at,
        authority=token.authority,
        officer=token.officer,
        home=token.home,
        host=token.host,
        accreditation_id=token.accreditation_id,
    )


def accreditation_problem(principal: Principal, state: HubState, now: datetime) -> str | None:
    """Why a liaison officer's or auditor's token no longer stands, from the ledger: its
    accreditation is missing, revoked, expired, or a party of the pair is revoked; or the
    token's scope is not its accreditation's (the token store is the operator's; the ledger is
    what everyone can check). ``None`` for other roles and for a token that stands."""
    if principal.role not in ("liaison", "auditor"):
        return None
    if principal.accreditation_id is None:
        return f"token {principal.token_id} names no accreditation; issue a new one"
    ended = state.access.ended(principal.accreditation_id, now, state.directory)
    record = state.access.get(principal.accreditation_id)
    if ended is None and record is not None and not _scope_matches(principal, record):
        return f"token {principal.token_id}: its scope is not its accreditation's"
    return ended


def _scope_matches(principal: Principal, record: Accreditation) -> bool:
    if principal.role != record.role:
        return False
    if record.role == "liaison":
        return (principal.officer, principal.home, principal.host) == (
            record.holder,
            record.home,
            record.host,
        )
    return True
