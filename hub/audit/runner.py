"""The audit shell: archives and ledger streams in, the first divergence or a report out.

Imperative shell (STYLE rule 1) around the pure :class:`~hub.audit.replay.Replayer`: it reads
an archive file (or any iterator / async iterator of ``(index, entry bytes)``, e.g. the live
LEDGER stream), feeds the replayer in order, cuts its signature jobs into batches every
``batch_size`` entries and runs them on a ``ProcessPoolExecutor`` (one worker per core),
settles the batches in order (so the first failure is the earliest), reports progress, and
measures the time. With ``workers=1`` the jobs run inline, in the same order. The replay runs
with the cyclic collector paused, as the hub's own fold does (``hub.ledger.folding``): it
builds the projections' many long-lived objects and no cycles, and the collector scanning them
again and again cost a third of the main process's time per entry.

``export_archive`` writes the archive (:mod:`hub.audit.archive`) from the same kind of
iterator. Archive format errors propagate as :class:`~hub.audit.archive.ArchiveError`.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections import deque
from collections.abc import (
    AsyncIterable,
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Iterator,
    Mapping,
)
from concurrent.futures import Future, ProcessPoolExecutor
from types import TracebackType
from typing import BinaryIO, Final, TypeVar

from hub.audit.archive import (
    ArchiveCorrupt,
    ArchiveHeader,
    ArchiveReader,
    ArchiveTotals,
    ArchiveWriter,
    CheckpointRecord,
    read_totals,
)
from hub.audit.jobs import encode_jobs, run_encoded_jobs, run_jobs
from hub.audit.outcome import Divergence, Report
from hub.audit.projection import compare_directory
from hub.audit.replay import Replayer, TrustAnchors
from hub.crypto.note import verifier_key
from hub.errors import ValidationError
from hub.ledger.folding import collector_paused
from schemas.codec import Strict, encode_json

__all__ = [
    "DEFAULT_BATCH",
    "AuditResult",
    "ProgressFn",
    "aexport_archive",
    "averify_entries",
    "export_archive",
    "result_json",
    "verify_archive",
    "verify_entries",
]

ProgressFn = Callable[[int, int | None], None]
"""``progress(done, total)``: entries fully verified (signatures included) and the total, if
known. Called after each batch, in order."""

DEFAULT_BATCH: Final = 512
_FIRST_BATCH: Final = 64
_T = TypeVar("_T")


class AuditResult(Strict, frozen=True, kw_only=True, tag="mla.audit.result.v1"):
    """What ``audit verify --json`` prints: the outcome and how fast it was reached."""

    ok: bool
    report: Report | None
    divergence: Divergence | None
    entries: int
    """Entries fed to the replay (all of them when ``ok``)."""
    elapsed_s: float
    entries_per_s: float
    workers: int


def result_json(result: AuditResult) -> bytes:
    """The stable JSON shape of a result (deterministic key order)."""
    return encode_json(result)


class _Driver:
    """Feeds one replayer and settles its job batches in order, on a pool or inline."""

    def __init__(
        self,
        replayer: Replayer,
        *,
        workers: int,
        batch_size: int,
        progress: ProgressFn | None,
        total: int | None,
    ) -> None:
        self.replayer = replayer
        self._pool = ProcessPoolExecutor(workers) if workers > 1 else None
        self._inflight: deque[tuple[Future[Divergence | None], int]] = deque()
        self._max_inflight = 2 * workers
        self._batch_size = batch_size
        self._workers = workers
        self._next_batch = min(batch_size, _FIRST_BATCH)
        self._progress = progress
        self._total = total
        self._cut = 0

    def __enter__(self) -> _Driver:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)

    def feed(self, index: int, data: bytes) -> None:
        replayer = self.replayer
        replayer.feed(index, data)
        if index + 1 - self._cut >= self._next_batch or replayer.stopped:
            self.dispatch()

    def dispatch(self) -> None:
        """Send the jobs emitted since the last cut as one batch."""
        jobs = self.replayer.take_jobs()
        self._cut = self.replayer.position
        self._next_batch = self._batch_after(self._next_batch)
        future: Future[Divergence | None]
        if self._pool is not None and jobs:
            future = self._pool.submit(run_encoded_jobs, encode_jobs(jobs))
        else:
            future = Future()
            future.set_result(run_jobs(jobs))
        self._inflight.append((future, self._cut))

    def _batch_after(self, size: int) -> int:
        """Small batches first, so every worker starts early, doubling up to ``batch_size``;
        and small again near a known end, so no worker idles while another finishes a big
        last batch."""
        size = min(self._batch_size, 2 * size)
        if self._total is not None:
            left = self._total - self._cut
            size = min(size, max(_FIRST_BATCH, left // (2 * self._workers)))
        return size

    def backlog(self) -> Future[Divergence | None] | None:
        """The oldest batch, when too many are in flight (wait for it, then :meth:`settle`)."""
        return self._inflight[0][0] if len(self._inflight) > self._max_inflight else None

    def oldest(self) -> Future[Divergence | None] | None:
        return self._inflight[0][0] if self._inflight else None

    def catch_up(self) -> None:
        """Block on the oldest batches while too many are in flight."""
        while (future := self.backlog()) is not None:
            future.result()
            self.settle()

    async def acatch_up(self) -> None:
        while (future := self.backlog()) is not None:
            await asyncio.wrap_future(future)
            self.settle()

    def drain(self) -> None:
        """Send the last batch and settle every batch, in order."""
        self.dispatch()
        while (future := self.oldest()) is not None:
            future.result()
            self.settle()

    async def adrain(self) -> None:
        self.dispatch()
        while (future := self.oldest()) is not None:
            await asyncio.wrap_future(future)
            self.settle()

    def settle(self) -> None:
        """Take the oldest batch's result (it must be done); a failure ends the replay."""
        future, done = self._inflight.popleft()
        failure = future.result()
        if failure is not None:
            self.replayer.job_failed(failure)  # batches before it all passed: it is the first
            for later, _ in self._inflight:
                later.cancel()
            self._inflight.clear()
        elif self._progress is not None:
            self._progress(done, self._total)


