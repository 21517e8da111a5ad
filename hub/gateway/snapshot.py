"""The signed directory snapshot: published under DIRECTORY ``snapshot`` at every change.

DESIGN.md sections 4 and 6 (directory). The snapshot (``schemas.directory.DirectorySnapshot``:
current cards, every key with its validity and status, revocations, and the ledger size it
reflects, and the liaison officers a home authority may copy) is a pure fold of the ledger
(``HubState.directory_snapshot``); it is signed by the **operator
key**, the key node agents already pin at ``node-agent init --operator-key`` to check each
card's admission, so one pinned key vouches for the whole directory and no other key needs
distributing. The signature is ``hub.crypto.cards.sign_snapshot``.

Only a process that holds the operator's private key publishes it: ``hub up`` does, from its
directory hook (``hub.runtime``), before rewriting who may connect, and after each recorded
access statement. Ed25519 signatures are
deterministic, so several hub instances publishing the same directory write the same bytes.

Publishing never stops the hub: JetStream answers "service unavailable" for a moment while the
server reloads its configuration (which every directory change triggers), so a failed put is
retried for a few seconds, then logged; the next change, or the next start, publishes again.
"""

from __future__ import annotations

import asyncio

import nats.errors
from nats.js import JetStreamContext

from hub import subjects
from hub.crypto import cards
from hub.crypto.keys import OperatorKey
from hub.ledger.projections.state import HubState
from hub.logs import get_logger
from schemas.codec import encode
from schemas.directory import SignedSnapshot

__all__ = ["publish_snapshot"]

_ATTEMPTS = 25
_PAUSE_S = 0.2

_log = get_logger("hub.snapshot")


async def publish_snapshot(
    js: JetStreamContext, state: HubState, operator: OperatorKey
) -> SignedSnapshot | None:
    """Sign ``state``'s directory snapshot with ``operator`` and put it under DIRECTORY
    ``snapshot``; ``None`` (logged) when JetStream did not take it within a few seconds."""
    snapshot = state.directory_snapshot()
    signed = cards.sign_snapshot(snapshot, operator)
    data = encode(signed)
    for attempt in range(_ATTEMPTS):
        try:
            kv = await js.key_value(subjects.DIRECTORY_BUCKET)
            await kv.put(subjects.SNAPSHOT_KEY, data)
            return signed
        except (nats.errors.Error, TimeoutError) as e:  # e.g. a configuration reload
            if attempt == _ATTEMPTS - 1:
                _log.warning(
                    "directory_snapshot_not_published",
                    ledger_size=snapshot.ledger_size,
                    detail=f"{e.__class__.__name__}: {e}",
                )
                return None
            await asyncio.sleep(_PAUSE_S)
    return None
