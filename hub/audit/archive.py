"""The audit archive: a self-contained, streamable export of the ledger (DESIGN.md section 4).

``hub audit export`` writes it; ``hub audit verify --archive`` replays it. It holds all an
auditor needs and nothing it must trust blindly: the hub's identity (origin, checkpoint key,
operator keys) to compare with what the auditor pinned, every ledger entry's exact stored
bytes (signatures are checked over those, STYLE rule 4) and every signed checkpoint. The
directory and its key history are not stored twice: they are in the admission entries.

Layout, version 1 (integers big-endian; the version is the first line, as in age)::

    magic   "mla.audit.archive.v1\\n"
    record  kind (1 byte) || length (u32) || payload, repeated:
      H  header, first and once: msgpack ``ArchiveHeader`` (tag mla.audit.archive.v1)
      E  one ledger entry's exact bytes, in ledger order: the n-th E record is index n
      C  one signed checkpoint note (UTF-8, cosignature lines included), after the entries it
         covers and in the order the hub issued them, so a streaming replay checks each one
         as soon as it can and the first divergence is found in one pass
      Z  end, last: u64 entries || u64 checkpoints. A fixed 21 bytes, so a reader can seek to
         the end for the totals (a progress bar) and a cut at a record boundary is detected.

Records are length-prefixed so readers and writers stream: memory does not grow with history.
Bad input raises :class:`ArchiveTruncated`, :class:`ArchiveCorrupt` or
:class:`ArchiveUnsupported`, all :class:`ArchiveError` (a ``ValidationError``).
"""

from __future__ import annotations

import struct
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import BinaryIO, Final

from hub.audit.checkpoints import claimed_size
from hub.errors import HubError, UnsupportedVersion, ValidationError
from schemas.codec import Strict, decode, encode

__all__ = [
    "FORMAT",
    "MAGIC",
    "MAX_RECORD",
    "ArchiveCorrupt",
    "ArchiveError",
    "ArchiveHeader",
    "ArchiveReader",
    "ArchiveTotals",
    "ArchiveTruncated",
    "ArchiveUnsupported",
    "ArchiveWriter",
    "CheckpointRecord",
    "EntryRecord",
    "decode_header",
    "encode_end",
    "encode_record",
    "encode_start",
    "read_totals",
]

FORMAT: Final = "mla.audit.archive.v1"
MAGIC: Final = FORMAT.encode() + b"\n"
MAX_RECORD: Final = 64 * 1024 * 1024
_PREFIX: Final = struct.Struct(">cI")
_END: Final = struct.Struct(">QQ")
_END_SIZE: Final = _PREFIX.size + _END.size
_MAGIC_FAMILY: Final = b"mla.audit.archive."


class ArchiveError(ValidationError):
    """An archive that cannot be read as one."""

    code = "archive_invalid"


class ArchiveTruncated(ArchiveError):
    """The archive ends early: inside a record, or before its end record."""

    code = "archive_truncated"


class ArchiveCorrupt(ArchiveError):
    """Bytes that are not a well-formed archive (bad magic, record kind, length or counts)."""

    code = "archive_corrupt"


class ArchiveUnsupported(ArchiveError, UnsupportedVersion):
    """An audit archive of a format version this code does not read."""

    code = "archive_unsupported"


class ArchiveHeader(Strict, frozen=True, kw_only=True, tag=FORMAT):
    """Who the history claims to be from; the auditor compares it with its own pins."""

    origin: str
    log_key: str
    """The hub's checkpoint key, as a C2SP signed-note verifier key string."""
    operator_keys: list[str]
    """Operator Ed25519 public keys (hex) whose admissions are valid."""
    exported_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class EntryRecord:
    index: int
    data: bytes


@dataclass(frozen=True, slots=True)
class CheckpointRecord:
    note: str


@dataclass(frozen=True, slots=True)
class ArchiveTotals:
    entries: int
    checkpoints: int


# --- pure encoding -------------------------------------------------------------------------------


def encode_record(kind: bytes, payload: bytes) -> bytes:
    """One record: kind byte, u32 length, payload."""
    if len(payload) > MAX_RECORD:
        raise ArchiveCorrupt(f"record: {len(payload)} bytes exceeds {MAX_RECORD}")
    return _PREFIX.pack(kind, len(payload)) + payload


def encode_start(header: ArchiveHeader) -> bytes:
    """Magic line and header record: the first bytes of every archive."""
    return MAGIC + encode_record(b"H", encode(header))


def encode_end(totals: ArchiveTotals) -> bytes:
    """The end record (fixed size)."""
    return encode_record(b"Z", _END.pack(totals.entries, totals.checkpoints))


def decode_header(payload: bytes) -> ArchiveHeader:
    """The header record's payload, or :class:`ArchiveCorrupt` / :class:`ArchiveUnsupported`."""
    try:
        return decode(payload, ArchiveHeader, what="archive header")
    except HubError as e:
        try:
            tag = decode(payload, dict[str, object], what="archive header").get("schema")
        except HubError:
            tag = None
        if isinstance(tag, str) and tag != FORMAT:
            raise ArchiveUnsupported(f"archive header: {tag!r} is not {FORMAT}") from e
        raise ArchiveCorrupt(f"archive header: {e}") from e


# --- streaming -----------------------------------------------------------------------------------