def _until_stopped(replayer: Replayer, items: Iterable[_T]) -> Iterator[_T]:
    """``items`` until the replay stops (never pulls one more: the source may be a stream)."""
    if replayer.stopped:  # a checkpoint given up front can fail before any entry
        return
    for item in items:
        yield item
        if replayer.stopped:
            return


async def _auntil_stopped(replayer: Replayer, items: AsyncIterable[_T]) -> AsyncIterator[_T]:
    if replayer.stopped:
        return
    async for item in items:
        yield item
        if replayer.stopped:
            return


def _workers(workers: int | None) -> int:
    return max(1, workers if workers is not None else (os.cpu_count() or 1))


def _result(
    outcome: Report | Divergence, entries: int, started: float, workers: int
) -> AuditResult:
    elapsed = time.perf_counter() - started
    return AuditResult(
        ok=isinstance(outcome, Report),
        report=outcome if isinstance(outcome, Report) else None,
        divergence=outcome if isinstance(outcome, Divergence) else None,
        entries=entries,
        elapsed_s=round(elapsed, 6),
        entries_per_s=round(entries / elapsed, 1) if elapsed > 0 else 0.0,
        workers=workers,
    )


def _finish(
    replayer: Replayer, started: float, workers: int, served: Mapping[str, bytes] | None
) -> AuditResult:
    outcome = replayer.finish()
    if isinstance(outcome, Report) and served is not None:
        rebuilt = replayer.directory_projection()
        outcome = compare_directory(rebuilt, served, size=replayer.position) or outcome
    return _result(outcome, replayer.position, started, workers)


def _anchor_mismatch(pins: TrustAnchors, claimed: TrustAnchors) -> Divergence | None:
    for name, want, have in (
        ("origin", pins.origin, claimed.origin),
        ("log_key", _vkey(pins), _vkey(claimed)),
        ("operator_keys", _hexes(pins.operator_keys), _hexes(claimed.operator_keys)),
    ):
        if want != have:
            return Divergence(
                index=None,
                checkpoint=None,
                check="trust_anchor",
                expected=want,
                found=have,
                message=f"archive header: {name} is not the one the auditor pinned",
            )
    return None


def _vkey(anchors: TrustAnchors) -> str:
    key = anchors.log_key
    return verifier_key(key.name, key.public, kind=key.kind)


def _hexes(keys: frozenset[bytes]) -> str:
    return ",".join(sorted(k.hex() for k in keys))


