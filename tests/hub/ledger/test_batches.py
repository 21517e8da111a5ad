"""A hub batch's appends as one JetStream atomic batch, on a real nats-server.

All stored or none, one answer for them all, nothing else stored (the eob commit is not an
entry), and the same errors as appends sent one by one.
"""

from __future__ import annotations

import asyncio
import dataclasses

import pytest
from nats.aio.client import Client as NatsClient

from hub import subjects
from hub.errors import UnavailableError
from hub.ledger import batches
from hub.ledger.batches import LedgerBatch, enable_atomic_batches
from hub.ledger.pipeline import Pipeline
from hub.ledger.store import Ledger, LedgerConflict

pytestmark = pytest.mark.nats


async def _batch(nc: NatsClient) -> LedgerBatch:
    assert await enable_atomic_batches(nc.jetstream(), nc)
    return LedgerBatch(nc, Pipeline(nc))


async def _stored(nc: NatsClient) -> list[bytes]:
    return [data async for _, data in Ledger(nc.jetstream()).read(0)]


async def _outcomes(acks: list[asyncio.Future[int]], first: int) -> None:
    """Ledger.appended on each ack, as the service's confirm does."""
    for offset, seq in enumerate(await asyncio.gather(*acks, return_exceptions=True)):
        Ledger.appended(seq, index=first + offset, dedup_id=f"d{first + offset}")


async def test_a_batch_is_stored_whole_with_one_answer(nc: NatsClient) -> None:
    batch = await _batch(nc)
    acks = [await batch.add(b"e%d" % i, index=i, dedup_id=f"d{i}") for i in range(3)]
    await asyncio.sleep(0.2)
    assert not any(ack.done() for ack in acks)  # nothing is answered before the commit
    assert await _stored(nc) == []  # nor visible: all or nothing
    await batch.commit()
    assert await asyncio.gather(*acks) == [1, 2, 3]
    await _outcomes(acks, 0)
    assert await _stored(nc) == [b"e0", b"e1", b"e2"]  # the commit itself is no entry


async def test_a_lone_append_goes_as_a_plain_append(nc: NatsClient) -> None:
    batch = await _batch(nc)
    ack = await batch.add(b"alone", index=0, dedup_id="d0")
    await batch.commit()
    assert await ack == 1
    again = await batch.add(b"again", index=1, dedup_id="d0")  # a retried publish
    await batch.commit()
    with pytest.raises(LedgerConflict, match="d0 already stored at index 0"):
        Ledger.appended(await again, index=1, dedup_id="d0")
    assert await _stored(nc) == [b"alone"]


async def test_another_writer_first_fails_the_whole_batch(nc: NatsClient) -> None:
    batch = await _batch(nc)
    acks = [await batch.add(b"e%d" % i, index=i, dedup_id=f"d{i}") for i in range(3)]
    await Ledger(nc.jetstream()).append(b"other", index=0, dedup_id="other")
    await batch.commit()
    with pytest.raises(LedgerConflict, match="index 0 was taken by another writer"):
        await _outcomes(acks, 0)
    for ack in acks:  # every one of them failed, with the server's answer
        assert ack.exception() is not None
    assert await _stored(nc) == [b"other"]


async def test_a_dedup_id_stored_before_fails_the_whole_batch(nc: NatsClient) -> None:
    batch = await _batch(nc)
    await Ledger(nc.jetstream()).append(b"first", index=0, dedup_id="d1")
    acks = [await batch.add(b"e%d" % i, index=i, dedup_id=f"d{i}") for i in (1, 2)]
    await batch.commit()
    with pytest.raises(UnavailableError, match="duplicate message id"):
        await _outcomes(acks, 1)
    assert await _stored(nc) == [b"first"]


async def test_batches_follow_one_another(nc: NatsClient) -> None:
    batch = await _batch(nc)
    index = 0
    for size in (2, 1, 5):
        acks = [
            await batch.add(b"e", index=index + i, dedup_id=f"d{index + i}") for i in range(size)
        ]
        await batch.commit()
        await _outcomes(acks, index)
        index += size
    assert len(await _stored(nc)) == 8


async def test_a_batch_at_the_servers_limit_is_committed_and_the_next_one_begins(
    nc: NatsClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(batches, "_MAX_MESSAGES", 3)  # the server's is 1,000, the commit included
    batch = await _batch(nc)
    acks = [await batch.add(b"e%d" % i, index=i, dedup_id=f"d{i}") for i in range(5)]
    await asyncio.sleep(0.2)
    # two batches of two, each committed when the limit was reached; the fifth still waits
    assert await _stored(nc) == [b"e0", b"e1", b"e2", b"e3"]
    assert [ack.done() for ack in acks] == [True, True, True, True, False]
    await batch.commit()
    await _outcomes(acks, 0)
    assert await _stored(nc) == [b"e%d" % i for i in range(5)]


async def test_enabled_on_a_ledger_made_before(nc: NatsClient) -> None:
    js = nc.jetstream()
    info = await js.stream_info(subjects.LEDGER_STREAM)
    await js.update_stream(dataclasses.replace(info.config, allow_atomic=False))
    assert not (await js.stream_info(subjects.LEDGER_STREAM)).config.allow_atomic
    assert await enable_atomic_batches(js, nc)
    assert (await js.stream_info(subjects.LEDGER_STREAM)).config.allow_atomic
