"""``node-agent officer``: a liaison officer's keys and reading the copies sealed to them.

::

    node-agent officer init --data O --officer XA-LO-7 --operator-key HEX > officer-keys.json
    node-agent liaison consent --data A --officer XA-LO-7 --host XB-MOJ \\
        --officer-keys officer-keys.json > consent.json          # the home authority
    hub liaison accredit ... --consent consent.json               # the operator: prints a token
    MLA_HUB_TOKEN=... node-agent officer read --data O --api URL --case CASE [--out DIR]

The token is read from an environment variable, never from the command line (process lists
and shell histories keep arguments).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path

import aiohttp

from hub.console import EXIT_REFUSED, print_json, table
from hub.errors import UnavailableError, ValidationError
from node_agent.officer import OfficerPaths, ReadCopy, init_officer, load_officer, open_copies
from schemas.access import CaseCopies
from schemas.codec import decode_json, encode_json

__all__ = ["fetch_copies", "register"]

AddCommand = Callable[..., argparse.ArgumentParser]


def _operator_key(value: str) -> bytes:
    try:
        key = bytes.fromhex(value)
    except ValueError:
        raise argparse.ArgumentTypeError("--operator-key: 64 hex characters") from None
    if len(key) != 32:
        raise argparse.ArgumentTypeError("--operator-key: 64 hex characters (32 bytes)")
    return key


async def cmd_init(args: argparse.Namespace) -> int:
    public = init_officer(OfficerPaths(args.data), args.officer, args.operator_key)
    sys.stdout.write(encode_json(public).decode() + "\n")
    print(
        f"officer {args.officer}: keys in {args.data}; hand the public keys above to your home "
        "authority for its consent (node-agent liaison consent --officer-keys FILE)",
        file=sys.stderr,
    )
    return 0


async def fetch_copies(api: str, case_id: str, token: str) -> CaseCopies:
    url = f"{api.rstrip('/')}/api/v1/cases/{case_id}/copies"
    headers = {"Authorization": f"Bearer {token}"}
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session,
            session.get(url, headers=headers) as response,
        ):
            body = await response.read()
            if response.status != 200:
                raise ValidationError(
                    f"--api: the hub answered {response.status}: {body.decode(errors='replace')}"
                )
    except (aiohttp.ClientError, TimeoutError) as e:
        raise UnavailableError(f"--api: cannot reach {api}: {e}") from e
    return decode_json(body, CaseCopies, what="copies")


def _save(read: list[ReadCopy], out: Path) -> None:
    for copy in read:
        if copy.error is not None:
            continue
        folder = out / copy.message_id
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        (folder / "body.txt").write_text(copy.text)
        for name, data in copy.attachments:
            (folder / Path(name).name).write_bytes(data)  # never a path the sender chose


async def cmd_read(args: argparse.Namespace) -> int:
    settings, keys = load_officer(OfficerPaths(args.data))
    token = os.environ.get(args.token_env)
    if not token:
        raise ValidationError(f"--token-env: set {args.token_env} to the token the operator issued")
    read = open_copies(await fetch_copies(args.api, args.case, token), keys, settings.operator_key)
    if args.out is not None:
        _save(read, Path(args.out))
    if args.json:
        print_json(
            [
                {
                    "message_id": c.message_id,
                    "ledger_index": c.ledger_index,
                    "type": c.type,
                    "sender": c.sender,
                    "sent_at": c.sent_at,
                    "text": c.text,
                    "attachments": [name for name, _ in c.attachments],
                    "error": c.error,
                }
                for c in read
            ]
        )
    else:
        print(
            table(
                ("index", "type", "from", "sent (UTC)", "content"),
                [
                    (str(c.ledger_index), c.type, c.sender,
                     f"{c.sent_at:%Y-%m-%d %H:%M}" if c.sent_at else "",
                     f"NOT VERIFIED: {c.error}" if c.error else c.text[:60])
                    for c in read
                ],
            )
        )  # fmt: skip
    return EXIT_REFUSED if any(c.error for c in read) else 0


def register(sub: argparse._SubParsersAction, command: AddCommand) -> None:  # type: ignore[type-arg]
    """Add ``officer init`` and ``officer read`` to the node-agent parser."""
    officer = sub.add_parser("officer", help="a liaison officer's keys and copies").add_subparsers(
        dest="action", required=True
    )
    p = command("init", "create a liaison officer's keys (public keys JSON on stdout)", officer)
    p.add_argument("--officer", required=True, help="the id your home authority gives you")
    p.add_argument("--operator-key", type=_operator_key, required=True, help="hub operator (hex)")
    p.set_defaults(run=cmd_init)

    p = command("read", "fetch, verify and open the copies of one case", officer)
    p.add_argument("--api", required=True, help="the hub's read API, e.g. https://hub.example")
    p.add_argument("--case", required=True)
    p.add_argument("--token-env", default="MLA_HUB_TOKEN", help="variable holding the token")
    p.add_argument("--out", help="also write each body and attachment under this folder")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=cmd_read)
