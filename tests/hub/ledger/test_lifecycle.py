"""Tests for hub/ledger/lifecycle.py: the case lifecycle state machine (DESIGN.md section 5)."""

from __future__ import annotations

import random
import re
from collections import deque
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.errors import InvalidTransition, ValidationError
from hub.ledger.lifecycle import (
    NO_CASE,
    RESUME,
    RULES,
    START_TYPES,
    STATES,
    TERMINAL_STATES,
    CaseEvent,
    CaseState,
    Rule,
    allowed_types,
    next_state,
    rules_table,
)
from schemas.common import CASE_MESSAGE_TYPES

REQUESTING = "XA-MOJ"
REQUESTED = "XB-PGO"
STRANGER = "XC-MOJ"

RULE_IDS = frozenset(
    {
        "case_exists",
        "case_unknown",
        "close_requires_terminal_state",
        "not_a_party",
        "partial_only_on_execute",
        "refuse_requires_refusal_consultation",
        "requested_side_only",
        "requesting_side_only",
        "self_addressed",
        "single_recipient",
        "terminal_state",
        "unknown_type",
        "wrong_case_type",
        "wrong_recipient",
        "wrong_state",
    }
)
ACTIVE_REQUEST_STATES = tuple(
    s for s, kind in STATES.items() if kind == "request" and s not in TERMINAL_STATES
)


def _other(sender: str) -> str:
    return REQUESTED if sender == REQUESTING else REQUESTING


def event(type_: str, sender: str = REQUESTING, **kw: Any) -> CaseEvent:
    """A well-addressed event factory: by default it goes to the other party."""
    kw.setdefault("recipients", (_other(sender),))
    return CaseEvent(type=type_, sender=sender, **kw)


def by_requested(type_: str, **kw: Any) -> CaseEvent:
    return event(type_, REQUESTED, **kw)


def make_state(state: str, **kw: Any) -> CaseState:
    """A hand-built case in ``state`` between REQUESTING and REQUESTED."""
    kw.setdefault("case_type", STATES[state] or "request")
    return CaseState(state=state, requesting=REQUESTING, requested=REQUESTED, **kw)


def _kind(type_: str) -> str | None:
    """The case type a message type belongs to (None: case.close, both)."""
    prefix = type_.partition(".")[0]
    return prefix if prefix in ("request", "consultation") else None


def fold(*events: CaseEvent) -> CaseState:
    state: CaseState | None = None
    for e in events:
        state = next_state(state, e)
    assert state is not None
    return state


def refused(state: CaseState | None, e: CaseEvent) -> InvalidTransition:
    with pytest.raises(InvalidTransition) as info:
        next_state(state, e)
    return info.value


def _actor_of(rule: Rule) -> str:
    return REQUESTED if rule.actor == "requested" else REQUESTING


def _event_for(rule: Rule, sender: str) -> CaseEvent:
    return event(rule.type, sender, partial=bool(rule.partial))


def _id(rule: Rule, state: str) -> str:
    return f"{rule.type}{'+partial' * bool(rule.partial)}:{state}"


MOVES = [
    pytest.param(rule, source, target, id=_id(rule, source))
    for rule in RULES
    for source, target in rule.moves
]
ONE_SIDED_MOVES = [
    pytest.param(rule, source, id=_id(rule, source))
    for rule in RULES
    if rule.actor != "either"
    for source, _ in rule.moves
    if source != NO_CASE
]
WRONG_STATES = [
    pytest.param(rule, state, id=_id(rule, state))
    for rule in RULES
    if rule.type not in START_TYPES
    for state in STATES
    if state not in dict(rule.moves)
    and state not in TERMINAL_STATES
    and _kind(rule.type) in (None, STATES[state])
]


def _setup_for(rule: Rule, source: str) -> CaseState:
    extra: dict[str, Any] = {}
    if rule.needs_refusal_consultation:
        extra["refusal_consulted"] = True
    if source == "supplement_requested":
        extra["resume_state"] = "in_execution"
    return make_state(source, **extra)


