"""The token bucket on a real nats-server, for the token and read API tests (issue 5)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from nats.aio.client import Client as NatsClient
from nats.js import JetStreamContext
from nats.js.kv import KeyValue

from hub import subjects
from hub.gateway.connection import close, connect
from hub.gateway.nats_server import EmbeddedNats
from hub.gateway.token_store import TokenStore
from hub.ledger.store import ensure_topology


@dataclass
class TokenBucket:
    """``ACCESS_TOKENS`` as the hub creates it; :meth:`store` opens one more instance's view."""

    url: str
    js: JetStreamContext
    kv: KeyValue
    _clients: list[NatsClient] = field(default_factory=list)
    _stores: list[TokenStore] = field(default_factory=list)

    async def store(self, *, follow: bool = False) -> TokenStore:
        """A store on its own connection, as another hub instance or CLI command has."""
        nc = await connect(self.url, name=f"tokens-{len(self._clients)}")
        self._clients.append(nc)
        store = await TokenStore.open(nc.jetstream())
        self._stores.append(store)
        if follow:
            await store.follow()
        return store

    async def close(self) -> None:
        for store in self._stores:
            await store.close()
        for nc in self._clients:
            await close(nc)


@pytest.fixture
async def bucket(nats_server: EmbeddedNats) -> AsyncIterator[TokenBucket]:
    assert nats_server.url is not None
    nc = await connect(nats_server.url, name="tokens-setup")
    js = nc.jetstream()
    await ensure_topology(js)
    made = TokenBucket(nats_server.url, js, await js.key_value(subjects.ACCESS_TOKENS_BUCKET), [nc])
    try:
        yield made
    finally:
        await made.close()
