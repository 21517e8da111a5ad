"""hub/audit/checkpoints.py: signed tree heads against the rebuilt tree, split views, witnesses
(and hub/crypto/checkpoint.py's tally_cosignatures, which counts them)."""

from __future__ import annotations

from collections.abc import Sequence

from hub.audit.checkpoints import claimed_size, witness_verifiers
from hub.audit.outcome import Divergence, Report
from hub.audit.runner import verify_entries
from hub.crypto.checkpoint import cosign_with, tally_cosignatures
from hub.crypto.note import add_signatures
from tests.hub.audit.history import (
    ANCHORS,
    KEYS,
    ORIGIN,
    OTHER_LOG_SEED,
    checkpoint,
    cosigned,
    every_checkpoint,
    root,
    seed,
    standard,
)

STANDARD = standard()
ENTRIES = STANDARD.entries
N = len(ENTRIES)
SIGNED = every_checkpoint(ENTRIES)


def replay(checkpoints: Sequence[str], *, witnesses: int = 0) -> Report | Divergence:
    result = verify_entries(
        enumerate(ENTRIES), ANCHORS, checkpoints=checkpoints, witnesses=witnesses, workers=1
    )
    outcome = result.report or result.divergence
    assert outcome is not None
    return outcome


def diverges(outcome: Report | Divergence) -> Divergence:
    assert isinstance(outcome, Divergence), outcome
    return outcome


def _mangle_last_line(note: str) -> str:
    """Change one base64 character of the signature (not the key ID) on the last line."""
    cut = len(note) - 6
    return note[:cut] + ("A" if note[cut] != "A" else "B") + note[cut + 1 :]


class TestCheckpoints:
    """One test per way a checkpoint can lie."""

    def test_re_signed_with_another_key(self) -> None:
        cps = list(SIGNED)
        cps[5] = checkpoint(ENTRIES, 6, key=OTHER_LOG_SEED)
        d = diverges(replay(cps))
        assert (d.check, d.index, d.checkpoint) == ("checkpoint_signature", None, 6)
        assert d.expected == f"a signature by {ORIGIN}+{ANCHORS.log_key.key_id:08x}"
        assert d.found.startswith(f"signatures by {ORIGIN}+")
        assert d.found != f"signatures by {ORIGIN}+{ANCHORS.log_key.key_id:08x}"

    def test_re_signed_under_another_name(self) -> None:
        cps = [*SIGNED[:3], checkpoint(ENTRIES, 4, key=OTHER_LOG_SEED, name="evil.example")]
        d = diverges(replay(cps))
        assert (d.check, d.checkpoint) == ("checkpoint_signature", 4)
        assert d.found.startswith("signatures by evil.example+")

    def test_tampered_signature(self) -> None:
        bad = _mangle_last_line(SIGNED[2])
        d = diverges(replay([*SIGNED[:2], bad]))
        assert (d.check, d.checkpoint) == ("checkpoint_signature", 3)
        assert d.found.startswith("note_signature_invalid")

    def test_split_view(self) -> None:
        """Two checkpoints of size 7, both signed by the hub, with different roots."""
        other = root([*ENTRIES[:6], ENTRIES[8]], 7)
        forked = checkpoint(ENTRIES, 7, root_hash=other)
        cps = [*SIGNED[:7], forked, *SIGNED[7:]]
        d = diverges(replay(cps))
        assert (d.check, d.index, d.checkpoint) == ("split_view", None, 7)
        assert (d.expected, d.found) == (root(ENTRIES, 7).hex(), other.hex())

    def test_fork_shown_first_is_a_root_mismatch(self) -> None:
        other = root([*ENTRIES[:6], ENTRIES[8]], 7)
        cps = [*SIGNED[:6], checkpoint(ENTRIES, 7, root_hash=other)]
        d = diverges(replay(cps))
        assert (d.check, d.index, d.checkpoint) == ("checkpoint_root", 6, 7)

    def test_size_decreases(self) -> None:
        d = diverges(replay([SIGNED[9], SIGNED[4]]))
        assert (d.check, d.checkpoint, d.expected, d.found) == (
            "checkpoint_order",
            5,
            "size >= 10",
            "5",
        )

    def test_other_origin(self) -> None:
        d = diverges(replay([checkpoint(ENTRIES, 3, origin="other.example")]))
        assert (d.check, d.checkpoint, d.found) == ("checkpoint_origin", 3, "other.example")

    def test_not_a_checkpoint(self) -> None:
        from hub.crypto.note import sign_note
        from tests.hub.audit.history import LOG_SEED

        d = diverges(replay([sign_note("hello\n", ORIGIN, LOG_SEED)]))
        assert (d.check, d.checkpoint) == ("checkpoint_format", None)

    def test_beyond_the_entries(self) -> None:
        """The hub signed 13 entries; the archive holds 12 (the last one dropped)."""
        result = verify_entries(enumerate(ENTRIES[:-1]), ANCHORS, checkpoints=SIGNED, workers=1)
        d = result.divergence
        assert d is not None
        assert (d.check, d.index, d.checkpoint) == ("missing_entries", N - 1, N)

    def test_duplicate_checkpoint_is_fine(self) -> None:
        report = replay([SIGNED[4], SIGNED[4], SIGNED[N - 1]])
        assert isinstance(report, Report)
        assert report.checkpoints == 3

    def test_claimed_size(self) -> None:
        assert claimed_size(SIGNED[3]) == 4
        assert claimed_size("not a note") is None


