"""JetStream I/O for the hub: streams, the ledger append and read, the content store.

The LEDGER stream is the event log of record (STYLE rule 11). Appends carry ``Nats-Msg-Id``
(so a retried publish is stored once) and ``Nats-Expected-Last-Sequence`` (so two hub
instances can never both append at the same position: the loser gets :class:`LedgerConflict`,
catches up and decides again). Ledger index ``i`` is stream sequence ``i + 1``; the stream
denies delete and purge, so sequences have no holes.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

import nats.errors
import nats.js.errors
from nats.errors import ConnectionClosedError, NoRespondersError
from nats.js import JetStreamContext
from nats.js import api as js_api
from nats.js.errors import (
    APIError,
    BadRequestError,
    BucketNotFoundError,
    KeyNotFoundError,
    NoKeysError,
    NotFoundError,
    ServiceUnavailableError,
)
from nats.js.kv import KeyValue

from hub import subjects
from hub.errors import ConflictError, HubError, UnavailableError
from hub.ledger.pipeline import Pipeline
from hub.ledger.pull import PullConsumer

__all__ = [
    "ContentStore",
    "Ledger",
    "LedgerConflict",
    "StreamLayout",
    "ensure_topology",
    "kv_items",
    "when_ready",
]

T = TypeVar("T")

_WRONG_LAST_SEQUENCE = 10071
_DAY_S = 86_400.0


class LedgerConflict(ConflictError):
    """Another writer appended first; catch up and decide again."""

    code = "ledger_conflict"


@dataclass(frozen=True, slots=True)
class StreamLayout:
    """How the hub's streams are stored. ``replicas=3`` on a cluster (durability by quorum)."""

    replicas: int = 1
    duplicate_window_s: float = 120.0
    deliver_max_age_s: float = 30 * _DAY_S
    verdict_max_age_s: float = 7 * _DAY_S
    max_msg_size: int = 8 * 1024 * 1024


