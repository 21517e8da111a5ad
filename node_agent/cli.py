"""``node-agent``: a central authority's command line (init, card, run, request, inbox)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from hub import ids, logs
from hub.clock import SystemClock
from hub.console import EXIT_REFUSED, print_json, run_command, table
from hub.crypto.keys import AuthorityKeys
from hub.errors import UnavailableError
from hub.gateway.connection import connect
from hub.keyfiles import read_private
from hub.runtime import install_stop_signals
from node_agent.agent import Agent, Attachment, Outgoing, SendResult
from node_agent.config import AgentPaths, AgentSettings, load_settings
from node_agent.directory import AgentDirectory
from node_agent.identity import card_file, init_agent
from node_agent.store import AgentStore
from node_agent.transport import HubLink
from schemas.codec import decode, encode_json
from schemas.common import AUTHORITY_ID_PATTERN, is_authority_id
from schemas.envelope import Body, CaseMeta

__all__ = ["main"]


def authority_id(value: str) -> str:
    """argparse type: an authority id, or a clear message naming the rule."""
    if not is_authority_id(value):
        raise argparse.ArgumentTypeError(
            f"{value!r} is not an authority id (expected {AUTHORITY_ID_PATTERN}, e.g. XA-MOJ)"
        )
    return value


def _csv(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


@dataclass
class Session:
    settings: AgentSettings
    agent: Agent
    store: AgentStore
    link: HubLink | None
    directory: AgentDirectory


@asynccontextmanager
async def session(args: argparse.Namespace, *, need_hub: bool) -> AsyncIterator[Session]:
    """Open the agent's folder and, if reachable (or required), the hub."""
    paths = AgentPaths(args.data)
    settings = load_settings(paths)
    keys = AuthorityKeys.from_bytes(read_private(paths.keys))
    store = AgentStore(paths.database)
    link: HubLink | None = None
    try:
        url = getattr(args, "hub", None) or settings.hub
        try:
            link = HubLink(await connect(url, name=f"node-agent-{settings.id}"), settings.id)
        except UnavailableError:
            if need_hub:
                raise
        operator = bytes.fromhex(settings.operator_key) if settings.operator_key else None
        agent = Agent(
            authority=settings.id,
            keys=keys,
            store=store,
            inbox_dir=paths.inbox,
            clock=SystemClock(),
        )
        yield Session(settings, agent, store, link, AgentDirectory(store, link, operator))
    finally:
        if link is not None:
            await link.close()
        store.close()


async def cmd_init(args: argparse.Namespace) -> int:
    settings = AgentSettings(
        id=args.id,
        state=args.state,
        name=args.name,
        kinds=args.kinds,
        languages=args.languages,
        hub=args.hub,
        suite=args.suite,
        operator_key=args.operator_key,
    )
    keys = init_agent(AgentPaths(args.data), settings, now=SystemClock().now())
    print(f"node agent {args.id} initialised in {args.data} (key id {keys.key_id})")
    return 0


async def cmd_card(args: argparse.Namespace) -> int:
    paths = AgentPaths(args.data)
    settings = load_settings(paths)
    keys = AuthorityKeys.from_bytes(read_private(paths.keys))
    made = card_file(settings, keys, now=SystemClock().now(), valid_days=args.valid_days)
    sys.stdout.write(encode_json(made).decode() + "\n")
    return 0


async def cmd_run(args: argparse.Namespace) -> int:
    stop = asyncio.Event()
    install_stop_signals(stop)
    async with session(args, need_hub=True) as s:
        assert s.link is not None
        print(f"node agent {s.settings.id} running; Ctrl-C to stop", flush=True)
        await s.agent.run(s.link, s.directory, stop)
    return 0


async def cmd_submit(args: argparse.Namespace) -> int:
    text = Path(args.body_file).read_text() if args.body_file else ""
    attachments = [Attachment(Path(f).name, Path(f).read_bytes()) for f in args.attach]
    meta = CaseMeta(
        kind=args.kind,
        nature=args.nature,
        legal_basis=args.legal_basis,
        urgency=args.urgency,
        deadline=args.deadline,
    )
    async with session(args, need_hub=False) as s:
        outgoing = Outgoing(
            to=args.to,
            type="request.submit",
            case_id=args.case or ids.uuid7(),
            text=text,
            attachments=attachments,
            meta=meta,
        )
        message_id = await s.agent.queue(outgoing, s.directory)
        result = await s.agent.submit(s.link, message_id, args.wait)
    _print_result(result, args.json)
    return EXIT_REFUSED if result.status == "rejected" else 0


