"""Shared fixtures: each test gets its own real nats-server (free loopback port, own store)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from nats.aio.client import Client as NatsClient

from hub.gateway.connection import close, connect
from hub.gateway.nats_server import EmbeddedNats, NatsServerOptions
from hub.ledger.store import ensure_topology
from tests.harness import HubHarness


@pytest.fixture
async def nats_server(tmp_path: Path) -> AsyncIterator[EmbeddedNats]:
    """A real nats-server with JetStream (fsync before ack), stopped after the test."""
    server = EmbeddedNats(NatsServerOptions(store_dir=tmp_path / "nats"))
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
async def hub(tmp_path: Path) -> AsyncIterator[HubHarness]:
    """A running hub (embedded nats-server + service) with no authority admitted yet."""
    harness = HubHarness(tmp_path)
    await harness.start()
    try:
        yield harness
    finally:
        await harness.close()


@pytest.fixture
async def nc(nats_server: EmbeddedNats) -> AsyncIterator[NatsClient]:
    """A client of the test's nats-server, with the hub's streams and buckets made."""
    assert nats_server.url is not None
    client = await connect(nats_server.url, name="test-client")
    await ensure_topology(client.jetstream())
    try:
        yield client
    finally:
        await close(client)