class TestWitnesses:
    """``--witnesses N``: cosignatures by admitted authorities on the final checkpoint."""

    FINAL = SIGNED[-1]

    def test_enough(self) -> None:
        cps = [*SIGNED[:-1], cosigned(self.FINAL, "XA-MOJ", "XB-MOJ")]
        report = replay(cps, witnesses=2)
        assert isinstance(report, Report)
        assert report.witnesses == ["XA-MOJ", "XB-MOJ"]

    def test_below_n(self) -> None:
        cps = [*SIGNED[:-1], cosigned(self.FINAL, "XA-MOJ")]
        d = diverges(replay(cps, witnesses=2))
        assert (d.check, d.index, d.checkpoint) == ("witnesses", None, N)
        assert (d.expected, d.found) == (
            ">= 2 cosignatures by admitted authorities",
            "1 (XA-MOJ)",
        )

    def test_unadmitted_and_forged_cosignatures_do_not_count(self) -> None:
        other_key = {"XC-MOJ": seed("XZ-EVIL/signing")}  # XC-MOJ's name, another key: ignored
        note = cosigned(self.FINAL, "XA-MOJ", "XZ-EVIL")
        note = cosigned(note, "XC-MOJ", key_of=other_key)
        note = _mangle_last_line(cosigned(note, "XB-MOJ"))  # XB-MOJ's key, bad signature
        d = diverges(replay([*SIGNED[:-1], note], witnesses=2))
        assert d.check == "witnesses"
        assert d.found == "1 (XA-MOJ)"
        assert "invalid cosignature(s) from XB-MOJ" in d.message

    def test_only_the_final_checkpoint_counts(self) -> None:
        cps = [*SIGNED[:-2], cosigned(SIGNED[-2], "XA-MOJ", "XB-MOJ"), self.FINAL]
        d = diverges(replay(cps, witnesses=1))
        assert (d.check, d.found) == ("witnesses", "0")

    def test_no_checkpoint_at_all(self) -> None:
        d = diverges(replay([], witnesses=1))
        assert (d.check, d.checkpoint) == ("witnesses", None)

    def test_cosigned_with_a_node_agents_keys(self) -> None:
        """A node agent cosigns through ``AuthorityKeys.sign``, never handling its seed."""
        keys = KEYS["XC-MOJ"]
        text = self.FINAL[: self.FINAL.rindex("\n\n") + 1]
        line = cosign_with(text, "XC-MOJ", keys.signing_public, keys.sign, 1_800_000_000)
        assert line == cosigned(self.FINAL, "XC-MOJ").splitlines(keepends=True)[-1]
        report = replay([*SIGNED[:-1], add_signatures(self.FINAL, [line])], witnesses=1)
        assert isinstance(report, Report) and report.witnesses == ["XC-MOJ"]

    def test_tally(self) -> None:
        keys = witness_verifiers((a, KEYS[a].signing_public) for a in ("XA-MOJ", "XB-MOJ"))
        tally = tally_cosignatures(cosigned(self.FINAL, "XB-MOJ", "XC-MOJ"), keys)
        assert [s.name for s in tally.valid] == ["XB-MOJ"]
        assert tally.valid[0].timestamp == 1_800_000_000
        assert tally.invalid == ()
