"""The case lifecycle as one pure state machine (DESIGN.md section 5; resolution 7/4 recs. 4-11).

Both the hub (to reject) and the node agent (to refuse before sending) call
:func:`next_state`. Pure (STYLE rule 1): no I/O, no clock. Receipts never pass through here.

A case is a consultation thread (rec. 8) or one request between a ``requesting`` authority
(who started it) and a ``requested`` one (its single recipient). States:

======================  ============  ======================================================
state                   case type     meaning
======================  ============  ======================================================
open                    consultation  informal consultation under way
concluded *             consultation  consultation.close sent by either party
submitted               request       request.submit received, not yet acknowledged
acknowledged            request       the requested central authority confirmed receipt
supplement_requested    request       waiting for additional information (art. 18(16))
in_execution            request       transferred, in progress or partly executed
postponed               request       execution postponed (art. 18(25))
refusal_consultation    request       consultation before refusal (art. 18(26)) under way
refused *               request       request refused after consultation
executed *              request       final results returned
withdrawn *             request       withdrawn by the requesting authority
closed *                both          archived by case.close; accepts nothing more
======================  ============  ======================================================

``*`` terminal. Every transition is a row of :data:`RULES`; :func:`rules_table` prints them.

Checks run in this order, each refusal an ``InvalidTransition`` with a stable ``rule``:
``unknown_type``, ``partial_only_on_execute``, then for a new case ``case_unknown``,
``single_recipient``, ``self_addressed``; for an existing case ``case_exists``,
``wrong_case_type``, ``not_a_party``, ``wrong_recipient``, ``requested_side_only`` /
``requesting_side_only``, ``terminal_state``, then the row's guard
(``refuse_requires_refusal_consultation``) and its state rule (``wrong_state``, or
``close_requires_terminal_state`` for case.close).

Decisions where DESIGN.md and the issue are silent:

- ``consultation.close`` moves to ``concluded`` (terminal); the thread is archived with
  ``case.close`` like any other case. Either party may close a consultation.
- ``case.close`` is allowed to either party, only from a terminal state: a requesting
  authority that wants to stop must withdraw first, so the outcome stays on record.
- Every action of the requested side but the acknowledgement needs the acknowledgement
  first, so that time to acknowledge is always defined.
- A supplement request (quality control, rec. 9) may be repeated while waiting; the
  ``request.supplemented`` answering it returns the case to where it was. The requesting side
  may also volunteer supplements in any open state without changing it (that is also how it
  answers during a refusal consultation).
- From ``postponed``, transfer, progress and a partial execute resume execution; so do
  progress and a partial execute from ``refusal_consultation``. A postponement may be
  extended by another request.postpone. A transfer leaves the central authority the
  requested side; the competent authority is recorded as ``holder``.
- ``request.refuse`` needs ``refusal_consulted``, which stays true once a refusal consultation
  was opened, even if execution continued meanwhile.
- Art. 18(26) also asks for consultation before *postponing*; DESIGN.md only enforces it for
  refusal, so postponement is not gated here.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final, Literal

import msgspec

from hub.errors import InvalidTransition
from schemas.common import CASE_MESSAGE_TYPES

__all__ = [
    "NO_CASE",
    "RESUME",
    "RULES",
    "START_TYPES",
    "STATES",
    "TERMINAL_STATES",
    "CaseEvent",
    "CaseState",
    "Rule",
    "allowed_types",
    "next_state",
    "rules_table",
]

CaseType = Literal["request", "consultation"]
Actor = Literal["requesting", "requested", "either"]

NO_CASE: Final = "(no case)"
"""Pseudo-state used in :data:`RULES` as the source of the events that start a case."""
RESUME: Final = "(state before the supplement request)"
"""Pseudo-target: return to :attr:`CaseState.resume_state`."""

STATES: Final[Mapping[str, CaseType | None]] = MappingProxyType(
    {
        "open": "consultation",
        "concluded": "consultation",
        "submitted": "request",
        "acknowledged": "request",
        "supplement_requested": "request",
        "in_execution": "request",
        "postponed": "request",
        "refusal_consultation": "request",
        "refused": "request",
        "executed": "request",
        "withdrawn": "request",
        "closed": None,
    }
)
"""Every state and the case type it belongs to (``None``: both)."""
TERMINAL_STATES: Final = frozenset({"concluded", "refused", "executed", "withdrawn", "closed"})
START_TYPES: Final = frozenset({"consultation.open", "request.submit"})


class CaseEvent(msgspec.Struct, frozen=True, kw_only=True):
    """What the machine needs from a case message header."""

    type: str
    sender: str
    recipients: tuple[str, ...]
    partial: bool = False
    """Only on request.execute: a partial result; the case stays in execution."""
    competent_authority: str = ""
    """Only on request.transfer: the competent authority now holding the request."""


class CaseState(msgspec.Struct, frozen=True, kw_only=True):
    """The lifecycle facts of one case after the events folded so far."""

    case_type: CaseType
    state: str
    requesting: str
    requested: str
    refusal_consulted: bool = False
    transfers: int = 0
    partial_executions: int = 0
    supplement_requests: int = 0
    events: int = 0
    resume_state: str = ""
    """While ``supplement_requested``: the state to return to once supplemented."""
    holder: str = ""
    """The competent authority named by the latest request.transfer, if any."""


class Rule(msgspec.Struct, frozen=True, kw_only=True):
    """One message type (for request.execute: one value of ``partial``) and its moves."""

    type: str
    actor: Actor
    moves: tuple[tuple[str, str], ...]
    """(from state, to state) pairs; the type is refused from any other state."""
    summary: str
    cite: str = ""
    partial: bool | None = None
    state_rule: str = "wrong_state"
    """Rule id when the case is in a state that is not a source of ``moves``."""
    needs_refusal_consultation: bool = False
    """Guard, rule ``refuse_requires_refusal_consultation`` (checked before the state)."""


def _same(*states: str) -> tuple[tuple[str, str], ...]:
    return tuple((s, s) for s in states)


def _to(target: str, *states: str) -> tuple[tuple[str, str], ...]:
    return tuple((s, target) for s in states)


# fmt: off
_ACTIVE: Final = ("submitted", "acknowledged", "supplement_requested", "in_execution",
                  "postponed", "refusal_consultation")
_AFTER_ACK: Final = ("acknowledged", "in_execution", "postponed")
RULES: Final[tuple[Rule, ...]] = (
    Rule(type="consultation.open", actor="either", moves=_to("open", NO_CASE),
         summary="open an informal consultation thread", cite="resolution 7/4 rec. 8"),
    Rule(type="consultation.message", actor="either", moves=_same("open"),
         summary="write in an open consultation", cite="resolution 7/4 rec. 8"),
    Rule(type="consultation.close", actor="either", moves=_to("concluded", "open"),
         summary="conclude the consultation", cite="resolution 7/4 rec. 8"),
    Rule(type="request.submit", actor="requesting", moves=_to("submitted", NO_CASE),
         summary="submit a formal request"),
    Rule(type="request.acknowledge", actor="requested", moves=_to("acknowledged", "submitted"),
         summary="acknowledge receipt (once)"),
    Rule(type="request.supplement_requested", actor="requested",
         moves=_to("supplement_requested", *_AFTER_ACK, "supplement_requested",
                   "refusal_consultation"),
         summary="ask for additional information", cite="UNTOC art. 18(16)"),
    Rule(type="request.supplemented", actor="requesting",
         moves=(("supplement_requested", RESUME),
                *_same(*(s for s in _ACTIVE if s != "supplement_requested"))),
         summary="supply additional information, asked for or volunteered"),
    Rule(type="request.transfer", actor="requested", moves=_to("in_execution", *_AFTER_ACK),
         summary="transfer to a competent authority for execution", cite="UNTOC art. 18(13)"),
    Rule(type="request.progress", actor="requested",
         moves=_to("in_execution", *_AFTER_ACK, "refusal_consultation"),
         summary="report progress", cite="UNTOC art. 18(24)"),
    Rule(type="request.postpone", actor="requested",
         moves=_to("postponed", *_AFTER_ACK, "refusal_consultation"),
         summary="postpone execution", cite="UNTOC art. 18(25)"),
    Rule(type="request.refusal_consultation", actor="requested",
         moves=_to("refusal_consultation", *_AFTER_ACK, "supplement_requested",
                   "refusal_consultation"),
         summary="consult before refusing", cite="UNTOC art. 18(26)"),
    Rule(type="request.refuse", actor="requested",
         moves=_to("refused", *_AFTER_ACK, "supplement_requested", "refusal_consultation"),
         summary="refuse the request", cite="UNTOC art. 18(26)",
         needs_refusal_consultation=True),
    Rule(type="request.execute", actor="requested", partial=True,
         moves=_to("in_execution", *_AFTER_ACK, "refusal_consultation"),
         summary="return partial results", cite="UNTOC art. 18(24)"),
    Rule(type="request.execute", actor="requested", partial=False,
         moves=_to("executed", *_AFTER_ACK, "refusal_consultation"),
         summary="return the final results", cite="UNTOC art. 18(24)"),
    Rule(type="request.withdraw", actor="requesting", moves=_to("withdrawn", *_ACTIVE),
         summary="withdraw the request"),
    Rule(type="case.close", actor="either",
         moves=_to("closed", "concluded", "refused", "executed", "withdrawn"),
         summary="archive a finished case", state_rule="close_requires_terminal_state"),
)
# fmt: on
"""The transition table that drives :func:`next_state`."""

_BY_KEY: Final[Mapping[tuple[str, bool | None], Rule]] = MappingProxyType(
    {(r.type, r.partial): r for r in RULES}
)


_PREFIX_TYPES: Final[Mapping[str, CaseType]] = {
    "request": "request",
    "consultation": "consultation",
}


def _refuse(rule: str, message: str, field: str = "type") -> InvalidTransition:
    return InvalidTransition(f"{message}; rule: {rule}", rule=rule, field=field)


def _cite(rule: Rule) -> str:
    return f" ({rule.cite})" if rule.cite.startswith("UNTOC") else ""


def _rule_for(event: CaseEvent) -> Rule:
    if event.type not in CASE_MESSAGE_TYPES:
        raise _refuse("unknown_type", f"{event.type!r} is not a case message type")
    if event.partial and event.type != "request.execute":
        raise _refuse(
            "partial_only_on_execute",
            f"only request.execute can be partial, not {event.type}",
            "partial",
        )
    return _BY_KEY[(event.type, event.partial if event.type == "request.execute" else None)]


def _start(event: CaseEvent, rule: Rule) -> CaseState:
    if rule.moves[0][0] != NO_CASE:
        raise _refuse("case_unknown", f"{event.type} refers to a case that does not exist yet")
    if len(event.recipients) != 1:
        raise _refuse(
            "single_recipient",
            f"{event.type} must be addressed to exactly one authority, not {len(event.recipients)}",
            "recipients",
        )
    if event.recipients[0] == event.sender:
        raise _refuse(
            "self_addressed",
            f"{event.type}: an authority cannot open a case with itself",
            "recipients",
        )
    return CaseState(
        case_type="consultation" if event.type == "consultation.open" else "request",
        state=rule.moves[0][1],
        requesting=event.sender,
        requested=event.recipients[0],
        events=1,
    )


def _check_parties(state: CaseState, event: CaseEvent, rule: Rule) -> None:
    parties = (state.requesting, state.requested)
    if event.sender not in parties:
        raise _refuse("not_a_party", f"{event.sender} is neither party to this case", "sender")
    other = state.requested if event.sender == state.requesting else state.requesting
    if tuple(event.recipients) != (other,):
        raise _refuse(
            "wrong_recipient",
            f"a {event.type} on this case goes to {other} only, "
            f"not to {', '.join(event.recipients) or 'nobody'}",
            "recipients",
        )
    if rule.actor == "requested" and event.sender != state.requested:
        raise _refuse(
            "requested_side_only",
            f"only the requested authority ({state.requested}) may send {event.type}{_cite(rule)}",
            "sender",
        )
    if rule.actor == "requesting" and event.sender != state.requesting:
        raise _refuse(
            "requesting_side_only",
            f"only the requesting authority ({state.requesting}) may send {event.type}",
            "sender",
        )


def _target(state: CaseState, event: CaseEvent, rule: Rule) -> str:
    if state.state == "closed" or (state.state in TERMINAL_STATES and event.type != "case.close"):
        follow = "nothing more" if state.state == "closed" else "only case.close"
        raise _refuse("terminal_state", f"this case is {state.state}; {follow} can follow")
    if rule.needs_refusal_consultation and not state.refusal_consulted:
        raise _refuse(
            "refuse_requires_refusal_consultation",
            f"{event.type} needs an earlier request.refusal_consultation on this case{_cite(rule)}",
        )
    moves = dict(rule.moves)
    if state.state not in moves:
        if rule.state_rule == "close_requires_terminal_state":
            advice = ""
            if state.case_type == "request":
                side = event.sender == state.requesting
                advice = "; withdraw it first" if side else "; execute or refuse it first"
            message = (
                "case.close needs a finished case (refused, executed, withdrawn or a concluded "
                f"consultation); this case is {state.state}{advice}"
            )
        else:
            message = (
                f"{event.type} is not possible while the case is {state.state}; "
                f"allowed from: {', '.join(moves)}"
            )
        raise _refuse(rule.state_rule, message)
    target = moves[state.state]
    if target == RESUME:  # "acknowledged" only for a hand-built state missing resume_state
        return state.resume_state or "acknowledged"
    return target


def next_state(state: CaseState | None, event: CaseEvent) -> CaseState:
    """Return the case state after ``event``, or raise ``InvalidTransition`` naming the rule.

    ``state`` is ``None`` when the case does not exist yet. Never mutates ``state``.
    """
    rule = _rule_for(event)
    if state is None:
        return _start(event, rule)
    if event.type in START_TYPES:
        raise _refuse("case_exists", f"{event.type} cannot be sent on an existing case")
    expected = _PREFIX_TYPES.get(event.type.partition(".")[0])
    if expected is not None and expected != state.case_type:
        raise _refuse(
            "wrong_case_type",
            f"{event.type} belongs to a {expected} case; this case is a {state.case_type}",
        )
    _check_parties(state, event, rule)
    target = _target(state, event, rule)
    transfer = event.type == "request.transfer"
    return msgspec.structs.replace(
        state,
        state=target,
        events=state.events + 1,
        refusal_consulted=state.refusal_consulted or event.type == "request.refusal_consultation",
        transfers=state.transfers + transfer,
        holder=(event.competent_authority or state.holder) if transfer else state.holder,
        partial_executions=state.partial_executions + event.partial,
        supplement_requests=state.supplement_requests + (target == "supplement_requested"),
        resume_state=(state.resume_state or state.state)
        if target == "supplement_requested"
        else "",
    )


def allowed_types(state: CaseState | None, actor: str) -> tuple[str, ...]:
    """The message types ``actor`` may send now, in :data:`CASE_MESSAGE_TYPES` order.

    On a missing case anyone may start one. Used for UI and CLI help; not a substitute for
    calling :func:`next_state` on the real event.
    """
    if state is None:
        return tuple(t for t in CASE_MESSAGE_TYPES if t in START_TYPES)
    other = state.requested if actor == state.requesting else state.requesting
    allowed = []
    for rule in RULES:
        event = CaseEvent(
            type=rule.type, sender=actor, recipients=(other,), partial=bool(rule.partial)
        )
        try:
            next_state(state, event)
        except InvalidTransition:
            continue
        if rule.type not in allowed:
            allowed.append(rule.type)
    return tuple(t for t in CASE_MESSAGE_TYPES if t in allowed)


def rules_table() -> str:
    """:data:`RULES` as a Markdown table (one row per target state), for the README and CLI."""
    lines = [
        "| message type | sent by | from | to | what it does | basis |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for rule in RULES:
        name = rule.type + {True: " (partial)", False: " (final)", None: ""}[rule.partial]
        actor = {"either": "either party", "requesting": "requesting side"}.get(
            rule.actor, "requested side"
        )
        basis = rule.cite + (", after a refusal consultation" * rule.needs_refusal_consultation)
        shown = [(s, "(unchanged)" if s == t else t) for s, t in rule.moves]
        for target in dict.fromkeys(t for _, t in shown):
            sources = ", ".join(s for s, t in shown if t == target)
            lines.append(f"| {name} | {actor} | {sources} | {target} | {rule.summary} | {basis} |")
    return "\n".join(lines)
