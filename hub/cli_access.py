"""``hub token``: the operator's credentials for the read API (issue 5).

Token records (hashes only) live in the hub's JetStream bucket ``ACCESS_TOKENS``; these commands
reach it as the hub's own NATS user (``--nats``, default the running hub's), so a token issued or
revoked here holds, or stops, on every running read API within a moment. The secret is printed
once (alone on stdout, so ``TOKEN=$(hub token issue ...)`` works). Operator and authority-staff
tokens are issued here; liaison officers and auditors get theirs when their accreditation is
recorded in the ledger (``hub liaison accredit``, ``hub auditor admit``, in
``hub.cli_accreditation``), and ``hub token issue --accreditation ID`` issues a fresh one for an
active accreditation.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

from hub.cli_reports import load_state
from hub.clock import SystemClock
from hub.console import print_json, table
from hub.errors import ValidationError
from hub.gateway.connection import close as close_connection
from hub.gateway.connection import connect
from hub.gateway.token_store import TokenStore
from hub.gateway.tokens import Issued
from hub.settings import HubPaths, HubSettings, load_settings, nats_url_for
from hub.transport_security import hub_credentials
from schemas.access import AccessToken
from schemas.common import is_authority_id

__all__ = [
    "HubTokens",
    "TokenView",
    "authority_arg",
    "print_issued",
    "register",
    "token_store",
    "token_view",
]

AddCommand = Callable[..., argparse.ArgumentParser]


@dataclass(frozen=True, slots=True)
class TokenView:
    """A token record as listed: never the secret, nor its hash."""

    token_id: str
    role: str
    scope: str
    label: str
    status: str
    issued_at: datetime
    expires_at: datetime
    revoked_at: datetime | None
    consent_digest: str | None
    accreditation_id: str | None = None  # liaison, auditor: `hub liaison|auditor list`


def token_view(record: AccessToken, now: datetime) -> TokenView:
    if record.role == "liaison":
        scope = f"officer {record.officer}: {record.home} <-> {record.host}"
    elif record.role == "auditor":
        scope = f"all cases (metadata); accreditation {record.accreditation_id}"
    elif record.role == "authority":
        scope = f"cases of {record.authority}"
    else:
        scope = "all cases (metadata)"
    status = (
        "revoked"
        if record.revoked_at is not None
        else "expired"
        if record.expires_at <= now
        else "active"
    )
    return TokenView(
        token_id=record.token_id,
        role=record.role,
        scope=scope,
        label=record.label,
        status=status,
        issued_at=record.issued_at,
        expires_at=record.expires_at,
        revoked_at=record.revoked_at,
        consent_digest=record.consent_digest.hex() if record.consent_digest else None,
        accreditation_id=record.accreditation_id,
    )


@dataclass(frozen=True, slots=True)
class HubTokens:
    """The token bucket of the hub in ``--data``: each call connects as the hub's own NATS user,
    does its work on a :class:`TokenStore` and disconnects."""

    paths: HubPaths
    settings: HubSettings
    nats_url: str | None = None

    @asynccontextmanager
    async def open(self) -> AsyncIterator[TokenStore]:
        nc = await connect(
            nats_url_for(self.paths, self.settings, self.nats_url),
            name="hub-tokens",
            credentials=hub_credentials(self.paths),
        )
        try:
            yield await TokenStore.open(nc.jetstream())
        finally:
            await close_connection(nc)

    async def records(self) -> list[AccessToken]:
        """Every token record, in issue order."""
        async with self.open() as store:
            await store.load()
            return store.records()


def token_store(args: argparse.Namespace) -> HubTokens:
    """The token bucket of the hub in ``args.data`` (``args.nats``: where its NATS is)."""
    paths = HubPaths(args.data)
    settings = load_settings(paths)  # refuses a folder that holds no hub
    return HubTokens(paths, settings, getattr(args, "nats", None))


def authority_arg(value: str) -> str:
    if not is_authority_id(value):
        raise argparse.ArgumentTypeError(f"{value!r} is not an authority id (e.g. XA-MOJ)")
    return value


def print_issued(issued: Issued, as_json: bool) -> None:
    view = token_view(issued.record, issued.record.issued_at)
    if as_json:
        print_json({"token": issued.token, **asdict(view)})
        return
    print(
        f"issued token {view.token_id} ({view.role}; {view.scope}), "
        f"expires {view.expires_at:%Y-%m-%d %H:%M} UTC.\n"
        "Hand it over now: the hub keeps only its hash and cannot show it again.",
        file=sys.stderr,
    )
    print(issued.token)


async def cmd_token_issue(args: argparse.Namespace) -> int:
    now = SystemClock().now()
    if args.accreditation is not None:
        issued = await _issue_for_accreditation(args, now)
    elif args.role is None:
        raise ValidationError("--role: operator or authority (or give --accreditation)")
    elif args.role == "authority" and not args.authority:
        raise ValidationError("--authority: an authority token names its authority", field="role")
    else:
        async with token_store(args).open() as tokens:
            issued = await tokens.issue(
                args.role,
                now=now,
                valid_for=timedelta(days=args.expires_days),
                label=args.label,
                authority=args.authority,
            )
    print_issued(issued, args.json)
    return 0


async def _issue_for_accreditation(args: argparse.Namespace, now: datetime) -> Issued:
    """A fresh token for an active accreditation (the holder lost theirs, or needs another)."""
    if args.role is not None or args.authority is not None:
        raise ValidationError("--accreditation: the ledger's accreditation sets role and scope")
    store = token_store(args)
    state = await load_state(args)
    record = state.access.get(args.accreditation)
    ended = state.access.ended(args.accreditation, now, state.directory)
    if record is None or ended is not None:
        raise ValidationError(f"--accreditation: {ended}", field="accreditation")
    async with store.open() as tokens:
        return await tokens.issue(
            record.role,
            now=now,
            valid_for=min(timedelta(days=args.expires_days), record.valid_until - now),
            label=args.label or record.name,
            officer=record.holder if record.role == "liaison" else None,
            home=record.home,
            host=record.host,
            consent_digest=record.consent_digest,
            accreditation_id=record.accreditation_id,
        )


async def cmd_token_list(args: argparse.Namespace) -> int:
    now = SystemClock().now()
    views = [token_view(r, now) for r in await token_store(args).records()]
    if not args.all:
        views = [v for v in views if v.status == "active"]
    if args.json:
        print_json(views)
        return 0
    print(
        table(
            ("id", "role", "scope", "status", "expires (UTC)", "label"),
            [
                (v.token_id, v.role, v.scope, v.status, f"{v.expires_at:%Y-%m-%d %H:%M}", v.label)
                for v in views
            ],
        )
    )
    return 0


async def cmd_token_revoke(args: argparse.Namespace) -> int:
    now = SystemClock().now()
    async with token_store(args).open() as tokens:
        view = token_view(await tokens.revoke(args.id, now=now), now)
    if args.json:
        print_json(view)
    else:
        print(f"token {view.token_id} ({view.role}; {view.scope}) revoked")
    return 0


def register(sub: argparse._SubParsersAction, command: AddCommand) -> None:  # type: ignore[type-arg]
    """Add the ``token`` and ``liaison`` command groups to the ``hub`` parser."""
    tokens = sub.add_parser("token", help="read API credentials").add_subparsers(
        dest="action", required=True
    )
    p = command("issue", "issue a bearer token (printed once)", tokens)
    p.add_argument("--role", choices=["operator", "authority"])
    p.add_argument(
        "--accreditation",
        help="a liaison or auditor accreditation id (`hub liaison list`): a new token for it",
    )
    p.add_argument("--nats", help="NATS URL (default: the running hub's)")
    p.add_argument("--authority", type=authority_arg, help="for --role authority: whose cases")
    p.add_argument("--expires-days", type=int, default=90)
    p.add_argument("--label", default="", help="who holds it (shown in `token list`)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=cmd_token_issue)

    p = command("list", "list tokens (never their secrets)", tokens)
    p.add_argument("--all", action="store_true", help="also revoked and expired tokens")
    p.add_argument("--nats", help="NATS URL (default: the running hub's)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=cmd_token_list)

    p = command("revoke", "revoke a token (within a moment, on every running read API)", tokens)
    p.add_argument("--id", required=True)
    p.add_argument("--nats", help="NATS URL (default: the running hub's)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=cmd_token_revoke)
