"""The directory projection: admitted authority cards and every key they ever published.

It is also the hub's :class:`~hub.crypto.keys.KeyResolver`: a signature is checked against the
key that was valid *when it was made* (DESIGN.md section 4), so old messages still verify after
a rotation.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from hub.crypto.cards import card_digest, open_card
from hub.crypto.envelope import Recipient
from hub.errors import KeyNotValid, UnknownRecipient, UnknownSender
from schemas.directory import AdmittedCard, AuthorityCard
from schemas.ledger import AuthorityAdmitted

__all__ = ["Directory", "DirectoryRecord", "KeyRecord"]


@dataclass(frozen=True, slots=True)
class KeyRecord:
    authority: str
    key_id: str
    signing: bytes
    encryption: bytes
    suite: str
    valid_from: datetime
    valid_until: datetime | None
    admitted_index: int


@dataclass(frozen=True, slots=True)
class DirectoryRecord:
    """The current card of one authority and how it was admitted."""

    card: AuthorityCard
    admitted: AdmittedCard
    admitted_at: datetime


class Directory:
    """Authorities admitted so far, as folded from ``AuthorityAdmitted`` entries."""

    def __init__(self) -> None:
        self._current: dict[str, DirectoryRecord] = {}
        self._keys: dict[tuple[str, str], KeyRecord] = {}

    def apply_admitted(self, index: int, at: datetime, event: AuthorityAdmitted) -> DirectoryRecord:
        """Fold one admission (cards in the ledger were checked before they were appended)."""
        card = open_card(event.signed)
        admitted = AdmittedCard(
            signed=event.signed,
            operator_signature=event.operator_signature,
            operator_key=event.operator_key,
            card_digest=card_digest(event.signed),
            ledger_index=index,
        )
        record = DirectoryRecord(card=card, admitted=admitted, admitted_at=at)
        self._current[card.id] = record
        keys = card.keys
        self._keys[(card.id, keys.key_id)] = KeyRecord(
            authority=card.id,
            key_id=keys.key_id,
            signing=keys.signing,
            encryption=keys.encryption,
            suite=keys.suite,
            valid_from=card.valid_from,
            valid_until=card.valid_until,
            admitted_index=index,
        )
        return record

    def get(self, authority: str) -> DirectoryRecord | None:
        return self._current.get(authority)

    def is_admitted(self, authority: str) -> bool:
        return authority in self._current

    def authorities(self) -> list[DirectoryRecord]:
        return [self._current[k] for k in sorted(self._current)]

    def admitted_digest(self, authority: str) -> bytes | None:
        record = self._current.get(authority)
        return None if record is None else record.admitted.card_digest

    def signing_key(self, authority: str, key_id: str, at: datetime) -> bytes:
        """The Ed25519 key ``authority`` published as ``key_id``, if valid at ``at``."""
        if authority not in self._current:
            raise UnknownSender(f"sender: {authority} is not admitted to the directory")
        record = self._keys.get((authority, key_id))
        if record is None:
            raise KeyNotValid(f"sender_key_id: {authority} has no key {key_id}")
        if at < record.valid_from or (record.valid_until is not None and at >= record.valid_until):
            raise KeyNotValid(
                f"sender_key_id: key {key_id} of {authority} was not valid at {at.isoformat()}"
            )
        return record.signing

    def recipient(self, authority: str) -> Recipient:
        """Where to seal a message for ``authority`` now: its current encryption key."""
        record = self._current.get(authority)
        if record is None:
            raise UnknownRecipient(f"recipients: {authority} is not admitted to the directory")
        keys = record.card.keys
        return Recipient(authority, keys.key_id, keys.suite, keys.encryption)