class TestRulesTable:
    """RULES is the single source of truth: complete, consistent, and every state reachable."""

    def test_every_message_type_has_a_rule(self) -> None:
        assert {r.type for r in RULES} == set(CASE_MESSAGE_TYPES)
        assert {r.partial for r in RULES if r.type == "request.execute"} == {True, False}

    def test_rows_name_known_states(self) -> None:
        for rule in RULES:
            for source, target in rule.moves:
                assert source in STATES or source == NO_CASE
                assert target in STATES or target == RESUME

    def test_terminal_states_are_states(self) -> None:
        assert set(TERMINAL_STATES) <= set(STATES)
        assert {"concluded", "refused", "executed", "withdrawn", "closed"} == TERMINAL_STATES

    def test_every_state_is_reachable_from_no_case(self) -> None:
        seen: set[tuple[str, bool, str]] = set()
        queue: deque[CaseState | None] = deque([None])
        while queue:
            current = queue.popleft()
            for rule in RULES:
                for sender in (REQUESTING, REQUESTED):
                    try:
                        nxt = next_state(current, _event_for(rule, sender))
                    except InvalidTransition:
                        continue
                    key = (nxt.state, nxt.refusal_consulted, nxt.resume_state)
                    if key not in seen:
                        seen.add(key)
                        queue.append(nxt)
        assert {state for state, _, _ in seen} == set(STATES)

    def test_rules_table_prints_every_row(self) -> None:
        table = rules_table()
        for rule in RULES:
            assert rule.type in table
        assert table.count("\n") >= len(RULES) + 1


class TestEveryMove:
    """Each row of RULES, taken by the side it names, lands in the state it names."""

    @pytest.mark.parametrize(("rule", "source", "target"), MOVES)
    def test_allowed_for_the_named_side(self, rule: Rule, source: str, target: str) -> None:
        senders = (REQUESTING, REQUESTED) if rule.actor == "either" else (_actor_of(rule),)
        for sender in senders:
            before = None if source == NO_CASE else _setup_for(rule, source)
            after = next_state(before, _event_for(rule, sender))
            expected = "in_execution" if target == RESUME else target
            assert after.state == expected
            assert after.events == (before.events if before else 0) + 1

    @pytest.mark.parametrize(("rule", "source"), ONE_SIDED_MOVES)
    def test_refused_for_the_other_side(self, rule: Rule, source: str) -> None:
        wrong = _other(_actor_of(rule))
        err = refused(_setup_for(rule, source), _event_for(rule, wrong))
        assert err.rule == f"{rule.actor}_side_only"
        assert err.field == "sender"

    @pytest.mark.parametrize(("rule", "state"), WRONG_STATES)
    def test_refused_from_other_states(self, rule: Rule, state: str) -> None:
        before = make_state(state, refusal_consulted=rule.needs_refusal_consultation)
        err = refused(before, _event_for(rule, _actor_of(rule)))
        assert err.rule == rule.state_rule
        assert err.rule in str(err)


class TestStartingACase:
    """A case starts with request.submit or consultation.open to exactly one other authority."""

    def test_submit_makes_sender_requesting_and_recipient_requested(self) -> None:
        state = next_state(None, event("request.submit"))
        assert (state.case_type, state.state) == ("request", "submitted")
        assert (state.requesting, state.requested, state.events) == (REQUESTING, REQUESTED, 1)

    def test_consultation_open(self) -> None:
        state = next_state(None, event("consultation.open", REQUESTED))
        assert (state.case_type, state.state) == ("consultation", "open")
        assert (state.requesting, state.requested) == (REQUESTED, REQUESTING)

    @pytest.mark.parametrize("type_", sorted(START_TYPES))
    def test_start_on_existing_case_is_refused(self, type_: str) -> None:
        assert refused(make_state("acknowledged"), event(type_)).rule == "case_exists"

    @pytest.mark.parametrize("type_", sorted(set(CASE_MESSAGE_TYPES) - START_TYPES))
    def test_anything_else_on_missing_case_is_refused(self, type_: str) -> None:
        assert refused(None, event(type_)).rule == "case_unknown"

    @pytest.mark.parametrize("recipients", [(), (REQUESTED, STRANGER)])
    def test_needs_exactly_one_recipient(self, recipients: tuple[str, ...]) -> None:
        err = refused(None, event("request.submit", recipients=recipients))
        assert (err.rule, err.field) == ("single_recipient", "recipients")

    def test_cannot_open_a_case_with_oneself(self) -> None:
        err = refused(None, event("consultation.open", recipients=(REQUESTING,)))
        assert err.rule == "self_addressed"

    def test_receipts_and_unknown_types_are_not_case_messages(self) -> None:
        assert refused(make_state("submitted"), event("receipt")).rule == "unknown_type"


