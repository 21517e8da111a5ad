"""``node-agent consult|request|case ...``: every case action, sealed and signed, from the CLI.

Every action takes ``--case CASE``, an optional ``--body-file F`` (sealed) and ``--attach
[ROLE=]FILE`` (repeatable). The agent runs the same lifecycle rules as the hub before sending
and refuses, with the same reason, what the hub would refuse.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from hub import ids
from hub.console import EXIT_REFUSED, print_json
from hub.errors import ValidationError
from node_agent.agent import Attachment, Outgoing, SendResult
from node_agent.case_view import cmd_list, cmd_show
from node_agent.cases import counterpart, local_case
from node_agent.quality import Draft, Unmet, check_draft
from node_agent.session import authority_id, iso_datetime, session
from schemas.envelope import ActionMeta, CaseMeta, Handling

__all__ = ["register"]

Command = Callable[[argparse.Namespace], Coroutine[Any, Any, int]]
AddCommand = Callable[..., argparse.ArgumentParser]

KINDS = ["mla", "extradition", "transfer-of-sentenced-persons", "confiscation"]
_EXPLAIN = {
    "queued": "queued in the outbox: the hub is unreachable; `node-agent run` will send it",
    "submitted": "at the hub's intake; the verdict is pending",
    "accepted": "recorded in the ledger at index {index}",
    "duplicate": "already recorded at index {index}",
    "rejected": "rejected by the hub ({reason}): {detail}",
}


def _attachment(spec: str) -> Attachment:
    role, sep, path = spec.partition("=")
    if not sep or not role.replace("-", "").isalpha():
        role, path = "", spec
    file = Path(path)
    if not file.is_file():
        raise ValidationError(f"--attach: {path} is not a readable file", field="attach")
    return Attachment(file.name, file.read_bytes(), role=role or None)


def _pairs(specs: list[str], *, from_files: bool, option: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for spec in specs:
        name, sep, value = spec.partition("=")
        if not sep or not name:
            raise ValidationError(f"{option}: {spec!r} is not NAME=VALUE", field=option)
        out[name] = Path(value).read_text() if from_files else value
    return out


def _text(*files: str | None) -> str:
    return "\n\n".join(Path(f).read_text() for f in files if f)


def print_result(result: SendResult, as_json: bool) -> int:
    if as_json:
        print_json(result)
    else:
        explain = _EXPLAIN[result.status].format(
            index=result.ledger_index, reason=result.reason, detail=result.detail
        )
        print(f"case {result.case_id}, message {result.message_id}: {explain}")
    return EXIT_REFUSED if result.status == "rejected" else 0


def _copying(args: argparse.Namespace, outgoing: Outgoing) -> Outgoing:
    """Our accredited liaison officers posted with the recipient get a sealed copy unless the
    user says otherwise for this message (``--no-liaison-copy``)."""
    return dataclasses.replace(outgoing, copy_liaisons=not args.no_liaison_copy)


async def _send(args: argparse.Namespace, outgoing: Outgoing) -> int:
    async with session(args, need_hub=False) as s:
        message_id = await s.agent.queue(_copying(args, outgoing), s.directory)
        result = await s.agent.submit(s.link, message_id, args.wait)
    return print_result(result, args.json)


# --- starting a case -----------------------------------------------------------------------


def _meta(args: argparse.Namespace) -> CaseMeta:
    return CaseMeta(
        kind=args.kind,
        nature=args.nature,
        legal_basis=args.legal_basis,
        urgency=args.urgency,
        deadline=args.deadline,
        provisional_arrest=args.provisional_arrest,
        language=args.language,
        handling=Handling(
            use_limitation=not args.no_use_limitation,
            confidential=not args.not_confidential,
            code=args.handling,
        ),
    )


async def _unmet(args: argparse.Namespace) -> tuple[list[Unmet], Outgoing]:
    attachments = [_attachment(a) for a in args.attach]
    fields = {
        **_pairs(args.field, from_files=False, option="--field"),
        **_pairs(args.field_file, from_files=True, option="--field-file"),
    }
    draft = Draft(
        kind=args.kind,
        language=args.language,
        attachment_roles=[a.role for a in attachments if a.role],
        fields=list(fields),
    )
    async with session(args, need_hub=False) as s:
        unmet = check_draft(draft, await s.directory.card(args.to))
    outgoing = Outgoing(
        to=args.to,
        type="request.submit",
        case_id=ids.uuid7(),
        text=_text(args.body_file),
        attachments=attachments,
        meta=_meta(args),
        fields=fields,
        action=ActionMeta(
            after_consultation=args.after_consultation,
            accept_incomplete=bool(unmet),
            unmet_requirements=[u.name for u in unmet],
        ),
    )
    return unmet, outgoing


async def cmd_check(args: argparse.Namespace) -> int:
    unmet, _ = await _unmet(args)
    if args.json:
        print_json({"complete": not unmet, "unmet": unmet})
    elif not unmet:
        print(f"the draft meets every requirement {args.to} publishes for {args.kind} requests")
    else:
        print(f"{len(unmet)} requirement(s) of {args.to} not met:")
        for u in unmet:
            print(f"  - {u.name}: {u.explanation}")
    return 0 if not unmet else EXIT_REFUSED


async def cmd_submit(args: argparse.Namespace) -> int:
    unmet, outgoing = await _unmet(args)
    if unmet and not args.accept_incomplete:
        listing = "; ".join(f"{u.name} ({u.explanation})" for u in unmet)
        raise ValidationError(
            f"draft: {len(unmet)} requirement(s) of {args.to} not met: {listing}. "
            "Complete the draft, or send it anyway with --accept-incomplete (recorded, signed)",
            field="draft",
        )
    return await _send(args, outgoing)


async def cmd_consult_open(args: argparse.Namespace) -> int:
    outgoing = Outgoing(
        to=args.to,
        type="consultation.open",
        case_id=ids.uuid7(),
        text=_text(args.body_file),
        attachments=[_attachment(a) for a in args.attach],
        meta=CaseMeta(kind=args.kind),
    )
    return await _send(args, outgoing)


# --- actions on an existing case -------------------------------------------------------------


def _reference(args: argparse.Namespace) -> ActionMeta:
    return ActionMeta(reference=args.reference)


def _transfer(args: argparse.Namespace) -> ActionMeta:
    return ActionMeta(
        competent_authority=args.competent_authority,
        competent_authority_id=args.competent_authority_id,
        reference=args.reference,
    )


def _none(_: argparse.Namespace) -> None:
    return None


def _action(
    message_type: str, make: Callable[[argparse.Namespace], ActionMeta | None] = _none
) -> Command:
    async def run(args: argparse.Namespace) -> int:
        async with session(args, need_hub=False) as s:
            record = local_case(s.store, args.case)
            if record is None:
                raise ValidationError(
                    f"--case: {args.case} is not a case this agent has sent or received",
                    field="case",
                )
            outgoing = Outgoing(
                to=counterpart(record, s.settings.id),
                type=message_type,
                case_id=args.case,
                text=_text(getattr(args, "grounds_file", None), args.body_file),
                attachments=[_attachment(a) for a in args.attach],
                action=make(args),
            )
            message_id = await s.agent.queue(_copying(args, outgoing), s.directory)
            result = await s.agent.submit(s.link, message_id, args.wait)
        return print_result(result, args.json)

    return run


_ACTIONS: dict[str, tuple[str, str, Callable[[argparse.Namespace], ActionMeta | None]]] = {
    "acknowledge": ("request.acknowledge", "acknowledge receipt", _reference),
    "supplement-request": ("request.supplement_requested", "ask for more information", _none),
    "supplement": ("request.supplemented", "supply more information", _none),
    "transfer": ("request.transfer", "transfer to a competent authority", _transfer),
    "progress": ("request.progress", "report progress", _none),
    "postpone": (
        "request.postpone",
        "postpone execution (UNTOC art. 18(25))",
        lambda a: ActionMeta(until=a.until),
    ),
    "refusal-consultation": (
        "request.refusal_consultation",
        "consult before refusing (UNTOC art. 18(26))",
        _none,
    ),
    "refuse": ("request.refuse", "refuse, after a refusal consultation", _none),
    "execute": ("request.execute", "return results", lambda a: ActionMeta(partial=a.partial)),
    "withdraw": ("request.withdraw", "withdraw the request", _none),
}


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--body-file", help="text to seal in the message body")
    p.add_argument("--attach", action="append", default=[], metavar="[ROLE=]FILE")
    p.add_argument("--hub", help="NATS URL of the hub (default: saved by init)")
    p.add_argument("--wait", type=float, default=10.0, help="seconds to wait for the verdict")
    p.add_argument(
        "--no-liaison-copy",
        action="store_true",
        help="do not seal this message to our liaison officers posted with the recipient",
    )
    p.add_argument("--json", action="store_true")


def _draft_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--to", type=authority_id, required=True)
    p.add_argument("--kind", choices=KINDS, default="mla")
    p.add_argument(
        "--legal-basis", required=True, help="untoc-art18, treaty:NAME, reciprocity, domestic-law"
    )
    p.add_argument("--nature", type=lambda v: [x for x in v.split(",") if x], default=[])
    p.add_argument("--urgency", choices=["normal", "urgent"], default="normal")
    p.add_argument("--deadline", type=iso_datetime)
    p.add_argument("--provisional-arrest", action="store_true")
    p.add_argument("--language", default="en")
    p.add_argument("--field", action="append", default=[], metavar="NAME=VALUE")
    p.add_argument("--field-file", action="append", default=[], metavar="NAME=FILE")
    p.add_argument("--handling", choices=["H0", "H1", "H2", "H3"], default="H1")
    p.add_argument("--no-use-limitation", action="store_true")
    p.add_argument("--not-confidential", action="store_true")
    p.add_argument("--after-consultation", metavar="CASE")
    _common(p)


def register(sub: argparse._SubParsersAction, command: AddCommand) -> None:  # type: ignore[type-arg]
    """Add ``consult``, ``request`` and ``case`` command groups to the node-agent parser."""
    consult = sub.add_parser("consult", help="informal consultation (rec. 8)").add_subparsers(
        dest="action", required=True
    )
    p = command("open", "open a consultation thread", consult)
    p.add_argument("--to", type=authority_id, required=True)
    p.add_argument("--kind", choices=KINDS, default="mla")
    _common(p)
    p.set_defaults(run=cmd_consult_open)
    for name, message_type, text in (
        ("reply", "consultation.message", "write in a consultation"),
        ("close", "consultation.close", "conclude a consultation"),
    ):
        p = command(name, text, consult)
        p.add_argument("--case", required=True)
        _common(p)
        p.set_defaults(run=_action(message_type))

    request = sub.add_parser("request", help="formal requests").add_subparsers(
        dest="action", required=True
    )
    p = command("submit", "check, seal and send a formal request", request)
    _draft_options(p)
    p.add_argument("--accept-incomplete", action="store_true")
    p.set_defaults(run=cmd_submit)
    p = command("check", "check a draft against the recipient's requirements only", request)
    _draft_options(p)
    p.set_defaults(run=cmd_check)
    for name, (message_type, text, make) in _ACTIONS.items():
        p = command(name, text, request)
        p.add_argument("--case", required=True)
        _common(p)
        if name in ("acknowledge", "transfer"):
            p.add_argument("--reference")
        if name == "transfer":
            p.add_argument("--competent-authority", required=True)
            p.add_argument("--competent-authority-id", type=authority_id)
        if name in ("refusal-consultation", "refuse"):
            p.add_argument("--grounds-file", required=True)
        if name == "execute":
            p.add_argument("--partial", action="store_true")
        if name == "postpone":
            p.add_argument("--until", type=iso_datetime, required=True)
        p.set_defaults(run=_action(message_type, make))

    case = sub.add_parser("case", help="cases: close, show, list").add_subparsers(
        dest="action", required=True
    )
    p = command("close", "archive a finished case", case)
    p.add_argument("--case", required=True)
    _common(p)
    p.set_defaults(run=_action("case.close"))
    p = command("show", "a case's decrypted thread and status", case)
    p.add_argument("--case", required=True)
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=cmd_show)
    p = command("list", "every case this agent sent or received, with its status", case)
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=cmd_list)
