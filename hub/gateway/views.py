"""What the read API answers, scoped to the asking principal (DESIGN.md 6-7). Pure.

Each function takes the live :class:`HubState` (read only), the principal and ``now``, and
returns the projections' own dataclasses (the same JSON as the CLI's ``--json``), so the API,
the CLI and the dashboard never disagree. Scope checks happen here, before anything is read.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from hub.errors import ValidationError
from hub.gateway.access import Forbidden, NotFound, Principal
from hub.ledger.projections.cases import CaseRecord, CaseStatus, TrailItem, status_of
from hub.ledger.projections.review import Review, bilateral_review
from hub.ledger.projections.state import HubState
from hub.ledger.projections.stats import Grouping, Statistics, statistics
from hub.reports import bar_chart_svg
from schemas.directory import AuthorityCard

__all__ = [
    "ApiError",
    "DirectoryItem",
    "Health",
    "LedgerItem",
    "WhoAmI",
    "directory",
    "metrics_text",
    "review",
    "review_svg",
    "stats",
    "stats_svg",
    "status_csv",
    "status_rows",
    "trail",
    "visible_cases",
    "whoami",
]


@dataclass(frozen=True, slots=True)
class ApiError:
    """The body of every refusal: a stable code and a message naming what is wrong."""

    error: str
    detail: str


@dataclass(frozen=True, slots=True)
class Health:
    status: str
    ledger_entries: int


@dataclass(frozen=True, slots=True)
class LedgerItem:
    """One ledger entry as listed (as ``hub ledger --json``): metadata and its RFC 9162 leaf
    hash (hex), so an auditor can check it against a checkpoint. Never content."""

    index: int
    recorded_at: datetime
    type: str
    actor: str
    case_id: str | None
    message_id: str | None
    digest: str
    detail: str
    leaf_hash: str


@dataclass(frozen=True, slots=True)
class WhoAmI:
    """The scope of the token in use (the dashboard shows it)."""

    token_id: str
    role: str
    scope: str
    expires_at: datetime
    authority: str | None
    officer: str | None
    pair: tuple[str, str] | None


@dataclass(frozen=True, slots=True)
class DirectoryItem:
    """One admitted authority: its current card and where the ledger admitted it."""

    card: AuthorityCard
    admitted_at: datetime
    ledger_index: int
    card_digest: str


def whoami(principal: Principal) -> WhoAmI:
    return WhoAmI(
        token_id=principal.token_id,
        role=principal.role,
        scope=principal.describe(),
        expires_at=principal.expires_at,
        authority=principal.authority,
        officer=principal.officer,
        pair=principal.pair,
    )


def visible_cases(state: HubState, principal: Principal) -> list[CaseRecord]:
    """The cases ``principal`` may see, in ledger order of opening."""
    return [
        r
        for r in state.cases.by_id.values()
        if principal.sees_case(r.lifecycle.requesting, r.lifecycle.requested)
    ]


def _case(state: HubState, principal: Principal, case_id: str) -> CaseRecord:
    record = state.cases.by_id.get(case_id)
    visible = record is not None and principal.sees_case(
        record.lifecycle.requesting, record.lifecycle.requested
    )
    if record is not None and visible:
        return record
    if principal.sees_everything:
        raise NotFound(f"case: no case {case_id} in the ledger", field="case")
    # the same answer whether the case exists or not: no oracle on other pairs' cases
    raise Forbidden(f"case {case_id}: not available to {principal.describe()}")


def status_rows(
    state: HubState,
    principal: Principal,
    *,
    now: datetime,
    case: str | None = None,
    authority: str | None = None,
    overdue: bool = False,
) -> list[CaseStatus]:
    """Status rows in scope, optionally one case, one authority's cases, or overdue only."""
    records = [_case(state, principal, case)] if case else visible_cases(state, principal)
    if authority:
        if not principal.sees_authority(authority):
            raise Forbidden(f"authority {authority}: not available to {principal.describe()}")
        records = [
            r for r in records if authority in (r.lifecycle.requesting, r.lifecycle.requested)
        ]
    rows = [status_of(r, now) for r in records]
    return [r for r in rows if r.overdue] if overdue else rows


