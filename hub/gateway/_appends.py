"""Writing entries to the ledger for the hub service: one at a time, or a batch in flight.

A batch's appends (each with its sealed content beside it) are sent one after another without
waiting, so they reach the server in index order and each finds its expected last sequence; the
service folds each entry at once, so the next decision sees it. :meth:`Appends.confirm` then
reads every ack of the batch with one timeout and names the first failure, after which the
service rebuilds its state from the ledger (``hub.gateway.service``). Where the server has
them, the batch's appends travel as one JetStream atomic batch (``hub.ledger.batches``).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import nats.errors

from hub.errors import UnavailableError
from hub.ledger.batches import LedgerBatch
from hub.ledger.pipeline import Pipeline
from hub.ledger.projections.directory import DirectoryChange
from hub.ledger.store import ContentStore, Ledger, LedgerConflict
from schemas.ledger import LedgerEntry

__all__ = ["APPEND_TIMEOUT_S", "Appends", "Sent"]

APPEND_TIMEOUT_S = 5.0  # for every ack of a batch's appends (nats-py's request default)


@dataclass(frozen=True, slots=True)
class Sent:
    """An append (and its content put) sent, its acks not read yet."""

    index: int
    dedup_id: str
    ack: asyncio.Future[int]
    put: asyncio.Future[int] | None


class Appends:
    """The ledger writes of one hub instance."""

    def __init__(
        self,
        ledger: Ledger,
        content: ContentStore,
        pipeline: Pipeline,
        batch: LedgerBatch | None = None,
    ) -> None:
        self._ledger = ledger
        self._content = content
        self._pipeline = pipeline
        self.batch = batch  # a batch's appends in one atomic batch (hub.ledger.batches)
        self._held: list[tuple[Sent, LedgerEntry, DirectoryChange | None]] = []
        self._confirming = 0

    async def store(
        self, data: bytes, *, index: int, dedup_id: str, content: tuple[bytes, bytes] | None
    ) -> None:
        """Append ``data`` at ``index`` and put ``content`` (digest, sealed bytes) beside it,
        concurrently, and wait for both. :class:`LedgerConflict` if ``index`` is taken or the
        dedup id was stored at another index (a retried publish)."""
        append = self._ledger.append(data, index=index, dedup_id=dedup_id)
        if content is None:
            got = await append
        else:
            got, _ = await asyncio.gather(append, self._content.put(*content))
        if got != index:
            raise LedgerConflict(f"ledger: {dedup_id} already stored at index {got}")

    async def send(
        self, data: bytes, *, index: int, dedup_id: str, content: tuple[bytes, bytes] | None
    ) -> Sent:
        """Send the append and the content put without waiting (:class:`UnavailableError` if
        the connection refuses them: then nothing is held; an append that did go out makes the
        next one at ``index`` conflict, and the batch fails)."""
        try:
            if self.batch is None:
                ack = await Ledger.start_append(
                    self._pipeline, data, index=index, dedup_id=dedup_id
                )
            else:
                ack = await self.batch.add(data, index=index, dedup_id=dedup_id)
            put = None
            if content is not None:
                put = await ContentStore.start_put(self._pipeline, *content)
        except nats.errors.Error as e:
            raise UnavailableError(f"ledger: append not sent ({e})") from e
        return Sent(index, dedup_id, ack, put)

    @property
    def unconfirmed(self) -> int:
        """How many appends are folded but not known to be stored: held, being confirmed, or
        failed (until the caller, rebuilding its state, calls :meth:`forget_unconfirmed`)."""
        return len(self._held) + self._confirming

    def forget_unconfirmed(self) -> None:
        """After a failed batch: the state and log were rebuilt from the ledger."""
        self._confirming = 0

    def hold(self, sent: Sent, entry: LedgerEntry, change: DirectoryChange | None) -> None:
        """Keep a sent append, folded by the caller, until :meth:`confirm`."""
        self._held.append((sent, entry, change))

    async def confirm(self) -> list[tuple[LedgerEntry, DirectoryChange | None]]:
        """Wait for the acks of every held append (one timeout for them all); the entries and
        their directory changes, in index order. Raises :class:`HubError` (the first failure)
        if any append or content put was not stored; nothing is held any more either way."""
        held, self._held = self._held, []
        acks = [f for sent, _, _ in held for f in (sent.ack, sent.put) if f is not None]
        if not acks:
            return []
        self._confirming += len(held)
        try:
            if self.batch is not None:
                await self._commit()
            await asyncio.wait_for(asyncio.gather(*acks, return_exceptions=True), APPEND_TIMEOUT_S)
            for sent, _, _ in held:
                Ledger.appended(_result(sent.ack), index=sent.index, dedup_id=sent.dedup_id)
                if sent.put is not None:
                    ContentStore.stored(_result(sent.put))
            self._confirming -= len(held)
        except TimeoutError as e:
            raise UnavailableError("ledger: a batched append was not acknowledged in time") from e
        finally:
            for ack in acks:  # no publish is left waiting for its ack (no-op once done)
                ack.cancel()
        return [(entry, change) for _, entry, change in held]

    async def _commit(self) -> None:
        assert self.batch is not None
        try:
            await self.batch.commit()
        except nats.errors.Error as e:
            raise UnavailableError(f"ledger: batch not committed ({e})") from e


def _result(ack: asyncio.Future[int]) -> int | BaseException:
    if ack.cancelled():
        return UnavailableError("ack no longer awaited")
    return ack.exception() or ack.result()
