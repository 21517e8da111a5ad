"""The agent's view of the directory: cards fetched from the hub, verified, cached locally.

A card is trusted only after its self-signature checks and, when the operator key is pinned
(``node-agent init --operator-key``), after the operator's admission signature checks too. The
local cache lets the agent seal to a known recipient while the hub is unreachable.
"""

from __future__ import annotations

from datetime import datetime

from hub.crypto import cards
from hub.crypto.envelope import Recipient
from hub.errors import KeyNotValid, SignatureInvalid, UnavailableError, UnknownSender
from node_agent.errors import RecipientUnknown
from node_agent.store import AgentStore
from node_agent.transport import HubLink
from schemas.codec import decode, encode
from schemas.directory import AdmittedCard, AuthorityCard

__all__ = ["AgentDirectory"]


class AgentDirectory:
    """Resolves recipients (to seal) and signer keys (to verify); a ``KeyResolver``."""

    def __init__(self, store: AgentStore, link: HubLink | None, operator_key: bytes | None) -> None:
        self._store = store
        self._link = link
        self._operator_key = operator_key
        self._keys: dict[tuple[str, str], AuthorityCard] = {}

    def _verified(self, admitted: AdmittedCard) -> AuthorityCard:
        card = cards.open_card(admitted.signed)
        if self._operator_key is not None:
            if admitted.operator_key != self._operator_key:
                raise SignatureInvalid(
                    f"directory: {card.id}'s card was admitted by another operator key"
                )
            cards.verify_admission(admitted.signed, self._operator_key, admitted.operator_signature)
        return card

    async def recipient(self, authority: str) -> Recipient:
        """The recipient's current encryption key: fetched fresh, else from the local cache."""
        card = await self.card(authority)
        return Recipient(card.id, card.keys.key_id, card.keys.suite, card.keys.encryption)

    async def card(self, authority: str) -> AuthorityCard:
        """The authority's current, verified card: fetched fresh, else from the local cache."""
        admitted: AdmittedCard | None = None
        if self._link is not None:
            try:
                admitted = await self._link.card(authority)
            except UnavailableError:
                admitted = None
            if admitted is not None:
                card = self._verified(admitted)
                self._store.cache_card(authority, card.keys.key_id, encode(admitted), current=True)
        if admitted is None:
            cached = self._store.cached_card(authority)
            if cached is None:
                raise RecipientUnknown(
                    f"--to: {authority} is not in the directory"
                    + ("" if self._link is not None else " cache and the hub is unreachable")
                )
            admitted = decode(cached, AdmittedCard, what="cached card")
        return self._verified(admitted)

    async def prefetch(self, authority: str, key_id: str) -> None:
        """Load the card that published ``key_id`` so that :meth:`signing_key` can answer."""
        if (authority, key_id) in self._keys:
            return
        cached = self._store.cached_card(authority, key_id)
        admitted = None if cached is None else decode(cached, AdmittedCard, what="cached card")
        if admitted is None and self._link is not None:
            admitted = await self._link.key_card(authority, key_id)
            if admitted is not None:
                card = self._verified(admitted)
                self._store.cache_card(
                    authority,
                    key_id,
                    encode(admitted),
                    current=self._store.cached_card(authority) is None,
                )
        if admitted is not None:
            card = self._verified(admitted)
            if card.id == authority and card.keys.key_id == key_id:
                self._keys[(authority, key_id)] = card

    def signing_key(self, authority: str, key_id: str, at: datetime) -> bytes:
        card = self._keys.get((authority, key_id))
        if card is None:
            raise UnknownSender(f"sender: no admitted card of {authority} with key {key_id}")
        if at < card.valid_from or (card.valid_until is not None and at >= card.valid_until):
            raise KeyNotValid(f"sender_key_id: key {key_id} of {authority} not valid at {at}")
        return card.keys.signing
