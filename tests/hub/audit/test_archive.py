"""hub/audit/archive.py: the archive round-trips, streams, and refuses every way of being broken
with a typed error (truncated, garbled, unsupported)."""

from __future__ import annotations

import io

import pytest

from hub.audit.archive import (
    MAGIC,
    ArchiveCorrupt,
    ArchiveError,
    ArchiveHeader,
    ArchiveReader,
    ArchiveTotals,
    ArchiveTruncated,
    ArchiveUnsupported,
    ArchiveWriter,
    CheckpointRecord,
    EntryRecord,
    encode_end,
    encode_record,
    encode_start,
    read_totals,
)
from hub.errors import UnsupportedVersion, ValidationError
from schemas.codec import encode
from tests.hub.audit.history import HEADER, archive, checkpoint, every_checkpoint, standard

STANDARD = standard()
ENTRIES = STANDARD.entries
SIGNED = every_checkpoint(ENTRIES)
ARCHIVE = archive(ENTRIES, SIGNED)


def records(data: bytes) -> list[EntryRecord | CheckpointRecord]:
    return list(ArchiveReader(io.BytesIO(data)))


class TestRoundTrip:
    """What goes in comes out, byte for byte, checkpoints right after the entries they cover."""

    def test_records(self) -> None:
        reader = ArchiveReader(io.BytesIO(ARCHIVE))
        assert reader.header == HEADER
        got = list(reader)
        assert [r.data for r in got if isinstance(r, EntryRecord)] == ENTRIES
        assert [r.note for r in got if isinstance(r, CheckpointRecord)] == SIGNED
        assert isinstance(got[0], EntryRecord) and isinstance(got[1], CheckpointRecord)
        assert reader.totals == ArchiveTotals(len(ENTRIES), len(SIGNED))

    def test_interleaving_keeps_issue_order(self) -> None:
        """A checkpoint waits for its entries and for every checkpoint issued before it."""
        cps = [SIGNED[9], SIGNED[4], SIGNED[12]]
        kinds = [
            "C" if isinstance(r, CheckpointRecord) else "E" for r in records(archive(ENTRIES, cps))
        ]
        assert "".join(kinds) == "E" * 10 + "CC" + "EEE" + "C"

    def test_checkpoint_beyond_the_entries_goes_last(self) -> None:
        got = records(archive(ENTRIES[:3], [SIGNED[5]]))
        assert [type(r).__name__ for r in got] == ["EntryRecord"] * 3 + ["CheckpointRecord"]

    def test_starts_with_the_version_line(self) -> None:
        assert ARCHIVE.startswith(b"mla.audit.archive.v1\n")

    def test_totals_from_the_end(self) -> None:
        src = io.BytesIO(ARCHIVE)
        src.seek(7)
        assert read_totals(src) == ArchiveTotals(len(ENTRIES), len(SIGNED))
        assert src.tell() == 7
        assert read_totals(io.BytesIO(ARCHIVE[:-1])) is None

    def test_writer_streams(self) -> None:
        out = io.BytesIO()
        writer = ArchiveWriter(out, HEADER)
        writer.checkpoint(SIGNED[0])
        assert len(out.getvalue()) == len(encode_start(HEADER))  # waits for entry 0
        writer.entry(ENTRIES[0])
        assert out.getvalue().endswith(SIGNED[0].encode())
        assert writer.close() == ArchiveTotals(1, 1)
        assert writer.close() == ArchiveTotals(1, 1)  # idempotent


class TestBroken:
    """Truncated, garbled or of another version: a typed error, never a silent short read."""

    def test_truncated_anywhere(self) -> None:
        for length in range(len(ARCHIVE)):
            with pytest.raises(ArchiveTruncated):
                records(ARCHIVE[:length])

    def test_truncated_at_a_record_boundary(self) -> None:
        cut = len(encode_start(HEADER)) + len(encode_record(b"E", ENTRIES[0]))
        with pytest.raises(ArchiveTruncated, match="after 1 entries, without an end record"):
            records(ARCHIVE[:cut])

    def test_bytes_after_the_end(self) -> None:
        with pytest.raises(ArchiveCorrupt, match="after the end record"):
            records(ARCHIVE + b"\x00")

    def test_not_an_archive(self) -> None:
        with pytest.raises(ArchiveCorrupt, match="does not start"):
            records(b"PK\x03\x04" + b"\x00" * 40)

    def test_other_version(self) -> None:
        data = b"mla.audit.archive.v2\n" + ARCHIVE[len(MAGIC) :]
        with pytest.raises(ArchiveUnsupported) as e:
            records(data)
        assert isinstance(e.value, UnsupportedVersion)

    def test_other_header_version(self) -> None:
        raw = encode(HEADER).replace(b"mla.audit.archive.v1", b"mla.audit.archive.v9")
        with pytest.raises(ArchiveUnsupported, match="v9"):
            records(MAGIC + encode_record(b"H", raw) + encode_end(ArchiveTotals(0, 0)))

    def test_garbled_header(self) -> None:
        with pytest.raises(ArchiveCorrupt, match="archive header"):
            records(MAGIC + encode_record(b"H", b"\xc1\xc1") + encode_end(ArchiveTotals(0, 0)))

    def test_header_must_come_first(self) -> None:
        with pytest.raises(ArchiveCorrupt, match="first record"):
            records(MAGIC + encode_record(b"E", ENTRIES[0]))

    def test_unknown_record_kind(self) -> None:
        with pytest.raises(ArchiveCorrupt, match="unknown record kind"):
            records(
                encode_start(HEADER) + encode_record(b"X", b"") + encode_end(ArchiveTotals(0, 0))
            )

    def test_absurd_length(self) -> None:
        with pytest.raises(ArchiveCorrupt, match="exceeds"):
            records(encode_start(HEADER) + b"E\xff\xff\xff\xff")

    def test_counts_disagree(self) -> None:
        data = (
            encode_start(HEADER) + encode_record(b"E", ENTRIES[0]) + encode_end(ArchiveTotals(2, 0))
        )
        with pytest.raises(ArchiveCorrupt, match="counts 2 entries"):
            records(data)

    def test_checkpoint_not_utf8(self) -> None:
        data = encode_start(HEADER) + encode_record(b"C", b"\xff") + encode_end(ArchiveTotals(0, 1))
        with pytest.raises(ArchiveCorrupt, match="UTF-8"):
            records(data)

    def test_errors_are_validation_errors(self) -> None:
        for error in (ArchiveTruncated, ArchiveCorrupt, ArchiveUnsupported):
            assert issubclass(error, ArchiveError)
            assert issubclass(error, ValidationError)

    def test_header_round_trip_with_time(self) -> None:
        from datetime import UTC, datetime

        header = ArchiveHeader(
            origin="o", log_key="k", operator_keys=[], exported_at=datetime(2026, 1, 1, tzinfo=UTC)
        )
        assert (
            ArchiveReader(io.BytesIO(encode_start(header) + encode_end(ArchiveTotals(0, 0)))).header
            == header
        )

    def test_garbage_checkpoint_is_a_divergence_not_an_archive_error(self) -> None:
        """A readable archive whose checkpoint note is nonsense: the replay names it."""
        from hub.audit.runner import verify_archive

        data = archive(ENTRIES[:2], [checkpoint(ENTRIES, 2), "nonsense"])
        result = verify_archive(io.BytesIO(data), workers=1)
        assert result.divergence is not None
        assert result.divergence.check == "checkpoint_signature"
