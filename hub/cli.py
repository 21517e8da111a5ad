"""``hub``: the operator's command line (init, up, admit, ledger, demo)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

import msgspec

from hub import logs
from hub.cli_access import register as register_access
from hub.cli_accreditation import register as register_accreditation
from hub.cli_directory import register as register_directory
from hub.cli_reports import register as register_reports
from hub.cli_transparency import register as register_transparency
from hub.clock import SystemClock
from hub.console import EXIT_REFUSED, print_json, run_command, table
from hub.gateway.connection import close as close_connection
from hub.gateway.connection import connect
from hub.ledger.describe import describe
from hub.ledger.merkle import leaf_hash
from hub.ledger.store import Ledger
from hub.operator import admission_request, init_hub, submit_as_operator
from hub.progress import Progress
from hub.runtime import install_stop_signals, operator_key, running_hub
from hub.settings import HubPaths, HubSettings, load_settings, nats_url_for
from hub.transport_security import hub_credentials
from schemas.codec import decode, decode_json
from schemas.directory import CardFile
from schemas.ledger import LedgerEntry

__all__ = ["main"]


async def cmd_init(args: argparse.Namespace) -> int:
    paths = HubPaths(args.data)
    key = init_hub(paths, HubSettings(origin=args.origin), now=SystemClock().now())
    if args.json:
        print_json(
            {"data": str(args.data), "operator_key": key.public.hex(), "hub_ca": str(paths.hub_ca)}
        )
    else:
        print(f"hub initialised in {args.data}")
        print(f"operator public key (give it to node agents: --operator-key): {key.public.hex()}")
        print(f"NATS CA certificate (give it to node agents: --hub-ca): {paths.hub_ca}")
    return 0


async def cmd_up(args: argparse.Namespace) -> int:
    paths = HubPaths(args.data)
    settings = load_settings(paths)
    stop = asyncio.Event()
    install_stop_signals(stop)
    async with running_hub(
        paths, settings, nats_url=args.nats, nats_port=args.nats_port, http_port=args.http_port
    ) as hub:
        print(
            f"hub up: NATS at {hub.nats_url}, ledger holds {hub.service.state.next_index} entries"
        )
        if hub.http_url:
            print(f"read API and dashboard at {hub.http_url}/ (tokens: `hub token issue`)")
        print("press Ctrl-C to stop", flush=True)
        await hub.service.run(stop)
    print("hub stopped")
    return 0


async def cmd_admit(args: argparse.Namespace) -> int:
    paths = HubPaths(args.data)
    settings = load_settings(paths)
    made = decode_json(Path(args.card).read_bytes(), CardFile, what=str(args.card))
    request = admission_request(made, operator_key(paths), now=SystemClock().now())
    verdict = await submit_as_operator(paths, settings, request, nats_url=args.nats, wait=args.wait)
    authority = made.readable.id
    if args.json:
        print_json({"authority": authority, **msgspec.to_builtins(verdict)})
    elif verdict.status == "rejected":
        print(f"{authority}: rejected ({verdict.reason}): {verdict.detail}")
    else:
        print(f"{authority}: admitted ({verdict.status}) at ledger index {verdict.ledger_index}")
    return EXIT_REFUSED if verdict.status == "rejected" else 0


async def cmd_ledger(args: argparse.Namespace) -> int:
    paths = HubPaths(args.data)
    settings = load_settings(paths)
    nc = await connect(
        nats_url_for(paths, settings, args.nats),
        name="mla-hub-ledger",
        credentials=hub_credentials(paths),
    )
    try:
        ledger = Ledger(nc.jetstream())
        progress = Progress("reading ledger", await ledger.size())
        summaries, leaves = [], []
        async for index, data in ledger.read():
            summaries.append(describe(decode(data, LedgerEntry, what=f"ledger entry {index}")))
            leaves.append(leaf_hash(data).hex())
            progress.update(index + 1)
        progress.finish()
    finally:
        await close_connection(nc)
    if args.json:
        print_json(
            [
                {**msgspec.to_builtins(s), "leaf_hash": leaf}
                for s, leaf in zip(summaries, leaves, strict=True)
            ]
        )
        return 0
    rows = [
        (s.index, s.recorded_at.strftime("%Y-%m-%d %H:%M:%S"), s.type, s.actor, s.case_id or "-")
        for s in summaries
    ]
    print(table(("index", "recorded (UTC)", "type", "actor", "case"), rows))
    return 0


async def cmd_demo(args: argparse.Namespace) -> int:
    from hub.demo import run_demo

    try:
        return await run_demo(args.data)
    except asyncio.CancelledError:
        print("\ninterrupted: every process the demo started has been stopped")
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hub", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    def command(
        name: str,
        help: str,
        parent: argparse._SubParsersAction | None = None,  # type: ignore[type-arg]
        *,
        data_required: bool = True,
    ) -> argparse.ArgumentParser:
        p = (parent or sub).add_parser(name, help=help)
        p.add_argument("--data", type=Path, required=data_required, help="hub data folder")
        p.add_argument("--log-level", default="warning")
        return p

    p = command("init", "create operator keys and configuration")
    p.add_argument("--origin", default="mla-hub.example", help="name of this hub")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=cmd_init)

    p = command("up", "run the hub in the foreground")
    p.add_argument("--nats", help="external NATS URL (default: start the embedded server)")
    p.add_argument("--nats-port", type=int, help="port of the embedded server (default 4222)")
    p.add_argument("--http-port", type=int, help="serve the read API and dashboard on loopback")
    p.set_defaults(run=cmd_up, log_level="info")

    p = command("admit", "admit an authority card into the directory")
    p.add_argument("card", help="card file made by `node-agent card`")
    p.add_argument("--nats", help="NATS URL (default: the running hub's)")
    p.add_argument("--wait", type=float, default=10.0, help="seconds to wait for the verdict")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=cmd_admit)

    p = command("ledger", "list ledger entries")
    p.add_argument("--nats", help="NATS URL (default: the running hub's)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=cmd_ledger)

    p = command("demo", "run the whole flow on an embedded NATS", data_required=False)
    p.set_defaults(run=cmd_demo, log_level="warning")
    register_reports(sub, command)
    register_directory(sub, command)
    register_transparency(sub, command)
    register_access(sub, command)
    register_accreditation(sub, command)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logs.configure(args.log_level)
    return run_command(lambda: args.run(args))


if __name__ == "__main__":
    sys.exit(main())
