"""``hub token`` and ``hub liaison``: the operator's credentials for the read API (issue 5).

Tokens are stored hashed in ``<data>/access/tokens.json``; the secret is printed once (alone on
stdout, so ``TOKEN=$(hub token issue ...)`` works). A liaison officer is accredited only on the
signed consent of the home authority (``node-agent liaison consent``), checked against that
authority's key in the directory as folded from the ledger; the token then sees the cases
between home and host, and expires with the consent at the latest.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from pathlib import Path

from hub.cli_reports import load_state
from hub.clock import SystemClock
from hub.console import print_json, table
from hub.crypto.consent import consent_digest, open_consent
from hub.errors import UnknownSender, ValidationError
from hub.gateway.tokens import Issued, TokenStore, tokens_path
from hub.settings import HubPaths, load_settings
from schemas.access import AccessToken, ConsentFile, LiaisonConsent
from schemas.codec import decode, decode_json
from schemas.common import is_authority_id

__all__ = ["TokenView", "register", "token_view"]

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


def token_view(record: AccessToken, now: datetime) -> TokenView:
    if record.role == "liaison":
        scope = f"officer {record.officer}: {record.home} <-> {record.host}"
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
    )


def _store(args: argparse.Namespace) -> TokenStore:
    paths = HubPaths(args.data)
    load_settings(paths)  # refuses a folder that holds no hub
    return TokenStore(tokens_path(paths.root))


def _authority(value: str) -> str:
    if not is_authority_id(value):
        raise argparse.ArgumentTypeError(f"{value!r} is not an authority id (e.g. XA-MOJ)")
    return value


def _print_issued(issued: Issued, as_json: bool) -> None:
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
    if args.role == "authority" and not args.authority:
        raise ValidationError("--authority: an authority token names its authority", field="role")
    issued = _store(args).issue(
        args.role,
        now=SystemClock().now(),
        valid_for=timedelta(days=args.expires_days),
        label=args.label,
        authority=args.authority,
    )
    _print_issued(issued, args.json)
    return 0


async def cmd_token_list(args: argparse.Namespace) -> int:
    now = SystemClock().now()
    views = [token_view(r, now) for r in _store(args).records()]
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
    view = token_view(_store(args).revoke(args.id, now=now), now)
    if args.json:
        print_json(view)
    else:
        print(f"token {view.token_id} ({view.role}; {view.scope}) revoked")
    return 0


async def cmd_liaison_accredit(args: argparse.Namespace) -> int:
    store = _store(args)
    try:
        data = Path(args.consent).read_bytes()
    except OSError as e:
        raise ValidationError(f"--consent: cannot read {args.consent}: {e.strerror}") from e
    made = decode_json(data, ConsentFile, what=str(args.consent))
    if decode(made.signed.consent, LiaisonConsent, what="consent") != made.readable:
        raise ValidationError("readable: does not match the signed consent bytes; refusing")
    wanted = (args.officer, args.home, args.host)
    given = (made.readable.officer, made.readable.home, made.readable.host)
    if wanted != given:
        raise ValidationError(
            f"--consent: it is for officer {given[0]} of {given[1]} posted with {given[2]}, "
            f"not {wanted[0]} of {wanted[1]} with {wanted[2]}",
            field="consent",
        )
    state = await load_state(args)
    now = SystemClock().now()
    for authority in (args.home, args.host):
        if not state.directory.is_admitted(authority):
            raise UnknownSender(f"{authority}: not an admitted authority of this hub")
    consent = open_consent(made.signed, state.directory, now=now)
    issued = store.issue(
        "liaison",
        now=now,
        valid_for=timedelta(days=args.expires_days),
        label=args.label or consent.name,
        officer=consent.officer,
        home=consent.home,
        host=consent.host,
        not_after=consent.valid_until,
        consent_digest=consent_digest(made.signed),
    )
    _print_issued(issued, args.json)
    return 0


async def cmd_liaison_revoke(args: argparse.Namespace) -> int:
    if (args.home is None) != (args.host is None):
        raise ValidationError("--home and --host go together", field="home")
    pair = (args.home, args.host) if args.home and args.host else None
    now = SystemClock().now()
    revoked = _store(args).revoke_officer(args.officer, now=now, pair=pair)
    if not revoked:
        raise ValidationError(f"--officer: {args.officer} holds no active liaison token")
    views = [token_view(r, now) for r in revoked]
    if args.json:
        print_json(views)
    else:
        for v in views:
            print(f"token {v.token_id} ({v.scope}) revoked")
    return 0


def register(sub: argparse._SubParsersAction, command: AddCommand) -> None:  # type: ignore[type-arg]
    """Add the ``token`` and ``liaison`` command groups to the ``hub`` parser."""
    tokens = sub.add_parser("token", help="read API credentials").add_subparsers(
        dest="action", required=True
    )
    p = command("issue", "issue a bearer token (printed once)", tokens)
    p.add_argument("--role", choices=["operator", "auditor", "authority"], required=True)
    p.add_argument("--authority", type=_authority, help="for --role authority: whose cases")
    p.add_argument("--expires-days", type=int, default=90)
    p.add_argument("--label", default="", help="who holds it (shown in `token list`)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=cmd_token_issue)

    p = command("list", "list tokens (never their secrets)", tokens)
    p.add_argument("--all", action="store_true", help="also revoked and expired tokens")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=cmd_token_list)

    p = command("revoke", "revoke a token (effective at once, also in a running hub)", tokens)
    p.add_argument("--id", required=True)
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=cmd_token_revoke)

    liaison = sub.add_parser("liaison", help="liaison officers (rec. 16)").add_subparsers(
        dest="action", required=True
    )
    p = command("accredit", "accredit a liaison officer on the home authority's consent", liaison)
    p.add_argument("--officer", required=True)
    p.add_argument("--home", type=_authority, required=True)
    p.add_argument("--host", type=_authority, required=True)
    p.add_argument("--consent", required=True, help="file made by `node-agent liaison consent`")
    p.add_argument("--expires-days", type=int, default=365, help="capped by the consent")
    p.add_argument("--label", default="")
    p.add_argument("--nats", help="NATS URL (default: the running hub's)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=cmd_liaison_accredit)

    p = command("revoke", "revoke a liaison officer's tokens", liaison)
    p.add_argument("--officer", required=True)
    p.add_argument("--home", type=_authority)
    p.add_argument("--host", type=_authority)
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=cmd_liaison_revoke)
