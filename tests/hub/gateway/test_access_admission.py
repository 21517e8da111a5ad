"""The operator's access statements at the hub's intake: one test per rule (issue 5).

Real signatures throughout: the state is a real history (``tests.hub.audit.history``) folded
into ``HubState``; statements are signed by its operator key, consents by the home authority.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from hub import subjects
from hub.crypto import envelope as sealing
from hub.crypto.access import sign_statement
from hub.crypto.keys import AuthorityKeys, OperatorKey
from hub.gateway.admission import Accept, Decision, Duplicate, Limits, Reject, admit
from hub.ledger.projections.state import HubState
from schemas.access import AccessRequest, AccessStatement, SignedConsent
from schemas.codec import decode, encode
from schemas.envelope import Body
from schemas.ledger import AccessRecorded, LedgerEntry
from tests import access_events as ev
from tests.hub.audit.history import KEYS, NOW, OPERATOR, History, mid, standard

A, B, C = "XA-MOJ", "XB-MOJ", "XC-MOJ"
AT = NOW + timedelta(hours=1)


@pytest.fixture
def history() -> History:
    return standard()


def _state(h: History) -> HubState:
    state = HubState()
    for data in h.entries:
        state.apply(decode(data, LedgerEntry))
    return state


def _submit(
    h: History,
    request: AccessRequest,
    *,
    sender: str = subjects.OPERATOR,
    operator: OperatorKey = OPERATOR,
) -> Decision:
    return admit(
        encode(request),
        intake_sender=sender,
        state=_state(h),
        limits=Limits(),
        now=AT,
        operator_key=operator.public,
    )


def _request(statement: AccessStatement, operator: OperatorKey = OPERATOR) -> AccessRequest:
    return sign_statement(statement, operator)


def _record(h: History, decision: Decision) -> int:
    assert isinstance(decision, Accept), decision
    assert isinstance(decision.event, AccessRecorded)
    return h.append(decision.event)


def _refusal(decision: Decision) -> tuple[str, str]:
    assert isinstance(decision, Reject), decision
    return decision.error.code, str(decision.error)


def test_a_liaison_accreditation_is_recorded_and_folded(history: History) -> None:
    statement = ev.liaison(mid(500), "XA-LO-1", A, B, at=AT)
    index = _record(history, _submit(history, _request(statement)))
    record = _state(history).access.get(mid(500))
    assert record is not None
    assert (record.role, record.holder, record.home, record.host) == ("liaison", "XA-LO-1", A, B)
    assert record.ledger_index == index and record.valid_until == statement.valid_until


def test_an_auditor_admission_and_its_revocation(history: History) -> None:
    _record(history, _submit(history, _request(ev.auditor(mid(501), at=AT))))
    revoked = _record(history, _submit(history, _request(ev.revocation(mid(501), at=AT))))
    state = _state(history)
    record = state.access.get(mid(501))
    assert record is not None and record.revoked_index == revoked
    assert state.access.status(record, AT, state.directory) == "revoked"
    again = _submit(history, _request(ev.revocation(mid(501), "again", at=AT)))
    assert isinstance(again, Duplicate) and again.ledger_index == revoked


def test_the_same_statement_twice_is_a_duplicate(history: History) -> None:
    request = _request(ev.liaison(mid(502), "XA-LO-1", A, B, at=AT))
    index = _record(history, _submit(history, request))
    again = _submit(history, request)
    assert isinstance(again, Duplicate) and again.ledger_index == index


def test_an_accreditation_id_is_used_once(history: History) -> None:
    index = _record(history, _submit(history, _request(ev.auditor(mid(503), at=AT))))
    other = ev.liaison(mid(503), "XA-LO-1", A, B, at=AT)
    assert _refusal(_submit(history, _request(other))) == (
        "accreditation_invalid",
        f"accreditation_id: {mid(503)} is already used by the accreditation at ledger index "
        f"{index}",
    )


def test_only_the_operator_intake_may_submit(history: History) -> None:
    decision = _submit(history, _request(ev.auditor(mid(504), at=AT)), sender=A)
    assert _refusal(decision) == (
        "sender_mismatch",
        "submission: only the operator may accredit or revoke access",
    )


def test_another_operator_key_is_refused(history: History) -> None:
    intruder = OperatorKey(bytes(32))
    decision = _submit(history, _request(ev.auditor(mid(505), at=AT), intruder))
    assert _refusal(decision) == (
        "bad_signature",
        "operator_signature: the access statement is not signed by this operator key",
    )


def test_a_consent_not_signed_by_the_home_authority_is_refused(history: History) -> None:
    forged = ev.consent("XA-LO-1", A, B, keys=KEYS[C])  # names XA-MOJ, signed by XC-MOJ's key
    decision = _submit(
        history, _request(ev.liaison(mid(506), "XA-LO-1", A, B, at=AT, signed_consent=forged))
    )
    code, detail = _refusal(decision)
    assert code == "key_not_valid" and KEYS[C].key_id in detail, detail


def test_a_tampered_consent_is_refused(history: History) -> None:
    signed = ev.consent("XA-LO-1", A, B)
    renamed = signed.consent.replace(b"XA-LO-1", b"XA-LO-9")  # another officer, same length
    assert renamed != signed.consent
    tampered = SignedConsent(consent=renamed, signature=signed.signature)
    statement = ev.liaison(mid(507), "XA-LO-9", A, B, at=AT, signed_consent=tampered)
    assert _refusal(_submit(history, _request(statement))) == (
        "bad_signature",
        f"signature: the consent is not signed by {A}'s key {KEYS[A].key_id}",
    )


def test_an_expired_consent_is_refused(history: History) -> None:
    signed = ev.consent("XA-LO-1", A, B, valid_until=AT - timedelta(minutes=1))
    statement = ev.liaison(mid(508), "XA-LO-1", A, B, at=AT, signed_consent=signed)
    code, detail = _refusal(_submit(history, _request(statement)))
    assert code == "key_not_valid" and detail.startswith("valid_until: the consent expired")


def test_the_accreditation_may_not_outlast_the_consent(history: History) -> None:
    signed = ev.consent("XA-LO-1", A, B, valid_until=AT + timedelta(days=2))
    statement = ev.liaison(
        mid(509), "XA-LO-1", A, B, at=AT, until=AT + timedelta(days=3), signed_consent=signed
    )
    code, detail = _refusal(_submit(history, _request(statement)))
    assert code == "accreditation_invalid"
    assert "is after the end of the home authority's consent" in detail


def test_a_revoked_host_cannot_receive_a_liaison_officer(history: History) -> None:
    revoked = history.append(ev.authority_revoked(B))
    statement = ev.liaison(mid(510), "XA-LO-1", A, B, at=AT)
    assert _refusal(_submit(history, _request(statement))) == (
        "revoked",
        f"consent: {B} was revoked at ledger index {revoked}",
    )


def test_a_past_term_or_a_future_statement_is_refused(history: History) -> None:
    past = ev.auditor(mid(511), at=AT - timedelta(days=2), until=AT - timedelta(days=1))
    code, detail = _refusal(_submit(history, _request(past)))
    assert code == "accreditation_invalid" and detail.startswith("valid_until:")
    future = ev.auditor(mid(512), at=AT + timedelta(hours=1))
    code, detail = _refusal(_submit(history, _request(future)))
    assert code == "invalid" and detail.startswith("issued_at:"), (code, detail)


def test_revoking_an_unknown_accreditation_is_refused(history: History) -> None:
    assert _refusal(_submit(history, _request(ev.revocation(mid(513), at=AT)))) == (
        "accreditation_invalid",
        f"accreditation_id: no accreditation {mid(513)} is recorded",
    )


def test_an_undecodable_statement_names_the_field(history: History) -> None:
    good = _request(ev.auditor(mid(514), at=AT))
    bad = AccessRequest(
        request_id=good.request_id,
        statement=good.statement[:-5],
        operator_signature=OPERATOR.sign(b"mla-hub/v1/access\x00" + good.statement[:-5]),
    )
    code, detail = _refusal(_submit(history, bad))
    assert code == "malformed" and detail.startswith("statement:"), (code, detail)


# --- copied liaison officers (Header.observers) -------------------------------------------------

OFFICER = AuthorityKeys.generate("x25519")


def _accredit_with_keys(
    h: History, accreditation_id: str, *, home: str = A, host: str = B, keys: bool = True
) -> int:
    signed = ev.consent(
        "LO-1",
        home,
        host,
        officer_keys=OFFICER.public() if keys else None,
        n=int(accreditation_id[-4:], 16),
    )
    statement = ev.liaison(accreditation_id, "LO-1", home, host, at=AT, signed_consent=signed)
    return h.append(ev.recorded(statement))


def _copying(
    h: History,
    accreditation_id: str,
    *,
    to: str = B,
    officer: AuthorityKeys = OFFICER,
    sender: str = A,
) -> Decision:
    holder = sealing.observer_holder(accreditation_id)
    envelope = sealing.seal(
        sender=sender,
        sender_keys=KEYS[sender],
        recipients=[
            sealing.Recipient(to, KEYS[to].key_id, KEYS[to].suite, KEYS[to].encryption_public)
        ],
        message_id=mid(700),
        case_id=mid(701),
        type="request.submit",
        body=Body(text="copied"),
        now=AT,
        observers=[
            (
                accreditation_id,
                sealing.Recipient(holder, officer.key_id, officer.suite, officer.encryption_public),
            )
        ],
    )
    return admit(
        encode(envelope),
        intake_sender=sender,
        state=_state(h),
        limits=Limits(),
        now=AT,
        operator_key=OPERATOR.public,
    )


def test_the_home_authority_may_copy_its_officer(history: History) -> None:
    _accredit_with_keys(history, mid(600))
    decision = _copying(history, mid(600))
    assert isinstance(decision, Accept), decision
    assert [r for r, _ in decision.deliveries] == [B]  # nothing is delivered to the officer
    state = _state(history)
    history.append(decision.event)
    assert _state(history).messages.messages[mid(700)].observers == (mid(600),)
    assert state.access.get(mid(600)) is not None


def test_a_revoked_officer_may_not_be_copied(history: History) -> None:
    _accredit_with_keys(history, mid(601))
    revoked = history.append(ev.recorded(ev.revocation(mid(601), "posting ended", at=AT)))
    assert _refusal(_copying(history, mid(601))) == (
        "not_a_recipient",
        f"observers: accreditation {mid(601)} was revoked at ledger index {revoked}: posting ended",
    )


def test_an_unknown_accreditation_may_not_be_copied(history: History) -> None:
    assert _refusal(_copying(history, mid(602))) == (
        "not_a_recipient",
        f"observers: accreditation {mid(602)} is not in the ledger",
    )


def test_only_the_home_authority_copies_its_officer(history: History) -> None:
    _accredit_with_keys(history, mid(603), home=B, host=A)
    assert _refusal(_copying(history, mid(603), to=B)) == (
        "not_a_recipient",
        f"observers: accreditation {mid(603)} is not a liaison officer of {A}",
    )


def test_the_officer_is_copied_only_on_messages_to_the_host(history: History) -> None:
    _accredit_with_keys(history, mid(604))
    assert _refusal(_copying(history, mid(604), to=C)) == (
        "not_a_recipient",
        f"observers: the officer of accreditation {mid(604)} is posted with {B}, which this "
        "message is not addressed to",
    )


def test_the_officer_key_must_be_the_one_the_consent_vouched_for(history: History) -> None:
    _accredit_with_keys(history, mid(605))
    other = AuthorityKeys.generate("x25519")
    assert _refusal(_copying(history, mid(605), officer=other)) == (
        "stale_recipient_key",
        f"wrapped_keys: sealed to key {other.key_id} for accreditation {mid(605)}, whose consent "
        f"vouches for key {OFFICER.key_id}",
    )
    _accredit_with_keys(history, mid(606), keys=False)
    assert _refusal(_copying(history, mid(606))) == (
        "stale_recipient_key",
        f"wrapped_keys: sealed to key {OFFICER.key_id} for accreditation {mid(606)}, whose "
        "consent carries no officer key",
    )
