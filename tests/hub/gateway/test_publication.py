"""What a hub batch publishes from its outcomes (``hub.gateway._publication.answers``, pure)."""

from __future__ import annotations

import os
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hub import ids, subjects
from hub.errors import HubError, SchemaInvalid
from hub.gateway._publication import GROUP_BYTES, Outcome, Recorded, answers, verdict_for
from hub.ledger.merkle import leaf_hash, verify_inclusion
from hub.ledger.transparency import SignedCheckpoint, TransparencyLog, new_log_key
from node_agent.transport import _as_deliveries, _as_verdicts
from schemas.codec import decode, encode
from schemas.envelope import Envelope
from schemas.receipt import Receipt
from schemas.transport import Deliveries, Delivery, Verdict, Verdicts

A, B, C = "XA-MOJ", "XB-MOJ", "XC-MOJ"
AT = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
M1, R1, RX, R2, R3 = (ids.uuid7() for _ in range(5))  # message ids are UUIDs


def _recorded(log: TransparencyLog, index: int) -> Recorded:
    entry = f"entry {index}".encode()
    log.append(entry)
    return Recorded(index, AT, entry)


def _envelope() -> Envelope:
    return Envelope(header=b"h", wrapped_keys=[], body=b"b", signature=b"s")


def _receipt(n: int) -> Receipt:
    return Receipt(body=f"receipt {n}".encode(), signature=b"s")


def _batch() -> tuple[TransparencyLog, list[Outcome]]:
    """A's request to B, then B's receipts on two earlier messages, one refused, C's receipt."""
    log = TransparencyLog(new_log_key("test.mla-hub.example", os.urandom(32)))
    request, r1, refused, r2, r3 = (_recorded(log, i) for i in range(5))
    outcomes = [
        Outcome(A, verdict_for(M1, "accepted", request), M1, request, ((B, _envelope()),)),
        Outcome(B, verdict_for(R1, "accepted", r1), R1, r1, ((A, _receipt(1)),)),
        Outcome(
            B,
            Verdict(message_id=RX, status="rejected", ledger_index=2, reason="unknown_message"),
            RX,
            refused,
        ),
        Outcome(B, verdict_for(R2, "duplicate", r2), R2, r2, ((A, _receipt(2)),)),
        Outcome(C, verdict_for(R3, "accepted", r3), R3, r3, ((A, _receipt(3)),)),
    ]
    return log, outcomes


def _proved(item: Delivery | Verdict, checkpoint: SignedCheckpoint) -> None:
    assert item.entry is not None and item.ledger_index is not None
    assert item.checkpoint == checkpoint.note
    verify_inclusion(
        leaf_hash(item.entry),
        item.ledger_index,
        checkpoint.size,
        item.inclusion_proof,
        checkpoint.root,
    )


def test_what_goes_to_one_addressee_goes_together_and_a_lone_one_alone() -> None:
    log, outcomes = _batch()
    checkpoint = log.checkpoint()
    published = answers(log, checkpoint, outcomes)
    by_subject = {subject: (data, msg_id) for subject, data, msg_id in published}

    # deliveries, one message per addressee: the request alone to B (a Delivery, as always),
    # the three recorded receipts together to A, in ledger order, each with its proof
    assert sorted(s for s, _, _ in published if s.startswith("mla.deliver.")) == [
        subjects.deliver(A),
        subjects.deliver(B),
    ]
    to_b = decode(by_subject[subjects.deliver(B)][0], Delivery)
    assert (to_b.ledger_index, by_subject[subjects.deliver(B)][1]) == (0, f"d:0:{B}")
    data, msg_id = by_subject[subjects.deliver(A)]
    assert msg_id == f"d:1-4:{A}:3"
    to_a = decode(data, Deliveries)
    assert [(d.ledger_index, d.item) for d in to_a.items] == [
        (1, _receipt(1)),
        (3, _receipt(2)),
        (4, _receipt(3)),
    ]
    assert data == encode(Deliveries(items=to_a.items))  # built from the items' own bytes
    for delivery in [to_b, *to_a.items]:
        _proved(delivery, checkpoint)
    # A's one verdict (its request) and C's (its receipt): alone, each on its own subject
    alone = decode(by_subject[subjects.verdict(A, M1)][0], Verdict)
    assert (alone.message_id, alone.status, alone.ledger_index) == (M1, "accepted", 0)
    assert by_subject[subjects.verdict(A, M1)][1] == f"v:{A}:{M1}:accepted"
    only = decode(by_subject[subjects.verdict(C, R3)][0], Verdict)
    assert (only.message_id, only.ledger_index) == (R3, 4)
    # B's three (two recorded receipts, one refused): one message, in batch order
    [(subject, data, msg_id)] = [p for p in published if p[0].startswith(f"mla.verdict.{B}.")]
    digest = msg_id.removeprefix(f"v:{B}:batch:")
    assert (subject, len(digest)) == (subjects.verdict(B, f"batch-{digest}"), 32)
    together = decode(data, Verdicts)
    assert [(v.message_id, v.status, v.ledger_index) for v in together.verdicts] == [
        (R1, "accepted", 1),
        (RX, "rejected", 2),
        (R2, "duplicate", 3),
    ]
    assert together.verdicts[1].reason == "unknown_message"
    assert data == encode(Verdicts(verdicts=together.verdicts))
    for verdict in [alone, only, *together.verdicts]:
        _proved(verdict, checkpoint)
    assert len(published) == 2 + 3  # deliveries, verdicts
    # a retried batch publishes the same messages: the stream drops them as duplicates
    assert answers(log, checkpoint, outcomes) == published


