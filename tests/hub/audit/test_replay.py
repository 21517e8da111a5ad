"""hub/audit/replay.py (+ entries.py, jobs.py): a real history verifies; each way of tampering
with entries is detected and located exactly (index, check, expected, found)."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from hub.audit.outcome import CHECKS, Divergence, Report
from hub.audit.replay import Replayer
from hub.audit.runner import verify_entries
from hub.errors import ValidationError
from schemas.codec import decode, encode
from schemas.ledger import AuthorityAdmitted, LedgerEntry
from tests.hub.audit.history import (
    ANCHORS,
    KEYS,
    OPERATOR,
    History,
    admission,
    every_checkpoint,
    mid,
    root,
    standard,
)

STANDARD = standard()
N = len(STANDARD.entries)
SIGNED = every_checkpoint(STANDARD.entries)  # what the hub signed for the honest history


def replay(
    entries: Sequence[bytes],
    checkpoints: Sequence[str] | None = None,
    *,
    batch_size: int = 512,
) -> Report | Divergence:
    """Verify inline (one process); ``checkpoints`` default: one per entry, over ``entries``."""
    cps = every_checkpoint(entries) if checkpoints is None else checkpoints
    result = verify_entries(
        enumerate(entries), ANCHORS, checkpoints=cps, workers=1, batch_size=batch_size
    )
    outcome = result.report or result.divergence
    assert outcome is not None
    return outcome


def diverges(outcome: Report | Divergence) -> Divergence:
    assert isinstance(outcome, Divergence), outcome
    assert outcome.check in CHECKS
    return outcome


def flip(data: bytes, position: int) -> bytes:
    return data[:position] + bytes([data[position] ^ 0x01]) + data[position + 1 :]


def renumbered(events: Sequence[bytes]) -> list[bytes]:
    """Entries re-indexed to their new positions, as a hub rewriting history would."""
    out = []
    for i, data in enumerate(events):
        entry = decode(data, LedgerEntry)
        out.append(encode(LedgerEntry(index=i, recorded_at=entry.recorded_at, event=entry.event)))
    return out


class TestValidHistory:
    """A history built with the real sealing, receipt and admission code verifies."""

    def test_report(self) -> None:
        report = replay(STANDARD.entries)
        assert isinstance(report, Report)
        assert (report.entries, report.checkpoints, report.signatures) == (N, N, 12)
        assert (report.admissions, report.envelopes, report.receipts, report.rejections) == (
            3,
            5,
            4,
            1,
        )
        assert report.final_size == N
        assert report.final_root == report.tree_root == root(STANDARD.entries).hex()
        assert (report.unanchored, report.witnesses) == (0, [])

    def test_entries_beyond_the_last_checkpoint_are_reported_unanchored(self) -> None:
        report = replay(STANDARD.entries, every_checkpoint(STANDARD.entries)[:9])
        assert isinstance(report, Report)
        assert (report.final_size, report.unanchored) == (9, N - 9)

    def test_no_checkpoints(self) -> None:
        report = replay(STANDARD.entries, [])
        assert isinstance(report, Report)
        assert (report.final_size, report.final_root, report.unanchored) == (None, None, N)

    def test_batches_of_one_give_the_same_answer(self) -> None:
        assert replay(STANDARD.entries, batch_size=1) == replay(STANDARD.entries)


class TestChangedByte:
    """Change one byte of one entry: located at that entry, wherever the byte is."""

    @pytest.mark.parametrize("k", [0, 3, 4, 10])
    def test_every_position(self, k: int) -> None:
        """Admission, envelope, receipt, rejection: every single-bit flip, all located at k
        (by a signature or rule check, else by the checkpoint the hub signed over it)."""
        data = STANDARD.entries[k]
        for position in range(len(data)):
            entries = list(STANDARD.entries)
            entries[k] = flip(data, position)
            d = diverges(replay(entries, SIGNED))
            assert d.index == k, (position, d)

    def test_in_the_sender_signature(self) -> None:
        entries = list(STANDARD.entries)
        entries[5] = flip(entries[5], len(entries[5]) - 1)  # last byte: the signature
        d = diverges(replay(entries))
        assert (d.check, d.index, d.checkpoint) == ("sender_signature", 5, None)
        assert d.expected == f"a valid signature by XB-MOJ key {KEYS['XB-MOJ'].key_id}"
        assert d.found.startswith("bad_signature")

    def test_in_the_recorded_time_only_the_checkpoint_sees_it(self) -> None:
        """The hub's recording time is signed by nobody but the hub: the checkpoint root."""
        entry = decode(STANDARD.entries[7], LedgerEntry)
        changed = encode(
            LedgerEntry(
                index=7, recorded_at=entry.recorded_at.replace(year=2027), event=entry.event
            )
        )
        entries = [*STANDARD.entries[:7], changed, *STANDARD.entries[8:]]
        d = diverges(replay(entries, SIGNED))
        assert (d.check, d.index, d.checkpoint) == ("checkpoint_root", 7, 8)
        assert d.expected == root(STANDARD.entries, 8).hex()
        assert d.found == root(entries, 8).hex()

    def test_sparse_checkpoints_give_the_range(self) -> None:
        cps = SIGNED
        entry = decode(STANDARD.entries[6], LedgerEntry)
        changed = encode(
            LedgerEntry(
                index=6, recorded_at=entry.recorded_at.replace(year=2027), event=entry.event
            )
        )
        entries = [*STANDARD.entries[:6], changed, *STANDARD.entries[7:]]
        d = diverges(replay(entries, [cps[3], cps[8]]))  # sizes 4 and 9
        assert (d.check, d.index, d.checkpoint) == ("checkpoint_root", None, 9)
        assert "entries 4..8" in d.message

    def test_garbled(self) -> None:
        entries = list(STANDARD.entries)
        entries[2] = b"\xc1" + entries[2][1:]
        d = diverges(replay(entries))
        assert (d.check, d.index, d.expected) == ("entry_decode", 2, "a mla.ledger.entry.v1 record")


