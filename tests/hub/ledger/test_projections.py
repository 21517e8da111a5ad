"""Projections: review and statistics checked against a hand-built history; a projection
rebuilt from the ledger bytes equals the one built live through the admission rules."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser

import msgspec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hub.crypto import cards
from hub.crypto import envelope as sealing
from hub.crypto.keys import AuthorityKeys, OperatorKey
from hub.gateway.admission import Accept, Limits, admit
from hub.ledger.lifecycle import allowed_types
from hub.ledger.projections.cases import Cases, status_of
from hub.ledger.projections.review import bilateral_review, durations
from hub.ledger.projections.state import HubState
from hub.ledger.projections.stats import legal_basis_group, statistics
from hub.reports import review_csv, review_html, stats_csv
from node_agent.config import AgentSettings
from node_agent.identity import card_file
from schemas.codec import decode, encode
from schemas.envelope import ActionMeta, Body, CaseMeta, Header
from schemas.ledger import AuthorityAdmitted, LedgerEntry

T0 = datetime(2026, 1, 1, tzinfo=UTC)
A, B, C = "XA-MOJ", "XB-MOJ", "XC-MOJ"


def _header(n: int, case: str, type_: str, sender: str, to: str, **kw: object) -> Header:
    return Header(
        message_id=f"00000000-0000-7000-8000-{n:012d}",
        case_id=f"00000000-0000-7000-9000-{int(case):012d}",
        type=type_,  # type: ignore[arg-type]
        sender=sender,
        sender_key_id="0000000000000000",
        recipients=[to],
        sent_at=T0,
        **kw,  # type: ignore[arg-type]
    )


class History:
    """Hand-built cases: apply (day, case, type, sender, to) with exact recorded times."""

    def __init__(self) -> None:
        self.cases = Cases()
        self.n = 0

    def add(self, day: float, case: str, type_: str, sender: str, to: str, **kw: object) -> None:
        self.n += 1
        header = _header(self.n, case, type_, sender, to, **kw)
        self.cases.check(header)
        self.cases.apply(self.n, T0 + timedelta(days=day), header, b"\x00" * 32)

    def case_id(self, case: str) -> str:
        return f"00000000-0000-7000-9000-{int(case):012d}"


def _history() -> History:
    h = History()
    mla = CaseMeta(kind="mla", nature=["taking-evidence"], legal_basis="untoc-art18")
    ext = CaseMeta(kind="extradition", legal_basis="treaty:XA-XB 1999", urgency="urgent",
                   provisional_arrest=True, deadline=T0 + timedelta(days=40))  # fmt: skip
    # A -> B: consultation that led to request 2
    h.add(0, "1", "consultation.open", A, B)
    h.add(1, "1", "consultation.close", B, A)
    # request 2: acknowledged after 2 days, executed after 10
    h.add(
        2,
        "2",
        "request.submit",
        A,
        B,
        meta=mla,
        action=ActionMeta(after_consultation=h.case_id("1")),
    )
    h.add(4, "2", "request.acknowledge", B, A)
    h.add(6, "2", "request.transfer", B, A, action=ActionMeta(competent_authority="Court Z"))
    h.add(12, "2", "request.execute", B, A)
    # request 3: acknowledged after 4 days, refused after consultation on day 20
    h.add(3, "3", "request.submit", A, B, meta=mla)
    h.add(7, "3", "request.acknowledge", B, A)
    h.add(15, "3", "request.refusal_consultation", B, A)
    h.add(20, "3", "request.refuse", B, A)
    # request 4: extradition, never acknowledged: overdue (deadline day 40) and > 90 days
    h.add(5, "4", "request.submit", A, B, meta=ext)
    # B -> A: request 5 acknowledged after 1 day, still in execution
    h.add(8, "5", "request.submit", B, A, meta=CaseMeta(kind="mla", legal_basis="reciprocity"))
    h.add(9, "5", "request.acknowledge", A, B)
    h.add(10, "5", "request.progress", A, B)
    # a case with another authority, outside the pair
    h.add(1, "6", "request.submit", A, C, meta=mla)
    return h


NOW = T0 + timedelta(days=100)


class TestBilateralReview:
    """Numbers of rec. 11's review, computed by hand for the history above."""

    def test_numbers(self) -> None:
        h = _history()
        review = bilateral_review(h.cases.by_id.values(), A, B, since=None, until=None, now=NOW)
        ab, ba = review.directions
        assert (ab.requesting, ab.requested, ab.requests) == (A, B, 3)
        assert ab.by_state == {"executed": 1, "refused": 1, "submitted": 1}
        assert (
            ab.to_acknowledge.count,
            ab.to_acknowledge.median_days,
            ab.to_acknowledge.p90_days,
        ) == (2, 3.0, 4.0)
        assert (ab.to_execute.count, ab.to_execute.median_days) == (1, 10.0)
        assert [c.case_id for c in ab.overdue] == [h.case_id("4")]
        assert [(r.case_id, r.consulted_first) for r in ab.refusals] == [(h.case_id("3"), True)]
        assert [c.case_id for c in ab.pending_over_90_days] == [h.case_id("4")]
        assert [(c.consultation_id, c.led_to) for c in ab.consultations] == [
            (h.case_id("1"), (h.case_id("2"),))
        ]
        assert (ba.requests, ba.by_state, ba.to_acknowledge.median_days) == (
            1,
            {"in_execution": 1},
            1.0,
        )
        assert ba.overdue == () and ba.refusals == ()

    def test_period_filter(self) -> None:
        h = _history()
        review = bilateral_review(
            h.cases.by_id.values(),
            A,
            B,
            since=T0 + timedelta(days=3),
            until=T0 + timedelta(days=6),
            now=NOW,
        )
        assert review.directions[0].requests == 2  # cases 3 (day 3) and 4 (day 5)

    def test_outputs_parse(self) -> None:
        h = _history()
        review = bilateral_review(h.cases.by_id.values(), A, B, since=None, until=None, now=NOW)
        rows = list(csv.reader(io.StringIO(review_csv(review))))
        assert rows[0] == ["direction", "measure", "key", "value"]
        assert ["XA-MOJ->XB-MOJ", "requests", "", "3"] in rows
        assert ["XA-MOJ->XB-MOJ", "refusal", h.case_id("3"), "consulted"] in rows
        as_json = json.loads(msgspec.json.encode(review))
        assert as_json["directions"][0]["to_acknowledge"]["median_days"] == 3.0

    def test_html_is_well_formed_with_chart(self) -> None:
        h = _history()
        page = review_html(
            bilateral_review(h.cases.by_id.values(), A, B, since=None, until=None, now=NOW)
        )
        checker = _TagBalance()
        checker.feed(page)
        checker.close()
        assert checker.stack == [], f"unclosed tags: {checker.stack}"
        assert checker.seen["svg"] == 1 and checker.seen["rect"] >= 2
        assert page.startswith("<!DOCTYPE html>")
        assert "Bilateral case review: XA-MOJ and XB-MOJ" in page


