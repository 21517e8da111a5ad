"""``hub revoke`` and ``hub directory``: the operator's side of the key lifecycle (DESIGN.md 4).

Admission and rotation both go through ``hub admit`` (a rotated card carries the signature of
the key it replaces); a revocation is the operator's signed command, recorded in the ledger
like an admission. ``hub directory`` folds the ledger from entry 0 and shows the directory
projection: current cards, every key with its validity and status, revocations.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

import msgspec

from hub.cli_reports import load_state
from hub.clock import SystemClock
from hub.console import EXIT_REFUSED, print_json
from hub.directory_view import directory_view, render
from hub.operator import revocation_request, submit_as_operator
from hub.runtime import operator_key
from hub.settings import HubPaths, load_settings
from schemas.common import is_authority_id

__all__ = ["register"]

AddCommand = Callable[..., argparse.ArgumentParser]


def _authority(value: str) -> str:
    if not is_authority_id(value):
        raise argparse.ArgumentTypeError(f"{value!r} is not an authority id (e.g. XA-MOJ)")
    return value


def _reason(value: str) -> str:
    text = value.strip()
    if not 1 <= len(text) <= 500:
        raise argparse.ArgumentTypeError("--reason: 1 to 500 characters")
    return text


async def cmd_revoke(args: argparse.Namespace) -> int:
    paths = HubPaths(args.data)
    settings = load_settings(paths)
    request = revocation_request(args.authority, args.reason, operator_key(paths))
    verdict = await submit_as_operator(paths, settings, request, nats_url=args.nats, wait=args.wait)
    if args.json:
        print_json({"authority": args.authority, **msgspec.to_builtins(verdict)})
    elif verdict.status == "rejected":
        print(f"{args.authority}: rejected ({verdict.reason}): {verdict.detail}")
    else:
        index = verdict.ledger_index
        print(f"{args.authority}: revoked ({verdict.status}) at ledger index {index}")
    return EXIT_REFUSED if verdict.status == "rejected" else 0


async def cmd_directory(args: argparse.Namespace) -> int:
    state = await load_state(args)
    view = directory_view(state.directory.snapshot(), now=SystemClock().now(), source="ledger")
    if args.json:
        print_json(view)
    else:
        print(render(view))
    return 0


def register(sub: argparse._SubParsersAction, command: AddCommand) -> None:  # type: ignore[type-arg]
    """Add ``revoke`` and ``directory`` to the ``hub`` parser."""
    p = command("revoke", "revoke an authority: it may no longer submit or be addressed")
    p.add_argument("authority", type=_authority)
    p.add_argument("--reason", type=_reason, required=True, help="recorded in the ledger")
    p.add_argument("--nats", help="NATS URL (default: the running hub's)")
    p.add_argument("--wait", type=float, default=10.0, help="seconds to wait for the verdict")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=cmd_revoke)

    p = command("directory", "current cards, key history and revocations, from the ledger")
    p.add_argument("--nats", help="NATS URL (default: the running hub's)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=cmd_directory)
