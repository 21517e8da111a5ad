"""Sealed copies for the liaison officers a home authority copied (resolution 7/4 rec. 16).

The hub cannot read a copy: it is the envelope exactly as its sender sealed and signed it, with
the content key wrapped to the officer's own key (``liaison:<accreditation id>``). So that the
officer need not trust the hub, the answer carries what checks it against the operator key the
officer pinned: the operator-signed directory snapshot, and the admitted card of the key that
signed each message. Choosing the copies is pure (:func:`copied_messages`); reading the stored
bytes is the :class:`CopySource`'s job.
"""

from __future__ import annotations

from typing import Protocol

from nats.js import JetStreamContext
from nats.js.errors import KeyNotFoundError

from hub import subjects
from hub.gateway import views
from hub.gateway.access import Principal
from hub.ledger.projections.messages import MessageRecord
from hub.ledger.projections.state import HubState
from hub.ledger.store import ContentStore
from schemas.access import CaseCopies, SealedCopy
from schemas.codec import decode
from schemas.envelope import Envelope, Header

__all__ = ["CopySource", "JetStreamCopies", "case_copies", "copied_messages"]


class CopySource(Protocol):
    """The stored bytes a copy needs."""

    async def envelope(self, digest: bytes) -> bytes | None: ...

    async def key_card(self, authority: str, key_id: str) -> bytes | None: ...

    async def snapshot(self) -> bytes | None: ...


def copied_messages(state: HubState, principal: Principal, case_id: str) -> list[MessageRecord]:
    """The messages of ``case_id`` that copied this liaison officer's accreditation, in ledger
    order. Only for a liaison officer whose pair the case belongs to."""
    principal.require("liaison", what="copies")
    trail = views.trail(state, principal, case_id)  # Forbidden outside the officer's pair
    accreditation = principal.accreditation_id
    records = (state.messages.messages.get(item.message_id) for item in trail)
    return [r for r in records if r is not None and accreditation in r.observers]


async def case_copies(
    state: HubState, principal: Principal, case_id: str, source: CopySource
) -> CaseCopies:
    """The copies of one case for ``principal``, with what the officer checks them against."""
    chosen = copied_messages(state, principal, case_id)
    assert principal.accreditation_id is not None  # a liaison principal names its accreditation
    copies = []
    for record in chosen:
        envelope = await source.envelope(record.envelope_digest)
        if envelope is None:
            continue  # erased under the retention policy: the ledger still proves it existed
        header = decode(decode(envelope, Envelope, what="envelope").header, Header, what="header")
        card = await source.key_card(record.sender, header.sender_key_id)
        copies.append(
            SealedCopy(
                message_id=record.message_id,
                ledger_index=record.ledger_index,
                type=record.type,
                sender=record.sender,
                envelope=envelope,
                sender_card=card,
            )
        )
    return CaseCopies(
        case_id=case_id,
        accreditation_id=principal.accreditation_id,
        snapshot=await source.snapshot(),
        copies=copies,
    )


class JetStreamCopies:
    """Copies read from the content store and the DIRECTORY bucket the hub publishes."""

    def __init__(self, js: JetStreamContext, content: ContentStore) -> None:
        self._js = js
        self._content = content

    async def envelope(self, digest: bytes) -> bytes | None:
        return await self._content.get(digest)

    async def _directory(self, key: str) -> bytes | None:
        kv = await self._js.key_value(subjects.DIRECTORY_BUCKET)
        try:
            entry = await kv.get(key)
        except KeyNotFoundError:
            return None
        return entry.value

    async def key_card(self, authority: str, key_id: str) -> bytes | None:
        return await self._directory(subjects.key_history_key(authority, key_id))

    async def snapshot(self) -> bytes | None:
        return await self._directory(subjects.SNAPSHOT_KEY)