def test_a_verdict_that_names_no_message_stays_on_its_digest_subject() -> None:
    log = TransparencyLog(new_log_key("test.mla-hub.example", os.urandom(32)))
    first, refused = _recorded(log, 0), _recorded(log, 1)
    nameless = Verdict(message_id=None, status="rejected", ledger_index=1, reason="malformed")
    outcomes = [
        Outcome(A, verdict_for(M1, "accepted", first), M1, first, ((B, _envelope()),)),
        Outcome(A, nameless, "digest-00ff", refused),
    ]
    published = answers(log, log.checkpoint(), outcomes)
    verdicts = {s: d for s, d, _ in published if s.startswith("mla.verdict.")}
    assert decode(verdicts.pop(subjects.verdict(A, "digest-00ff")), Verdict).reason == "malformed"
    [(subject, data)] = verdicts.items()  # M1's, alone in a group
    assert subject.startswith(f"mla.verdict.{A}.batch-")
    assert [v.message_id for v in decode(data, Verdicts).verdicts] == [M1]


def test_large_items_are_split_under_the_group_limit_and_a_huge_one_goes_alone() -> None:
    log = TransparencyLog(new_log_key("test.mla-hub.example", os.urandom(32)))
    third = GROUP_BYTES // 3
    sizes = [third, third, third, GROUP_BYTES + 1, 10, 10]
    outcomes = []
    for i, size in enumerate(sizes):
        recorded = _recorded(log, i)
        big = Envelope(header=b"h", wrapped_keys=[], body=os.urandom(size), signature=b"s")
        message_id = ids.uuid7()
        verdict = verdict_for(message_id, "accepted", recorded)
        outcomes.append(Outcome(A, verdict, message_id, recorded, ((B, big),)))
    published = answers(log, log.checkpoint(), outcomes)
    to_b = [(data, msg_id) for s, data, msg_id in published if s == subjects.deliver(B)]
    assert [msg_id for _, msg_id in to_b] == [
        f"d:0-1:{B}:2",
        f"d:2:{B}",
        f"d:3:{B}",
        f"d:4-5:{B}:2",
    ]
    assert [len(data) <= GROUP_BYTES for data, _ in to_b] == [True, True, False, True]
    read = [_as_deliveries(_Msg(data)).deliveries for data, _ in to_b]
    assert [d.ledger_index for group in read for d in group] == list(range(6))
    assert [len(d.item.body) for group in read for d in group if isinstance(d.item, Envelope)] == (
        sizes
    )
    verdicts = [data for s, data, _ in published if s.startswith("mla.verdict.")]
    assert len(verdicts) == 1 and len(decode(verdicts[0], Verdicts).verdicts) == 6


def test_a_grouped_subject_is_one_token_under_the_recipients_verdict_filter() -> None:
    log, outcomes = _batch()
    for subject, _, _ in answers(log, log.checkpoint(), outcomes):
        if subject.startswith("mla.verdict."):
            authority, token = subject.removeprefix("mla.verdict.").split(".")
            assert subjects.is_token(token) and authority in (A, B, C)


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=2048), cut=st.integers(min_value=0), flip=st.integers(min_value=0))
def test_the_agent_reads_any_bytes_or_refuses_them_typed(data: bytes, cut: int, flip: int) -> None:
    """What the agent's two consumers decode (``node_agent.transport``): random bytes and
    truncated or bit-flipped real messages give deliveries or verdicts (at least one) or a
    HubError, never anything else."""
    log, outcomes = _batch()
    published = answers(log, log.checkpoint(), outcomes)
    for kind, read in (("deliver", _as_deliveries), ("verdict", _as_verdicts)):
        candidates = [data]
        for message in (d for s, d, _ in published if s.startswith(f"mla.{kind}.")):
            mutated = bytearray(message)
            mutated[flip % len(mutated)] ^= 1 << (flip % 8)
            candidates += [message[: cut % (len(message) + 1)], bytes(mutated)]
        for candidate in candidates:
            try:
                inbound = read(_Msg(candidate))
            except HubError:
                continue
            if kind == "deliver":
                assert inbound.deliveries and not inbound.verdicts
                assert all(isinstance(d, Delivery) for d in inbound.deliveries)
            else:
                assert inbound.verdicts and not inbound.deliveries
                assert all(isinstance(v, Verdict) for v in inbound.verdicts)


def test_empty_grouped_messages_are_refused_by_their_schema() -> None:
    with pytest.raises(SchemaInvalid, match=r"verdict: Expected `array` of length >= 1"):
        _as_verdicts(_Msg(encode(Verdicts(verdicts=[]))))
    with pytest.raises(SchemaInvalid, match=r"delivery: Expected `array` of length >= 1"):
        _as_deliveries(_Msg(encode(Deliveries(items=[]))))


class _Msg:
    """Just what the decoder reads of a NATS message."""

    def __init__(self, data: bytes) -> None:
        self.data = data