class ArchiveWriter:
    """Write an archive to a binary file object, one record at a time."""

    def __init__(self, out: BinaryIO, header: ArchiveHeader) -> None:
        self._out = out
        self._entries = 0
        self._checkpoints = 0
        self._queue: deque[tuple[str, int | None]] = deque()
        self._closed = False
        out.write(encode_start(header))

    def entry(self, data: bytes) -> None:
        """Append the next ledger entry's exact bytes (index = entries written so far)."""
        self._out.write(encode_record(b"E", data))
        self._entries += 1
        self._flush(final=False)

    def checkpoint(self, note: str) -> None:
        """Add a signed checkpoint; it is written once the entries it covers are."""
        self._queue.append((note, claimed_size(note)))
        self._flush(final=False)

    def close(self) -> ArchiveTotals:
        """Write the remaining checkpoints and the end record; return the totals."""
        if not self._closed:
            self._flush(final=True)
            self._out.write(encode_end(self.totals))
            self._closed = True
        return self.totals

    @property
    def totals(self) -> ArchiveTotals:
        return ArchiveTotals(self._entries, self._checkpoints)

    def _flush(self, *, final: bool) -> None:
        while self._queue:
            note, size = self._queue[0]
            if not final and size is not None and size > self._entries:
                return
            self._queue.popleft()
            self._out.write(encode_record(b"C", note.encode("utf-8")))
            self._checkpoints += 1


class ArchiveReader:
    """Read an archive from a binary file object: :attr:`header`, then iterate the records."""

    def __init__(self, src: BinaryIO) -> None:
        self._src = src
        self._offset = 0
        magic = self._read(len(MAGIC))
        if magic != MAGIC:
            if MAGIC.startswith(magic):
                raise self._truncated("the magic line")
            if magic.startswith(_MAGIC_FAMILY):
                raise ArchiveUnsupported(f"archive: format {magic.strip()!r} is not {FORMAT}")
            raise ArchiveCorrupt(f"archive: does not start with {FORMAT!r}")
        kind, payload = self._record()
        if kind != b"H":
            raise ArchiveCorrupt("archive: the first record must be the header")
        self.header = decode_header(payload)
        self.totals: ArchiveTotals | None = None

    def __iter__(self) -> Iterator[EntryRecord | CheckpointRecord]:
        entries = checkpoints = 0
        while True:
            kind, payload = self._record(entries)
            if kind == b"E":
                yield EntryRecord(entries, payload)
                entries += 1
            elif kind == b"C":
                try:
                    note = payload.decode("utf-8")
                except UnicodeDecodeError as e:
                    raise self._corrupt(f"checkpoint record {checkpoints} is not UTF-8") from e
                yield CheckpointRecord(note)
                checkpoints += 1
            elif kind == b"Z":
                self._end(payload, ArchiveTotals(entries, checkpoints))
                return
            else:
                raise self._corrupt(f"unknown record kind {kind!r}")

    def _end(self, payload: bytes, seen: ArchiveTotals) -> None:
        if len(payload) != _END.size:
            raise self._corrupt("the end record has the wrong size")
        claimed = ArchiveTotals(*_END.unpack(payload))
        if claimed != seen:
            raise self._corrupt(
                f"the end record counts {claimed.entries} entries and {claimed.checkpoints} "
                f"checkpoints; the archive holds {seen.entries} and {seen.checkpoints}"
            )
        if self._src.read(1):
            raise self._corrupt("bytes after the end record")
        self.totals = seen

    def _record(self, entries: int = 0) -> tuple[bytes, bytes]:
        prefix = self._read(_PREFIX.size)
        if not prefix:
            raise ArchiveTruncated(f"archive: ends after {entries} entries, without an end record")
        if len(prefix) < _PREFIX.size:
            raise self._truncated(f"a record prefix after {entries} entries")
        kind, length = _PREFIX.unpack(prefix)
        if length > MAX_RECORD:
            raise self._corrupt(f"record length {length} exceeds {MAX_RECORD}")
        payload = self._read(length)
        if len(payload) < length:
            raise self._truncated(f"a {kind!r} record after {entries} entries")
        return kind, payload

    def _read(self, n: int) -> bytes:
        data = self._src.read(n)
        if len(data) == n or not data:  # the usual case: one read returns it all
            self._offset += len(data)
            return data
        chunks, missing = [data], n - len(data)
        while missing:
            chunk = self._src.read(missing)
            if not chunk:
                break
            chunks.append(chunk)
            missing -= len(chunk)
        data = b"".join(chunks)
        self._offset += len(data)
        return data

    def _truncated(self, what: str) -> ArchiveTruncated:
        return ArchiveTruncated(f"archive: ends inside {what} (byte {self._offset})")

    def _corrupt(self, message: str) -> ArchiveCorrupt:
        return ArchiveCorrupt(f"archive: {message} (byte {self._offset})")


def read_totals(src: BinaryIO) -> ArchiveTotals | None:
    """The totals from the end record of a seekable archive, position unchanged; ``None`` if
    the file cannot seek or does not end with an end record (reading will say why)."""
    try:
        if not src.seekable():
            return None
        here = src.tell()
        try:
            src.seek(-_END_SIZE, 2)
            tail = src.read(_END_SIZE)
        finally:
            src.seek(here)
    except OSError:
        return None
    if len(tail) != _END_SIZE or tail[:1] != b"Z":
        return None
    _, length = _PREFIX.unpack(tail[: _PREFIX.size])
    if length != _END.size:
        return None
    return ArchiveTotals(*_END.unpack(tail[_PREFIX.size :]))
