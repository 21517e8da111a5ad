"""JetStream I/O of the hub on a real nats-server: pipelined appends and their acks.

What a hub batch relies on: each pipelined append resolves to the index it is stored at, a
conflicting or refused one fails at once with the error :meth:`Ledger.append` raises, and a
batch of submissions handed to the intake counts only what JetStream acknowledged.
"""

from __future__ import annotations

import asyncio

import nats.js.errors
import pytest
from nats.aio.client import Client as NatsClient

from hub import subjects
from hub.errors import UnavailableError
from hub.gateway.intake_client import IntakeClient
from hub.ledger import pipeline as pipeline_module
from hub.ledger.pipeline import Pipeline
from hub.ledger.store import ContentStore, Ledger, LedgerConflict

pytestmark = pytest.mark.nats


async def _ignore(msg: object) -> None:
    return None


async def _append(pipeline: Pipeline, index: int, dedup_id: str) -> int | BaseException:
    ack = await Ledger.start_append(pipeline, b"entry", index=index, dedup_id=dedup_id)
    try:
        return await asyncio.wait_for(ack, 2.0)  # resolved by the ack, never by the timeout
    except Exception as e:
        return e


class TestPipelinedAppend:
    """Appends sent without waiting, their acks read once for the batch."""

    async def test_appends_resolve_to_their_indexes_in_order(self, nc: NatsClient) -> None:
        pipeline = Pipeline(nc)
        acks = [
            await Ledger.start_append(pipeline, b"e", index=i, dedup_id=f"d{i}") for i in range(5)
        ]
        seqs = await asyncio.gather(*acks)
        for i, seq in enumerate(seqs):
            Ledger.appended(seq, index=i, dedup_id=f"d{i}")  # no error
        assert await Ledger(nc.jetstream()).size() == 5

    async def test_a_taken_index_fails_at_once_as_a_conflict(self, nc: NatsClient) -> None:
        pipeline = Pipeline(nc)
        assert await _append(pipeline, 0, "first") == 1
        result = await _append(pipeline, 0, "second")  # expected last sequence 0: taken
        assert isinstance(result, nats.js.errors.APIError)
        with pytest.raises(LedgerConflict):
            Ledger.appended(result, index=0, dedup_id="second")

    async def test_a_dedup_id_stored_elsewhere_is_a_conflict(self, nc: NatsClient) -> None:
        pipeline = Pipeline(nc)
        assert await _append(pipeline, 0, "same") == 1
        again = await _append(pipeline, 1, "same")  # deduplicated: JetStream answers seq 1
        assert again == 1
        with pytest.raises(LedgerConflict, match="already stored at index 0"):
            Ledger.appended(again, index=1, dedup_id="same")

    async def test_a_lost_ack_is_unavailable(self) -> None:
        with pytest.raises(UnavailableError):
            Ledger.appended(TimeoutError(), index=0, dedup_id="x")

    async def test_no_stream_fails_at_once(self, nc: NatsClient) -> None:
        ack = await Pipeline(nc).publish("no.stream.here", b"x")
        with pytest.raises(nats.js.errors.NoStreamResponseError):
            await asyncio.wait_for(ack, 2.0)

    async def test_publishes_given_up_without_an_ack_are_forgotten(
        self, nc: NatsClient, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(pipeline_module, "_PRUNE_ABOVE", 8)
        await nc.subscribe("void.listener", cb=_ignore)  # takes them, never answers
        pipeline = Pipeline(nc)
        lost = [await pipeline.publish("void.listener", b"x") for _ in range(20)]
        for ack in lost:
            ack.cancel()  # as a batch that timed out does
        stored = [
            await Ledger.start_append(pipeline, b"e", index=i, dedup_id=f"d{i}") for i in range(40)
        ]
        assert await asyncio.gather(*stored) == list(range(1, 41))
        assert len(pipeline._waiting) <= 8  # the 20 given up are gone, the 40 acked too

    async def test_content_put_is_a_key_of_the_bucket(self, nc: NatsClient) -> None:
        pipeline, digest = Pipeline(nc), bytes(32)
        ContentStore.stored(await (await ContentStore.start_put(pipeline, digest, b"sealed")))
        content = await ContentStore.open(nc.jetstream())
        assert await content.get(digest) == b"sealed"
        with pytest.raises(UnavailableError):
            ContentStore.stored(TimeoutError())


class TestPublishAll:
    """Several submissions handed to the intake at once, counted from the first."""

    async def test_counts_what_the_intake_acknowledged(self, nc: NatsClient) -> None:
        client = IntakeClient(nc, "XA-MOJ")
        assert await client.publish_all([(f"m{i}", b"payload") for i in range(3)]) == 3
        info = await nc.jetstream().stream_info(subjects.SUBMIT_STREAM)
        assert info.state.messages == 3

    async def test_stops_counting_at_the_first_refusal(self, nc: NatsClient) -> None:
        client = IntakeClient(nc, "XA-MOJ")
        client.sender = "no stream"  # not a valid subject: nothing can be acknowledged
        assert await client.publish_all([("m1", b"x")]) == 0