class TestReordered:
    """Drop, swap or insert: the first entry out of place is named."""

    def test_drop(self) -> None:
        entries = [*STANDARD.entries[:6], *STANDARD.entries[7:]]
        d = diverges(replay(entries))
        assert (d.check, d.index, d.expected, d.found) == ("entry_index", 6, "6", "7")

    def test_swap(self) -> None:
        entries = list(STANDARD.entries)
        entries[4], entries[5] = entries[5], entries[4]
        d = diverges(replay(entries))
        assert (d.check, d.index, d.expected, d.found) == ("entry_index", 4, "4", "5")

    def test_drop_renumbered_and_re_signed_is_a_lifecycle_break(self) -> None:
        """A hub rewriting history (re-indexing, re-signing checkpoints) drops the
        acknowledgement: the execution that follows is not a valid transition."""
        entries = renumbered([*STANDARD.entries[:5], *STANDARD.entries[7:]])
        d = diverges(replay(entries))
        assert (d.check, d.index) == ("lifecycle", 5)
        assert d.found == "request.execute by XB-MOJ in state submitted"
        assert "request.acknowledge" in d.expected

    def test_insert_forged_by_an_unadmitted_authority(self) -> None:
        h = standard()
        forged = h.entry(h.envelope("XZ-EVIL", "XA-MOJ", "request.submit", mid(9)), index=6)
        entries = renumbered([*STANDARD.entries[:6], forged, *STANDARD.entries[6:]])
        d = diverges(replay(entries))
        assert (d.check, d.index) == ("sender_key", 6)
        assert d.found.startswith("unknown_sender")

    @pytest.mark.parametrize("batch_size", [1, 512])
    def test_insert_forged_with_the_wrong_key(self, batch_size: int) -> None:
        """XA-MOJ's name and key id, another key's signature. The original checkpoints fail
        right after it too, but the signature check ranks first even though it runs later."""
        h = standard()
        record = h.envelope("XA-MOJ", "XC-MOJ", "request.submit", mid(9), signer=KEYS["XZ-EVIL"])
        forged = h.entry(record, index=6)
        entries = renumbered([*STANDARD.entries[:6], forged, *STANDARD.entries[6:]])
        d = diverges(replay(entries, SIGNED, batch_size=batch_size))
        assert (d.check, d.index) == ("sender_signature", 6)
        assert d.found.startswith("bad_signature")

    def test_replayed_envelope(self) -> None:
        entries = renumbered([*STANDARD.entries, STANDARD.entries[3]])
        d = diverges(replay(entries))
        assert (d.check, d.index) == ("duplicate_message", N)
        assert d.found.endswith("recorded at 3")


