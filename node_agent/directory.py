"""The agent's view of the directory: cards fetched from the hub, verified, cached locally; and
the operator-signed directory snapshot (revocations, every key's validity).

A card is trusted only after its self-signature checks and, when the operator key is pinned
(``node-agent init --operator-key``), after the operator's admission signature checks too. A
snapshot is trusted only once the pinned operator key's signature over it checks
(``cards.open_snapshot``), and a snapshot of fewer ledger entries never replaces a newer one.
The local caches (cards in the store, the snapshot in ``directory-snapshot.bin``) let the agent
seal to a known recipient while the hub is unreachable, and refuse a revoked one.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta
from pathlib import Path

import nats.errors
from nats.js.errors import NotFoundError

from hub import subjects
from hub.crypto import cards
from hub.crypto.envelope import Recipient, observer_holder
from hub.errors import KeyNotValid, SignatureInvalid, UnavailableError, UnknownSender
from hub.ledger.projections.directory import check_key_window
from node_agent.errors import RecipientRevoked, RecipientUnknown
from node_agent.store import AgentStore
from node_agent.transport import HubLink
from schemas.codec import decode, encode
from schemas.directory import (
    AdmittedCard,
    AuthorityCard,
    DirectorySnapshot,
    KeyStatus,
    RevokedAuthority,
    SignedSnapshot,
)

__all__ = ["AgentDirectory"]

# How old a snapshot may be before sealing fetches a fresh one to learn of liaison officers.
_SNAPSHOT_MAX_AGE = timedelta(seconds=30)


class AgentDirectory:
    """Resolves recipients (to seal) and signer keys (to verify); a ``KeyResolver``."""

    def __init__(
        self,
        store: AgentStore,
        link: HubLink | None,
        operator_key: bytes | None,
        snapshot_file: Path | None = None,
    ) -> None:
        self._store = store
        self._link = link
        self._operator_key = operator_key
        self._keys: dict[tuple[str, str], AuthorityCard] = {}
        self._snapshot_file = snapshot_file
        self._snapshot: DirectorySnapshot | None = None
        self._snapshot_keys: dict[tuple[str, str], KeyStatus] = {}
        self._cache_loaded = False
        self._fetched_at: datetime | None = None

    def _verified(self, admitted: AdmittedCard) -> AuthorityCard:
        card = cards.open_card(admitted.signed)
        if self._operator_key is not None:
            if admitted.operator_key != self._operator_key:
                raise SignatureInvalid(
                    f"directory: {card.id}'s card was admitted by another operator key"
                )
            cards.verify_admission(admitted.signed, self._operator_key, admitted.operator_signature)
        return card

    # --- the signed snapshot -------------------------------------------------------------------

    async def snapshot(self, *, refresh: bool = True) -> DirectorySnapshot | None:
        """The newest verified snapshot: fetched from the hub when ``refresh`` and reachable,
        else the cached one; ``None`` without a pinned operator key or any snapshot yet."""
        if self._operator_key is None:
            return None
        self._load_cached()
        if refresh and self._link is not None:
            try:
                data = await _fetch(self._link, subjects.SNAPSHOT_KEY)
            except UnavailableError:
                data = None
            if data is not None:
                self._keep(decode(data, SignedSnapshot, what="directory snapshot"), save=True)
        return self._snapshot

    def _load_cached(self) -> None:
        if self._cache_loaded:
            return
        self._cache_loaded = True
        path = self._snapshot_file
        if path is not None and path.exists():
            self._keep(decode(path.read_bytes(), SignedSnapshot, what=str(path)), save=False)

    def _keep(self, signed: SignedSnapshot, *, save: bool) -> None:
        assert self._operator_key is not None
        snapshot = cards.open_snapshot(signed, self._operator_key)
        if self._snapshot is not None and snapshot.ledger_size <= self._snapshot.ledger_size:
            return  # never go back to an older directory
        self._snapshot = snapshot
        self._snapshot_keys = {(k.authority, k.key_id): k for k in snapshot.keys}
        if save and self._snapshot_file is not None:
            _write_atomically(self._snapshot_file, encode(signed))

    def revocation(self, authority: str) -> RevokedAuthority | None:
        """``authority``'s revocation, as the newest verified snapshot known says."""
        if self._snapshot is None:
            return None
        return next((r for r in self._snapshot.revoked if r.authority == authority), None)

    def _refuse_revoked(self, authority: str) -> None:
        revoked = self.revocation(authority)
        if revoked is not None:
            raise RecipientRevoked(
                f"--to: {authority} was revoked at ledger index {revoked.ledger_index} "
                f"({revoked.revoked_at.isoformat()}): {revoked.reason}; nothing more can be "
                "sent to it"
            )

    # --- sealing -------------------------------------------------------------------------------

    async def recipient(self, authority: str) -> Recipient:
        """The recipient's current encryption key: fetched fresh, else from the local cache."""
        card = await self.card(authority)
        return Recipient(card.id, card.keys.key_id, card.keys.suite, card.keys.encryption)

    async def card(self, authority: str) -> AuthorityCard:
        """The authority's current, verified card: fetched fresh, else from the local cache.

        Refuses a revoked authority (``RecipientRevoked``) when the hub serves no card for it
        any more, or the hub is unreachable, and a verified snapshot records its revocation.
        """
        admitted: AdmittedCard | None = None
        reachable = False
        if self._link is not None:
            try:
                admitted = await self._link.card(authority)
                reachable = True
            except UnavailableError:
                admitted = None
            if admitted is not None:
                card = self._verified(admitted)
                self._store.cache_card(authority, card.keys.key_id, encode(admitted), current=True)
        if admitted is None:
            await self.snapshot(refresh=reachable)
            self._refuse_revoked(authority)
            cached = self._store.cached_card(authority)
            if cached is None:
                raise RecipientUnknown(
                    f"--to: {authority} is not in the directory"
                    + ("" if self._link is not None else " cache and the hub is unreachable")
                )
            admitted = decode(cached, AdmittedCard, what="cached card")
        return self._verified(admitted)

    async def liaison_copies(
        self, home: str, host: str, now: datetime
    ) -> list[tuple[str, Recipient]]:
        """(accreditation id, officer key) of the liaison officers of ``home`` posted with
        ``host`` that the newest verified snapshot lists and whose term runs at ``now``: the
        home authority vouched for their keys in its consent. None without a pinned operator
        key: an unverified list of extra readers is never trusted.

        The snapshot is fetched again before sealing to anyone it lists (a revoked officer
        drops out at once) and otherwise at most every ``_SNAPSHOT_MAX_AGE``."""
        fresh = self._fetched_at is not None and now - self._fetched_at < _SNAPSHOT_MAX_AGE
        copies = self._liaisons(await self.snapshot(refresh=not fresh), home, host, now)
        if copies and fresh:
            copies = self._liaisons(await self.snapshot(refresh=True), home, host, now)
        if self._link is not None:
            self._fetched_at = now
        return copies

    @staticmethod
    def _liaisons(
        snapshot: DirectorySnapshot | None, home: str, host: str, now: datetime
    ) -> list[tuple[str, Recipient]]:
        if snapshot is None:
            return []
        return [
            (
                entry.accreditation_id,
                Recipient(
                    observer_holder(entry.accreditation_id),
                    entry.officer_keys.key_id,
                    entry.officer_keys.suite,
                    entry.officer_keys.encryption,
                ),
            )
            for entry in snapshot.liaisons
            if (entry.home, entry.host) == (home, host) and entry.valid_until > now
        ]

    # --- verifying -----------------------------------------------------------------------------

    async def prefetch(self, authority: str, key_id: str) -> None:
        """Load the card that published ``key_id`` so that :meth:`signing_key` can answer, and
        a snapshot that knows the key (to learn when it was replaced or revoked)."""
        if (authority, key_id) in self._keys:
            return
        self._load_cached()
        if (authority, key_id) not in self._snapshot_keys:
            await self.snapshot(refresh=True)
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
        """The signer's key if valid at ``at``: within its card's validity and, as far as the
        newest verified snapshot knows, before it was replaced or its authority revoked."""
        card = self._keys.get((authority, key_id))
        if card is None:
            raise UnknownSender(f"sender: no admitted card of {authority} with key {key_id}")
        status = self._snapshot_keys.get((authority, key_id))
        check_key_window(
            authority,
            key_id,
            at,
            valid_from=card.valid_from,
            valid_until=card.valid_until,
            retired_at=status.retired_at if status else None,
            superseded_by=status.superseded_by if status else None,
            retired_index=status.retired_index if status else None,
        )
        if status is not None and status.revoked_at is not None and at >= status.revoked_at:
            raise KeyNotValid(
                f"sender_key_id: {authority} was revoked at {status.revoked_at.isoformat()}; "
                f"signed at {at}"
            )
        return card.keys.signing


async def _fetch(link: HubLink, key: str) -> bytes | None:
    """One DIRECTORY value, ``None`` when absent (or deleted)."""
    try:
        kv = await link.js.key_value(subjects.DIRECTORY_BUCKET)
        entry = await kv.get(key)
    except NotFoundError:  # no bucket, no key, or a deleted key
        return None
    except TimeoutError as e:  # nats-py raises its own or the builtin one
        raise UnavailableError("directory: not answered in time") from e
    except nats.errors.Error as e:
        raise UnavailableError(f"directory: {e}") from e
    return entry.value or None


def _write_atomically(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    tmp.replace(path)
