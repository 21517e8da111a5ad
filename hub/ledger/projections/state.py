"""The hub's working state: every projection the admission rules need, folded entry by entry.

``HubState.apply`` is the only way state changes, whether the entry was appended by this
instance or read back from the ledger (another instance's append, or a restart), and it is
idempotent per index, so a redelivered entry is never applied twice.
"""

from __future__ import annotations

import msgspec

from hub.errors import ValidationError
from hub.ledger.projections.access import Accreditations
from hub.ledger.projections.cases import Cases
from hub.ledger.projections.directory import Directory, DirectoryChange
from hub.ledger.projections.messages import MessageIndex, MessageRecord
from schemas.codec import decode
from schemas.directory import DirectorySnapshot
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

__all__ = ["HubState"]


class HubState:
    """Directory, accreditations, message index and cases, plus the position they reflect
    (``next_index``)."""

    def __init__(self) -> None:
        self.directory = Directory()
        self.access = Accreditations()
        self.messages = MessageIndex()
        self.cases = Cases()
        self.next_index = 0

    def apply(
        self, entry: LedgerEntry, decoded: Header | ReceiptBody | None = None
    ) -> DirectoryChange | None:
        """Fold ``entry``; returns the directory change when the entry admitted a card
        (``DirectoryRecord``) or revoked an authority (``RevokedAuthority``).

        ``decoded`` is the entry's header or receipt body when the caller has just decoded
        it from these very bytes (the auditor's replay): decoding is a large part of a fold."""
        if entry.index < self.next_index:
            return None  # already applied (redelivery)
        if entry.index != self.next_index:
            raise ValidationError(
                f"ledger: entry {entry.index} applied out of order (expected {self.next_index})"
            )
        change: DirectoryChange | None = None
        event = entry.event
        if isinstance(event, EnvelopeRecorded):
            header = (
                decoded
                if isinstance(decoded, Header)
                else decode(event.header, Header, what="header")
            )
            self.messages.add_message(
                MessageRecord(
                    ledger_index=entry.index,
                    message_id=header.message_id,
                    case_id=header.case_id,
                    type=header.type,
                    sender=header.sender,
                    recipients=tuple(header.recipients),
                    envelope_digest=event.envelope_digest,
                    observers=tuple(header.observers),
                )
            )
            self.cases.apply(entry.index, entry.recorded_at, header, event.envelope_digest)
        elif isinstance(event, ReceiptRecorded):
            body = (
                decoded
                if isinstance(decoded, ReceiptBody)
                else decode(event.body, ReceiptBody, what="receipt")
            )
            self.messages.add_receipt(body.receipt_id, body.message_id, body.recipient, entry.index)
            self.cases.apply_receipt(
                entry.index,
                entry.recorded_at,
                body.case_id,
                body.recipient,
                body.envelope_digest,
                body.receipt_id,
            )
        elif isinstance(event, SubmissionRejected):
            self.messages.add_rejection(event.submission_digest, entry.index)
        elif isinstance(event, AuthorityAdmitted):
            change = self.directory.apply_admitted(entry.index, entry.recorded_at, event)
        elif isinstance(event, AuthorityRevoked):
            change = self.directory.apply_revoked(entry.index, entry.recorded_at, event)
        elif isinstance(event, AccessRecorded):
            self.access.apply(entry.index, entry.recorded_at, event)
        self.next_index = entry.index + 1
        return change

    def directory_snapshot(self) -> DirectorySnapshot:
        """What the operator signs for node agents: the directory, and the liaison officers
        their home authorities may copy, as of the last entry that changed either."""
        snapshot = self.directory.snapshot()
        last = self.access.last_change
        if last is not None and last[0] + 1 > snapshot.ledger_size:
            snapshot = msgspec.structs.replace(
                snapshot, ledger_size=last[0] + 1, recorded_at=last[1]
            )
        return msgspec.structs.replace(
            snapshot, liaisons=self.access.liaison_entries(self.directory)
        )
