"""The message index: what was recorded where, so nothing is accepted twice.

This is one of the indices the hub must keep in memory: one small record per recorded message
or receipt (message id, case, parties, ledger index, envelope digest), plus the digests of
rejected submissions so a replayed bad submission is not recorded twice.
"""

from __future__ import annotations

import msgspec

__all__ = ["MessageIndex", "MessageRecord"]


class MessageRecord(msgspec.Struct, frozen=True):
    ledger_index: int
    message_id: str
    case_id: str
    type: str
    sender: str
    recipients: tuple[str, ...]
    envelope_digest: bytes
    observers: tuple[str, ...] = ()  # accreditation ids of liaison officers copied


class MessageIndex:
    """Recorded envelopes, receipts and rejections, by id."""

    def __init__(self) -> None:
        self.messages: dict[str, MessageRecord] = {}
        # (message id, recipient) -> index, keyed by one string: a dict holding only
        # untracked keys and values is untracked by the cyclic collector, and each fresh tuple
        # key tracked it again, so every young collection walked the whole dict (the live fold
        # slowed from 7 to 14 us an entry over 1,000,000 entries; flat with string keys).
        self._receipts: dict[str, int] = {}
        self.receipt_ids: dict[str, int] = {}
        self.rejections: dict[bytes, int] = {}  # submission digest -> index

    def add_message(self, record: MessageRecord) -> None:
        self.messages[record.message_id] = record

    def add_receipt(self, receipt_id: str, message_id: str, recipient: str, index: int) -> None:
        self.receipt_ids[receipt_id] = index
        self._receipts[_pair(message_id, recipient)] = index

    def receipt_index(self, message_id: str, recipient: str) -> int | None:
        """Where ``recipient``'s receipt for ``message_id`` was recorded, if it was."""
        return self._receipts.get(_pair(message_id, recipient))

    def add_rejection(self, submission_digest: bytes, index: int) -> None:
        self.rejections[submission_digest] = index


def _pair(message_id: str, recipient: str) -> str:
    return f"{message_id}\x00{recipient}"  # ids never hold NUL (their schemas' patterns)
