"""``hub liaison`` and ``hub auditor``: accreditations recorded in the ledger (issue 5).

A liaison officer is accredited on the signed consent of the home authority (``node-agent
liaison consent``); an auditor is admitted by the operator alone. Either way the operator signs
an access statement, the hub checks it and records it in the ledger (so auditors replay it and
the directory of who may watch what cannot be changed unnoticed), and only then is a bearer
token issued for it, printed once. Revoking the accreditation records that too; every token
issued for it stops working at once in a running hub, because the read API asks the ledger.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from hub import ids
from hub.cli_access import authority_arg, print_issued, token_store
from hub.cli_reports import load_state
from hub.clock import SystemClock
from hub.console import EXIT_REFUSED, print_json, table
from hub.crypto.access import sign_statement
from hub.crypto.consent import consent_digest
from hub.errors import ValidationError
from hub.ledger.projections.access import Accreditation
from hub.ledger.projections.state import HubState
from hub.operator import submit_as_operator
from hub.runtime import operator_key
from hub.settings import HubPaths, load_settings
from schemas.access import (
    AccessRevocation,
    AccessStatement,
    AuditorAccreditation,
    ConsentFile,
    LiaisonAccreditation,
    LiaisonConsent,
)
from schemas.codec import decode, decode_json
from schemas.transport import Verdict

__all__ = ["AccreditationView", "accreditation_view", "register"]

AddCommand = Callable[..., argparse.ArgumentParser]


@dataclass(frozen=True, slots=True)
class AccreditationView:
    """An accreditation as listed: who, for what, since when, and whether it still holds."""

    accreditation_id: str
    role: str
    holder: str
    name: str
    scope: str
    status: str
    ledger_index: int
    accredited_at: datetime
    valid_until: datetime
    revoked_index: int | None
    revoked_reason: str | None


def accreditation_view(record: Accreditation, state: HubState, now: datetime) -> AccreditationView:
    return AccreditationView(
        accreditation_id=record.accreditation_id,
        role=record.role,
        holder=record.holder,
        name=record.name,
        scope=record.scope(),
        status=state.access.status(record, now, state.directory),
        ledger_index=record.ledger_index,
        accredited_at=record.accredited_at,
        valid_until=record.valid_until,
        revoked_index=record.revoked_index,
        revoked_reason=record.revoked_reason,
    )


async def _record(args: argparse.Namespace, statement: AccessStatement) -> Verdict:
    """Sign ``statement`` as the operator, submit it, and return the hub's verdict."""
    paths = HubPaths(args.data)
    settings = load_settings(paths)
    request = sign_statement(statement, operator_key(paths))
    return await submit_as_operator(paths, settings, request, nats_url=args.nats, wait=args.wait)


def _refused(verdict: Verdict, what: str) -> bool:
    if verdict.status != "rejected":
        return False
    print(f"{what}: refused by the hub ({verdict.reason}): {verdict.detail}", file=sys.stderr)
    return True


def _term(args: argparse.Namespace, now: datetime, cap: datetime | None = None) -> datetime:
    if not 1 <= args.expires_days <= 3660:
        raise ValidationError("--expires-days: 1 to 3660 days", field="expires_days")
    until = now + timedelta(days=args.expires_days)
    return min(until, cap) if cap is not None else until


def _read_consent(args: argparse.Namespace) -> ConsentFile:
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
    return made


async def cmd_liaison_accredit(args: argparse.Namespace) -> int:
    made = _read_consent(args)
    store = token_store(args)  # before the ledger: a folder without a hub stops here
    now = SystemClock().now()
    statement = LiaisonAccreditation(
        accreditation_id=ids.uuid7(),
        consent=made.signed,
        issued_at=now,
        valid_until=_term(args, now, made.readable.valid_until),
    )
    verdict = await _record(args, statement)
    if _refused(verdict, f"accreditation of {args.officer}"):
        return EXIT_REFUSED
    print(
        f"accreditation {statement.accreditation_id} recorded at ledger index "
        f"{verdict.ledger_index}",
        file=sys.stderr,
    )
    async with store.open() as tokens:
        issued = await tokens.issue(
            "liaison",
            now=now,
            valid_for=statement.valid_until - now,
            label=args.label or made.readable.name,
            officer=args.officer,
            home=args.home,
            host=args.host,
            consent_digest=consent_digest(made.signed),
            accreditation_id=statement.accreditation_id,
        )
    print_issued(issued, args.json)
    return 0


async def cmd_auditor_admit(args: argparse.Namespace) -> int:
    store = token_store(args)
    now = SystemClock().now()
    statement = AuditorAccreditation(
        accreditation_id=ids.uuid7(),
        auditor=args.auditor,
        name=args.name,
        organisation=args.organisation,
        issued_at=now,
        valid_until=_term(args, now),
    )
    verdict = await _record(args, statement)
    if _refused(verdict, f"admission of auditor {args.auditor}"):
        return EXIT_REFUSED
    print(
        f"auditor {args.auditor} admitted: accreditation {statement.accreditation_id} at "
        f"ledger index {verdict.ledger_index}",
        file=sys.stderr,
    )
    async with store.open() as tokens:
        issued = await tokens.issue(
            "auditor",
            now=now,
            valid_for=statement.valid_until - now,
            label=args.label or args.name,
            accreditation_id=statement.accreditation_id,
        )
    print_issued(issued, args.json)
    return 0


