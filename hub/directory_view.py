"""The directory as people read it: ``hub directory`` and ``node-agent directory`` (DESIGN.md 6).

Both render a :class:`~schemas.directory.DirectorySnapshot`: the hub folds its own from the
ledger, a node agent shows the operator-signed one it fetched and verified. Pure; ``now`` is an
argument (it only tells an expired key from a current one).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from hub.console import table
from hub.crypto.cards import open_card
from schemas.directory import DirectorySnapshot, KeyStatus

__all__ = [
    "AuthorityView",
    "DirectoryView",
    "KeyView",
    "RevocationView",
    "directory_view",
    "render",
]


@dataclass(frozen=True, slots=True)
class ContactView:
    name: str
    email: str | None
    phone: str | None
    available_24_7: bool


@dataclass(frozen=True, slots=True)
class AuthorityView:
    """One admitted, unrevoked authority and its current card."""

    id: str
    state: str
    name: str
    kinds: list[str]
    languages: list[str]
    contacts: list[ContactView]
    key_id: str
    suite: str
    valid_from: datetime
    valid_until: datetime | None
    admitted_index: int
    previous_key_id: str | None


@dataclass(frozen=True, slots=True)
class KeyView:
    """One key ever admitted: ``current``, ``expired`` (past its card's end), ``retired``
    (replaced by a rotation) or ``revoked``; its signatures count until the earliest end."""

    authority: str
    key_id: str
    status: str
    admitted_index: int
    valid_from: datetime
    valid_until: datetime | None
    retired_at: datetime | None
    retired_index: int | None
    superseded_by: str | None
    revoked_at: datetime | None


@dataclass(frozen=True, slots=True)
class RevocationView:
    authority: str
    reason: str
    ledger_index: int
    revoked_at: datetime


@dataclass(frozen=True, slots=True)
class DirectoryView:
    """What ``--json`` prints: the directory after ``ledger_size`` ledger entries."""

    ledger_size: int
    recorded_at: datetime | None
    source: str
    authorities: list[AuthorityView]
    keys: list[KeyView]
    revoked: list[RevocationView]


def _key(status: KeyStatus, now: datetime) -> KeyView:
    expired = status.valid_until is not None and status.valid_until <= now
    return KeyView(
        authority=status.authority,
        key_id=status.key_id,
        status="expired" if status.status == "current" and expired else status.status,
        admitted_index=status.admitted_index,
        valid_from=status.valid_from,
        valid_until=status.valid_until,
        retired_at=status.retired_at,
        retired_index=status.retired_index,
        superseded_by=status.superseded_by,
        revoked_at=status.revoked_at,
    )


def directory_view(snapshot: DirectorySnapshot, *, now: datetime, source: str) -> DirectoryView:
    """The readable form of ``snapshot`` (every card's self-signature is checked again)."""
    authorities = []
    for admitted in snapshot.cards:
        card = open_card(admitted.signed)
        authorities.append(
            AuthorityView(
                id=card.id,
                state=card.state,
                name=card.name,
                kinds=list(card.kinds),
                languages=list(card.languages),
                contacts=[
                    ContactView(c.name, c.email, c.phone, c.available_24_7) for c in card.contacts
                ],
                key_id=card.keys.key_id,
                suite=card.keys.suite,
                valid_from=card.valid_from,
                valid_until=card.valid_until,
                admitted_index=admitted.ledger_index,
                previous_key_id=card.previous_key_id,
            )
        )
    return DirectoryView(
        ledger_size=snapshot.ledger_size,
        recorded_at=snapshot.recorded_at,
        source=source,
        authorities=authorities,
        keys=[_key(k, now) for k in snapshot.keys],
        revoked=[
            RevocationView(r.authority, r.reason, r.ledger_index, r.revoked_at)
            for r in snapshot.revoked
        ],
    )


def _when(value: datetime | None) -> str:
    return "-" if value is None else value.strftime("%Y-%m-%d %H:%M")


def render(view: DirectoryView) -> str:
    """Three plain tables: authorities, keys, revocations."""
    parts = [
        f"directory after {view.ledger_size} ledger entries ({view.source})",
        "",
        table(
            ("id", "state", "name", "kinds", "key", "valid until", "24/7 contact"),
            [
                (
                    a.id,
                    a.state,
                    a.name,
                    ",".join(a.kinds),
                    a.key_id,
                    _when(a.valid_until),
                    next((c.name for c in a.contacts if c.available_24_7), "-"),
                )
                for a in view.authorities
            ],
        ),
        "",
        table(
            ("authority", "key", "status", "admitted", "valid from", "valid until", "ended"),
            [
                (
                    k.authority,
                    k.key_id,
                    k.status,
                    k.admitted_index,
                    _when(k.valid_from),
                    _when(k.valid_until),
                    _when(k.retired_at or k.revoked_at),
                )
                for k in view.keys
            ],
        ),
    ]
    if view.revoked:
        parts += [
            "",
            table(
                ("revoked", "index", "at", "reason"),
                [
                    (r.authority, r.ledger_index, _when(r.revoked_at), r.reason)
                    for r in view.revoked
                ],
            ),
        ]
    return "\n".join(parts)
