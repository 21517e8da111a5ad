"""The pure admission rules: fuzzed with random and mutated bytes, they always decide."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from hub.crypto import cards
from hub.crypto import envelope as sealing
from hub.crypto.keys import AuthorityKeys, OperatorKey
from hub.gateway.admission import Accept, Duplicate, Limits, Reject, admit
from hub.ledger.projections.state import HubState
from node_agent.config import AgentSettings
from node_agent.identity import card_file
from schemas.codec import encode
from schemas.envelope import Body
from schemas.ledger import AuthorityAdmitted, LedgerEntry

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
OPERATOR = OperatorKey.generate()
KEYS = {"XA-MOJ": AuthorityKeys.generate("x25519"), "XB-MOJ": AuthorityKeys.generate("x25519")}


def _state() -> HubState:
    state = HubState()
    for index, (authority, keys) in enumerate(KEYS.items()):
        settings_ = AgentSettings(
            id=authority, state=authority[:2], name=authority, kinds=["mla"], languages=["en"]
        )
        made = card_file(settings_, keys, now=NOW - timedelta(days=1))
        state.apply(
            LedgerEntry(
                index=index,
                recorded_at=NOW,
                event=AuthorityAdmitted(
                    authority=authority,
                    signed=made.signed,
                    operator_key=OPERATOR.public,
                    operator_signature=cards.admit(made.signed, OPERATOR, now=NOW),
                ),
            )
        )
    return state


STATE = _state()
B = KEYS["XB-MOJ"]
VALID = encode(
    sealing.seal(
        sender="XA-MOJ",
        sender_keys=KEYS["XA-MOJ"],
        recipients=[sealing.Recipient("XB-MOJ", B.key_id, B.suite, B.encryption_public)],
        message_id="01a20db9-9003-75a2-b9f1-c30b99ac8960",
        case_id="01a20db9-9000-7b1c-8313-afd169a9fbfb",
        type="request.submit",
        body=Body(text="evidence"),
        now=NOW,
    )
)


def _decide(raw: bytes, sender: str = "XA-MOJ") -> Accept | Duplicate | Reject:
    return admit(
        raw,
        intake_sender=sender,
        state=STATE,
        limits=Limits(),
        now=NOW,
        operator_key=OPERATOR.public,
    )


def test_valid_envelope_is_accepted() -> None:
    decision = _decide(VALID)
    assert isinstance(decision, Accept)
    assert [r for r, _ in decision.deliveries] == ["XB-MOJ"]


def test_future_time_is_refused() -> None:
    decision = admit(
        VALID,
        intake_sender="XA-MOJ",
        state=STATE,
        limits=Limits(),
        now=NOW - timedelta(hours=1),
        operator_key=OPERATOR.public,
    )
    assert isinstance(decision, Reject)
    assert decision.error.code == "invalid"
    assert "sent_at" in str(decision.error)


def test_admission_only_from_operator_subject() -> None:
    from schemas.directory import AdmissionRequest

    made = card_file(
        AgentSettings(id="XC-MOJ", state="XC", name="C", kinds=["mla"], languages=["en"]),
        AuthorityKeys.generate("x25519"),
        now=NOW,
    )
    request = AdmissionRequest(
        request_id="01a20db9-9011-7452-bc86-25d6d5e017ae",
        signed=made.signed,
        operator_signature=cards.admit(made.signed, OPERATOR, now=NOW),
    )
    decision = _decide(encode(request), sender="XA-MOJ")
    assert isinstance(decision, Reject)
    assert decision.error.code == "sender_mismatch"
    assert isinstance(_decide(encode(request), sender="OPERATOR"), Accept)
    forged = AdmissionRequest(
        request_id=request.request_id,
        signed=made.signed,
        operator_signature=cards.admit(made.signed, OperatorKey.generate(), now=NOW),
    )
    rejected = _decide(encode(forged), sender="OPERATOR")
    assert isinstance(rejected, Reject)
    assert rejected.error.code == "bad_signature"


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=4096))
def test_random_bytes_always_get_a_typed_rejection(raw: bytes) -> None:
    decision = _decide(raw)
    assert isinstance(decision, Reject)
    assert decision.event.reason == decision.error.code


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=0, max_value=len(VALID) - 1), st.integers(min_value=1, max_value=255))
def test_mutated_valid_envelope_is_never_accepted(position: int, xor: int) -> None:
    mutated = VALID[:position] + bytes([VALID[position] ^ xor]) + VALID[position + 1 :]
    decision = _decide(mutated)
    # A flip inside an ignored region could leave the signed content intact; then it must be
    # byte-identical in every signed part, which a single-byte change never is.
    assert isinstance(decision, Reject), decision


@settings(max_examples=100, deadline=None)
@given(st.integers(min_value=0, max_value=len(VALID) - 1))
def test_truncated_envelope_is_rejected(length: int) -> None:
    assert isinstance(_decide(VALID[:length]), Reject)
