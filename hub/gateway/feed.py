"""Live changes for the read API's server-sent events: one queue per open stream (DESIGN.md 7).

``LedgerFeed.on_entry`` is the ``HubService`` callback run synchronously for every folded
ledger entry, after the projections changed. It never raises into the service (a broken
listener must not stop the hub) and costs nothing while no stream is open. Each subscriber has
a bounded queue; a stream that falls behind is closed with a reset, and its client reloads.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from hub.ledger.describe import describe
from hub.logs import get_logger
from schemas.ledger import LedgerEntry

__all__ = ["Change", "LedgerFeed", "Subscription"]

_QUEUE = 1024


@dataclass(frozen=True, slots=True)
class Change:
    """What one folded entry changed, as metadata (never content)."""

    index: int
    type: str
    actor: str
    case_id: str | None


class Subscription:
    """One open stream's queue. ``None`` in the queue means: stop (shutdown or overflow)."""

    def __init__(self, maxsize: int) -> None:
        self.queue: asyncio.Queue[Change | None] = asyncio.Queue(maxsize)
        self.overflowed = False
        self.closed = False

    def offer(self, change: Change) -> None:
        if self.closed:
            return
        try:
            self.queue.put_nowait(change)
        except asyncio.QueueFull:
            self.overflowed = True
            self.close()

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        while True:  # make room for the stop marker
            try:
                self.queue.put_nowait(None)
                return
            except asyncio.QueueFull:
                self.queue.get_nowait()

    async def next(self) -> Change | None:
        return await self.queue.get()


class LedgerFeed:
    """Fan-out of folded ledger entries to the open event streams."""

    def __init__(self, maxsize: int = _QUEUE) -> None:
        self._maxsize = maxsize
        self._subscribers: set[Subscription] = set()
        self._log = get_logger("hub.http.feed")

    @property
    def subscribers(self) -> int:
        return len(self._subscribers)

    def subscribe(self) -> Subscription:
        subscription = Subscription(self._maxsize)
        self._subscribers.add(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        self._subscribers.discard(subscription)
        subscription.close()

    def close(self) -> None:
        """Stop every open stream (server shutdown)."""
        for subscription in list(self._subscribers):
            self.unsubscribe(subscription)

    def on_entry(self, entry: LedgerEntry) -> None:
        """The service's per-entry callback; safe to call from the event loop, never raises."""
        if not self._subscribers:
            return
        try:
            summary = describe(entry)
            change = Change(summary.index, summary.type, summary.actor, summary.case_id)
        except Exception as e:  # an entry type this listener does not know: still announce it
            self._log.warning("feed_describe_failed", index=entry.index, detail=str(e))
            change = Change(entry.index, type(entry.event).__name__, "", None)
        for subscription in list(self._subscribers):
            subscription.offer(change)