class TestPartiesAndAddressing:
    """Only the two parties act on a case, each message goes to the other, types match the case."""

    def test_stranger_is_not_a_party(self) -> None:
        err = refused(make_state("in_execution"), event("request.progress", STRANGER))
        assert (err.rule, err.field) == ("not_a_party", "sender")

    @pytest.mark.parametrize(
        "recipients", [(), (REQUESTING,), (STRANGER,), (REQUESTED, STRANGER), (REQUESTED,) * 2]
    )
    def test_message_goes_to_the_other_party_only(self, recipients: tuple[str, ...]) -> None:
        e = event("request.withdraw", recipients=recipients)
        assert refused(make_state("acknowledged"), e).rule == "wrong_recipient"

    def test_request_types_refused_on_consultation(self) -> None:
        err = refused(make_state("open"), by_requested("request.acknowledge"))
        assert err.rule == "wrong_case_type"

    def test_consultation_types_refused_on_request(self) -> None:
        err = refused(make_state("acknowledged"), event("consultation.message"))
        assert err.rule == "wrong_case_type"

    def test_partial_only_on_execute(self) -> None:
        err = refused(make_state("in_execution"), by_requested("request.progress", partial=True))
        assert (err.rule, err.field) == ("partial_only_on_execute", "partial")


class TestRefusal:
    """request.refuse needs an earlier request.refusal_consultation (UNTOC art. 18(26))."""

    def test_refusal_without_consultation_is_refused(self) -> None:
        state = fold(event("request.submit"), by_requested("request.acknowledge"))
        err = refused(state, by_requested("request.refuse"))
        assert err.rule == "refuse_requires_refusal_consultation"
        assert (
            "request.refuse needs an earlier request.refusal_consultation on this case "
            "(UNTOC art. 18(26))" in str(err)
        )
        assert isinstance(err, ValidationError)

    def test_refusal_before_acknowledgement_names_the_consultation(self) -> None:
        err = refused(fold(event("request.submit")), by_requested("request.refuse"))
        assert err.rule == "refuse_requires_refusal_consultation"

    def test_refusal_after_consultation_is_allowed(self) -> None:
        state = fold(
            event("request.submit"),
            by_requested("request.acknowledge"),
            by_requested("request.refusal_consultation"),
            event("request.supplemented"),
            by_requested("request.refuse"),
        )
        assert state.state == "refused"
        assert state.refusal_consulted

    def test_consultation_counts_even_if_execution_continued(self) -> None:
        state = fold(
            event("request.submit"),
            by_requested("request.acknowledge"),
            by_requested("request.refusal_consultation"),
            by_requested("request.execute", partial=True),
            by_requested("request.postpone"),
        )
        assert state.state == "postponed"
        assert state.refusal_consulted
        assert next_state(state, by_requested("request.refuse")).state == "refused"

    def test_requesting_side_cannot_refuse(self) -> None:
        state = make_state("refusal_consultation", refusal_consulted=True)
        err = refused(state, event("request.refuse"))
        assert err.rule == "requested_side_only"
        assert "UNTOC art. 18(26)" in err.message


class TestExecution:
    """Partial results keep the case in execution; the final result makes it executed."""

    def test_partial_then_final(self) -> None:
        state = fold(event("request.submit"), by_requested("request.acknowledge"))
        for n in (1, 2, 3):
            state = next_state(state, by_requested("request.execute", partial=True))
            assert (state.state, state.partial_executions) == ("in_execution", n)
        state = next_state(state, by_requested("request.execute"))
        assert (state.state, state.partial_executions) == ("executed", 3)

    def test_execution_needs_acknowledgement(self) -> None:
        err = refused(fold(event("request.submit")), by_requested("request.execute"))
        assert err.rule == "wrong_state"
        assert "acknowledged" in err.message

    def test_postponed_execution_resumes(self) -> None:
        postponed = make_state("postponed")
        for type_ in ("request.progress", "request.transfer"):
            assert next_state(postponed, by_requested(type_)).state == "in_execution"
        assert next_state(postponed, by_requested("request.postpone")).state == "postponed"
        nxt = next_state(postponed, by_requested("request.refusal_consultation"))
        assert nxt.state == "refusal_consultation"
        assert next_state(postponed, by_requested("request.execute")).state == "executed"


