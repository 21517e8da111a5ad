"""JetStream publishes with many acks in flight on one connection (:class:`Pipeline`): the
hub's batches (ledger appends, content, deliveries, verdicts) and the senders' submissions."""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec
import nats.js.errors
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg

__all__ = ["Pipeline"]


class _Ack(msgspec.Struct):
    """JetStream's answer to a publish: the stream sequence, or an error."""

    seq: int = 0
    error: dict[str, Any] | None = None


_ACK = msgspec.json.Decoder(_Ack)
_PRUNE_ABOVE = 16_384  # futures awaiting an ack, beyond which the given-up ones are dropped


class Pipeline:
    """JetStream publishes with many acks in flight on one connection.

    Every ack comes back on one wildcard inbox subscription and resolves the future of its
    publish to the stream sequence it was stored at (or to the error). This is what nats-py's
    ``publish_async`` does, without its per-publish semaphore wait, random token and JSON to
    dataclass parse (at saturation those were a tenth of the hub's Python time); and an error
    answer fails its future at once (nats-py's leaves it pending until the caller's timeout).
    Futures have no timeout of their own: the caller bounds a batch's acks at once, and
    cancels what it no longer waits for.
    """

    def __init__(self, nc: NatsClient) -> None:
        self._nc = nc
        self._prefix = ""
        self._next = 0
        self._waiting: dict[str, asyncio.Future[int]] = {}  # by reply token, until acked
        self._loop: asyncio.AbstractEventLoop | None = None

    async def publish(
        self, subject: str, payload: bytes, headers: dict[str, str] | None = None
    ) -> asyncio.Future[int]:
        """Send one message; the future resolves to its stream sequence."""
        if self._loop is None:
            prefix = self._nc.new_inbox() + "."
            await self._nc.subscribe(prefix + "*", cb=self._on_ack)
            self._prefix, self._loop = prefix, asyncio.get_running_loop()
        self._next += 1
        if len(self._waiting) > _PRUNE_ABOVE and self._next % _PRUNE_ABOVE == 0:
            self._prune()
        token = str(self._next)
        future: asyncio.Future[int] = self._loop.create_future()
        self._waiting[token] = future
        await self._nc.publish(subject, payload, reply=self._prefix + token, headers=headers)
        return future

    def _prune(self) -> None:
        """Forget futures given up (cancelled) whose ack never came: a lost connection."""
        self._waiting = {token: f for token, f in self._waiting.items() if not f.done()}

    async def _on_ack(self, msg: Msg) -> None:
        future = self._waiting.pop(msg.subject[len(self._prefix) :], None)
        if future is None or future.done():
            return
        if msg.headers and msg.headers.get("Status") == "503":  # no stream for the subject
            future.set_exception(nats.js.errors.NoStreamResponseError())
            return
        try:
            ack = _ACK.decode(msg.data)
            if ack.error is not None:
                nats.js.errors.APIError.from_error(ack.error)  # raises the typed error
            future.set_result(ack.seq)
        except Exception as e:
            future.set_exception(e)
