"""A hub batch's ledger appends as one JetStream atomic batch: stored all or none, one ack.

JetStream's atomic batch publish (ADR-50; ``allow_atomic`` on the stream, and the ``eob``
commit of nats-server 2.14, which ends a batch without storing a message) lets the hub send
the appends of one batch without a reply subject each and read one answer for them all: the
first carries ``Nats-Expected-Last-Sequence`` (the batch fails whole if another writer got in
first), every one its ``Nats-Msg-Id`` (the batch fails whole if one was stored before). The
answer is the stream sequence of the last entry. With an fsync per write (the embedded
default) the server syncs once per batch instead of once per entry.

It pays where every write is synced to disk (the embedded default, where ``hub.runtime``
turns it on: +20 % requests a second end to end, measured), not without: there the server's
work per batch outweighs the acks saved (-4 to -10 %), so a cluster, durable by replication,
sends every append with its own ack.

A batch of one entry goes out as a plain append (one message, not two), so the first append
waits until a second comes or the batch is committed. :func:`enable_atomic_batches` turns the
feature on where the server has it; elsewhere the hub sends every append with its own ack.
"""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from typing import Final

import nats.errors
from nats.aio.client import Client as NatsClient
from nats.js import JetStreamContext

from hub import subjects
from hub.errors import UnavailableError
from hub.ledger.pipeline import Pipeline
from hub.ledger.store import Ledger

__all__ = ["LedgerBatch", "enable_atomic_batches"]

_MAX_MESSAGES: Final = 1000  # nats-server's limit per batch, the eob commit included
_EOB_SERVER: Final = (2, 14)  # the first nats-server with the eob commit (API level 3)


async def enable_atomic_batches(js: JetStreamContext, nc: NatsClient) -> bool:
    """Allow atomic batches on the LEDGER stream if the server can do them (an older server
    drops the setting); True when it kept it and knows the eob commit."""
    version = nc.connected_server_version
    if (version.major, version.minor) < _EOB_SERVER:
        return False
    try:
        info = await js.stream_info(subjects.LEDGER_STREAM)
        if not info.config.allow_atomic:
            info = await js.update_stream(dataclasses.replace(info.config, allow_atomic=True))
    except (TimeoutError, nats.errors.Error):
        return False
    return bool(info.config.allow_atomic)


class LedgerBatch:
    """The appends of one hub batch on their way to the ledger (see the module)."""

    def __init__(self, nc: NatsClient, pipeline: Pipeline) -> None:
        self._nc = nc
        self._pipeline = pipeline
        self._first: tuple[bytes, int, str, asyncio.Future[int]] | None = None
        self._id = ""
        self._sent: list[tuple[int, asyncio.Future[int]]] = []  # (index, ack) of this batch

    async def add(self, entry: bytes, *, index: int, dedup_id: str) -> asyncio.Future[int]:
        """Send ``entry`` for ``index`` (after the previous one); the future resolves to its
        stream sequence once :meth:`commit` is answered, as ``Ledger.start_append``'s does."""
        ack: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        if not self._id and self._first is None:
            self._first = (entry, index, dedup_id, ack)  # alone so far: a plain append?
            return ack
        if self._first is not None:
            first, self._first = self._first, None
            self._id = uuid.uuid4().hex
            await self._send(*first)
        await self._send(entry, index, dedup_id, ack)
        if len(self._sent) == _MAX_MESSAGES - 1:
            await self.commit()
        return ack

    async def commit(self) -> None:
        """End the batch: its acks resolve when the server answers (or fail all together)."""
        if self._first is not None:
            entry, index, dedup_id, ack = self._first
            self._first = None
            plain = await Ledger.start_append(self._pipeline, entry, index=index, dedup_id=dedup_id)
            plain.add_done_callback(lambda done: _pass_on(done, ack))
            return
        if not self._id:
            return
        headers = {
            "Nats-Batch-Id": self._id,
            "Nats-Batch-Sequence": str(len(self._sent) + 1),
            "Nats-Batch-Commit": "eob",
            "Nats-Required-Api-Level": "3",
        }
        sent, self._sent, self._id = self._sent, [], ""
        answer = await self._pipeline.publish(subjects.LEDGER_SUBJECT, b"", headers)
        answer.add_done_callback(lambda done: _settle(sent, done))

    async def _send(
        self, entry: bytes, index: int, dedup_id: str, ack: asyncio.Future[int]
    ) -> None:
        headers = {
            "Nats-Batch-Id": self._id,
            "Nats-Batch-Sequence": str(len(self._sent) + 1),
            "Nats-Msg-Id": dedup_id,
        }
        if not self._sent:  # checked against the stream as it was before the batch
            headers["Nats-Expected-Last-Sequence"] = str(index)
        await self._nc.publish(subjects.LEDGER_SUBJECT, entry, headers=headers)
        self._sent.append((index, ack))


def _pass_on(answer: asyncio.Future[int], ack: asyncio.Future[int]) -> None:
    if ack.done():
        return
    if answer.cancelled():
        ack.cancel()
    elif (failure := answer.exception()) is not None:
        ack.set_exception(failure)
    else:
        ack.set_result(answer.result())


def _settle(sent: list[tuple[int, asyncio.Future[int]]], answer: asyncio.Future[int]) -> None:
    """Every ack of a batch from the one answer: each entry's sequence, or the batch's error."""
    if answer.cancelled():
        for _, ack in sent:
            ack.cancel()
        return
    failure = answer.exception()
    last = sent[-1][0] + 1
    if failure is None and answer.result() != last:
        failure = UnavailableError(f"ledger: batch stored up to {answer.result()}, not {last}")
    for index, ack in sent:
        if ack.done():
            continue
        if failure is None:
            ack.set_result(index + 1)
        else:
            ack.set_exception(failure)
