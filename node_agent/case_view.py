"""``node-agent case show|list``: what this authority knows of its cases, decrypted.

Status comes from the same projection code the hub runs, folded over this agent's own copy of
the thread; handling conditions (use limitation, confidentiality, handling code) are shown with
every case, as the requesting authority signed them.
"""

from __future__ import annotations

import argparse
from datetime import datetime

from hub.clock import SystemClock
from hub.console import print_json, table
from hub.errors import ValidationError
from hub.ledger.lifecycle import allowed_types
from hub.ledger.projections.cases import CaseStatus, status_of
from node_agent.cases import local_case, thread
from node_agent.config import AgentPaths, load_settings
from node_agent.store import AgentStore

__all__ = ["cmd_list", "cmd_show", "handling_line"]


def handling_line(status: CaseStatus) -> str:
    """The handling conditions in one line, for every place a case is shown."""
    parts = [f"handling {status.handling_code}"]
    if status.use_limitation:
        parts.append("use limited to the stated proceedings (UNTOC art. 18(19))")
    if status.confidential:
        parts.append("confidential (art. 18(20))")
    return "; ".join(parts)


def _when(value: datetime | None) -> str:
    return "-" if value is None else value.strftime("%Y-%m-%d %H:%M")


async def cmd_show(args: argparse.Namespace) -> int:
    paths = AgentPaths(args.data)
    settings = load_settings(paths)
    store = AgentStore(paths.database)
    try:
        record = local_case(store, args.case)
        if record is None:
            raise ValidationError(
                f"--case: {args.case} is not a case this agent has sent or received", field="case"
            )
        status = status_of(record, SystemClock().now())
        messages = thread(store, args.case)
        next_allowed = allowed_types(record.lifecycle, settings.id)
    finally:
        store.close()
    if args.json:
        print_json(
            {
                "status": status,
                "handling": handling_line(status),
                "unmet_requirements": list(record.unmet_requirements),
                "transfers": record.transfers,
                "you_may_now": list(next_allowed),
                "thread": [
                    {
                        "direction": m.direction,
                        "type": m.header.type,
                        "message_id": m.header.message_id,
                        "from": m.header.sender,
                        "to": m.header.recipients,
                        "ledger_index": m.ledger_index,
                        "at": m.at,
                        "status": m.status,
                        "reason": m.reason,
                        "action": m.header.action,
                        "text": m.text,
                    }
                    for m in messages
                ],
            }
        )
        return 0
    print(f"case {status.case_id}  ({status.case_type}, {status.kind})")
    print(f"  {status.requesting} -> {status.requested}; state {status.state}")
    print(f"  held by {status.holder} since {_when(status.holder_since)}")
    deadline = _when(status.deadline) + ("  OVERDUE" if status.overdue else "")
    print(f"  deadline {deadline}; {handling_line(status)}")
    print(f"  you may now send: {', '.join(next_allowed) or 'nothing (case finished)'}")
    print(
        table(
            ("index", "at", "from", "type", "status"),
            [
                (
                    m.ledger_index if m.ledger_index is not None else "-",
                    _when(m.at),
                    m.header.sender,
                    m.header.type,
                    m.status,
                )
                for m in messages
            ],
        )
    )
    for m in messages:
        if m.text:
            print(f"\n--- {m.header.type} from {m.header.sender} ---\n{m.text.rstrip()}")
    return 0


async def cmd_list(args: argparse.Namespace) -> int:
    paths = AgentPaths(args.data)
    load_settings(paths)
    store = AgentStore(paths.database)
    now = SystemClock().now()
    try:
        rows = [
            status_of(record, now)
            for case_id in store.case_ids()
            if (record := local_case(store, case_id)) is not None
        ]
    finally:
        store.close()
    if args.json:
        print_json(rows)
        return 0
    print(
        table(
            ("case", "type", "with", "state", "holder", "deadline", "overdue"),
            [
                (
                    r.case_id,
                    r.kind,
                    f"{r.requesting}->{r.requested}",
                    r.state,
                    r.holder,
                    _when(r.deadline),
                    "yes" if r.overdue else "",
                )
                for r in rows
            ],
        )
    )
    return 0
