"""Accreditations of liaison officers and auditors, folded from ``AccessRecorded`` (issue 5).

Pure. The rules for recording an access statement (:meth:`Accreditations.check`) live here, so
the hub's admission (``hub.gateway.admission``) and the auditor's replay (``hub.audit``) apply
the same ones, at the hub's time and at the entry's ``recorded_at`` respectively:

- a liaison accreditation carries the home authority's consent, which must verify against the
  home authority's key valid when it was issued and be current; home and host are admitted and
  not revoked; the accreditation ends no later than the consent does;
- an accreditation id is used once (the same statement again is a duplicate, not an error);
- a revocation names a recorded accreditation; revoking it again answers with the first one;
- a message may copy (``Header.observers``) only its sender's own liaison officers, posted with
  one of its recipients, accredited when it is recorded, sealed to the key the consent vouched
  for (:meth:`Accreditations.check_observers`).

An accreditation is *active* while it is unrevoked, unexpired, and (for a liaison officer)
neither its home nor its host authority has been revoked: the pair it watches must still exist.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Literal

from hub.crypto.access import open_statement, statement_digest
from hub.crypto.consent import consent_digest, open_consent
from hub.crypto.envelope import observer_holder
from hub.errors import (
    AccreditationInvalid,
    NotARecipient,
    Revoked,
    StaleRecipientKey,
    UnknownRecipient,
    ValidationError,
)
from hub.ledger.projections.directory import Directory
from schemas.access import (
    AccessRevocation,
    AccessStatement,
    AuditorAccreditation,
    LiaisonAccreditation,
    LiaisonConsent,
)
from schemas.codec import decode
from schemas.directory import LiaisonEntry, PublicKeys
from schemas.envelope import Header
from schemas.ledger import AccessRecorded

__all__ = ["Accreditation", "AccreditationRole", "Accreditations"]

AccreditationRole = Literal["liaison", "auditor"]


@dataclass(frozen=True, slots=True)
class Accreditation:
    """One accreditation as the ledger recorded it, with its revocation once there is one."""

    accreditation_id: str
    role: AccreditationRole
    holder: str  # the officer's or the auditor's id
    name: str
    ledger_index: int
    accredited_at: datetime
    valid_until: datetime
    statement_digest: bytes
    home: str | None = None
    host: str | None = None
    organisation: str = ""
    officer_keys: PublicKeys | None = None
    consent_digest: bytes | None = None
    revoked_at: datetime | None = None
    revoked_index: int | None = None
    revoked_reason: str | None = None

    def scope(self) -> str:
        if self.role == "liaison":
            return f"liaison officer {self.holder} ({self.home} <-> {self.host})"
        return f"auditor {self.holder}" + (f" ({self.organisation})" if self.organisation else "")


class Accreditations:
    """Every accreditation by id, in ledger order."""

    def __init__(self) -> None:
        self._by_id: dict[str, Accreditation] = {}
        self.last_change: tuple[int, datetime] | None = None  # (ledger index, recorded_at)

    # --- rules --------------------------------------------------------------------------------

    def check(
        self,
        statement: AccessStatement,
        statement_bytes: bytes,
        directory: Directory,
        *,
        at: datetime,
        max_skew: timedelta,
    ) -> int | None:
        """Raise a typed error naming the rule if ``statement`` may not be recorded at ``at``;
        return the ledger index of the same statement if it is already recorded, else ``None``.
        """
        digest = statement_digest(statement_bytes)
        if isinstance(statement, AccessRevocation):
            return self._check_revocation(statement)
        if statement.issued_at > at + max_skew:
            raise ValidationError(
                f"issued_at: {statement.issued_at.isoformat()} is in the future for this hub",
                field="issued_at",
            )
        earlier = self._by_id.get(statement.accreditation_id)
        if earlier is not None:
            if earlier.statement_digest == digest:
                return earlier.ledger_index
            raise AccreditationInvalid(
                f"accreditation_id: {statement.accreditation_id} is already used by the "
                f"accreditation at ledger index {earlier.ledger_index}",
                field="accreditation_id",
            )
        if statement.valid_until <= at:
            raise AccreditationInvalid(
                f"valid_until: {statement.valid_until.isoformat()} has passed",
                field="valid_until",
            )
        if isinstance(statement, LiaisonAccreditation):
            _check_liaison(statement, directory, at=at, max_skew=max_skew)
        return None

    def _check_revocation(self, statement: AccessRevocation) -> int | None:
        target = self._by_id.get(statement.accreditation_id)
        if target is None:
            raise AccreditationInvalid(
                f"accreditation_id: no accreditation {statement.accreditation_id} is recorded",
                field="accreditation_id",
            )
        return target.revoked_index  # revoking twice answers with the first revocation

    def check_observers(
        self,
        header: Header,
        directory: Directory,
        *,
        at: datetime,
        key_ids: Mapping[str, str] | None,
    ) -> None:
        """Each liaison officer a message copies (``header.observers``) is one of the sender's
        own, posted with a recipient, accredited at ``at``, and (when the wrapped keys are at
        hand: ``key_ids`` by holder) sealed to the officer key the consent vouched for."""
        for accreditation_id in header.observers:
            ended = self.ended(accreditation_id, at, directory)
            if ended is not None:
                raise NotARecipient(f"observers: {ended}", field="observers")
            record = self._by_id[accreditation_id]
            if record.role != "liaison" or record.home != header.sender:
                raise NotARecipient(
                    f"observers: accreditation {accreditation_id} is not a liaison officer of "
                    f"{header.sender}",
                    field="observers",
                )
            if record.host not in header.recipients:
                raise NotARecipient(
                    f"observers: the officer of accreditation {accreditation_id} is posted with "
                    f"{record.host}, which this message is not addressed to",
                    field="observers",
                )
            if key_ids is None:
                continue
            key_id = key_ids.get(observer_holder(accreditation_id))
            vouched = record.officer_keys
            if vouched is None or key_id != vouched.key_id:
                raise StaleRecipientKey(
                    f"wrapped_keys: sealed to key {key_id} for accreditation {accreditation_id}, "
                    "whose consent "
                    + (
                        "carries no officer key"
                        if vouched is None
                        else f"vouches for key {vouched.key_id}"
                    ),
                    field="wrapped_keys",
                )

    # --- folding ------------------------------------------------------------------------------

    def apply(self, index: int, at: datetime, event: AccessRecorded) -> Accreditation:
        """Fold one recorded statement (already checked by the hub or the replay)."""
        statement = open_statement(event.statement)
        digest = statement_digest(event.statement)
        self.last_change = (index, at)
        if isinstance(statement, AccessRevocation):
            target = self._by_id[statement.accreditation_id]
            if target.revoked_index is None:
                target = replace(
                    target, revoked_at=at, revoked_index=index, revoked_reason=statement.reason
                )
                self._by_id[target.accreditation_id] = target
            return target
        record = _record_of(statement, index, at, digest)
        self._by_id[record.accreditation_id] = record
        return record

    # --- reading ------------------------------------------------------------------------------

    def get(self, accreditation_id: str) -> Accreditation | None:
        return self._by_id.get(accreditation_id)

    def all(self) -> list[Accreditation]:
        return sorted(self._by_id.values(), key=lambda a: a.ledger_index)

    def ended(self, accreditation_id: str, now: datetime, directory: Directory) -> str | None:
        """Why the accreditation is not active at ``now``, or ``None`` while it is."""
        record = self._by_id.get(accreditation_id)
        if record is None:
            return f"accreditation {accreditation_id} is not in the ledger"
        if record.revoked_at is not None:
            return (
                f"accreditation {accreditation_id} was revoked at ledger index "
                f"{record.revoked_index}: {record.revoked_reason}"
            )
        if record.valid_until <= now:
            return f"accreditation {accreditation_id} expired at {record.valid_until.isoformat()}"
        for party in (record.home, record.host):
            revoked = directory.revocation(party) if party is not None else None
            if revoked is not None:
                return (
                    f"accreditation {accreditation_id} ended: {party} was revoked at ledger "
                    f"index {revoked.ledger_index}"
                )
        return None

    def status(self, record: Accreditation, now: datetime, directory: Directory) -> str:
        """``active``, ``revoked``, ``expired`` or ``ended`` (a party of the pair revoked)."""
        reason = self.ended(record.accreditation_id, now, directory)
        if reason is None:
            return "active"
        if record.revoked_at is not None:
            return "revoked"
        return "expired" if record.valid_until <= now else "ended"

    def liaison_entries(self, directory: Directory) -> list[LiaisonEntry]:
        """For the signed directory snapshot: unrevoked liaison accreditations whose consent
        vouched for officer keys, of pairs whose authorities are not revoked. Their terms are
        listed, not applied: the snapshot is a function of the ledger, not of the clock."""
        return [
            LiaisonEntry(
                accreditation_id=a.accreditation_id,
                officer=a.holder,
                home=a.home,
                host=a.host,
                officer_keys=a.officer_keys,
                valid_until=a.valid_until,
                ledger_index=a.ledger_index,
            )
            for a in self.all()
            if a.role == "liaison"
            and a.revoked_at is None
            and a.officer_keys is not None
            and a.home is not None
            and a.host is not None
            and directory.revocation(a.home) is None
            and directory.revocation(a.host) is None
        ]

    def active_of(
        self, role: AccreditationRole, holder: str, now: datetime, directory: Directory
    ) -> list[Accreditation]:
        """The accreditations of ``holder`` (an officer or an auditor) active at ``now``."""
        return [
            a
            for a in self.all()
            if a.role == role
            and a.holder == holder
            and self.ended(a.accreditation_id, now, directory) is None
        ]


def _check_liaison(
    statement: LiaisonAccreditation, directory: Directory, *, at: datetime, max_skew: timedelta
) -> None:
    consent = open_consent(statement.consent, directory, now=at, max_skew=max_skew)
    for party in (consent.home, consent.host):
        revoked = directory.revocation(party)
        if revoked is not None:
            raise Revoked(
                f"consent: {party} was revoked at ledger index {revoked.ledger_index}",
                field="consent",
            )
        if not directory.is_admitted(party):
            raise UnknownRecipient(
                f"consent: {party} is not an admitted authority", field="consent"
            )
    if statement.valid_until > consent.valid_until:
        raise AccreditationInvalid(
            f"valid_until: {statement.valid_until.isoformat()} is after the end of the home "
            f"authority's consent ({consent.valid_until.isoformat()})",
            field="valid_until",
        )


def _record_of(
    statement: LiaisonAccreditation | AuditorAccreditation,
    index: int,
    at: datetime,
    digest: bytes,
) -> Accreditation:
    if isinstance(statement, AuditorAccreditation):
        return Accreditation(
            accreditation_id=statement.accreditation_id,
            role="auditor",
            holder=statement.auditor,
            name=statement.name,
            organisation=statement.organisation,
            ledger_index=index,
            accredited_at=at,
            valid_until=statement.valid_until,
            statement_digest=digest,
        )
    consent = decode(statement.consent.consent, LiaisonConsent, what="consent")
    return Accreditation(
        accreditation_id=statement.accreditation_id,
        role="liaison",
        holder=consent.officer,
        name=consent.name,
        ledger_index=index,
        accredited_at=at,
        valid_until=statement.valid_until,
        statement_digest=digest,
        home=consent.home,
        host=consent.host,
        officer_keys=consent.officer_keys,
        consent_digest=consent_digest(statement.consent),
    )