async def when_ready(make: Callable[[], Awaitable[T]], *, seconds: float = 30.0) -> T:
    """Run a JetStream set-up call, retrying while JetStream says it is not ready yet.

    A server that has just started (or is busy recovering its store) answers the first API
    calls with 503 "JetStream not ready" for a moment; that is not an error worth dying for.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while True:
        try:
            return await make()
        except (
            ServiceUnavailableError,
            TimeoutError,
            NoRespondersError,
            ConnectionClosedError,
        ) as e:
            if loop.time() > deadline:
                raise UnavailableError(f"JetStream: not ready after {seconds:.0f} s ({e})") from e
            await asyncio.sleep(0.2)


async def ensure_topology(js: JetStreamContext, layout: StreamLayout = StreamLayout()) -> None:
    """Create the streams and buckets if missing (idempotent; safe from several instances)."""
    await when_ready(lambda: _ensure_topology(js, layout))


async def _ensure_topology(js: JetStreamContext, layout: StreamLayout) -> None:
    file = js_api.StorageType.FILE
    streams = [
        js_api.StreamConfig(
            name=subjects.SUBMIT_STREAM,
            subjects=["mla.submit.>"],
            storage=file,
            num_replicas=layout.replicas,
            duplicate_window=layout.duplicate_window_s,
            max_msg_size=layout.max_msg_size,
        ),
        js_api.StreamConfig(
            name=subjects.LEDGER_STREAM,
            subjects=[subjects.LEDGER_SUBJECT],
            storage=file,
            num_replicas=layout.replicas,
            duplicate_window=layout.duplicate_window_s,
            deny_delete=True,
            deny_purge=True,
            allow_direct=True,
            allow_atomic=True,  # where the server has it (hub.ledger.batches)
        ),
        js_api.StreamConfig(
            name=subjects.DELIVER_STREAM,
            subjects=["mla.deliver.>"],
            storage=file,
            num_replicas=layout.replicas,
            duplicate_window=layout.duplicate_window_s,
            max_age=layout.deliver_max_age_s,
        ),
        js_api.StreamConfig(
            name=subjects.VERDICT_STREAM,
            subjects=["mla.verdict.>"],
            storage=file,
            num_replicas=layout.replicas,
            duplicate_window=layout.duplicate_window_s,
            max_age=layout.verdict_max_age_s,
            allow_direct=True,
        ),
    ]
    for config in streams:
        try:
            await js.stream_info(config.name or "")
        except NotFoundError:
            try:
                await js.add_stream(config)
            except BadRequestError:  # created meanwhile by another instance
                await js.stream_info(config.name or "")
    buckets = (subjects.CONTENT_BUCKET, subjects.DIRECTORY_BUCKET, subjects.CHECKPOINTS_BUCKET)
    # ACCESS_TOKENS keeps past revisions of a token record (issued, then revoked) for audit.
    with_history = [(name, 1) for name in buckets] + [(subjects.ACCESS_TOKENS_BUCKET, 16)]
    for bucket, history in with_history:
        try:
            await js.key_value(bucket)
        except BucketNotFoundError:
            await js.create_key_value(
                js_api.KeyValueConfig(
                    bucket=bucket,
                    history=history,
                    storage=file,
                    replicas=layout.replicas,
                    max_value_size=layout.max_msg_size,
                )
            )


async def intake_subscription(js: JetStreamContext) -> PullConsumer:
    """The hub's durable pull consumer on the intake, shared by every hub instance (created by
    the first to start)."""
    config = js_api.ConsumerConfig(
        name="hub",
        durable_name="hub",
        ack_policy=js_api.AckPolicy.EXPLICIT,
        ack_wait=30.0,
        max_ack_pending=4096,
        filter_subject="mla.submit.>",
    )
    try:
        await js.consumer_info(subjects.SUBMIT_STREAM, "hub")
    except NotFoundError:
        await js.add_consumer(subjects.SUBMIT_STREAM, config)
    return await PullConsumer.bind(js, subjects.SUBMIT_STREAM, "hub")


class Ledger:
    """Append to and read the LEDGER stream."""

    def __init__(self, js: JetStreamContext) -> None:
        self._js = js

    async def size(self) -> int:
        """Number of entries recorded (the next index)."""
        try:
            info = await self._js.stream_info(subjects.LEDGER_STREAM)
        except NotFoundError as e:
            raise UnavailableError(
                "ledger: the LEDGER stream does not exist (hub never ran)"
            ) from e
        return int(info.state.last_seq)

    async def append(self, entry: bytes, *, index: int, dedup_id: str) -> int:
        """Store ``entry`` at ``index``; return the index it holds (a retried dedup id included).

        Raises :class:`LedgerConflict` if the ledger already holds ``index`` entries' worth more.
        """
        try:
            ack = await self._js.publish(
                subjects.LEDGER_SUBJECT, entry, headers=_append_headers(index, dedup_id)
            )
        except APIError as e:
            raise _append_error(index, e) from e
        except (TimeoutError, nats.errors.NoRespondersError) as e:
            raise UnavailableError(f"ledger: append not acknowledged: {e}") from e
        return int(ack.seq) - 1

    @staticmethod
    async def start_append(
        pipeline: Pipeline, entry: bytes, *, index: int, dedup_id: str
    ) -> asyncio.Future[int]:
        """Send ``entry`` for ``index`` without waiting: the future is JetStream's ack, to be
        read with :meth:`appended`. Appends started one after another reach the server in
        that order (one connection)."""
        headers = _append_headers(index, dedup_id)
        return await pipeline.publish(subjects.LEDGER_SUBJECT, entry, headers)

    @staticmethod
    def appended(seq: int | BaseException, *, index: int, dedup_id: str) -> None:
        """Check the outcome of :meth:`start_append`: the entry is stored at ``index``, or this
        raises what :meth:`append` raises (:class:`LedgerConflict`, :class:`UnavailableError`);
        a dedup id already stored elsewhere is a :class:`LedgerConflict` too."""
        if isinstance(seq, APIError):
            raise _append_error(index, seq) from seq
        if isinstance(seq, BaseException):
            raise UnavailableError(f"ledger: append not acknowledged: {seq!r}") from seq
        if seq - 1 != index:
            raise LedgerConflict(f"ledger: {dedup_id} already stored at index {seq - 1}")

    async def get(self, index: int) -> bytes:
        """The exact stored bytes of entry ``index``."""
        try:
            msg = await self._js.get_msg(subjects.LEDGER_STREAM, seq=index + 1, direct=True)
        except (TimeoutError, nats.errors.Error) as e:
            raise UnavailableError(f"ledger: entry {index} not read ({e})") from e
        return msg.data or b""

    async def read(
        self, start: int = 0, stop: int | None = None
    ) -> AsyncIterator[tuple[int, bytes]]:
        """Yield ``(index, entry bytes)`` from ``start`` up to ``stop`` (default: current size)."""
        end = await self.size() if stop is None else stop
        if start >= end:
            return
        config = js_api.ConsumerConfig(
            deliver_policy=js_api.DeliverPolicy.BY_START_SEQUENCE,
            opt_start_seq=start + 1,
            ack_policy=js_api.AckPolicy.NONE,
            inactive_threshold=30.0,
            max_ack_pending=-1,
        )
        sub = await self._js.pull_subscribe(
            subjects.LEDGER_SUBJECT, stream=subjects.LEDGER_STREAM, config=config
        )
        try:
            index = start
            while index < end:
                try:
                    batch = await sub.fetch(min(1024, end - index), timeout=5.0)
                except TimeoutError as e:  # nats-py raises its own or the builtin one
                    raise UnavailableError(f"ledger: read stalled at index {index}") from e
                for msg in batch:
                    seq = msg.metadata.sequence.stream
                    if seq - 1 != index:
                        raise UnavailableError(f"ledger: expected index {index}, got {seq - 1}")
                    yield index, msg.data
                    index += 1
                    if index >= end:
                        break
        finally:
            await sub.unsubscribe()


def _append_headers(index: int, dedup_id: str) -> dict[str, str]:
    return {"Nats-Msg-Id": dedup_id, "Nats-Expected-Last-Sequence": str(index)}


def _append_error(index: int, e: APIError) -> HubError:
    if e.err_code == _WRONG_LAST_SEQUENCE:
        return LedgerConflict(f"ledger: index {index} was taken by another writer")
    return UnavailableError(f"ledger: append failed: {e}")


async def kv_items(kv: KeyValue, *, attempts: int = 20) -> dict[str, bytes]:
    """Every key and value of a bucket. nats-py's ``keys()`` answers "no keys" when its watcher
    is slow to start, even on a bucket that has some: ask again a few times before believing it.
    """
    for attempt in range(attempts):
        try:
            keys = await kv.keys()
            break
        except NoKeysError:
            if attempt == attempts - 1:
                return {}
            await asyncio.sleep(0.1)
    items = {}
    for key in keys:
        with contextlib.suppress(KeyNotFoundError):  # deleted meanwhile
            items[key] = (await kv.get(key)).value or b""
    return items


class ContentStore:
    """Sealed envelopes beside the ledger, keyed by envelope digest (erasable by retention)."""

    def __init__(self, kv: KeyValue) -> None:
        self._kv = kv

    @classmethod
    async def open(cls, js: JetStreamContext) -> ContentStore:
        return cls(await js.key_value(subjects.CONTENT_BUCKET))

    async def put(self, digest: bytes, sealed: bytes) -> None:
        try:
            await self._kv.put(digest.hex(), sealed)
        except (TimeoutError, nats.errors.Error) as e:
            raise UnavailableError(f"content store: not stored ({e})") from e

    @staticmethod
    async def start_put(pipeline: Pipeline, digest: bytes, sealed: bytes) -> asyncio.Future[int]:
        """:meth:`put` without waiting: the future is JetStream's ack (read it with
        :meth:`stored`). The same write as ``KeyValue.put``: one message on the bucket's
        subject for the key."""
        return await pipeline.publish(f"$KV.{subjects.CONTENT_BUCKET}.{digest.hex()}", sealed)

    @staticmethod
    def stored(seq: int | BaseException) -> None:
        """Check the outcome of :meth:`start_put`; raises :class:`UnavailableError`."""
        if isinstance(seq, BaseException):
            raise UnavailableError(f"content store: not stored ({seq!r})") from seq

    async def get(self, digest: bytes) -> bytes | None:
        try:
            entry = await self._kv.get(digest.hex())
        except (TimeoutError, NotFoundError):
            return None
        return entry.value
