"""Statistics (resolution 7/4 rec. 6): counts and durations by kind, nature of assistance,
legal basis, outcome or authority. Pure: cases and ``now`` are arguments.

Legal bases are grouped so that the Convention used as the legal basis stands on its own
(``UNTOC art. 18`` and the like), apart from treaties, reciprocity and domestic law.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from hub.ledger.projections.cases import CaseRecord
from hub.ledger.projections.review import days, durations

__all__ = ["GROUPINGS", "Grouping", "StatsRow", "Statistics", "legal_basis_group", "statistics"]

Grouping = Literal["kind", "nature", "legal-basis", "outcome", "authority"]
GROUPINGS: tuple[Grouping, ...] = ("kind", "nature", "legal-basis", "outcome", "authority")


@dataclass(frozen=True, slots=True)
class StatsRow:
    group: str
    requests: int
    executed: int
    refused: int
    withdrawn: int
    pending: int
    median_days_to_acknowledge: float | None
    median_days_to_outcome: float | None


@dataclass(frozen=True, slots=True)
class Statistics:
    by: Grouping
    generated_at: datetime
    requests: int
    untoc_as_legal_basis: int
    consultations: int
    rows: tuple[StatsRow, ...]


def legal_basis_group(basis: str | None) -> str:
    """``untoc-art18`` -> ``UNTOC art. 18``; ``treaty:NAME`` -> ``treaty: NAME``; else as is."""
    if not basis:
        return "unstated"
    lowered = basis.lower()
    if lowered.startswith("untoc"):
        article = lowered.removeprefix("untoc").strip("-: ").removeprefix("art").strip("-. ")
        return f"UNTOC art. {article}" if article else "UNTOC"
    if lowered.startswith("treaty:"):
        return f"treaty: {basis.split(':', 1)[1].strip()}"
    return lowered


def _keys(by: Grouping) -> Callable[[CaseRecord], list[str]]:
    def keys(case: CaseRecord) -> list[str]:
        if by == "kind":
            return [case.meta.kind]
        if by == "nature":
            return list(case.meta.nature) or ["unstated"]
        if by == "legal-basis":
            return [legal_basis_group(case.meta.legal_basis)]
        if by == "outcome":
            return [case.outcome or "pending"]
        return [
            f"{case.lifecycle.requesting} (requesting)",
            f"{case.lifecycle.requested} (requested)",
        ]

    return keys


def statistics(cases: Iterable[CaseRecord], by: Grouping, *, now: datetime) -> Statistics:
    """Counts and median durations of requests grouped ``by``."""
    all_cases = list(cases)
    requests = [c for c in all_cases if c.lifecycle.case_type == "request"]
    groups: dict[str, list[CaseRecord]] = defaultdict(list)
    keys = _keys(by)
    for case in requests:
        for key in keys(case):
            groups[key].append(case)
    rows = []
    for group, members in sorted(groups.items()):
        outcomes = Counter(c.outcome or "pending" for c in members)
        rows.append(
            StatsRow(
                group=group,
                requests=len(members),
                executed=outcomes["executed"],
                refused=outcomes["refused"],
                withdrawn=outcomes["withdrawn"],
                pending=outcomes["pending"],
                median_days_to_acknowledge=durations(
                    days(c.opened_at, c.acknowledged_at) for c in members if c.acknowledged_at
                ).median_days,
                median_days_to_outcome=durations(
                    days(c.opened_at, c.terminal_at) for c in members if c.terminal_at
                ).median_days,
            )
        )
    return Statistics(
        by=by,
        generated_at=now,
        requests=len(requests),
        untoc_as_legal_basis=sum(
            1 for c in requests if legal_basis_group(c.meta.legal_basis).startswith("UNTOC")
        ),
        consultations=sum(1 for c in all_cases if c.lifecycle.case_type == "consultation"),
        rows=tuple(rows),
    )
