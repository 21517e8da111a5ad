"""What the admission rules decide for one submission, for the service to carry out. Pure data."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from hub.errors import HubError
from schemas.envelope import Envelope, Header
from schemas.ledger import LedgerEvent, SubmissionRejected
from schemas.receipt import Receipt, ReceiptBody

__all__ = ["Accept", "Decision", "Duplicate", "Item", "Limits", "Reject"]

Item = Envelope | Receipt


@dataclass(frozen=True, slots=True)
class Limits:
    max_submission_bytes: int = 4 * 1024 * 1024
    max_clock_skew: timedelta = timedelta(minutes=5)


Decoded = Header | ReceiptBody  # an event's header or receipt body, decoded by admission from
# the very bytes the ledger entry holds: folding the entry need not decode it again


@dataclass(frozen=True, slots=True)
class Accept:
    """Record ``event``; store ``content`` under ``content_digest``; deliver; answer the sender."""

    event: LedgerEvent
    dedup_id: str
    message_id: str
    reply_to: str
    content_digest: bytes | None = None
    content: bytes | None = None
    deliveries: tuple[tuple[str, Item], ...] = ()
    decoded: Decoded | None = None

    @property
    def stored_content(self) -> tuple[bytes, bytes] | None:
        """(digest, sealed bytes) to keep in the content store, if there is content."""
        return _content_pair(self.content_digest, self.content)


@dataclass(frozen=True, slots=True)
class Duplicate:
    """Already recorded at ``ledger_index``: answer again and redeliver, record nothing.

    ``content`` is set for an envelope: storing it again repairs a crash that happened after
    the ledger append but before the content store had it.
    """

    message_id: str
    reply_to: str
    ledger_index: int
    deliveries: tuple[tuple[str, Item], ...] = ()
    content_digest: bytes | None = None
    content: bytes | None = None

    @property
    def stored_content(self) -> tuple[bytes, bytes] | None:
        """(digest, sealed bytes) to store again, if there is content."""
        return _content_pair(self.content_digest, self.content)


def _content_pair(digest: bytes | None, content: bytes | None) -> tuple[bytes, bytes] | None:
    return None if digest is None or content is None else (digest, content)


@dataclass(frozen=True, slots=True)
class Reject:
    """Refused with ``error``; ``recorded_index`` is set when this exact rejection is on record."""

    message_id: str | None
    reply_to: str
    error: HubError
    event: SubmissionRejected
    dedup_id: str
    recorded_index: int | None = None


Decision = Accept | Duplicate | Reject
