"""CheckpointStore on a real nats-server: ``latest`` never goes back to an older checkpoint.

A cosignature merged into checkpoint N also refreshes ``latest`` when ``latest`` is N. The hub
storing checkpoint N+1 between that check and the write once put N back as the latest (seen
as a flaky test under load: an agent then asks for a checkpoint older than the one it holds).
"""

from __future__ import annotations

import os
import time
from typing import Any

import pytest
from nats.aio.client import Client as NatsClient
from nats.js.kv import KeyValue

from hub import subjects
from hub.crypto.checkpoint import cosign_with
from hub.crypto.keys import AuthorityKeys
from hub.gateway.checkpoints import CheckpointStore
from hub.ledger.transparency import SignedCheckpoint, TransparencyLog, new_log_key

pytestmark = pytest.mark.nats

WITNESS = "XA-MOJ"


class _StoresAheadOnRead:
    """The bucket, except that the first read of ``latest`` lets ``then`` store first."""

    def __init__(self, kv: KeyValue, then: Any) -> None:
        self._kv, self._then = kv, then

    def __getattr__(self, name: str) -> Any:
        return getattr(self._kv, name)

    async def get(self, key: str) -> Any:
        entry = await self._kv.get(key)
        if key == "latest" and self._then is not None:
            then, self._then = self._then, None
            await then()
        return entry


def _cosignature(checkpoint: SignedCheckpoint, keys: AuthorityKeys) -> str:
    return cosign_with(checkpoint.text, WITNESS, keys.signing_public, keys.sign, int(time.time()))


async def _setup(nc: NatsClient) -> tuple[KeyValue, TransparencyLog, list[SignedCheckpoint]]:
    kv = await nc.jetstream().key_value(subjects.CHECKPOINTS_BUCKET)
    log = TransparencyLog(new_log_key("test.mla-hub.example", os.urandom(32)))
    checkpoints = []
    for i in range(2):
        log.append(b"entry %d" % i)
        checkpoints.append(log.checkpoint())
    return kv, log, checkpoints


async def test_a_cosignature_refreshes_latest_while_it_is_that_checkpoint(
    nc: NatsClient,
) -> None:
    kv, log, (first, second) = await _setup(nc)
    store, keys = CheckpointStore(kv, log), AuthorityKeys.generate()
    await store.publish(first)
    note = await store.add_cosignature(1, _cosignature(first, keys), WITNESS, keys.signing_public)
    assert await store.get() == note and f"— {WITNESS} " in note
    await store.publish(second)
    await store.add_cosignature(1, _cosignature(first, keys), WITNESS, keys.signing_public)
    assert log.open(await store.get() or "").size == 2  # an older one's cosignature: no change


async def test_a_checkpoint_stored_during_a_cosignature_stays_the_latest(
    nc: NatsClient,
) -> None:
    kv, log, (first, second) = await _setup(nc)
    hub = CheckpointStore(kv, log)
    await hub.publish(first)
    racing = CheckpointStore(_StoresAheadOnRead(kv, lambda: hub.publish(second)), log)  # type: ignore[arg-type]
    keys = AuthorityKeys.generate()
    await racing.add_cosignature(1, _cosignature(first, keys), WITNESS, keys.signing_public)
    latest = log.open(await hub.get() or "")
    assert latest.size == 2, latest  # not size 1 again
    assert f"— {WITNESS} " in (await hub.get(1) or "")  # the cosignature itself was kept