def status_csv(rows: Iterable[CaseStatus]) -> str:
    """The status table as CSV (one row per case; times in ISO 8601 UTC)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(
        ["case_id", "case_type", "kind", "state", "requesting", "requested", "holder",
         "holder_since", "opened", "age_days", "last_action", "last_action_at", "urgency",
         "deadline", "overdue", "handling_code", "use_limitation", "confidential",
         "legal_basis", "transfers"]
    )  # fmt: skip
    for r in rows:
        writer.writerow(
            [r.case_id, r.case_type, r.kind, r.state, r.requesting, r.requested, r.holder,
             r.holder_since.isoformat(), r.opened.isoformat(), r.age_days, r.last_action,
             r.last_action_at.isoformat(), r.urgency,
             r.deadline.isoformat() if r.deadline else "", r.overdue, r.handling_code,
             r.use_limitation, r.confidential, r.legal_basis or "", r.transfers]
        )  # fmt: skip
    return out.getvalue()


def trail(state: HubState, principal: Principal, case_id: str) -> list[TrailItem]:
    """Every ledger entry of one case in scope: index, type, actor, time, digest."""
    return list(_case(state, principal, case_id).trail)


def review(
    state: HubState,
    principal: Principal,
    first: str | None,
    second: str | None,
    *,
    since: datetime | None,
    until: datetime | None,
    now: datetime,
) -> Review:
    """The bilateral review of a pair in scope (a liaison officer's pair by default)."""
    if first is None and second is None and principal.pair is not None:
        first, second = principal.pair
    if not first or not second:
        raise ValidationError(
            "first, second: name the two authorities of the review", field="first"
        )
    principal.require_pair(first, second)
    return bilateral_review(
        state.cases.by_id.values(), first, second, since=since, until=until, now=now
    )


def stats(state: HubState, principal: Principal, by: Grouping, *, now: datetime) -> Statistics:
    """Statistics over the cases in scope (everything for operators and auditors)."""
    return statistics(visible_cases(state, principal), by, now=now)


def directory(state: HubState) -> list[DirectoryItem]:
    return [
        DirectoryItem(
            card=r.card,
            admitted_at=r.admitted_at,
            ledger_index=r.admitted.ledger_index,
            card_digest=r.admitted.card_digest.hex(),
        )
        for r in state.directory.authorities()
    ]


def review_svg(value: Review) -> str:
    """The review's state chart: requests by state, both directions."""
    first, second = value.directions
    states = sorted({*first.by_state, *second.by_state}) or ["submitted"]
    return bar_chart_svg(
        "Requests by state, both directions",
        [
            (f"{d.requesting} → {d.requested}", [d.by_state.get(s, 0) for s in states])
            for d in (first, second)
        ],
        states,
    )


def stats_svg(value: Statistics) -> str:
    """Statistics as bars: requests and their outcomes per group."""
    labels = [r.group for r in value.rows] or ["(none)"]
    rows = value.rows or ()

    def series(name: str, pick: str) -> tuple[str, list[int]]:
        return name, [int(getattr(r, pick)) for r in rows] or [0]

    return bar_chart_svg(
        f"Requests by {value.by}",
        [series("requests", "requests"), series("executed", "executed"),
         series("refused", "refused"), series("pending", "pending")],
        labels,
    )  # fmt: skip


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ")


def metrics_text(state: HubState, *, now: datetime, streams: int) -> str:
    """Prometheus text exposition (version 0.0.4) of what the projections hold."""
    by_state = Counter((r.lifecycle.case_type, r.state) for r in state.cases.by_id.values())
    overdue = sum(1 for r in state.cases.by_id.values() if status_of(r, now).overdue)
    lines = [
        "# HELP mla_hub_ledger_entries Entries in the ledger folded by this hub.",
        "# TYPE mla_hub_ledger_entries gauge",
        f"mla_hub_ledger_entries {state.next_index}",
        "# HELP mla_hub_authorities Authorities admitted to the directory.",
        "# TYPE mla_hub_authorities gauge",
        f"mla_hub_authorities {len(state.directory.authorities())}",
        "# HELP mla_hub_messages_recorded Envelopes recorded in the ledger.",
        "# TYPE mla_hub_messages_recorded gauge",
        f"mla_hub_messages_recorded {len(state.messages.messages)}",
        "# HELP mla_hub_receipts_recorded Signed receipts recorded in the ledger.",
        "# TYPE mla_hub_receipts_recorded gauge",
        f"mla_hub_receipts_recorded {len(state.messages.receipt_ids)}",
        "# HELP mla_hub_submissions_rejected Submissions refused and recorded as rejected.",
        "# TYPE mla_hub_submissions_rejected gauge",
        f"mla_hub_submissions_rejected {len(state.messages.rejections)}",
        "# HELP mla_hub_cases Cases by type and current state.",
        "# TYPE mla_hub_cases gauge",
        *(
            f'mla_hub_cases{{type="{_label(t)}",state="{_label(s)}"}} {n}'
            for (t, s), n in sorted(by_state.items())
        ),
        "# HELP mla_hub_cases_overdue Live cases past their signed deadline.",
        "# TYPE mla_hub_cases_overdue gauge",
        f"mla_hub_cases_overdue {overdue}",
        "# HELP mla_hub_event_streams Open server-sent event streams.",
        "# TYPE mla_hub_event_streams gauge",
        f"mla_hub_event_streams {streams}",
    ]
    return "\n".join(lines) + "\n"
