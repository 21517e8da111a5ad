"""The node agent as a witness: it checks every proof, cosigns what adds up, and raises a
persistent alarm for what does not (real hub, real NATS, real keys)."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from hub.crypto.checkpoint import Checkpoint, format_checkpoint, tally_cosignatures
from hub.crypto.note import parse_signer_key, sign_note
from hub.ledger.transparency import LogVerifier, TransparencyLog, new_log_key, witness_verifier
from node_agent.witness import TransparencyAlarm, WitnessStore, check_inclusion
from schemas.codec import encode
from schemas.ledger import LedgerEntry, SubmissionRejected
from tests.harness import HubHarness, eventually

LOG_KEY = new_log_key("test.mla-hub.example", os.urandom(32))


def _entry(index: int) -> bytes:
    return encode(
        LedgerEntry(
            index=index,
            recorded_at=datetime(2026, 11, 24, tzinfo=UTC),
            event=SubmissionRejected(
                submission_digest=bytes([index]) * 32,
                claimed_sender="XA-MOJ",
                message_id=None,
                reason="malformed",
                detail="x",
            ),
        )
    )


class TestCheckInclusion:
    """(1) signature, (2) the entry is ours, (3) inclusion: each failure is an alarm."""

    def _log(self, n: int) -> tuple[TransparencyLog, list[bytes]]:
        log = TransparencyLog(LOG_KEY)
        entries = [_entry(i) for i in range(n)]
        for e in entries:
            log.append(e)
        return log, entries

    def test_valid(self) -> None:
        log, entries = self._log(5)
        cp = log.checkpoint()
        checked = check_inclusion(
            LogVerifier(log.verifier_key), entry=entries[3], index=3, note=cp.note,
            proof=log.inclusion(3, 5), expected=lambda e: e.index == 3,
        )  # fmt: skip
        assert checked.size == 5

    def test_each_failure(self) -> None:
        log, entries = self._log(5)
        cp = log.checkpoint()
        verifier = LogVerifier(log.verifier_key)
        proof = log.inclusion(3, 5)
        cases = {
            "checkpoint": dict(note=cp.note.replace("\n5\n", "\n6\n")),
            "something else": dict(expected=lambda e: False),
            "inclusion": dict(proof=log.inclusion(2, 5)),
            "entry 3": dict(entry=b"\xc1"),
        }
        for needle, change in cases.items():
            args = {"entry": entries[3], "index": 3, "note": cp.note, "proof": proof,
                    "expected": lambda e: True} | change  # fmt: skip
            with pytest.raises(TransparencyAlarm, match=needle):
                check_inclusion(verifier, **args)  # type: ignore[arg-type]
        other = TransparencyLog(new_log_key("test.mla-hub.example", os.urandom(32)))
        other.append(entries[0])
        with pytest.raises(TransparencyAlarm, match="checkpoint"):
            check_inclusion(
                verifier, entry=entries[0], index=0, note=other.checkpoint().note, proof=[],
                expected=lambda e: True,
            )  # fmt: skip


@pytest.mark.nats
class TestWitnessStore:
    """The per-item check reads the newest checkpoint from memory; advancing reads the disk."""

    def test_latest_known_and_latest(self, tmp_path: Path) -> None:
        log = TransparencyLog(LOG_KEY)
        now = datetime(2026, 11, 24, tzinfo=UTC)
        mine, other = WitnessStore(tmp_path / "a.db"), WitnessStore(tmp_path / "a.db")
        try:
            assert mine.latest_known() is None
            log.append(_entry(0))
            mine.keep(log.checkpoint(), now)
            assert mine.latest_known() == (1, log.checkpoint().root, log.checkpoint().note)
            log.append(_entry(1))
            other.keep(log.checkpoint(), now)  # another process (e.g. a CLI) kept a newer one
            assert mine.latest_known() is not None and mine.latest_known()[0] == 1  # type: ignore[index]
            assert mine.latest() == (2, log.checkpoint().root, log.checkpoint().note)
            assert mine.latest_known() == mine.latest()
        finally:
            mine.close()
            other.close()


class TestWitnessOnAHub:
    """End to end: agents verify, cosign; a forked checkpoint is caught and kept as an alarm."""

    async def test_agents_cosign_what_they_verified(self, hub: HubHarness) -> None:
        a = await hub.authority("XA-MOJ")
        b = await hub.authority("XB-MOJ")
        await a.start()
        await b.start()
        message_id, status = await a.send_request("XB-MOJ")
        assert status == "accepted"
        await eventually(lambda: bool(a.store.receipts_for(message_id)), "the receipt")
        for party in (a, b):
            assert party.agent.witness is not None
            await party.agent.witness.settle()
            assert party.agent.witness is not None
            assert party.agent.witness.store.alarms() == []
            assert party.agent.witness.store.latest() is not None
        assert hub.nc is not None

        # Each agent cosigns the newest checkpoint it verified; the latest one served may be
        # newer than both, so look for both names on the checkpoints the hub kept.
        assert hub.service is not None
        notes = await hub.service.checkpoints.all_notes()
        names: set[str] = set()
        for note in notes:
            witnesses = [witness_verifier(p.id, p.keys.signing_public) for p in (a, b)]
            names |= {v.name for v in tally_cosignatures(note, witnesses).valid}
        assert names == {"XA-MOJ", "XB-MOJ"}

    async def test_split_view_raises_a_persistent_alarm(self, hub: HubHarness) -> None:
        hub.alarms_expected = True  # forged on purpose
        a = await hub.authority("XA-MOJ")
        await hub.authority("XB-MOJ")
        await a.send_request("XB-MOJ")
        witness = a.agent.witness
        assert witness is not None
        size, _, _ = witness.store.latest() or (0, b"", "")
        # The hub's key signs a second checkpoint of the same size with another root.
        forged_text = format_checkpoint(Checkpoint("test.mla-hub.example", size, bytes(32)))
        signer = parse_signer_key(hub.log_key)
        forged = sign_note(forged_text, signer.name, signer.private)
        ok = await witness.observe(
            entry=_entry(0), index=0, note=forged, proof=[], expected=lambda e: True
        )
        assert ok is False
        alarms = witness.store.alarms()
        assert [al.kind for al in alarms] == ["transparency_alarm"]
        # Persistent: a new store on the same database still shows it.
        again = WitnessStore(a.root / "agent.sqlite")
        assert [al.kind for al in again.alarms()] == ["transparency_alarm"]
        again.close()

    async def test_rewritten_history_fails_consistency(self, hub: HubHarness) -> None:
        hub.alarms_expected = True  # forged on purpose
        a = await hub.authority("XA-MOJ")
        await hub.authority("XB-MOJ")
        await a.send_request("XB-MOJ")
        witness = a.agent.witness
        assert witness is not None
        # A checkpoint of a larger tree that does not extend what XA-MOJ saw, signed by the
        # hub's key (a hub rewriting history): the consistency proof cannot verify.
        rewritten = TransparencyLog(hub.log_key)
        for i in range(8):
            rewritten.append(_entry(i))
        note = rewritten.checkpoint().note
        witness.patience_s = 0.0  # the hub says "not yet" for a size it never reached
        ok = await witness.observe(
            entry=_entry(7), index=7, note=note, proof=rewritten.inclusion(7, 8),
            expected=lambda e: True,
        )  # fmt: skip
        assert ok is True  # the entry is in that checkpoint; the fork shows against history
        await witness.settle()
        assert "consistency" in witness.store.alarms()[-1].detail
        assert "the hub cannot prove it yet (still after 0 s)" in witness.store.alarms()[-1].detail

    async def test_a_hub_not_caught_up_yet_is_given_time(self, hub: HubHarness) -> None:
        """An instance still folding (catching up, or rebuilding after a lost race) answers
        "not yet" for a checkpoint another signed: no alarm within the patience."""
        a = await hub.authority("XA-MOJ")
        await hub.authority("XB-MOJ")
        await a.send_request("XB-MOJ")
        witness = a.agent.witness
        assert witness is not None
        await witness.settle()
        ahead = TransparencyLog(hub.log_key)
        for i in range(64):
            ahead.append(_entry(i))
        ok = await witness.observe(
            entry=_entry(63), index=63, note=ahead.checkpoint().note,
            proof=ahead.inclusion(63, 64), expected=lambda e: True,
        )  # fmt: skip
        assert ok is True
        await witness.settle()
        assert witness.store.alarms() == []
        assert 64 in witness._pending  # asked again with the next item
        # Past the patience, the next turn raises the alarm (and forgets the wait).
        witness.patience_s = 0.0
        await witness.observe(
            entry=_entry(63), index=63, note=ahead.checkpoint().note,
            proof=ahead.inclusion(63, 64), expected=lambda e: True,
        )  # fmt: skip
        await witness.settle()
        assert "cannot prove it yet (still after 0 s)" in witness.store.alarms()[-1].detail
        assert witness._unproven_since == {} and 64 not in witness._pending
        hub.alarms_expected = True
