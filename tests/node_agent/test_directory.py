"""node_agent/directory.py with the hub unreachable: the cached, operator-signed snapshot.

The snapshot is the hub's own fold (``Directory.snapshot``) signed with the operator key; the
agent re-verifies it on every load and refuses what it says is revoked or replaced.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest

from hub.crypto import cards
from hub.crypto.keys import OperatorKey
from hub.errors import KeyNotValid, SignatureInvalid
from node_agent.directory import AgentDirectory
from node_agent.errors import RecipientRevoked
from node_agent.store import AgentStore
from schemas.codec import encode
from schemas.directory import AdmittedCard
from tests.hub.gateway.test_key_lifecycle import NOW, OPERATOR, Hub

A, B = "XA-MOJ", "XB-MOJ"
ROTATED_AT = NOW + timedelta(hours=1)
REVOKED_AT = NOW + timedelta(hours=2)


@dataclass
class World:
    """A and B admitted; A rotated at ``ROTATED_AT``; B revoked at ``REVOKED_AT``."""

    hub: Hub
    old_key_id: str
    old_card: AdmittedCard  # the card that published A's first key (``key.<ID>.<key id>``)


@pytest.fixture
def world() -> World:
    hub = Hub()
    hub.join(A)
    hub.join(B)
    record = hub.state.directory.get(A)
    assert record is not None
    made = World(hub, record.card.keys.key_id, record.admitted)
    hub.rotate(A, ROTATED_AT)
    hub.revoke(B, REVOKED_AT, "designation withdrawn")
    return made


@pytest.fixture
def store(tmp_path: Path) -> Iterator[AgentStore]:
    made = AgentStore(tmp_path / "agent.sqlite")
    yield made
    made.close()


def _cached(path: Path, world: World, operator: OperatorKey = OPERATOR) -> Path:
    snapshot = world.hub.state.directory.snapshot()
    path.write_bytes(encode(cards.sign_snapshot(snapshot, operator)))
    return path


async def test_revoked_recipient_refused_from_the_cache(
    world: World, store: AgentStore, tmp_path: Path
) -> None:
    cached = _cached(tmp_path / "snapshot.bin", world)
    directory = AgentDirectory(store, None, OPERATOR.public, cached)
    with pytest.raises(RecipientRevoked) as refused:
        await directory.recipient(B)
    assert refused.value.code == "revoked"
    assert str(refused.value) == (
        f"--to: XB-MOJ was revoked at ledger index 3 ({REVOKED_AT.isoformat()}): designation "
        "withdrawn; nothing more can be sent to it"
    )


async def test_snapshot_by_another_operator_is_refused(
    world: World, store: AgentStore, tmp_path: Path
) -> None:
    cached = _cached(tmp_path / "snapshot.bin", world, OperatorKey.generate())
    directory = AgentDirectory(store, None, OPERATOR.public, cached)
    with pytest.raises(SignatureInvalid, match="signed by another operator key"):
        await directory.snapshot()


async def test_no_snapshot_without_a_pinned_operator_key(
    world: World, store: AgentStore, tmp_path: Path
) -> None:
    cached = _cached(tmp_path / "snapshot.bin", world)
    assert await AgentDirectory(store, None, None, cached).snapshot() is None


async def test_replaced_key_refused_after_its_rotation(
    world: World, store: AgentStore, tmp_path: Path
) -> None:
    cached = _cached(tmp_path / "snapshot.bin", world)
    store.cache_card(A, world.old_key_id, encode(world.old_card), current=False)
    directory = AgentDirectory(store, None, OPERATOR.public, cached)
    await directory.prefetch(A, world.old_key_id)
    before = ROTATED_AT - timedelta(seconds=1)
    assert directory.signing_key(A, world.old_key_id, before)
    with pytest.raises(KeyNotValid, match="was replaced by key"):
        directory.signing_key(A, world.old_key_id, ROTATED_AT)
