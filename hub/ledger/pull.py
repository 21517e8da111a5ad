"""A durable JetStream pull consumer read in batches, without a task per message.

nats-py's ``PullSubscription.fetch`` waits for each message of a batch with its own
``asyncio.wait_for``, which wraps each wait in a new task and timer: at saturation that was
7 % of the hub's CPU, on the one loop every submission goes through. :class:`PullConsumer`
sends the same pull requests (``$JS.API.CONSUMER.MSG.NEXT``: a batch size, ``no_wait``, and
``expires`` when nothing is waiting), gathers what the server delivers in a subscription
callback, and wakes the reader once: when the batch is full, or the server says the request
is over (status 404 no messages, 408 expired) or failed (409: raised as nats-py would).
Messages are nats-py's own, acked and nakked as before; one that arrives after its request
was given up waits for the next fetch, never lost, and the late end of a request given up
cannot cut the next one short (each request has its own reply subject).
"""

from __future__ import annotations

import asyncio
import contextlib
import json

import nats.js.errors
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

__all__ = ["PullConsumer"]

_ENDED = ("404", "408")  # no messages / request expired: the request is over, nothing wrong


class PullConsumer:
    """Fetch batches from the durable consumer ``durable`` of ``stream`` (it must exist)."""

    def __init__(self, nc: NatsClient, stream: str, durable: str, api_prefix: str) -> None:
        self._nc = nc
        self._next_subject = f"{api_prefix}.CONSUMER.MSG.NEXT.{stream}.{durable}"
        self._inbox = ""  # each request answers on <inbox>.<n>: a late status of an old one
        self._request_subject = ""  # (its request given up) cannot end the current one
        self._requests = 0
        self._sub: Subscription | None = None
        self._arrived: list[Msg] = []
        self._wanted = 0
        self._failure: Msg | None = None
        self._over = asyncio.Event()

    @classmethod
    async def bind(cls, js: nats.js.JetStreamContext, stream: str, durable: str) -> PullConsumer:
        """A reader of an existing consumer, on the context's connection and API prefix."""
        consumer = cls(js._nc, stream, durable, js._prefix)
        await consumer.start()
        return consumer

    async def start(self) -> None:
        self._inbox = self._nc.new_inbox()
        self._sub = await self._nc.subscribe(self._inbox + ".*", cb=self._on_msg)

    async def close(self) -> None:
        if self._sub is not None:
            await self._sub.unsubscribe()
            self._sub = None

    async def fetch(self, batch: int, timeout: float) -> list[Msg]:
        """1 to ``batch`` messages, in delivery order: those delivered already, else what one
        pull request brings within ``timeout`` seconds. :class:`TimeoutError` if none came;
        :class:`nats.js.errors.APIError` if the server refused the request (409)."""
        if not self._arrived:
            await self._request(batch, timeout)
        taken, self._arrived = self._arrived[:batch], self._arrived[batch:]
        if taken:
            return taken
        failure, self._failure = self._failure, None
        if failure is not None:
            raise nats.js.errors.APIError.from_msg(failure)
        raise TimeoutError(f"no message from {self._next_subject} in {timeout} s")

    async def _request(self, batch: int, timeout: float) -> None:
        request: dict[str, object] = {"batch": batch, "no_wait": True}
        request["expires"] = int(timeout * 1_000_000_000)  # wait for a first message at most this
        self._wanted, self._failure = batch, None
        self._requests += 1
        self._request_subject = f"{self._inbox}.{self._requests}"
        self._over.clear()
        payload = json.dumps(request).encode()
        await self._nc.publish(self._next_subject, payload, self._request_subject)
        # On time out, what arrived meanwhile is returned; a late message waits for the next.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._over.wait(), timeout)

    async def _on_msg(self, msg: Msg) -> None:
        status = msg.headers.get("Status") if msg.headers else None
        if status is not None and msg.subject != self._request_subject:
            return  # about a request given up already
        if status is None:
            self._arrived.append(msg)
            if len(self._arrived) >= self._wanted:
                self._over.set()
        elif status in _ENDED:
            self._over.set()
        elif status != "100":  # 100: a heartbeat, not requested here; anything else failed it
            self._failure = msg
            self._over.set()