class TestStatistics:
    """Rec. 6 statistics by kind, nature, legal basis (UNTOC on its own) and outcome."""

    def test_by_legal_basis(self) -> None:
        stats = statistics(_history().cases.by_id.values(), "legal-basis", now=NOW)
        rows = {r.group: r for r in stats.rows}
        assert set(rows) == {"UNTOC art. 18", "treaty: XA-XB 1999", "reciprocity"}
        untoc = rows["UNTOC art. 18"]
        assert (untoc.requests, untoc.executed, untoc.refused, untoc.pending) == (3, 1, 1, 1)
        assert untoc.median_days_to_acknowledge == 3.0
        assert untoc.median_days_to_outcome == 13.5  # 10 and 17 days
        assert (stats.requests, stats.untoc_as_legal_basis, stats.consultations) == (5, 3, 1)

    def test_by_outcome_and_kind_and_csv(self) -> None:
        cases = _history().cases.by_id.values()
        outcome = {r.group: r.requests for r in statistics(cases, "outcome", now=NOW).rows}
        assert outcome == {"executed": 1, "refused": 1, "pending": 3}
        kind = {r.group: r.requests for r in statistics(cases, "kind", now=NOW).rows}
        assert kind == {"mla": 4, "extradition": 1}
        rows = list(csv.reader(io.StringIO(stats_csv(statistics(cases, "kind", now=NOW)))))
        assert rows[0][:2] == ["kind", "requests"] and rows[1][:2] == ["extradition", "1"]

    def test_legal_basis_groups(self) -> None:
        assert legal_basis_group("untoc-art18") == "UNTOC art. 18"
        assert legal_basis_group("UNTOC-art-16") == "UNTOC art. 16"
        assert legal_basis_group("treaty: Lisbon 2001") == "treaty: Lisbon 2001"
        assert legal_basis_group(None) == "unstated"

    def test_durations(self) -> None:
        assert durations([]) == durations(())
        d = durations([1.0, 2.0, 3.0, 4.0, 10.0])
        assert (d.count, d.median_days, d.p90_days) == (5, 3.0, 10.0)