class TestEntryRules:
    """Signed correctly, but not what the hub may record."""

    def test_refuse_without_refusal_consultation(self) -> None:
        h = standard()
        case = mid(3)
        h.send("XA-MOJ", "XC-MOJ", "request.submit", case)
        h.send("XC-MOJ", "XA-MOJ", "request.acknowledge", case)
        bad = h.send("XC-MOJ", "XA-MOJ", "request.refuse", case)
        d = diverges(replay(h.entries))
        assert (d.check, d.index) == ("lifecycle", bad)
        assert d.found == "request.refuse by XC-MOJ in state acknowledged"
        assert "refuse_requires_refusal_consultation" in d.message
        assert "request.refusal_consultation" in d.expected

    def test_receipt_for_an_unknown_message(self) -> None:
        h = standard()
        bad = h.append(h.receipt_for(3, message_id=mid(77)))
        d = diverges(replay(h.entries))
        assert (d.check, d.index, d.found) == ("receipt_reference", bad, mid(77))

    def test_second_receipt(self) -> None:
        h = standard()
        bad = h.receipt(3)
        d = diverges(replay(h.entries))
        assert (d.check, d.index) == ("receipt_reference", bad)
        assert d.found == "a second receipt (the first is at 4)"

    def test_unknown_recipient(self) -> None:
        h = standard()
        bad = h.send("XA-MOJ", "XZ-EVIL", "request.submit", mid(4))
        d = diverges(replay(h.entries))
        assert (d.check, d.index, d.found) == ("unknown_recipient", bad, "XZ-EVIL")

    def test_admission_by_another_operator_key(self) -> None:
        h = History()
        event = admission("XA-MOJ")
        other = type(OPERATOR).generate()
        forged = AuthorityAdmitted(
            authority="XA-MOJ",
            signed=event.signed,
            operator_key=other.public,
            operator_signature=other.sign(b"anything"),
        )
        h.append(forged)
        d = diverges(replay(h.entries))
        assert (d.check, d.index, d.found) == ("operator_key", 0, other.public.hex())
        assert d.expected == OPERATOR.public.hex()

    def test_admission_signature_not_by_the_operator(self) -> None:
        h = History()
        event = admission("XA-MOJ")
        h.append(
            AuthorityAdmitted(
                authority="XA-MOJ",
                signed=event.signed,
                operator_key=OPERATOR.public,
                operator_signature=type(OPERATOR).generate().sign(b"x"),
            )
        )
        d = diverges(replay(h.entries))
        assert (d.check, d.index) == ("operator_signature", 0)

    def test_card_under_another_name(self) -> None:
        h = History()
        event = admission("XA-MOJ")
        h.append(
            AuthorityAdmitted(
                authority="XB-MOJ",
                signed=event.signed,
                operator_key=OPERATOR.public,
                operator_signature=event.operator_signature,
            )
        )
        d = diverges(replay(h.entries))
        assert (d.check, d.index, d.expected, d.found) == ("authority_card", 0, "XB-MOJ", "XA-MOJ")


class TestFirstDivergence:
    """Signature jobs run late; the answer is still the earliest failure."""

    def test_earlier_bad_signature_beats_later_index_break(self) -> None:
        entries = list(STANDARD.entries)
        entries[5] = flip(entries[5], len(entries[5]) - 1)
        entries[9], entries[10] = entries[10], entries[9]
        for batch_size in (1, 3, 512):
            d = diverges(replay(entries, batch_size=batch_size))
            assert (d.check, d.index) == ("sender_signature", 5)

    def test_earlier_lifecycle_beats_later_bad_signature(self) -> None:
        h = standard()
        case = mid(3)
        h.send("XA-MOJ", "XC-MOJ", "request.submit", case)
        bad = h.send("XA-MOJ", "XC-MOJ", "request.acknowledge", case)  # the wrong side
        h.send("XC-MOJ", "XA-MOJ", "request.acknowledge", case)
        entries = list(h.entries)
        entries[-1] = flip(entries[-1], len(entries[-1]) - 1)
        d = diverges(replay(entries, batch_size=1))
        assert (d.check, d.index) == ("lifecycle", bad)

    def test_two_bad_signatures_in_one_batch(self) -> None:
        entries = list(STANDARD.entries)
        for k in (8, 4):
            entries[k] = flip(entries[k], len(entries[k]) - 1)
        d = diverges(replay(entries, [], batch_size=512))
        assert (d.check, d.index) == ("receipt_signature", 4)


class TestReplayerContract:
    """The pure core on its own."""

    def test_entries_must_come_in_order(self) -> None:
        replayer = Replayer(ANCHORS)
        with pytest.raises(ValidationError, match="in order"):
            replayer.feed(1, STANDARD.entries[1])

    def test_no_feeding_after_a_divergence(self) -> None:
        replayer = Replayer(ANCHORS)
        replayer.feed(0, b"garbage")
        assert replayer.stopped
        with pytest.raises(ValidationError, match="stopped"):
            replayer.feed(0, STANDARD.entries[0])

    def test_jobs_are_emitted_in_order_and_pure(self) -> None:
        from hub.audit.jobs import run_job

        replayer = Replayer(ANCHORS)
        for i, data in enumerate(STANDARD.entries):
            replayer.feed(i, data)
        jobs = replayer.take_jobs()
        assert [j.index for j in jobs] == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 11, 12]
        assert all(run_job(j) is None for j in jobs)
        assert replayer.take_jobs() == []
        assert isinstance(replayer.finish(), Report)