def _print_result(result: SendResult, as_json: bool) -> None:
    if as_json:
        print_json(result)
        return
    explain = {
        "queued": "queued in the outbox: the hub is unreachable; `node-agent run` will send it",
        "submitted": "at the hub's intake; verdict pending (see `node-agent outbox`)",
        "accepted": f"recorded in the ledger at index {result.ledger_index}",
        "duplicate": f"already recorded at index {result.ledger_index}",
        "rejected": f"rejected by the hub ({result.reason}): {result.detail}",
    }
    print(f"case {result.case_id}, message {result.message_id}: {explain[result.status]}")


async def cmd_inbox(args: argparse.Namespace) -> int:
    paths = AgentPaths(args.data)
    load_settings(paths)
    store = AgentStore(paths.database)
    try:
        rows = store.inbox_all()
        items = []
        for row in rows:
            body = decode(row.body, Body, what="body")
            folder = Path(row.attachment_dir)
            files = sorted(folder.iterdir()) if folder.exists() else []
            items.append(
                {
                    "message_id": row.message_id,
                    "case_id": row.case_id,
                    "type": row.type,
                    "from": row.sender,
                    "sent_at": row.sent_at,
                    "ledger_index": row.ledger_index,
                    "recorded_at": row.recorded_at,
                    "verified": True,
                    "envelope_digest": row.envelope_digest.hex(),
                    "body": body.text,
                    "attachments": [
                        {
                            "name": meta.name,
                            "size": meta.size,
                            "sha256": meta.sha256.hex(),
                            "path": str(path),
                        }
                        for meta, path in zip(body.attachments, files, strict=False)
                    ],
                    "receipt_id": row.receipt_id,
                    "receipt_status": _status_of(store, row.receipt_id),
                }
            )
    finally:
        store.close()
    if args.json:
        print_json(items)
        return 0
    print(
        table(
            ("index", "from", "type", "case", "attachments", "receipt"),
            [
                (
                    i["ledger_index"],
                    i["from"],
                    i["type"],
                    i["case_id"],
                    len(i["attachments"]),  # type: ignore[arg-type]
                    i["receipt_status"],
                )
                for i in items
            ],
        )
    )
    return 0


def _status_of(store: AgentStore, message_id: str) -> str:
    row = store.outbox_get(message_id)
    return "none" if row is None else row.status


def _date(value: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"{value!r} is not an ISO 8601 date or time") from e
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="node-agent", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    def command(
        name: str, help: str, parent: argparse._SubParsersAction = sub
    ) -> argparse.ArgumentParser:  # type: ignore[type-arg]
        p = parent.add_parser(name, help=help)
        p.add_argument("--data", type=Path, required=True, help="agent data folder")
        p.add_argument("--log-level", default="warning")
        return p

    p = command("init", "create keys and settings for one authority")
    p.add_argument("--id", type=authority_id, required=True)
    p.add_argument("--state", required=True, help="ISO 3166-1 alpha-2 code")
    p.add_argument("--name", required=True)
    p.add_argument("--kinds", type=_csv, default=["mla"])
    p.add_argument("--languages", type=_csv, default=["en"])
    p.add_argument("--hub", default="nats://127.0.0.1:4222")
    p.add_argument("--suite", choices=["mlkem768x25519", "x25519"], default="mlkem768x25519")
    p.add_argument("--operator-key", help="hub operator's public key (hex), pinned")
    p.add_argument("--valid-days", type=int, default=365)
    p.set_defaults(run=cmd_init)

    p = command("card", "print this authority's self-signed card (JSON)")
    p.add_argument("--valid-days", type=int, default=365)
    p.set_defaults(run=cmd_card)

    p = command("run", "receive, decrypt, verify, send receipts and queued messages")
    p.add_argument("--hub", help="NATS URL of the hub (default: saved by init)")
    p.set_defaults(run=cmd_run, log_level="info")

    request = sub.add_parser("request", help="formal requests").add_subparsers(
        dest="action", required=True
    )
    p = command("submit", "seal and send a formal request", request)
    p.add_argument("--to", type=authority_id, required=True)
    p.add_argument(
        "--kind",
        choices=["mla", "extradition", "transfer-of-sentenced-persons", "confiscation"],
        default="mla",
    )
    p.add_argument("--legal-basis", required=True)
    p.add_argument("--nature", type=_csv, default=[])
    p.add_argument("--urgency", choices=["normal", "urgent"], default="normal")
    p.add_argument("--deadline", type=_date)
    p.add_argument("--body-file")
    p.add_argument("--attach", action="append", default=[])
    p.add_argument("--case", help="case id (default: a new case)")
    p.add_argument("--hub")
    p.add_argument("--wait", type=float, default=10.0, help="seconds to wait for the verdict")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=cmd_submit)

    p = command("inbox", "what this authority received, decrypted and verified")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=cmd_inbox)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logs.configure(args.log_level)
    with contextlib.suppress(BrokenPipeError):
        return run_command(lambda: args.run(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