class _TagBalance(HTMLParser):
    VOID = {"meta", "br", "img", "hr", "input", "link", "rect"}

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.seen: dict[str, int] = {}

    def handle_starttag(self, tag: str, attrs: object) -> None:
        self.seen[tag] = self.seen.get(tag, 0) + 1
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: object) -> None:
        self.seen[tag] = self.seen.get(tag, 0) + 1

    def handle_endtag(self, tag: str) -> None:
        if tag in self.VOID:
            return
        assert self.stack and self.stack[-1] == tag, f"</{tag}> closes {self.stack[-1:]}"
        self.stack.pop()


# --- rebuilt == live, on long random valid histories --------------------------------------

OPERATOR = OperatorKey.generate()
KEYS = {name: AuthorityKeys.generate("x25519") for name in (A, B, C)}


def _admissions() -> list[LedgerEntry]:
    entries = []
    for index, (name, keys) in enumerate(KEYS.items()):
        made = card_file(
            AgentSettings(id=name, state=name[:2], name=name, kinds=["mla"], languages=["en"]),
            keys,
            now=T0 - timedelta(days=1),
        )
        entries.append(
            LedgerEntry(
                index=index,
                recorded_at=T0,
                event=AuthorityAdmitted(
                    authority=name,
                    signed=made.signed,
                    operator_key=OPERATOR.public,
                    operator_signature=cards.admit(made.signed, OPERATOR, now=T0),
                ),
            )
        )
    return entries


ADMISSIONS = _admissions()


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(st.integers(0, 7), st.integers(0, 2), st.integers(0, 50)),
        min_size=20,
        max_size=120,
    )
)
def test_rebuilt_projection_equals_live(steps: list[tuple[int, int, int]]) -> None:
    """Drive random valid actions through the admission rules, then rebuild from bytes."""
    live = HubState()
    stored: list[bytes] = []
    for entry in ADMISSIONS:
        live.apply(entry)
        stored.append(encode(entry))
    case_ids: list[str] = []
    clock = T0
    for n, (pick_case, pick_actor, pick_type) in enumerate(steps):
        clock += timedelta(hours=7)
        case = case_ids[pick_case % len(case_ids)] if case_ids and pick_case < 6 else None
        record = live.cases.by_id.get(case) if case else None
        options: list[str] = []
        if record is not None:
            parties = (record.lifecycle.requesting, record.lifecycle.requested)
            actor = parties[pick_actor % 2]
            options = list(allowed_types(record.lifecycle, actor))
            if not options:  # the other side's turn
                actor = parties[(pick_actor + 1) % 2]
                options = list(allowed_types(record.lifecycle, actor))
            to = parties[0] if actor == parties[1] else parties[1]
        if not options:  # no case picked, or it is finished: open a new one
            record = None
            actor, to = (A, B, C)[pick_actor], (B, C, A)[pick_actor]
            case = f"00000000-0000-7000-9000-{n:012d}"
            options = list(allowed_types(None, actor))
        type_ = options[pick_type % len(options)]
        keys = KEYS[to]
        envelope = sealing.seal(
            sender=actor, sender_keys=KEYS[actor],
            recipients=[sealing.Recipient(to, keys.key_id, keys.suite, keys.encryption_public)],
            message_id=f"00000000-0000-7000-8000-{n:012d}", case_id=str(case), type=type_,
            body=Body(text="x"), now=clock,
            meta=CaseMeta(legal_basis="untoc-art18") if type_ == "request.submit" else None,
            action=ActionMeta(partial=pick_type % 2 == 0) if type_ == "request.execute" else None,
        )  # fmt: skip
        decision = admit(
            encode(envelope), intake_sender=actor, state=live, limits=Limits(), now=clock,
            operator_key=OPERATOR.public,
        )  # fmt: skip
        assert isinstance(decision, Accept), decision
        entry = LedgerEntry(index=live.next_index, recorded_at=clock, event=decision.event)
        live.apply(entry)
        stored.append(encode(entry))
        if record is None:
            case_ids.append(str(case))

    assert len(stored) == len(ADMISSIONS) + len(steps)  # every random step was an action
    rebuilt = HubState()
    for data in stored:
        rebuilt.apply(decode(data, LedgerEntry))
    now = clock + timedelta(days=1)
    assert _view(rebuilt.cases, now) == _view(live.cases, now)
    assert rebuilt.next_index == live.next_index == len(stored)


def _view(cases: Cases, now: datetime) -> object:
    return (
        sorted(
            ((status_of(r, now), tuple(r.trail)) for r in cases.by_id.values()),
            key=lambda row: row[0].case_id,
        ),
        statistics(cases.by_id.values(), "outcome", now=now),
        bilateral_review(cases.by_id.values(), A, B, since=None, until=None, now=now),
    )
