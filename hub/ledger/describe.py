"""One-line descriptions of ledger entries, for listings (CLI, demo, audit trail). Pure."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from hub.crypto.access import open_statement
from hub.crypto.cards import card_digest, revocation_transcript
from hub.crypto.digest import sha256
from schemas.access import AccessRevocation, AuditorAccreditation, LiaisonConsent
from schemas.codec import decode
from schemas.envelope import Header
from schemas.ledger import (
    AccessRecorded,
    AuthorityAdmitted,
    AuthorityRevoked,
    EnvelopeRecorded,
    LedgerEntry,
    ReceiptRecorded,
    SubmissionRejected,
)
from schemas.receipt import ReceiptBody

__all__ = ["EntrySummary", "describe"]


@dataclass(frozen=True, slots=True)
class EntrySummary:
    index: int
    recorded_at: datetime
    type: str
    actor: str
    case_id: str | None
    message_id: str | None
    digest: str
    detail: str


def describe(entry: LedgerEntry) -> EntrySummary:
    """What happened at ``entry``: type, who acted, on which case, and the digest recorded."""
    event = entry.event
    if isinstance(event, EnvelopeRecorded):
        header = decode(event.header, Header, what="header")
        return EntrySummary(
            entry.index,
            entry.recorded_at,
            header.type,
            header.sender,
            header.case_id,
            header.message_id,
            event.envelope_digest.hex(),
            f"to {', '.join(header.recipients)}; {len(event.attachments)} attachment(s)",
        )
    if isinstance(event, ReceiptRecorded):
        body = decode(event.body, ReceiptBody, what="receipt")
        return EntrySummary(
            entry.index,
            entry.recorded_at,
            "receipt",
            body.recipient,
            body.case_id,
            body.receipt_id,
            body.envelope_digest.hex(),
            f"for message {body.message_id} (entry {body.ledger_index})",
        )
    if isinstance(event, SubmissionRejected):
        return EntrySummary(
            entry.index,
            entry.recorded_at,
            "rejected",
            event.claimed_sender,
            None,
            event.message_id,
            event.submission_digest.hex(),
            f"{event.reason}: {event.detail}",
        )
    if isinstance(event, AuthorityRevoked):
        return EntrySummary(
            entry.index,
            entry.recorded_at,
            "authority.revoke",
            "operator",
            None,
            None,
            sha256(revocation_transcript(event.authority, event.reason)).hex(),
            f"revoked {event.authority}: {event.reason}",
        )
    if isinstance(event, AccessRecorded):
        return _describe_access(entry, event)
    assert isinstance(event, AuthorityAdmitted)
    rotated = event.signed.rotation_signature is not None
    return EntrySummary(
        entry.index,
        entry.recorded_at,
        "authority.rotate" if rotated else "authority.admit",
        "operator",
        None,
        None,
        card_digest(event.signed).hex(),
        f"{'admitted new keys of' if rotated else 'admitted'} {event.authority}",
    )


def _describe_access(entry: LedgerEntry, event: AccessRecorded) -> EntrySummary:
    statement = open_statement(event.statement)
    if isinstance(statement, AccessRevocation):
        kind, detail = "access.revoke", f"ended: {statement.reason}"
    elif isinstance(statement, AuditorAccreditation):
        kind, detail = "auditor.admit", f"auditor {statement.auditor} ({statement.name})"
    else:
        consent = decode(statement.consent.consent, LiaisonConsent, what="consent")
        kind = "liaison.accredit"
        detail = f"liaison officer {consent.officer} of {consent.home}, posted with {consent.host}"
    return EntrySummary(
        entry.index,
        entry.recorded_at,
        kind,
        "operator",
        None,
        statement.accreditation_id,
        sha256(event.statement).hex(),
        f"{detail} (accreditation {statement.accreditation_id})",
    )