def verify_archive(
    src: BinaryIO,
    *,
    pins: TrustAnchors | None = None,
    witnesses: int = 0,
    workers: int | None = None,
    progress: ProgressFn | None = None,
    served_directory: Callable[[], Mapping[str, bytes]] | None = None,
    batch_size: int = DEFAULT_BATCH,
) -> AuditResult:
    """Replay an archive file. ``pins`` (the auditor's own trust anchors) must match the
    archive header, else the answer is a ``trust_anchor`` divergence; without pins the header
    is trusted. ``served_directory`` is called after the replay (live hub comparison)."""
    started, n = time.perf_counter(), _workers(workers)
    totals = read_totals(src)
    reader = ArchiveReader(src)
    header = reader.header
    try:
        claimed = TrustAnchors.parse(header.origin, header.log_key, header.operator_keys)
    except ValidationError as e:
        raise ArchiveCorrupt(f"archive header: {e}") from e
    mismatch = _anchor_mismatch(pins, claimed) if pins is not None else None
    if mismatch is not None:
        return _result(mismatch, 0, started, n)
    replayer = Replayer(pins or claimed, witnesses=witnesses)
    total = totals.entries if totals is not None else None
    driver = _Driver(replayer, workers=n, batch_size=batch_size, progress=progress, total=total)
    with collector_paused(), driver as d:
        for record in _until_stopped(replayer, reader):
            if isinstance(record, CheckpointRecord):
                replayer.add_checkpoint(record.note)
            else:
                d.feed(record.index, record.data)
                d.catch_up()
        d.drain()
    return _finish(replayer, started, n, served_directory() if served_directory else None)


def verify_entries(
    entries: Iterable[tuple[int, bytes]],
    anchors: TrustAnchors,
    *,
    checkpoints: Iterable[str] = (),
    total: int | None = None,
    witnesses: int = 0,
    workers: int | None = None,
    progress: ProgressFn | None = None,
    served_directory: Callable[[], Mapping[str, bytes]] | None = None,
    batch_size: int = DEFAULT_BATCH,
) -> AuditResult:
    """Replay ``(index, entry bytes)`` pairs against the auditor's ``anchors``; ``checkpoints``
    are the hub's signed notes in issue order (each is checked once the tree reaches it)."""
    started, n = time.perf_counter(), _workers(workers)
    replayer = Replayer(anchors, witnesses=witnesses)
    for note in checkpoints:
        replayer.add_checkpoint(note)
    driver = _Driver(replayer, workers=n, batch_size=batch_size, progress=progress, total=total)
    with collector_paused(), driver as d:
        for index, data in _until_stopped(replayer, entries):
            d.feed(index, data)
            d.catch_up()
        d.drain()
    return _finish(replayer, started, n, served_directory() if served_directory else None)


async def averify_entries(
    entries: AsyncIterable[tuple[int, bytes]],
    anchors: TrustAnchors,
    *,
    checkpoints: Iterable[str] = (),
    total: int | None = None,
    witnesses: int = 0,
    workers: int | None = None,
    progress: ProgressFn | None = None,
    served_directory: Callable[[], Awaitable[Mapping[str, bytes]]] | None = None,
    batch_size: int = DEFAULT_BATCH,
) -> AuditResult:
    """:func:`verify_entries` for an async source (``Ledger.read()``); waits on the pool
    without blocking the event loop (the in-order checks run on the loop's thread)."""
    started, n = time.perf_counter(), _workers(workers)
    replayer = Replayer(anchors, witnesses=witnesses)
    for note in checkpoints:
        replayer.add_checkpoint(note)
    driver = _Driver(replayer, workers=n, batch_size=batch_size, progress=progress, total=total)
    with collector_paused(), driver as d:
        async for index, data in _auntil_stopped(replayer, entries):
            d.feed(index, data)
            await d.acatch_up()
        await d.adrain()
    served = await served_directory() if served_directory else None
    return _finish(replayer, started, n, served)


def _check_index(index: int, writer: ArchiveWriter) -> None:
    if index != writer.totals.entries:
        raise ValidationError(
            f"export: entry {index} arrived where {writer.totals.entries} was expected"
        )


def export_archive(
    entries: Iterable[tuple[int, bytes]],
    checkpoints: Iterable[str],
    header: ArchiveHeader,
    out: BinaryIO,
) -> ArchiveTotals:
    """Write an archive: the header, every entry in order, the checkpoints (in issue order,
    each after the entries it covers), the end record. Returns the totals written."""
    writer = ArchiveWriter(out, header)
    for note in checkpoints:
        writer.checkpoint(note)
    for index, data in entries:
        _check_index(index, writer)
        writer.entry(data)
    return writer.close()


async def aexport_archive(
    entries: AsyncIterable[tuple[int, bytes]],
    checkpoints: Iterable[str],
    header: ArchiveHeader,
    out: BinaryIO,
) -> ArchiveTotals:
    """:func:`export_archive` for an async source such as ``Ledger.read()``."""
    writer = ArchiveWriter(out, header)
    for note in checkpoints:
        writer.checkpoint(note)
    async for index, data in entries:
        _check_index(index, writer)
        writer.entry(data)
    return writer.close()
