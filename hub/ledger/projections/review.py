"""The bilateral case review (resolution 7/4 rec. 11): one pair of authorities, one period.

Pure: the cases, the pair, the period and ``now`` are arguments. Both directions are reported:
counts by state; median and p90 days to acknowledge and to execute; overdue cases; refusals and
whether each was consulted first (UNTOC art. 18(26)); consultations and the requests they led
to; and requests pending for more than 90 days.
"""

from __future__ import annotations

import math
import statistics
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from hub.ledger.lifecycle import TERMINAL_STATES
from hub.ledger.projections.cases import CaseRecord, status_of

__all__ = [
    "Direction",
    "Durations",
    "PendingCase",
    "Review",
    "bilateral_review",
    "days",
    "durations",
]

PENDING_DAYS = 90


@dataclass(frozen=True, slots=True)
class Durations:
    count: int
    median_days: float | None
    p90_days: float | None


@dataclass(frozen=True, slots=True)
class PendingCase:
    case_id: str
    kind: str
    state: str
    holder: str
    opened: datetime
    age_days: float
    deadline: datetime | None


@dataclass(frozen=True, slots=True)
class Refusal:
    case_id: str
    refused_at: datetime
    consulted_first: bool


@dataclass(frozen=True, slots=True)
class ConsultationLink:
    consultation_id: str
    opened: datetime
    state: str
    led_to: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Direction:
    """Requests from ``requesting`` to ``requested`` opened in the period."""

    requesting: str
    requested: str
    requests: int
    by_state: dict[str, int]
    to_acknowledge: Durations
    to_execute: Durations
    overdue: tuple[PendingCase, ...]
    refusals: tuple[Refusal, ...]
    pending_over_90_days: tuple[PendingCase, ...]
    consultations: tuple[ConsultationLink, ...]


@dataclass(frozen=True, slots=True)
class Review:
    pair: tuple[str, str]
    since: datetime | None
    until: datetime | None
    generated_at: datetime
    directions: tuple[Direction, Direction]


def days(start: datetime, end: datetime) -> float:
    return (end - start).total_seconds() / 86_400


def durations(values: Iterable[float]) -> Durations:
    """Count, median and p90 (nearest rank) of ``values`` in days, rounded to 0.01."""
    ordered = sorted(values)
    if not ordered:
        return Durations(0, None, None)
    p90 = ordered[max(0, math.ceil(0.9 * len(ordered)) - 1)]
    return Durations(len(ordered), round(statistics.median(ordered), 2), round(p90, 2))


def _in_period(record: CaseRecord, since: datetime | None, until: datetime | None) -> bool:
    return (since is None or record.opened_at >= since) and (
        until is None or record.opened_at < until
    )


def _pending(record: CaseRecord, now: datetime) -> PendingCase:
    status = status_of(record, now)
    return PendingCase(
        record.case_id,
        record.kind,
        record.state,
        status.holder,
        record.opened_at,
        status.age_days,
        record.meta.deadline,
    )


def _direction(
    cases: Sequence[CaseRecord], requesting: str, requested: str, now: datetime
) -> Direction:
    ours = [
        c
        for c in cases
        if c.lifecycle.requesting == requesting and c.lifecycle.requested == requested
    ]
    requests = [c for c in ours if c.lifecycle.case_type == "request"]
    consultations = [c for c in ours if c.lifecycle.case_type == "consultation"]
    live = [c for c in requests if c.state not in TERMINAL_STATES]
    return Direction(
        requesting=requesting,
        requested=requested,
        requests=len(requests),
        by_state=dict(sorted(Counter(c.state for c in requests).items())),
        to_acknowledge=durations(
            days(c.opened_at, c.acknowledged_at) for c in requests if c.acknowledged_at
        ),
        to_execute=durations(days(c.opened_at, c.executed_at) for c in requests if c.executed_at),
        overdue=tuple(_pending(c, now) for c in live if status_of(c, now).overdue),
        refusals=tuple(
            Refusal(c.case_id, c.refused_at, c.refused_after_consultation)
            for c in requests
            if c.refused_at is not None
        ),
        pending_over_90_days=tuple(
            _pending(c, now) for c in live if days(c.opened_at, now) > PENDING_DAYS
        ),
        consultations=tuple(
            ConsultationLink(c.case_id, c.opened_at, c.state, tuple(c.led_to))
            for c in consultations
        ),
    )


def bilateral_review(
    cases: Iterable[CaseRecord],
    first: str,
    second: str,
    *,
    since: datetime | None,
    until: datetime | None,
    now: datetime,
) -> Review:
    """The review of ``first`` and ``second``: both directions, cases opened in the period."""
    selected = [c for c in cases if _in_period(c, since, until)]
    return Review(
        pair=(first, second),
        since=since,
        until=until,
        generated_at=now,
        directions=(
            _direction(selected, first, second, now),
            _direction(selected, second, first, now),
        ),
    )
