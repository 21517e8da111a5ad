"""``hub status``, ``hub audit trail``, ``hub review``, ``hub stats``: projections, rebuilt.

Each command folds the ledger from entry 0 (projections are pure folds, so the result is what
the hub itself holds), then renders a table, JSON, CSV or a printable HTML page.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from hub.cli_transparency import register_audit
from hub.clock import SystemClock
from hub.console import print_json, table
from hub.errors import ValidationError
from hub.gateway.connection import close as close_connection
from hub.gateway.connection import connect
from hub.ledger.folding import collector_paused
from hub.ledger.projections.cases import CaseStatus, status_of
from hub.ledger.projections.review import bilateral_review
from hub.ledger.projections.state import HubState
from hub.ledger.projections.stats import GROUPINGS, statistics
from hub.ledger.store import Ledger
from hub.progress import Progress
from hub.reports import review_csv, review_html, stats_csv
from hub.settings import HubPaths, load_settings, nats_url_for
from hub.transport_security import hub_credentials
from schemas.codec import decode
from schemas.common import is_authority_id
from schemas.ledger import LedgerEntry

__all__ = ["load_state", "register"]

AddCommand = Callable[..., argparse.ArgumentParser]


async def load_state(args: argparse.Namespace) -> HubState:
    """Fold the whole ledger into a fresh :class:`HubState` (with progress for long ledgers)."""
    paths = HubPaths(args.data)
    settings = load_settings(paths)
    nc = await connect(
        nats_url_for(paths, settings, getattr(args, "nats", None)),
        name="hub-read",
        credentials=hub_credentials(paths),
    )
    state = HubState()
    try:
        ledger = Ledger(nc.jetstream())
        progress = Progress("reading ledger", await ledger.size())
        with collector_paused():
            async for index, data in ledger.read():
                state.apply(decode(data, LedgerEntry, what=f"ledger entry {index}"))
                progress.update(index + 1)
        progress.finish()
    finally:
        await close_connection(nc)
    return state


def _date(value: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"{value!r} is not an ISO 8601 date") from e
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _authority(value: str) -> str:
    if not is_authority_id(value):
        raise argparse.ArgumentTypeError(f"{value!r} is not an authority id (e.g. XA-MOJ)")
    return value


def _when(value: datetime | None) -> str:
    return "-" if value is None else value.strftime("%Y-%m-%d %H:%M")


async def cmd_status(args: argparse.Namespace) -> int:
    state = await load_state(args)
    now = SystemClock().now()
    if args.case and args.case not in state.cases.by_id:
        raise ValidationError(f"--case: no case {args.case} in the ledger", field="case")
    parties = {args.authority} if args.authority else None
    rows: list[CaseStatus] = [
        status_of(record, now)
        for record in state.cases.by_id.values()
        if (not args.case or record.case_id == args.case)
        and (parties is None or parties & {record.lifecycle.requesting, record.lifecycle.requested})
    ]
    if args.overdue:
        rows = [r for r in rows if r.overdue]
    if args.json:
        print_json(rows[0] if args.case else rows)
        return 0
    print(
        table(
            ("case", "kind", "from -> to", "state", "holder (since)", "deadline", "handling"),
            [
                (
                    r.case_id,
                    r.kind,
                    f"{r.requesting} -> {r.requested}",
                    r.state,
                    f"{r.holder} ({_when(r.holder_since)})",
                    _when(r.deadline) + (" OVERDUE" if r.overdue else ""),
                    r.handling_code,
                )
                for r in rows
            ],
        )
    )
    return 0


async def cmd_trail(args: argparse.Namespace) -> int:
    state = await load_state(args)
    record = state.cases.by_id.get(args.case)
    if record is None:
        raise ValidationError(f"--case: no case {args.case} in the ledger", field="case")
    if args.json:
        print_json(record.trail)
        return 0
    print(
        table(
            ("index", "recorded (UTC)", "type", "actor", "digest"),
            [(t.index, _when(t.at), t.type, t.actor, t.digest[:16] + "...") for t in record.trail],
        )
    )
    return 0


def _write(text: str, out: Path | None) -> None:
    if out is None:
        sys.stdout.write(text)
    else:
        out.write_text(text)
        print(f"wrote {out}", file=sys.stderr)


async def cmd_review(args: argparse.Namespace) -> int:
    state = await load_state(args)
    review = bilateral_review(
        state.cases.by_id.values(),
        args.first,
        args.second,
        since=args.since,
        until=args.until,
        now=SystemClock().now(),
    )
    if args.format == "json":
        print_json(review)
    elif args.format == "csv":
        _write(review_csv(review), args.out)
    else:
        _write(review_html(review), args.out)
    return 0


async def cmd_stats(args: argparse.Namespace) -> int:
    state = await load_state(args)
    stats = statistics(state.cases.by_id.values(), args.by, now=SystemClock().now())
    if args.format == "json":
        print_json(stats)
    else:
        _write(stats_csv(stats), args.out)
    return 0


def register(sub: argparse._SubParsersAction, command: AddCommand) -> None:  # type: ignore[type-arg]
    """Add the projection commands to the ``hub`` parser."""

    def reader(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument("--nats", help="NATS URL (default: the running hub's)")
        return p

    p = reader(command("status", "where cases stand: state, holder, deadline, overdue"))
    p.add_argument("--case")
    p.add_argument("--authority", type=_authority)
    p.add_argument("--overdue", action="store_true", help="only cases past their deadline")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=cmd_status)

    audit = sub.add_parser("audit", help="audit trail, export and replay").add_subparsers(
        dest="action", required=True
    )
    register_audit(audit, command)
    p = reader(command("trail", "every ledger entry of one case", audit))
    p.add_argument("--case", required=True)
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=cmd_trail)

    p = reader(command("review", "bilateral case review of two authorities (rec. 11)"))
    p.add_argument("first", type=_authority)
    p.add_argument("second", type=_authority)
    p.add_argument("--since", type=_date)
    p.add_argument("--until", type=_date)
    p.add_argument("--format", choices=["json", "csv", "html"], default="html")
    p.add_argument("--out", type=Path, help="write to this file instead of stdout")
    p.set_defaults(run=cmd_review)

    p = reader(command("stats", "statistics by kind, nature, legal basis, outcome (rec. 6)"))
    p.add_argument("--by", choices=GROUPINGS, default="kind")
    p.add_argument("--format", choices=["json", "csv"], default="json")
    p.add_argument("--out", type=Path)
    p.set_defaults(run=cmd_stats)
