"""Starting and stopping a hub: embedded or external NATS, the service, signal handling."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import msgspec
from nats.aio.client import Client as NatsClient

from hub.clock import SystemClock
from hub.crypto.keys import OperatorKey
from hub.gateway.admission import Limits
from hub.gateway.connection import close as close_connection
from hub.gateway.connection import connect
from hub.gateway.copies import JetStreamCopies
from hub.gateway.feed import LedgerFeed
from hub.gateway.http import HttpDeps, HttpServer, create_app, serve
from hub.gateway.nats_server import EmbeddedNats, NatsServerOptions
from hub.gateway.service import HubService
from hub.gateway.snapshot import publish_snapshot
from hub.gateway.token_store import TokenStore, import_token_file
from hub.gateway.tokens import tokens_path
from hub.keyfiles import read_private
from hub.ledger.projections.directory import Directory
from hub.ledger.store import ContentStore, StreamLayout, when_ready
from hub.settings import HubPaths, HubSettings, RunInfo
from hub.transport_security import hub_credentials, is_secured, update_security
from schemas.ledger import AccessRecorded, LedgerEntry

__all__ = [
    "RunningHub",
    "cancel_on_signals",
    "install_stop_signals",
    "operator_key",
    "running_hub",
]


@dataclass
class RunningHub:
    service: HubService
    nc: NatsClient
    nats_url: str
    embedded: EmbeddedNats | None
    http_url: str | None = None  # the read API and dashboard, when served


def operator_key(paths: HubPaths) -> OperatorKey:
    return OperatorKey.from_bytes(read_private(paths.operator_key))


class _Hooks:
    """What the running hub does beside recording: at every directory change, who may connect
    and the operator-signed directory snapshot; after an access statement, the snapshot again
    (it lists the liaison officers a home authority may copy; no NATS reload is needed)."""

    def __init__(
        self,
        paths: HubPaths,
        operator: OperatorKey,
        feed: LedgerFeed,
        embedded: EmbeddedNats | None,
    ) -> None:
        self._paths, self._operator, self._feed, self._embedded = paths, operator, feed, embedded
        self.nc: NatsClient | None = None
        self.service: HubService | None = None  # set once open: the hooks read its state
        self._publishing: set[asyncio.Task[object]] = set()

    async def on_admitted(self, directory: Directory) -> None:
        if self.service is not None and self.nc is not None:
            await publish_snapshot(self.nc.jetstream(), self.service.state, self._operator)
        if is_secured(self._paths):
            pid = self._embedded.pid if self._embedded else None
            update_security(self._paths, directory, pid)

    def on_entry(self, entry: LedgerEntry) -> None:
        self._feed.on_entry(entry)
        if self.service is None or self.nc is None or not isinstance(entry.event, AccessRecorded):
            return
        js, state = self.nc.jetstream(), self.service.state
        task = asyncio.create_task(publish_snapshot(js, state, self._operator))
        self._publishing.add(task)
        task.add_done_callback(self._publishing.discard)

    async def drain(self) -> None:
        """Let snapshot publications in flight finish (bounded) before NATS goes."""
        if self._publishing:
            await asyncio.wait(self._publishing, timeout=10)


async def _content_store(nc: NatsClient) -> ContentStore:
    """The content store for the read API's copies, once JetStream answers after the reload."""
    return await when_ready(lambda: ContentStore.open(nc.jetstream()))


@asynccontextmanager
async def running_hub(
    paths: HubPaths,
    settings: HubSettings,
    *,
    nats_url: str | None = None,
    nats_port: int | None = None,
    http_port: int | None = None,
    write_run_info: bool = True,
) -> AsyncIterator[RunningHub]:
    """A hub service connected to NATS (started here unless ``nats_url`` is given), with the
    read API on ``http_port`` (default ``settings.http_port``; none when both are unset)."""
    embedded: EmbeddedNats | None = None
    if nats_url is None:
        embedded = EmbeddedNats(
            NatsServerOptions(
                store_dir=paths.nats,
                port=settings.nats_port if nats_port is None else nats_port,
                sync_always=settings.sync_always,
                extra_config='include "security.conf"\n' if is_secured(paths) else "",
            )
        )
        nats_url = await embedded.start()

    feed = LedgerFeed()  # live changes for the read API's event streams
    hooks = _Hooks(paths, operator_key(paths), feed, embedded)

    try:
        nc = hooks.nc = await connect(nats_url, name="mla-hub", credentials=hub_credentials(paths))
        try:
            service = await HubService.open(
                nc,
                operator_key=operator_key(paths).public,
                log_key=read_private(paths.log_key).decode(),
                limits=Limits(max_submission_bytes=settings.max_submission_bytes),
                layout=StreamLayout(replicas=settings.replicas),
                on_admitted=hooks.on_admitted,
                on_entry=hooks.on_entry,
                atomic_batches=embedded is not None and settings.sync_always,
            )
            hooks.service = service
            await hooks.on_admitted(service.state.directory)  # in step from the start
            tokens = await TokenStore.open(nc.jetstream())  # the bucket: made by HubService.open
            await import_token_file(tokens, tokens_path(paths.root))  # once, then renamed
            if write_run_info:
                paths.run_info.write_bytes(
                    msgspec.json.encode(RunInfo(nats_url=nats_url, pid=os.getpid()))
                )
            port = settings.http_port if http_port is None else http_port
            api: HttpServer | None = None
            try:
                if port is not None:
                    deps = HttpDeps(
                        state=lambda: service.state,
                        ledger=service.ledger,
                        feed=feed,
                        tokens=tokens,  # the app follows the bucket while it serves
                        clock=SystemClock(),
                        checkpoints=service.checkpoints,
                        copies=JetStreamCopies(
                            nc.jetstream(),
                            await when_ready(lambda: ContentStore.open(nc.jetstream())),
                        ),
                    )
                    api = await serve(create_app(settings, deps), settings.http_host, port)
                yield RunningHub(service, nc, nats_url, embedded, api.url if api else None)
            finally:
                if api is not None:
                    await api.stop()  # before NATS goes: open streams end, requests finish
                if write_run_info:
                    with contextlib.suppress(FileNotFoundError):
                        paths.run_info.unlink()
        finally:
            await hooks.drain()
            await close_connection(nc)
    finally:
        if embedded is not None:
            await embedded.stop()


def install_stop_signals(stop: asyncio.Event) -> None:
    """SIGINT and SIGTERM set ``stop`` so that every task can clean up in order."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)


def cancel_on_signals() -> None:
    """SIGINT and SIGTERM cancel the current task, so its ``finally`` blocks clean up."""
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, task.cancel)
