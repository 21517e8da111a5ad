"""PullConsumer on a real nats-server: batches in order, nothing lost, errors as nats-py's."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator

import nats.js.errors
import pytest
from nats.aio.client import Client as NatsClient
from nats.js import api as js_api

from hub.gateway.connection import close, connect
from hub.gateway.nats_server import EmbeddedNats
from hub.ledger.pull import PullConsumer

pytestmark = pytest.mark.nats

STREAM, SUBJECT = "WORK", "work.items"


@pytest.fixture
async def nc(nats_server: EmbeddedNats) -> AsyncIterator[NatsClient]:
    assert nats_server.url is not None
    client = await connect(nats_server.url, name="test-pull")
    js = client.jetstream()
    await js.add_stream(js_api.StreamConfig(name=STREAM, subjects=[SUBJECT]))
    await _durable(client, "reader")
    try:
        yield client
    finally:
        await close(client)


async def _durable(nc: NatsClient, name: str, **limits: int) -> None:
    # Through the API itself: nats-py's ConsumerConfig has no max_batch.
    config = {"name": name, "durable_name": name, "ack_policy": "explicit", **limits}
    body = json.dumps({"stream_name": STREAM, "config": config}).encode()
    answer = await nc.request(f"$JS.API.CONSUMER.CREATE.{STREAM}.{name}", body, timeout=5.0)
    assert "error" not in json.loads(answer.data), answer.data


async def _publish(nc: NatsClient, *payloads: bytes) -> None:
    js = nc.jetstream()
    for payload in payloads:
        await js.publish(SUBJECT, payload)


async def test_batches_come_in_order_and_what_is_left_comes_next(nc: NatsClient) -> None:
    await _publish(nc, *(b"m%d" % i for i in range(5)))
    reader = await PullConsumer.bind(nc.jetstream(), STREAM, "reader")
    first = await reader.fetch(3, timeout=2.0)
    second = await reader.fetch(3, timeout=2.0)
    assert [m.data for m in first] == [b"m0", b"m1", b"m2"]
    assert [m.data for m in second] == [b"m3", b"m4"]
    for msg in first + second:
        await msg.ack()
    await nc.flush()
    info = await nc.jetstream().consumer_info(STREAM, "reader")
    assert (info.num_ack_pending, info.num_pending) == (0, 0)
    await reader.close()


async def test_a_partial_batch_returns_without_waiting_for_the_timeout(nc: NatsClient) -> None:
    await _publish(nc, b"only")
    reader = await PullConsumer.bind(nc.jetstream(), STREAM, "reader")
    started = time.monotonic()
    got = await reader.fetch(64, timeout=5.0)
    assert [m.data for m in got] == [b"only"]
    assert time.monotonic() - started < 2.0  # the server ends the request once drained


async def test_nothing_times_out_and_a_later_message_is_not_lost(nc: NatsClient) -> None:
    reader = await PullConsumer.bind(nc.jetstream(), STREAM, "reader")
    started = time.monotonic()
    with pytest.raises(
        TimeoutError,
        match=r"no message from \$JS\.API\.CONSUMER\.MSG\.NEXT\.WORK\.reader in 0\.3 s",
    ):
        await reader.fetch(8, timeout=0.3)
    assert 0.25 < time.monotonic() - started < 2.0
    waiting = asyncio.create_task(reader.fetch(8, timeout=5.0))
    await asyncio.sleep(0.1)
    await _publish(nc, b"late")
    assert [m.data for m in await waiting] == [b"late"]


async def test_a_refused_request_raises_the_servers_error(nc: NatsClient) -> None:
    await _durable(nc, "small", max_batch=2)
    await _publish(nc, b"a", b"b", b"c")
    reader = await PullConsumer.bind(nc.jetstream(), STREAM, "small")
    with pytest.raises(nats.js.errors.APIError) as refused:
        await reader.fetch(5, timeout=2.0)
    assert refused.value.code == 409
    assert "Exceeded MaxRequestBatch of 2" in str(refused.value.description)
    assert [m.data for m in await reader.fetch(2, timeout=2.0)] == [b"a", b"b"]  # still serves
