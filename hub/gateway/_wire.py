"""Query parameters in, event-stream frames and ledger summaries out: the read API's small
wire helpers (DESIGN.md 7). Pure; bad input raises ``ValidationError`` naming the parameter."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

import msgspec

from hub.errors import ValidationError
from hub.gateway.access import Principal
from hub.gateway.feed import Change
from hub.gateway.views import LedgerItem
from hub.ledger.describe import EntrySummary, describe
from hub.ledger.merkle import leaf_hash
from hub.ledger.projections.cases import status_of
from hub.ledger.projections.state import HubState
from schemas.codec import decode
from schemas.common import is_authority_id
from schemas.ledger import LedgerEntry

__all__ = ["authority", "choice", "date", "flag", "integer", "ledger_item", "scoped_events", "sse"]


def authority(query: Mapping[str, str], name: str) -> str | None:
    """An optional authority id."""
    value = query.get(name) or None
    if value is not None and not is_authority_id(value):
        raise ValidationError(f"{name}: {value!r} is not an authority id (e.g. XA-MOJ)", field=name)
    return value


def date(query: Mapping[str, str], name: str) -> datetime | None:
    """An optional ISO 8601 date or time (UTC when it names no zone)."""
    value = query.get(name)
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as e:
        raise ValidationError(f"{name}: {value!r} is not an ISO 8601 date", field=name) from e
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def choice(query: Mapping[str, str], name: str, choices: tuple[str, ...]) -> str:
    """One of ``choices``; the first when absent."""
    value = query.get(name) or choices[0]
    if value not in choices:
        raise ValidationError(f"{name}: expected one of {', '.join(choices)}", field=name)
    return value


def integer(query: Mapping[str, str], name: str, default: int, low: int, high: int | None) -> int:
    """An integer in ``[low, high]``; ``default`` when absent."""
    raw = query.get(name)
    try:
        value = default if raw is None or raw == "" else int(raw)
    except ValueError as e:
        raise ValidationError(f"{name}: {raw!r} is not an integer", field=name) from e
    if value < low or (high is not None and value > high):
        raise ValidationError(f"{name}: must be between {low} and {high or 'any'}", field=name)
    return value


def flag(query: Mapping[str, str], name: str) -> bool:
    return query.get(name, "").lower() in ("1", "true", "yes", "on")


def sse(event: str, data: object, index: int | None = None) -> bytes:
    """One server-sent event frame; ``id`` is the ledger index that caused it."""
    head = f"event: {event}\n" + (f"id: {index}\n" if index is not None else "")
    return head.encode() + b"data: " + msgspec.json.encode(data) + b"\n\n"


def scoped_events(
    change: Change, principal: Principal, state: HubState, now: datetime
) -> list[bytes]:
    """What ``principal`` may learn of one folded entry: its case's new status row (in scope),
    a directory change (everyone), the entry's metadata (operators and auditors)."""
    out = []
    record = state.cases.by_id.get(change.case_id or "")
    if record is not None and principal.sees_case(
        record.lifecycle.requesting, record.lifecycle.requested
    ):
        out.append(sse("status", status_of(record, now), change.index))
    if change.type.startswith("authority."):
        out.append(sse("directory", {"index": change.index, "type": change.type}, change.index))
    if principal.sees_everything:
        out.append(sse("entry", change, change.index))
    return out


def ledger_item(index: int, data: bytes) -> LedgerItem:
    """The listing of one stored entry: ``describe`` (or a bare line for an event type the
    describer does not know yet) and the leaf hash of the exact bytes stored."""
    entry = decode(data, LedgerEntry, what=f"ledger entry {index}")
    try:
        s = describe(entry)
    except Exception:
        name = type(entry.event).__name__
        s = EntrySummary(entry.index, entry.recorded_at, name, "", None, None, "", name)
    return LedgerItem(
        s.index, s.recorded_at, s.type, s.actor, s.case_id, s.message_id, s.digest, s.detail,
        leaf_hash(data).hex(),
    )  # fmt: skip