async def _revoke(args: argparse.Namespace, targets: list[Accreditation], who: str) -> int:
    """Record the revocation of each of ``targets``, then mark their tokens revoked."""
    if not targets:
        raise ValidationError(f"{who}: holds no active accreditation", field="accreditation")
    store = token_store(args)
    done: list[dict[str, object]] = []
    for target in targets:
        statement = AccessRevocation(
            accreditation_id=target.accreditation_id,
            reason=args.reason,
            issued_at=SystemClock().now(),
        )
        verdict = await _record(args, statement)
        if _refused(verdict, f"revocation of {target.accreditation_id}"):
            return EXIT_REFUSED
        done.append(
            {
                "accreditation_id": target.accreditation_id,
                "scope": target.scope(),
                "ledger_index": verdict.ledger_index,
            }
        )
    async with store.open() as tokens:
        revoked_tokens = await tokens.revoke_accreditations(
            {t.accreditation_id for t in targets}, now=SystemClock().now()
        )
    if args.json:
        print_json({"revoked": done, "tokens_revoked": [t.token_id for t in revoked_tokens]})
        return 0
    for item in done:
        print(
            f"accreditation {item['accreditation_id']} ({item['scope']}) revoked at ledger "
            f"index {item['ledger_index']}"
        )
    print(f"{len(revoked_tokens)} token(s) revoked with it")
    return 0


async def cmd_liaison_revoke(args: argparse.Namespace) -> int:
    if (args.home is None) != (args.host is None):
        raise ValidationError("--home and --host go together", field="home")
    state = await load_state(args)
    targets = [
        a
        for a in state.access.active_of(
            "liaison", args.officer, SystemClock().now(), state.directory
        )
        if args.home is None or (a.home, a.host) == (args.home, args.host)
    ]
    return await _revoke(args, targets, f"--officer: {args.officer}")


async def cmd_auditor_revoke(args: argparse.Namespace) -> int:
    state = await load_state(args)
    now = SystemClock().now()
    targets = state.access.active_of("auditor", args.auditor, now, state.directory)
    return await _revoke(args, targets, f"--auditor: {args.auditor}")


async def cmd_list(args: argparse.Namespace) -> int:
    state = await load_state(args)
    now = SystemClock().now()
    views = [accreditation_view(a, state, now) for a in state.access.all() if a.role == args.role]
    if not args.all:
        views = [v for v in views if v.status == "active"]
    if args.json:
        print_json(views)
        return 0
    print(
        table(
            ("accreditation", "scope", "status", "index", "until (UTC)"),
            [
                (
                    v.accreditation_id,
                    v.scope,
                    v.status,
                    str(v.ledger_index),
                    f"{v.valid_until:%Y-%m-%d %H:%M}",
                )
                for v in views
            ],
        )
    )
    return 0


def _reason(value: str) -> str:
    text = value.strip()
    if not 1 <= len(text) <= 500:
        raise argparse.ArgumentTypeError("--reason: 1 to 500 characters")
    return text


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--nats", help="NATS URL (default: the running hub's)")
    p.add_argument("--wait", type=float, default=10.0, help="seconds to wait for the verdict")
    p.add_argument("--json", action="store_true")


def register(sub: argparse._SubParsersAction, command: AddCommand) -> None:  # type: ignore[type-arg]
    """Add the ``liaison`` and ``auditor`` command groups to the ``hub`` parser."""
    liaison = sub.add_parser("liaison", help="liaison officers (rec. 16)").add_subparsers(
        dest="action", required=True
    )
    p = command("accredit", "accredit a liaison officer on the home authority's consent", liaison)
    p.add_argument("--officer", required=True)
    p.add_argument("--home", type=authority_arg, required=True)
    p.add_argument("--host", type=authority_arg, required=True)
    p.add_argument("--consent", required=True, help="file made by `node-agent liaison consent`")
    p.add_argument("--expires-days", type=int, default=365, help="capped by the consent")
    p.add_argument("--label", default="")
    _common(p)
    p.set_defaults(run=cmd_liaison_accredit)

    p = command("revoke", "end a liaison officer's accreditations (and their tokens)", liaison)
    p.add_argument("--officer", required=True)
    p.add_argument("--home", type=authority_arg)
    p.add_argument("--host", type=authority_arg)
    p.add_argument("--reason", type=_reason, required=True)
    _common(p)
    p.set_defaults(run=cmd_liaison_revoke)

    p = command("list", "liaison accreditations recorded in the ledger", liaison)
    p.add_argument("--all", action="store_true", help="also revoked, expired and ended ones")
    p.add_argument("--nats", help="NATS URL (default: the running hub's)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=cmd_list, role="liaison")

    auditor = sub.add_parser("auditor", help="auditors: all metadata, no content").add_subparsers(
        dest="action", required=True
    )
    p = command("admit", "admit an auditor and issue a token", auditor)
    p.add_argument("--auditor", required=True, help="the auditor's id, e.g. AUD-0007")
    p.add_argument("--name", required=True)
    p.add_argument("--organisation", default="")
    p.add_argument("--expires-days", type=int, default=365)
    p.add_argument("--label", default="")
    _common(p)
    p.set_defaults(run=cmd_auditor_admit)

    p = command("revoke", "end an auditor's accreditation (and its tokens)", auditor)
    p.add_argument("--auditor", required=True)
    p.add_argument("--reason", type=_reason, required=True)
    _common(p)
    p.set_defaults(run=cmd_auditor_revoke)

    p = command("list", "auditor accreditations recorded in the ledger", auditor)
    p.add_argument("--all", action="store_true", help="also revoked and expired ones")
    p.add_argument("--nats", help="NATS URL (default: the running hub's)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=cmd_list, role="auditor")
