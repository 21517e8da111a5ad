"""The cases projection: every case's lifecycle, holder, deadline and timeline (DESIGN.md 5-6).

Folded from recorded envelopes and receipts. It answers the status projection (state, holder
and since when, age, deadline, overdue), the audit trail (every entry of a case), and is the
input of the bilateral review and the statistics. Durations use the hub's recorded time, which
is inside the hashed ledger entry; ``now`` is always an argument.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

import msgspec

from hub.errors import ValidationError
from hub.ledger.cases import case_event_of
from hub.ledger.lifecycle import TERMINAL_STATES, CaseState, next_state
from schemas.envelope import CaseMeta, Handling, Header

__all__ = ["CaseRecord", "CaseStatus", "Cases", "Holder", "TrailItem", "status_of"]


class Holder(msgspec.Struct, frozen=True):
    """Who holds the request: the requested central authority, or a competent authority."""

    name: str
    authority_id: str | None
    reference: str | None
    since: datetime


class TrailItem(msgspec.Struct, frozen=True):
    index: int
    type: str
    actor: str
    at: datetime
    digest: str
    message_id: str


class CaseRecord(msgspec.Struct):
    """What the ledger says about one case so far."""

    case_id: str
    lifecycle: CaseState
    meta: CaseMeta
    opened_at: datetime
    last_action: str
    last_action_at: datetime
    holder: Holder
    after_consultation: str | None = None
    accept_incomplete: bool = False
    unmet_requirements: tuple[str, ...] = ()
    acknowledged_at: datetime | None = None
    first_result_at: datetime | None = None
    executed_at: datetime | None = None
    refusal_consulted_at: datetime | None = None
    refused_at: datetime | None = None
    refused_after_consultation: bool = False
    withdrawn_at: datetime | None = None
    terminal_at: datetime | None = None
    outcome: str | None = None  # the terminal state first reached (kept after case.close)
    postponed_until: datetime | None = None
    acknowledged_reference: str | None = None
    transfers: list[Holder] = msgspec.field(default_factory=list)
    led_to: list[str] = msgspec.field(default_factory=list)
    trail: list[TrailItem] = msgspec.field(default_factory=list)
    receipts: int = 0

    @property
    def state(self) -> str:
        return self.lifecycle.state

    @property
    def kind(self) -> str:
        return "consultation" if self.lifecycle.case_type == "consultation" else self.meta.kind

    @property
    def handling(self) -> Handling:
        return self.meta.handling or Handling()


@dataclass(frozen=True, slots=True)
class CaseStatus:
    """One row of the status projection (``hub status``)."""

    case_id: str
    case_type: str
    kind: str
    state: str
    requesting: str
    requested: str
    holder: str
    holder_id: str | None
    holder_reference: str | None
    holder_since: datetime
    opened: datetime
    age_days: float
    last_action: str
    last_action_at: datetime
    urgency: str
    deadline: datetime | None
    overdue: bool
    postponed_until: datetime | None
    handling_code: str
    use_limitation: bool
    confidential: bool
    legal_basis: str | None
    nature: tuple[str, ...]
    transfers: int
    refusal_consulted: bool


_NO_META = CaseMeta()


class Cases:
    """All cases, by id, as folded so far."""

    def __init__(self) -> None:
        self.by_id: dict[str, CaseRecord] = {}

    def check(self, header: Header) -> CaseState:
        """The state ``header`` would move its case to, or raise a typed refusal.

        Same rules as :meth:`apply` uses; the hub calls it before appending, the node agent
        before sending (with its own view of the case).
        """
        record = self.by_id.get(header.case_id)
        following = next_state(record.lifecycle if record else None, case_event_of(header))
        if header.type == "request.submit":
            _check_submission(header, self.by_id)
        return following

    def apply(self, index: int, at: datetime, header: Header, digest: bytes) -> None:
        """Fold an accepted envelope (already checked) into its case."""
        record = self.by_id.get(header.case_id)
        lifecycle = next_state(record.lifecycle if record else None, case_event_of(header))
        action = header.action
        if record is None:
            record = CaseRecord(
                case_id=header.case_id,
                lifecycle=lifecycle,
                meta=header.meta or _NO_META,
                opened_at=at,
                last_action=header.type,
                last_action_at=at,
                holder=Holder(header.recipients[0], header.recipients[0], None, at),
                after_consultation=action.after_consultation if action else None,
                accept_incomplete=bool(action and action.accept_incomplete),
                unmet_requirements=tuple(action.unmet_requirements) if action else (),
            )
            self.by_id[header.case_id] = record
            consulted = self.by_id.get(record.after_consultation or "")
            if consulted is not None:
                consulted.led_to.append(header.case_id)
        else:
            _advance(record, lifecycle, header, at)
        record.trail.append(
            TrailItem(index, header.type, header.sender, at, digest.hex(), header.message_id)
        )

    def apply_receipt(
        self, index: int, at: datetime, case_id: str, actor: str, digest: bytes, receipt_id: str
    ) -> None:
        record = self.by_id.get(case_id)
        if record is None:
            return
        record.receipts += 1
        record.trail.append(TrailItem(index, "receipt", actor, at, digest.hex(), receipt_id))


def _check_submission(header: Header, cases: dict[str, CaseRecord]) -> None:
    meta = header.meta or _NO_META
    if (meta.urgency == "urgent" or meta.provisional_arrest) and meta.deadline is None:
        raise ValidationError(
            "meta.deadline: an urgent request, or an extradition request with a "
            "provisional-arrest time limit, must carry a signed deadline",
            field="meta.deadline",
        )
    link = header.action.after_consultation if header.action else None
    if link is None:
        return
    consultation = cases.get(link)
    parties = {header.sender, *header.recipients}
    if (
        consultation is None
        or consultation.lifecycle.case_type != "consultation"
        or {consultation.lifecycle.requesting, consultation.lifecycle.requested} != parties
    ):
        raise ValidationError(
            f"action.after_consultation: {link} is not a consultation between "
            f"{' and '.join(sorted(parties))}",
            field="action.after_consultation",
        )


def _advance(record: CaseRecord, lifecycle: CaseState, header: Header, at: datetime) -> None:
    action = header.action
    kind = header.type
    record.lifecycle = lifecycle
    record.last_action, record.last_action_at = kind, at
    if kind == "request.acknowledge":
        record.acknowledged_at = at
        record.acknowledged_reference = action.reference if action else None
    elif kind == "request.transfer":
        holder = Holder(
            name=(action.competent_authority if action else None) or "competent authority",
            authority_id=action.competent_authority_id if action else None,
            reference=action.reference if action else None,
            since=at,
        )
        record.holder = holder
        record.transfers.append(holder)
    elif kind == "request.postpone":
        record.postponed_until = action.until if action else None
    elif kind == "request.refusal_consultation" and record.refusal_consulted_at is None:
        record.refusal_consulted_at = at
    elif kind == "request.refuse":
        record.refused_at = at
        record.refused_after_consultation = record.refusal_consulted_at is not None
    elif kind == "request.execute":
        record.first_result_at = record.first_result_at or at
        if lifecycle.state == "executed":
            record.executed_at = at
    elif kind == "request.withdraw":
        record.withdrawn_at = at
    if kind != "request.postpone" and lifecycle.state != "postponed":
        record.postponed_until = None
    if lifecycle.state in TERMINAL_STATES and record.terminal_at is None:
        record.terminal_at = at
        record.outcome = lifecycle.state


def status_of(record: CaseRecord, now: datetime) -> CaseStatus:
    """The status row of ``record`` as of ``now`` (overdue is relative to the clock passed in)."""
    deadline = record.meta.deadline
    live = record.state not in TERMINAL_STATES
    handling = record.handling
    return CaseStatus(
        case_id=record.case_id,
        case_type=record.lifecycle.case_type,
        kind=record.kind,
        state=record.state,
        requesting=record.lifecycle.requesting,
        requested=record.lifecycle.requested,
        holder=record.holder.name,
        holder_id=record.holder.authority_id,
        holder_reference=record.holder.reference,
        holder_since=record.holder.since,
        opened=record.opened_at,
        age_days=round((now - record.opened_at).total_seconds() / 86_400, 2),
        last_action=record.last_action,
        last_action_at=record.last_action_at,
        urgency=record.meta.urgency,
        deadline=deadline,
        overdue=bool(live and deadline is not None and now > deadline),
        postponed_until=record.postponed_until,
        handling_code=handling.code,
        use_limitation=handling.use_limitation,
        confidential=handling.confidential,
        legal_basis=record.meta.legal_basis,
        nature=tuple(record.meta.nature),
        transfers=len(record.transfers),
        refusal_consulted=record.lifecycle.refusal_consulted,
    )


def statuses(records: Iterable[CaseRecord], now: datetime) -> list[CaseStatus]:
    return [status_of(r, now) for r in records]