class TestTransfer:
    """Transfers to competent authorities repeat freely; the central authority stays requested."""

    def test_repeated_transfers(self) -> None:
        state = fold(event("request.submit"), by_requested("request.acknowledge"))
        for n, holder in enumerate(("XB-PROSECUTOR-1", "XB-POLICE", ""), start=1):
            state = next_state(state, by_requested("request.transfer", competent_authority=holder))
            assert (state.state, state.transfers, state.requested) == ("in_execution", n, REQUESTED)
        assert state.holder == "XB-POLICE"  # a transfer without a name keeps the last holder
        assert next_state(state, by_requested("request.progress")).transfers == 3


class TestSupplements:
    """A supplement request pauses the case; the answer returns it to where it was."""

    @pytest.mark.parametrize(
        "before", ["acknowledged", "in_execution", "postponed", "refusal_consultation"]
    )
    def test_supplemented_returns_to_the_state_before(self, before: str) -> None:
        state = next_state(make_state(before), by_requested("request.supplement_requested"))
        assert (state.state, state.resume_state) == ("supplement_requested", before)
        again = next_state(state, by_requested("request.supplement_requested"))
        assert again.resume_state == before
        assert again.supplement_requests == 2
        after = next_state(again, event("request.supplemented"))
        assert (after.state, after.resume_state) == (before, "")

    def test_volunteered_supplement_keeps_the_state(self) -> None:
        assert next_state(make_state("postponed"), event("request.supplemented")).state == (
            "postponed"
        )

    def test_leaving_otherwise_forgets_the_resume_state(self) -> None:
        state = make_state("supplement_requested", resume_state="in_execution")
        after = next_state(state, by_requested("request.refusal_consultation"))
        assert (after.state, after.resume_state) == ("refusal_consultation", "")


class TestTerminalStates:
    """Refused, executed, withdrawn and concluded accept only case.close; closed accepts nothing."""

    @pytest.mark.parametrize(
        ("rule", "state"),
        [
            pytest.param(rule, state, id=_id(rule, state))
            for rule in RULES
            if rule.type not in START_TYPES
            for state in sorted(TERMINAL_STATES)
            if STATES[state] in (None, _kind(rule.type)) or _kind(rule.type) is None
        ],
    )
    def test_only_close_follows(self, rule: Rule, state: str) -> None:
        before = make_state(state, case_type=_kind(rule.type) or STATES[state] or "request")
        e = _event_for(rule, _actor_of(rule))
        if rule.type == "case.close" and state != "closed":
            assert next_state(before, e).state == "closed"
        else:
            assert refused(before, e).rule == "terminal_state"

    def test_second_close_is_refused(self) -> None:
        closed = fold(
            event("request.submit"), event("request.withdraw"), by_requested("case.close")
        )
        err = refused(closed, event("case.close"))
        assert err.rule == "terminal_state"
        assert "nothing more" in err.message

    @pytest.mark.parametrize("state", [*ACTIVE_REQUEST_STATES, "open"])
    def test_close_needs_a_finished_case(self, state: str) -> None:
        err = refused(make_state(state), event("case.close"))
        assert err.rule == "close_requires_terminal_state"


class TestConsultation:
    """Either party writes in and concludes a consultation; it is then archived with case.close."""

    def test_thread(self) -> None:
        state = fold(
            event("consultation.open"),
            by_requested("consultation.message"),
            event("consultation.message"),
            by_requested("consultation.close"),
        )
        assert (state.state, state.events) == ("concluded", 4)
        assert refused(state, event("consultation.message")).rule == "terminal_state"
        assert next_state(state, event("case.close")).state == "closed"


class TestAllowedTypes:
    """allowed_types tells each actor what it may send now, consistently with next_state."""

    def test_missing_case(self) -> None:
        assert allowed_types(None, REQUESTING) == ("consultation.open", "request.submit")

    def test_submitted(self) -> None:
        state = make_state("submitted")
        assert allowed_types(state, REQUESTED) == ("request.acknowledge",)
        assert allowed_types(state, REQUESTING) == ("request.supplemented", "request.withdraw")

    def test_refusal_appears_after_consultation(self) -> None:
        assert "request.refuse" not in allowed_types(make_state("in_execution"), REQUESTED)
        consulted = make_state("in_execution", refusal_consulted=True)
        assert "request.refuse" in allowed_types(consulted, REQUESTED)

    def test_nothing_for_strangers_or_closed_cases(self) -> None:
        assert allowed_types(make_state("in_execution"), STRANGER) == ()
        assert allowed_types(make_state("closed"), REQUESTING) == ()
        assert allowed_types(make_state("executed"), REQUESTING) == ("case.close",)


