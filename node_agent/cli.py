"""``node-agent``: a central authority's command line (init, card, rotate, directory, run, inbox;
cases: cli_cases)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from pathlib import Path

from hub import logs
from hub.clock import SystemClock
from hub.console import print_json, run_command, table
from hub.crypto.keys import AuthorityKeys
from hub.directory_view import directory_view, render
from hub.errors import UnavailableError, ValidationError
from hub.keyfiles import read_private
from hub.runtime import install_stop_signals
from node_agent.cli_cases import register as register_case_commands
from node_agent.cli_consent import register as register_consent_commands
from node_agent.cli_officer import register as register_officer_commands
from node_agent.cli_transparency import register as register_transparency_commands
from node_agent.config import AgentPaths, AgentSettings, load_settings
from node_agent.identity import card_file, init_agent, nats_public, parse_contact, rotate_keys
from node_agent.session import authority_id, csv_list, session
from node_agent.store import AgentStore
from schemas.codec import decode, decode_json, encode_json
from schemas.directory import ContactPoint, KindRequirements
from schemas.envelope import Body

__all__ = ["main"]


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
        log_key=args.log_key,
        requirements=(
            decode_json(
                Path(args.requirements).read_bytes(), list[KindRequirements], what="--requirements"
            )
            if args.requirements
            else []
        ),
        contacts=_contacts(args),
    )
    hub_ca = Path(args.hub_ca).read_bytes() if args.hub_ca else None
    keys = init_agent(AgentPaths(args.data), settings, now=SystemClock().now(), hub_ca=hub_ca)
    print(f"node agent {args.id} initialised in {args.data} (key id {keys.key_id})")
    return 0


def _contacts(args: argparse.Namespace) -> list[ContactPoint]:
    contacts = [parse_contact(text) for text in args.contact or []]
    if args.contacts_file:
        contacts += decode_json(
            Path(args.contacts_file).read_bytes(), list[ContactPoint], what="--contacts-file"
        )
    return contacts


async def cmd_card(args: argparse.Namespace) -> int:
    paths = AgentPaths(args.data)
    settings = load_settings(paths)
    keys = AuthorityKeys.from_bytes(read_private(paths.keys))
    made = card_file(
        settings,
        keys,
        now=SystemClock().now(),
        valid_days=args.valid_days,
        nats_public=nats_public(paths, settings.id),
    )
    sys.stdout.write(encode_json(made).decode() + "\n")
    return 0


async def cmd_rotate(args: argparse.Namespace) -> int:
    paths = AgentPaths(args.data)
    settings = load_settings(paths)
    old = AuthorityKeys.from_bytes(read_private(paths.keys)).key_id
    keys, made = rotate_keys(paths, settings, now=SystemClock().now(), valid_days=args.valid_days)
    sys.stdout.write(encode_json(made).decode() + "\n")
    sys.stderr.write(
        f"{settings.id}: new key {keys.key_id} (the old key {old} is kept in "
        f"{paths.previous_keys}); have the operator admit this card: `hub admit`\n"
    )
    return 0


async def cmd_directory(args: argparse.Namespace) -> int:
    async with session(args, need_hub=False) as s:
        if s.settings.operator_key is None:
            raise ValidationError(
                "--operator-key was not pinned at `node-agent init`: the directory snapshot "
                "cannot be verified",
                field="operator_key",
            )
        snapshot = await s.directory.snapshot(refresh=True)
        source = "verified, from the hub" if s.link is not None else "verified, cached"
    if snapshot is None:
        raise UnavailableError(
            "directory: the hub serves no snapshot (is `hub up` running?) and none is cached"
        )
    view = directory_view(snapshot, now=SystemClock().now(), source=source)
    if args.json:
        print_json(view)
    else:
        print(render(view))
    return 0


async def cmd_run(args: argparse.Namespace) -> int:
    stop = asyncio.Event()
    install_stop_signals(stop)
    async with session(args, need_hub=True) as s:
        assert s.link is not None
        print(f"node agent {s.settings.id} running; Ctrl-C to stop", flush=True)
        await s.agent.run(s.link, s.directory, stop)
    return 0


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


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="node-agent", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    def command(
        name: str,
        help: str,
        parent: argparse._SubParsersAction[argparse.ArgumentParser] = sub,
    ) -> argparse.ArgumentParser:
        p: argparse.ArgumentParser = parent.add_parser(name, help=help)
        p.add_argument("--data", type=Path, required=True, help="agent data folder")
        p.add_argument("--log-level", default="warning")
        return p

    p = command("init", "create keys and settings for one authority")
    p.add_argument("--id", type=authority_id, required=True)
    p.add_argument("--state", required=True, help="ISO 3166-1 alpha-2 code")
    p.add_argument("--name", required=True)
    p.add_argument("--kinds", type=csv_list, default=["mla"])
    p.add_argument("--languages", type=csv_list, default=["en"])
    p.add_argument("--hub", default="nats://127.0.0.1:4222")
    p.add_argument("--suite", choices=["mlkem768x25519", "x25519"], default="mlkem768x25519")
    p.add_argument("--operator-key", help="hub operator's public key (hex), pinned")
    p.add_argument("--hub-ca", help="the hub's NATS CA certificate (PEM), pinned: TLS + nkey")
    p.add_argument("--log-key", help="the hub's checkpoint verifier key (`hub checkpoint --vkey`)")
    p.add_argument("--valid-days", type=int, default=365)
    p.add_argument(
        "--requirements",
        help="JSON list of {kind, languages, attachments_required, fields_required} to publish",
    )
    p.add_argument(
        "--contact",
        action="append",
        help="contact point NAME|email|phone|24/7 (repeatable; only NAME is required; "
        "24/7 marks the contact for urgent requests, else office-hours)",
    )
    p.add_argument(
        "--contacts-file", help="JSON list of {name, email, phone, available_24_7} to publish"
    )
    p.set_defaults(run=cmd_init)

    p = command("card", "print this authority's self-signed card (JSON)")
    p.add_argument("--valid-days", type=int, default=365)
    p.set_defaults(run=cmd_card)

    p = command("rotate", "new keys, and their card signed by the old key (JSON, for hub admit)")
    p.add_argument("--valid-days", type=int, default=365)
    p.set_defaults(run=cmd_rotate)

    p = command("directory", "the operator-signed directory: fetch, verify, cache, show")
    p.add_argument("--hub", help="NATS URL of the hub (default: saved by init)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=cmd_directory)

    p = command("run", "receive, decrypt, verify, send receipts and queued messages")
    p.add_argument("--hub", help="NATS URL of the hub (default: saved by init)")
    p.set_defaults(run=cmd_run, log_level="info")

    register_case_commands(sub, command)
    register_consent_commands(sub, command)
    register_officer_commands(sub, command)
    register_transparency_commands(sub, command)

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
