"""hub/audit/runner.py: archives and streams, the process pool, progress, trust anchors, the
--json shape, and the rebuilt directory against the one a hub serves."""

from __future__ import annotations

import gc
import io
import json
from collections.abc import AsyncIterator, Iterator, Mapping

import msgspec
import pytest

from hub.audit.jobs import encode_jobs, run_encoded_jobs
from hub.audit.projection import compare_directory
from hub.audit.replay import Replayer, TrustAnchors
from hub.audit.runner import (
    aexport_archive,
    averify_entries,
    export_archive,
    result_json,
    verify_archive,
    verify_entries,
)
from hub.crypto.keys import OperatorKey
from hub.errors import ValidationError
from schemas.codec import decode, encode
from schemas.directory import AdmittedCard
from tests.hub.audit.history import (
    ANCHORS,
    HEADER,
    archive,
    cosigned,
    every_checkpoint,
    standard,
)

STANDARD = standard()
ENTRIES = STANDARD.entries
N = len(ENTRIES)
SIGNED = every_checkpoint(ENTRIES)


def flip_last(data: bytes) -> bytes:
    return data[:-1] + bytes([data[-1] ^ 0x01])


def replayed() -> Replayer:
    replayer = Replayer(ANCHORS)
    for i, data in enumerate(ENTRIES):
        replayer.feed(i, data)
    return replayer


def _first_card() -> AdmittedCard:
    rebuilt = replayed().directory_projection()
    return decode(rebuilt[sorted(rebuilt)[0]], AdmittedCard)


STANDARD_CARD = _first_card()


class TestArchive:
    """``audit verify --archive``: the whole path from a file."""

    def test_verifies(self) -> None:
        seen: list[tuple[int, int | None]] = []
        data = archive(ENTRIES, [*SIGNED[:-1], cosigned(SIGNED[-1], "XA-MOJ")])
        result = verify_archive(
            io.BytesIO(data),
            witnesses=1,
            workers=1,
            batch_size=4,
            progress=lambda d, t: seen.append((d, t)),
        )
        assert result.ok and result.report is not None and result.divergence is None
        assert (result.entries, result.report.witnesses, result.workers) == (N, ["XA-MOJ"], 1)
        assert result.entries_per_s > 0
        done = [d for d, _ in seen]
        assert done == sorted(done) and done[-1] == N
        assert {t for _, t in seen} == {N}

    def test_tampered_entry_in_the_archive(self) -> None:
        entries = list(ENTRIES)
        entries[7] = flip_last(entries[7])
        result = verify_archive(io.BytesIO(archive(entries, SIGNED)), workers=1)
        assert result.divergence is not None
        assert (result.divergence.check, result.divergence.index) == ("sender_signature", 7)

    def test_pinned_anchors_must_match_the_header(self) -> None:
        pins = TrustAnchors(
            origin=ANCHORS.origin,
            log_key=ANCHORS.log_key,
            operator_keys=frozenset({OperatorKey.generate().public}),
        )
        result = verify_archive(io.BytesIO(archive(ENTRIES, SIGNED)), pins=pins, workers=1)
        d = result.divergence
        assert d is not None
        assert (d.check, d.index, d.checkpoint) == ("trust_anchor", None, None)
        assert "operator_keys" in d.message
        assert verify_archive(io.BytesIO(archive(ENTRIES, SIGNED)), pins=ANCHORS, workers=1).ok


class TestPool:
    """Signature batches on a process pool give the same answers as inline."""

    def test_same_report(self) -> None:
        inline = verify_entries(enumerate(ENTRIES), ANCHORS, checkpoints=SIGNED, workers=1)
        pooled = verify_entries(
            enumerate(ENTRIES), ANCHORS, checkpoints=SIGNED, workers=2, batch_size=2
        )
        assert pooled.ok and pooled.workers == 2
        assert pooled.report == inline.report

    def test_first_failure_across_batches(self) -> None:
        entries = list(ENTRIES)
        for k in (11, 3, 8):
            entries[k] = flip_last(entries[k])
        result = verify_entries(enumerate(entries), ANCHORS, workers=2, batch_size=2)
        assert result.divergence is not None
        assert (result.divergence.check, result.divergence.index) == ("sender_signature", 3)

    def test_archive_batches_ramp_and_find_the_first_failure(self) -> None:
        # An archive knows its total: batches start small and shrink again near the end.
        entries = list(ENTRIES)
        for k in (N - 1, N - 4):
            entries[k] = flip_last(entries[k])
        data = archive(entries, SIGNED)
        result = verify_archive(io.BytesIO(data), workers=2, batch_size=4)
        inline = verify_archive(io.BytesIO(data), workers=1)
        assert result.divergence is not None
        assert result.divergence == inline.divergence

    def test_encoded_batch_round_trip(self) -> None:
        replayer = replayed()
        jobs = replayer.take_jobs()
        assert jobs and run_encoded_jobs(encode_jobs(jobs)) is None
        last = jobs[-1]
        assert last.message and not last.entry  # prepared: the worker only verifies
        bad = msgspec.structs.replace(last, message=flip_last(last.message))
        failure = run_encoded_jobs(encode_jobs([*jobs[:-1], bad]))
        assert failure is not None and failure.index == bad.index
        assert failure.found.startswith("bad_signature:")

    def test_collector_enabled_again(self) -> None:
        assert gc.isenabled()
        assert verify_archive(io.BytesIO(archive(ENTRIES, SIGNED)), workers=1).ok
        assert gc.isenabled()