# Mostly well-formed events between the parties, so that sequences get deep into the lifecycle,
# with a minority of strangers, misaddressed messages and non-case types.
_RECIPIENTS = st.sampled_from(
    [None] * 8 + [(), (STRANGER,), (REQUESTING,), (REQUESTED,), (REQUESTING, REQUESTED)]
)
_STEP = st.tuples(
    st.sampled_from((*CASE_MESSAGE_TYPES, "receipt")),
    st.sampled_from((REQUESTING,) * 3 + (REQUESTED,) * 4 + (STRANGER,)),
    _RECIPIENTS,
    st.booleans(),
    st.sampled_from(("", "XB-PROSECUTOR")),
)
_RULE_ID = re.compile(r"^[a-z]+(_[a-z]+)*$")


def _step(state: CaseState | None, e: CaseEvent) -> CaseState | None:
    """Apply ``e`` and check the invariants; return the new state, or None if refused."""
    try:
        after = next_state(state, e)
    except InvalidTransition as err:
        assert err.rule in RULE_IDS
        assert _RULE_ID.match(err.rule)
        assert err.rule in str(err)
        return None
    assert after.state in STATES
    assert STATES[after.state] in (None, after.case_type)
    if after.state == "refused":
        assert after.refusal_consulted
    if after.state == "supplement_requested":
        assert after.resume_state in ACTIVE_REQUEST_STATES
    if state is not None:
        assert e.type in allowed_types(state, e.sender)
        assert after.events == state.events + 1
        assert (after.case_type, after.requesting, after.requested) == (
            state.case_type,
            state.requesting,
            state.requested,
        )
        assert after.refusal_consulted >= state.refusal_consulted
        assert after.transfers >= state.transfers
        assert after.partial_executions >= state.partial_executions
        if state.state in TERMINAL_STATES:  # terminal only ever moves on to closed
            assert state.state != "closed"
            assert after.state == "closed"
    return after


class TestProperties:
    """Random event sequences only ever raise InvalidTransition and keep the invariants."""

    @settings(max_examples=500, deadline=None)
    @given(st.sampled_from(sorted(START_TYPES)), st.lists(_STEP, max_size=60))
    def test_random_sequences(
        self, start: str, steps: list[tuple[str, str, tuple[str, ...] | None, bool, str]]
    ) -> None:
        state: CaseState | None = None
        for type_, sender, recipients, partial, holder in [
            (start, REQUESTING, None, False, ""),
            *steps,
        ]:
            e = CaseEvent(
                type=type_,
                sender=sender,
                recipients=(_other(sender),) if recipients is None else recipients,
                partial=partial,
                competent_authority=holder,
            )
            state = _step(state, e) or state

    @settings(max_examples=300, deadline=None)
    @given(st.randoms(use_true_random=False))
    def test_guided_walks(self, rnd: random.Random) -> None:
        """Walks that mostly follow allowed_types, so they reach every end of the lifecycle."""
        state: CaseState | None = None
        acknowledged = False
        for _ in range(rnd.randint(1, 40)):
            sender = REQUESTED if rnd.random() < 0.65 else REQUESTING
            allowed = allowed_types(state, sender)
            if allowed and rnd.random() < 0.9:
                type_ = rnd.choice(allowed)
            else:
                type_ = rnd.choice(CASE_MESSAGE_TYPES)
            e = event(type_, sender, partial=type_ == "request.execute" and rnd.random() < 0.5)
            after = _step(state, e)
            if type_ in allowed:
                assert after is not None
            state = after or state
            acknowledged |= after is not None and e.type == "request.acknowledge"
            if state is not None and state.case_type == "request":  # nothing skips the ack
                assert acknowledged or state.state in {"submitted", "withdrawn", "closed"}
            if state is not None and state.state == "closed":
                assert allowed_types(state, REQUESTING) == allowed_types(state, REQUESTED) == ()
                break


def test_readme_shows_the_current_rules_table() -> None:
    """The README's lifecycle table is generated from RULES; regenerate it when rules change."""
    from pathlib import Path

    from hub.ledger.lifecycle import rules_table

    readme = (Path(__file__).resolve().parents[3] / "README.md").read_text()
    assert rules_table() in readme
