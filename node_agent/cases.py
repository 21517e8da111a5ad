"""The agent's own view of a case: its messages both ways, folded by the hub's projection code.

Every message of a case goes to the other party, so each side holds the whole thread: what it
received (inbox) and what it sent (outbox). Folding them in ledger order with the same
:class:`~hub.ledger.projections.cases.Cases` the hub uses gives the same state, holder and
deadline the hub shows; messages not yet recorded follow, in the order they were written.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from hub.errors import ValidationError
from hub.ledger.projections.cases import CaseRecord, Cases
from node_agent.store import AgentStore
from schemas.codec import decode
from schemas.envelope import Body, Envelope, Header

__all__ = ["ThreadMessage", "counterpart", "local_case", "local_cases", "thread"]

_LIVE = ("queued", "submitted", "accepted", "duplicate")


@dataclass(frozen=True, slots=True)
class ThreadMessage:
    """One message of a case, as this authority sees it."""

    direction: str  # "sent" | "received"
    header: Header
    text: str | None
    status: str  # sent: queued | submitted | accepted | duplicate | rejected; received: received
    ledger_index: int | None
    at: datetime
    reason: str | None = None


def thread(store: AgentStore, case_id: str) -> list[ThreadMessage]:
    """Every message of ``case_id``, in ledger order, unrecorded ones last."""
    messages = [
        ThreadMessage(
            direction="received",
            header=decode(row.header, Header, what="header"),
            text=decode(row.body, Body, what="body").text,
            status="received",
            ledger_index=row.ledger_index,
            at=datetime.fromisoformat(row.recorded_at),
        )
        for row in store.inbox_of_case(case_id)
    ]
    for row in store.outbox_of_case(case_id):
        envelope = decode(row.payload, Envelope, what="outbox payload")
        messages.append(
            ThreadMessage(
                direction="sent",
                header=decode(envelope.header, Header, what="header"),
                text=row.body_text,
                status=row.status,
                ledger_index=row.ledger_index,
                at=datetime.fromisoformat(row.recorded_at or row.created_at),
                reason=row.reason,
            )
        )
    unrecorded = 1 << 62
    return sorted(
        messages,
        key=lambda m: (m.ledger_index if m.ledger_index is not None else unrecorded, m.at),
    )


def local_cases(store: AgentStore, case_ids: Iterable[str | None]) -> Cases:
    """Fold this authority's messages of the given cases (rejected ones excluded)."""
    cases = Cases()
    for case_id in dict.fromkeys(c for c in case_ids if c):
        for position, message in enumerate(thread(store, case_id)):
            if message.direction == "sent" and message.status not in _LIVE:
                continue
            index = message.ledger_index if message.ledger_index is not None else -1 - position
            cases.apply(index, message.at, message.header, b"")
    return cases


def local_case(store: AgentStore, case_id: str) -> CaseRecord | None:
    return local_cases(store, [case_id]).by_id.get(case_id)


def counterpart(record: CaseRecord, me: str) -> str:
    """The other party of a case this authority is in."""
    lifecycle = record.lifecycle
    if me == lifecycle.requesting:
        return lifecycle.requested
    if me == lifecycle.requested:
        return lifecycle.requesting
    raise ValidationError(f"--case: {me} is not a party to case {record.case_id}", field="case")
