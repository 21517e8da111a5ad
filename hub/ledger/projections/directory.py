"""The directory projection: admitted authority cards, every key they ever published, and
revocations (DESIGN.md section 4), folded from ``AuthorityAdmitted`` and ``AuthorityRevoked``.

It is also the hub's :class:`~hub.crypto.keys.KeyResolver`: a signature is checked against the
key that was valid *when it was made* (the signed ``sent_at`` / ``received_at``), so old
messages still verify after a rotation or a revocation:

- a key counts from its card's ``valid_from`` until its ``valid_until``;
- a rotation (a card with new keys, signed by the current key) retires the old key at the
  rotation entry's ``recorded_at``: an old-key signature dated at or after it does not verify;
- a revocation ends every key of the authority at the revocation entry's ``recorded_at``.

There is no clock-skew grace on these ends: the hub's own recording time is the one instant
that every instance and every auditor agrees on, and the hub already refuses a signed time more
than ``Limits.max_clock_skew`` in its future. An authority rotates its keys locally before the
operator admits the new card, so its old-key signatures precede the rotation's ``recorded_at``
unless its clock runs ahead; such a message is refused with the reason and is sent again,
signed with the new key.

The rules for admitting a card against this state (:meth:`Directory.check_card`) live here, so
the hub (``hub.gateway.admission``) and the auditor's replay (``hub.audit.entries``) share them.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Literal

from hub.crypto.cards import card_digest, open_card
from hub.crypto.envelope import Recipient
from hub.errors import KeyNotValid, Revoked, RotationInvalid, UnknownRecipient, UnknownSender
from schemas.directory import (
    AdmittedCard,
    AuthorityCard,
    DirectorySnapshot,
    KeyStatus,
    RevokedAuthority,
    SignedCard,
)
from schemas.ledger import AuthorityAdmitted, AuthorityRevoked

__all__ = ["check_key_window", "Directory", "DirectoryChange", "DirectoryRecord", "KeyRecord"]


@dataclass(frozen=True, slots=True)
class KeyRecord:
    """One key an authority published, with the ends of its validity known so far."""

    authority: str
    key_id: str
    signing: bytes
    encryption: bytes
    suite: str
    valid_from: datetime
    valid_until: datetime | None
    admitted_index: int
    retired_at: datetime | None = None
    retired_index: int | None = None
    superseded_by: str | None = None


@dataclass(frozen=True, slots=True)
class DirectoryRecord:
    """The current card of one authority and how it was admitted."""

    card: AuthorityCard
    admitted: AdmittedCard
    admitted_at: datetime


DirectoryChange = DirectoryRecord | RevokedAuthority
"""What one directory entry changed: a card admitted (or rotated), or an authority revoked."""


def _when(at: datetime) -> str:
    return at.isoformat()


class Directory:
    """Authorities admitted so far, their key history and their revocations."""

    def __init__(self) -> None:
        self._current: dict[str, DirectoryRecord] = {}  # kept after a revocation, for history
        self._keys: dict[tuple[str, str], KeyRecord] = {}
        self._revoked: dict[str, RevokedAuthority] = {}
        self._last_change: tuple[int, datetime] | None = None

    # --- folding -------------------------------------------------------------------------------

    def apply_admitted(self, index: int, at: datetime, event: AuthorityAdmitted) -> DirectoryRecord:
        """Fold one admission (cards in the ledger were checked before they were appended).

        A card with other keys than the current card's retires the current key at ``at``.
        """
        card = open_card(event.signed)
        admitted = AdmittedCard(
            signed=event.signed,
            operator_signature=event.operator_signature,
            operator_key=event.operator_key,
            card_digest=card_digest(event.signed),
            ledger_index=index,
        )
        keys = card.keys
        previous = self._current.get(card.id)
        if previous is not None and previous.card.keys.key_id != keys.key_id:
            old = self._keys[(card.id, previous.card.keys.key_id)]
            self._keys[(card.id, old.key_id)] = replace(
                old, retired_at=at, retired_index=index, superseded_by=keys.key_id
            )
        existing = self._keys.get((card.id, keys.key_id))
        # a renewed card of the same keys never shortens the past it vouches for
        valid_from = (
            card.valid_from if existing is None else min(existing.valid_from, card.valid_from)
        )
        self._keys[(card.id, keys.key_id)] = KeyRecord(
            authority=card.id,
            key_id=keys.key_id,
            signing=keys.signing,
            encryption=keys.encryption,
            suite=keys.suite,
            valid_from=valid_from,
            valid_until=card.valid_until,
            admitted_index=index if existing is None else existing.admitted_index,
        )
        record = DirectoryRecord(card=card, admitted=admitted, admitted_at=at)
        self._current[card.id] = record
        self._last_change = (index, at)
        return record

    def apply_revoked(self, index: int, at: datetime, event: AuthorityRevoked) -> RevokedAuthority:
        """Fold one revocation (checked before it was appended)."""
        revoked = RevokedAuthority(
            authority=event.authority,
            reason=event.reason,
            ledger_index=index,
            revoked_at=at,
            operator_key=event.operator_key,
            operator_signature=event.operator_signature,
        )
        self._revoked[event.authority] = revoked
        self._last_change = (index, at)
        return revoked

    # --- the admission rules for cards ---------------------------------------------------------

    def check_card(self, card: AuthorityCard, signed: SignedCard) -> bytes | None:
        """Whether ``card`` (already opened) may be admitted now.

        Returns ``None`` for a first admission or a new card with the same keys, and for a
        rotation the current signing key, which must have made ``signed.rotation_signature``
        (the caller verifies it: ``cards.verify_rotation``). Raises :class:`Revoked` or
        :class:`RotationInvalid` naming the rule.
        """
        revoked = self._revoked.get(card.id)
        if revoked is not None:
            raise Revoked(
                f"authority: {card.id} was revoked at ledger index {revoked.ledger_index} "
                f"({revoked.reason}); a revoked id is not admitted again",
                field="authority",
            )
        current = self._current.get(card.id)
        if current is None or current.card.keys.key_id == card.keys.key_id:
            return None
        current_key = current.card.keys.key_id
        earlier = self._keys.get((card.id, card.keys.key_id))
        if earlier is not None:
            raise RotationInvalid(
                f"keys: {card.id} already published key {card.keys.key_id} "
                f"(ledger index {earlier.admitted_index}); a rotation needs new keys",
                field="keys",
            )
        if card.previous_key_id != current_key:
            raise RotationInvalid(
                f"previous_key_id: {card.id}'s current key is {current_key}, the card names "
                f"{card.previous_key_id or 'none'}; new keys need a card made by "
                "`node-agent rotate`",
                field="previous_key_id",
            )
        if signed.rotation_signature is None:
            raise RotationInvalid(
                f"rotation_signature: missing; {card.id}'s new card must be signed by its "
                f"current key {current_key}",
                field="rotation_signature",
            )
        return current.card.keys.signing

    # --- reading -------------------------------------------------------------------------------

    def get(self, authority: str) -> DirectoryRecord | None:
        """The latest card admitted for ``authority`` (also when it was revoked since)."""
        return self._current.get(authority)

    def is_admitted(self, authority: str) -> bool:
        """Admitted and not revoked."""
        return authority in self._current and authority not in self._revoked

    def revocation(self, authority: str) -> RevokedAuthority | None:
        return self._revoked.get(authority)

    def revocations(self) -> list[RevokedAuthority]:
        return [self._revoked[k] for k in sorted(self._revoked)]

    def authorities(self) -> list[DirectoryRecord]:
        """Current records of the admitted, unrevoked authorities (who may connect)."""
        return [self._current[k] for k in sorted(self._current) if k not in self._revoked]

    def admitted_digest(self, authority: str) -> bytes | None:
        record = self._current.get(authority)
        return None if record is None else record.admitted.card_digest

    def key_history(self, authority: str | None = None) -> list[KeyRecord]:
        """Every key published (by ``authority``, or by all), in admission order."""
        records = [r for r in self._keys.values() if authority in (None, r.authority)]
        return sorted(records, key=lambda r: (r.authority, r.admitted_index))

    def key_status(self, record: KeyRecord) -> KeyStatus:
        revoked = self._revoked.get(record.authority)
        ended_by_revocation = revoked is not None and (
            record.retired_at is None or revoked.revoked_at < record.retired_at
        )
        status: Literal["current", "retired", "revoked"] = (
            "revoked" if ended_by_revocation else "retired" if record.retired_at else "current"
        )
        return KeyStatus(
            authority=record.authority,
            key_id=record.key_id,
            status=status,
            admitted_index=record.admitted_index,
            valid_from=record.valid_from,
            valid_until=record.valid_until,
            retired_at=record.retired_at,
            retired_index=record.retired_index,
            superseded_by=record.superseded_by,
            revoked_at=revoked.revoked_at if revoked is not None else None,
        )

    def snapshot(self) -> DirectorySnapshot:
        """The directory as of its last change: a pure function of the ledger."""
        size, at = (
            (0, None)
            if self._last_change is None
            else (
                self._last_change[0] + 1,
                self._last_change[1],
            )
        )
        return DirectorySnapshot(
            ledger_size=size,
            recorded_at=at,
            cards=[r.admitted for r in self.authorities()],
            keys=[self.key_status(r) for r in self.key_history()],
            revoked=self.revocations(),
        )

    # --- resolving keys --------------------------------------------------------------------------

    def signing_key(self, authority: str, key_id: str, at: datetime) -> bytes:
        """The Ed25519 key ``authority`` published as ``key_id``, if it was valid at ``at``."""
        if authority not in self._current:
            raise UnknownSender(f"sender: {authority} is not admitted to the directory")
        record = self._keys.get((authority, key_id))
        if record is None:
            raise KeyNotValid(f"sender_key_id: {authority} has no key {key_id}")
        check_key_window(
            authority,
            key_id,
            at,
            valid_from=record.valid_from,
            valid_until=record.valid_until,
            retired_at=record.retired_at,
            superseded_by=record.superseded_by,
            retired_index=record.retired_index,
        )
        revoked = self._revoked.get(authority)
        if revoked is not None and at >= revoked.revoked_at:
            raise Revoked(
                f"sender: {authority} was revoked at {_when(revoked.revoked_at)} (ledger index "
                f"{revoked.ledger_index}: {revoked.reason}); signed at {_when(at)}"
            )
        return record.signing

    def recipient(self, authority: str) -> Recipient:
        """Where to seal a message for ``authority`` now: its current encryption key."""
        record = self._current.get(authority)
        if record is None:
            raise UnknownRecipient(f"recipients: {authority} is not admitted to the directory")
        revoked = self._revoked.get(authority)
        if revoked is not None:
            raise Revoked(
                f"recipients: {authority} was revoked at ledger index {revoked.ledger_index} "
                f"({revoked.reason})"
            )
        keys = record.card.keys
        return Recipient(authority, keys.key_id, keys.suite, keys.encryption)


def check_key_window(
    authority: str,
    key_id: str,
    at: datetime,
    *,
    valid_from: datetime,
    valid_until: datetime | None,
    retired_at: datetime | None,
    superseded_by: str | None,
    retired_index: int | None = None,
) -> None:
    """Raise :class:`KeyNotValid` unless a signature made at ``at`` falls in the key's window:
    from ``valid_from``, before the card's ``valid_until`` and before the rotation that
    replaced it (``retired_at``). One rule for the hub, the auditor and the node agent.

    Hot (every signature the hub and the auditor check): messages are formatted only to raise.
    """
    if at < valid_from:
        raise KeyNotValid(
            f"sender_key_id: key {key_id} of {authority} is valid from {_when(valid_from)}; "
            f"signed at {_when(at)}"
        )
    if valid_until is not None and at >= valid_until:
        raise KeyNotValid(
            f"sender_key_id: key {key_id} of {authority} expired at {_when(valid_until)}; "
            f"signed at {_when(at)}"
        )
    if retired_at is not None and at >= retired_at:
        where = "" if retired_index is None else f" (ledger index {retired_index})"
        raise KeyNotValid(
            f"sender_key_id: key {key_id} of {authority} was replaced by key {superseded_by} at "
            f"{_when(retired_at)}{where}; signed at {_when(at)}"
        )