class TestStream:
    """The live-stream entry points take (index, bytes) iterators, sync or async."""

    def test_stops_reading_at_the_first_divergence(self) -> None:
        pulled: list[int] = []

        def source() -> Iterator[tuple[int, bytes]]:
            for i, data in enumerate(ENTRIES):
                pulled.append(i)
                yield i, (b"junk" if i == 2 else data)

        result = verify_entries(source(), ANCHORS, workers=1)
        assert result.divergence is not None and result.divergence.index == 2
        assert pulled == [0, 1, 2]

    async def test_async(self) -> None:
        async def source() -> AsyncIterator[tuple[int, bytes]]:
            for pair in enumerate(ENTRIES):
                yield pair

        async def served() -> Mapping[str, bytes]:
            return dict(replayed().directory_projection())

        result = await averify_entries(
            source(), ANCHORS, checkpoints=SIGNED, workers=1, served_directory=served
        )
        assert result.ok

    async def test_async_export(self) -> None:
        async def source() -> AsyncIterator[tuple[int, bytes]]:
            for pair in enumerate(ENTRIES):
                yield pair

        out = io.BytesIO()
        totals = await aexport_archive(source(), SIGNED, HEADER, out)
        assert (totals.entries, totals.checkpoints) == (N, N)
        assert out.getvalue() == archive(ENTRIES, SIGNED)

    def test_export_refuses_a_gap(self) -> None:
        with pytest.raises(ValidationError, match="entry 2 arrived where 1"):
            export_archive([(0, ENTRIES[0]), (2, ENTRIES[2])], [], HEADER, io.BytesIO())


class TestJson:
    """``--json``: one stable, tagged shape for both outcomes."""

    def test_divergence(self) -> None:
        entries = [*ENTRIES[:4], *ENTRIES[5:]]
        doc = json.loads(result_json(verify_entries(enumerate(entries), ANCHORS, workers=1)))
        assert list(doc) == [
            "schema",
            "ok",
            "report",
            "divergence",
            "entries",
            "elapsed_s",
            "entries_per_s",
            "workers",
        ]
        assert doc["schema"] == "mla.audit.result.v1" and doc["ok"] is False
        assert doc["report"] is None
        assert doc["divergence"] == {
            "schema": "mla.audit.divergence.v1",
            "index": 4,
            "checkpoint": None,
            "check": "entry_index",
            "expected": "4",
            "found": "5",
            "message": "entry 4: is out of place (dropped, swapped or inserted)",
        }

    def test_report(self) -> None:
        doc = json.loads(result_json(verify_entries(enumerate(ENTRIES), ANCHORS, workers=1)))
        assert doc["ok"] is True and doc["divergence"] is None
        assert doc["report"]["schema"] == "mla.audit.report.v1"
        assert doc["report"]["entries"] == N


class TestProjection:
    """A live hub's DIRECTORY bucket against the directory the replay rebuilt."""

    def test_equal(self) -> None:
        rebuilt = replayed().directory_projection()
        assert len(rebuilt) == 6  # card and key-history key of each of three authorities
        assert compare_directory(rebuilt, dict(rebuilt), size=N) is None
        result = verify_entries(
            enumerate(ENTRIES), ANCHORS, workers=1, served_directory=lambda: dict(rebuilt)
        )
        assert result.ok

    def test_hub_serves_another_card(self) -> None:
        rebuilt = replayed().directory_projection()
        served = dict(rebuilt)
        key = sorted(served)[0]
        card = decode(served[key], AdmittedCard)
        served[key] = encode(
            AdmittedCard(
                signed=card.signed,
                operator_signature=card.operator_signature,
                operator_key=card.operator_key,
                card_digest=card.card_digest,
                ledger_index=card.ledger_index + 1,
            )
        )
        d = compare_directory(rebuilt, served, size=N)
        assert d is not None
        assert (d.check, d.index) == ("projection", card.ledger_index)
        assert key in d.message
        result = verify_entries(
            enumerate(ENTRIES), ANCHORS, workers=1, served_directory=lambda: served
        )
        assert result.divergence == d

    def test_missing_and_newer(self) -> None:
        rebuilt = replayed().directory_projection()
        served = dict(rebuilt)
        key = sorted(served)[-1]
        del served[key]
        d = compare_directory(rebuilt, served, size=N)
        assert d is not None and d.found == "absent"
        # A card the hub admitted after the replayed size is not compared.
        newer = AdmittedCard(
            signed=STANDARD_CARD.signed,
            operator_signature=STANDARD_CARD.operator_signature,
            operator_key=STANDARD_CARD.operator_key,
            card_digest=STANDARD_CARD.card_digest,
            ledger_index=N + 5,
        )
        assert compare_directory(rebuilt, {**rebuilt, "card.XQ-NEW": encode(newer)}, size=N) is None
