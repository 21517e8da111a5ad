"""``node-agent status`` (witness alarms included) and ``node-agent disclose``."""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from hub.clock import SystemClock
from hub.console import EXIT_REFUSED, print_json, table
from node_agent.config import AgentPaths, load_settings
from node_agent.disclosure import ContentKeys, make_disclosure
from node_agent.store import AgentStore
from node_agent.witness import WitnessStore
from schemas.codec import encode_json

__all__ = ["register"]

AddCommand = Callable[..., argparse.ArgumentParser]


async def cmd_status(args: argparse.Namespace) -> int:
    paths = AgentPaths(args.data)
    settings = load_settings(paths)
    store, witness = AgentStore(paths.database), WitnessStore(paths.database)
    try:
        outbox = Counter(row.status for row in store.outbox_all())
        received = len(store.inbox_all())
        latest = witness.latest()
        alarms = witness.alarms()
    finally:
        witness.close()
        store.close()
    log_key = settings.log_key or (
        paths.learned_log_key.read_text().strip() if paths.learned_log_key.exists() else None
    )
    status = {
        "authority": settings.id,
        "hub": settings.hub,
        "operator_key_pinned": settings.operator_key is not None,
        "log_key": log_key,
        "log_key_pinned": settings.log_key is not None,
        "outbox": dict(sorted(outbox.items())),
        "received": received,
        "checkpoint": None if latest is None else {"size": latest[0], "root": latest[1].hex()},
        "alarms": alarms,
    }
    if args.json:
        print_json(status)
    else:
        print(f"{settings.id} -> {settings.hub}")
        print(f"  outbox: {dict(sorted(outbox.items())) or 'empty'}; received: {received}")
        seen = "none yet" if latest is None else f"size {latest[0]}, root {latest[1].hex()[:16]}..."
        print(f"  newest checkpoint verified and cosigned: {seen}")
        if alarms:
            print(f"\n  TRANSPARENCY ALARMS ({len(alarms)}): the hub showed an inconsistent log")
            print(table(("at", "kind", "detail"), [(a.at, a.kind, a.detail) for a in alarms]))
        else:
            print("  no transparency alarm")
    return EXIT_REFUSED if alarms else 0


async def cmd_disclose(args: argparse.Namespace) -> int:
    paths = AgentPaths(args.data)
    settings = load_settings(paths)
    store, keys = AgentStore(paths.database), ContentKeys(paths.database)
    try:
        sent = store.outbox_get(args.message)
        disclosure = make_disclosure(
            keys,
            args.message,
            ledger_index=None if sent is None else sent.ledger_index,
            disclosed_by=settings.id,
            now=SystemClock().now(),
        )
    finally:
        keys.close()
        store.close()
    Path(args.out).write_bytes(encode_json(disclosure) + b"\n")
    print(
        f"wrote {args.out}: message {disclosure.message_id} (ledger index "
        f"{disclosure.ledger_index}) with its content key; it opens this message only",
        file=sys.stderr,
    )
    return 0


def register(sub: argparse._SubParsersAction, command: AddCommand) -> None:  # type: ignore[type-arg]
    p = command("status", "outbox, inbox, the newest verified checkpoint, transparency alarms")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=cmd_status)
    p = command("disclose", "export one message and its content key for a third party")
    p.add_argument("--message", required=True)
    p.add_argument("--out", required=True)
    p.set_defaults(run=cmd_disclose)
