"""A small harness around real components: an embedded nats-server, the hub service, agents.

Nothing here is a mock: the hub is ``HubService`` on a real JetStream, agents are ``Agent`` with
their SQLite stores and real keys. Factories keep each test's setup to a few lines.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from nats.aio.client import Client as NatsClient

from hub import ids, subjects
from hub.clock import SystemClock
from hub.crypto.access import sign_statement
from hub.crypto.keys import AuthorityKeys, OperatorKey
from hub.crypto.note import signer_verifier_key
from hub.gateway.admission import Limits
from hub.gateway.connection import close as close_connection
from hub.gateway.connection import connect
from hub.gateway.intake_client import IntakeClient
from hub.gateway.nats_server import EmbeddedNats, NatsServerOptions
from hub.gateway.service import HubService
from hub.gateway.snapshot import publish_snapshot
from hub.ledger.store import Ledger, StreamLayout
from hub.ledger.transparency import LogVerifier, new_log_key
from hub.operator import admission_request, revocation_request, submit_admission
from node_agent.agent import Agent, Attachment, Outgoing, SendResult
from node_agent.config import AgentPaths, AgentSettings
from node_agent.directory import AgentDirectory
from node_agent.disclosure import ContentKeys
from node_agent.identity import card_file, init_agent, rotate_keys
from node_agent.store import AgentStore
from node_agent.transport import HubLink
from node_agent.witness import Witness, WitnessStore
from node_agent.witness_store import Alarm
from schemas.access import AccessStatement
from schemas.codec import decode
from schemas.envelope import CaseMeta
from schemas.ledger import LedgerEntry
from schemas.transport import Verdict

__all__ = ["AuthorityHarness", "HubHarness", "eventually"]


async def eventually(check: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    """Wait until ``check()`` holds, or fail naming ``what`` (bounded, never hangs)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not check():
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.02)


class HubHarness:
    """A hub on its own nats-server in ``root``; can be stopped and restarted on the same data."""

    def __init__(
        self,
        root: Path,
        limits: Limits = Limits(),
        *,
        external_url: str | None = None,
        layout: StreamLayout = StreamLayout(),
        atomic_batches: bool | None = None,
    ) -> None:
        """``external_url``: use that NATS (e.g. a test cluster) instead of starting one.
        ``atomic_batches``: as hub.runtime sets it by default: on with the embedded server."""
        self.root = root
        self.external_url = external_url
        self.atomic_batches = external_url is None if atomic_batches is None else atomic_batches
        self.layout = layout
        self.operator = OperatorKey.generate()
        self.log_key = new_log_key("test.mla-hub.example", os.urandom(32))
        self.limits = limits
        self.server = EmbeddedNats(NatsServerOptions(store_dir=root / "nats"))
        self.url = ""
        self.nc: NatsClient | None = None
        self.service: HubService | None = None
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.authorities: list[AuthorityHarness] = []
        # Every agent's witness must end without a transparency alarm, unless a test forges
        # one on purpose (then it sets this): a hub whose proofs stop adding up fails the test
        # that made it so, not only the bench that measured it slower.
        self.alarms_expected = False

    async def start(self, *, service: bool = True) -> None:
        """Start the nats-server (same port on a restart) and, by default, the hub service."""
        self.url = self.external_url or await self.server.start()
        if service:
            await self.start_service()

    async def start_service(self) -> None:
        self.nc = await connect(self.url, name="test-hub")
        self.service = await HubService.open(
            self.nc,
            operator_key=self.operator.public,
            log_key=self.log_key,
            limits=self.limits,
            layout=self.layout,
            atomic_batches=self.atomic_batches,
        )
        self._stop = asyncio.Event()
        self._task = asyncio.create_task(self.service.run(self._stop))

    async def stop_service(self) -> None:
        self._stop.set()
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        if self.nc is not None:
            await close_connection(self.nc)
            self.nc = None

    async def stop(self) -> None:
        await self.stop_service()
        await self.server.stop()

    async def restart(self) -> None:
        """Stop everything, then start again on the same data folder and port."""
        await self.stop()
        await self.start_again()

    async def start_again(self) -> None:
        """After :meth:`stop`: the same data folder and port, so clients reconnect by themselves."""
        port = int(self.url.rsplit(":", 1)[1])
        self.server = EmbeddedNats(NatsServerOptions(store_dir=self.root / "nats", port=port))
        await self.start()

    async def close(self) -> None:
        alarms = []
        for authority in self.authorities:
            await authority.close()
            alarms += [(authority.id, a.detail) for a in authority.alarms_seen]
        await self.stop()
        if alarms and not self.alarms_expected:
            raise AssertionError(f"transparency alarms at the agents: {alarms[:3]}")

    async def admit(self, authority: AuthorityHarness) -> Verdict:
        assert self.nc is not None
        made = card_file(authority.settings, authority.keys, now=SystemClock().now())
        request = admission_request(made, self.operator, now=SystemClock().now())
        return await submit_admission(IntakeClient(self.nc, subjects.OPERATOR), request, 10.0)

    async def rotate(self, authority: AuthorityHarness) -> Verdict:
        """``node-agent rotate`` then ``hub admit``: new keys on disk (the old pair kept in
        keys/previous), the agent signs with them, the operator admits the rotated card."""
        assert self.nc is not None
        now = SystemClock().now()
        keys, made = rotate_keys(AgentPaths(authority.root), authority.settings, now=now)
        authority.keys = authority.agent.keys = keys
        request = admission_request(made, self.operator, now=now)
        return await submit_admission(IntakeClient(self.nc, subjects.OPERATOR), request, 10.0)

    async def revoke(self, authority_id: str, reason: str = "no longer designated") -> Verdict:
        """``hub revoke``: the operator's signed revocation, through the intake."""
        assert self.nc is not None
        request = revocation_request(authority_id, reason, self.operator)
        return await submit_admission(IntakeClient(self.nc, subjects.OPERATOR), request, 10.0)

    async def record_access(self, statement: AccessStatement) -> Verdict:
        """``hub liaison accredit`` / ``hub auditor admit`` / their revocations, minus the
        token: the operator's signed statement, through the intake."""
        assert self.nc is not None
        request = sign_statement(statement, self.operator)
        return await submit_admission(IntakeClient(self.nc, subjects.OPERATOR), request, 10.0)

    async def publish_snapshot(self) -> None:
        """What ``hub up``'s directory hook does at every change (a bare ``HubService`` holds
        no operator private key, so it publishes cards but no signed snapshot)."""
        assert self.nc is not None and self.service is not None
        await publish_snapshot(self.nc.jetstream(), self.service.state, self.operator)

    async def authority(self, authority_id: str, *, admit: bool = True) -> AuthorityHarness:
        """A new authority with its own folder, keys and store; admitted by default."""
        made = AuthorityHarness(self.root / authority_id, authority_id, self)
        self.authorities.append(made)
        if admit:
            verdict = await self.admit(made)
            assert verdict.status == "accepted", verdict
        return made

    async def entries(self) -> list[LedgerEntry]:
        nc = await connect(self.url, name="test-ledger-reader")
        try:
            return [
                decode(data, LedgerEntry, what="entry")
                async for _, data in Ledger(nc.jetstream()).read()
            ]
        finally:
            await close_connection(nc)


@dataclass
class AuthorityHarness:
    root: Path
    id: str
    hub: HubHarness
    settings: AgentSettings = field(init=False)
    keys: AuthorityKeys = field(init=False)
    store: AgentStore = field(init=False)
    agent: Agent = field(init=False)
    link: HubLink | None = None
    directory: AgentDirectory | None = None
    _stop: asyncio.Event = field(default_factory=asyncio.Event)
    _task: asyncio.Task[None] | None = None
    alarms_seen: list[Alarm] = field(default_factory=list)  # read at close

    def __post_init__(self) -> None:
        paths = AgentPaths(self.root)
        self.settings = AgentSettings(
            id=self.id,
            state=self.id[:2],
            name=f"Central Authority of {self.id[:2]}",
            kinds=["mla", "extradition"],
            languages=["en"],
            hub=self.hub.url,
            operator_key=self.hub.operator.public.hex(),
        )
        self.keys = init_agent(paths, self.settings, now=SystemClock().now())
        self.store = AgentStore(paths.database)
        self.agent = Agent(
            authority=self.id,
            keys=self.keys,
            store=self.store,
            inbox_dir=paths.inbox,
            clock=SystemClock(),
        )

    async def connect(self) -> HubLink:
        if self.link is None:
            self.link = HubLink(await connect(self.hub.url, name=self.id), self.id)
            database = AgentPaths(self.root).database
            if self.agent.witness is not None:
                self.agent.witness.store.close()
            self.agent.witness = Witness(
                self.id,
                self.keys,
                LogVerifier(signer_verifier_key(self.hub.log_key)),
                WitnessStore(database),
                SystemClock().now,
                self.link.nc,
            )
            if self.agent.content_keys is None:
                self.agent.content_keys = ContentKeys(database)
            operator = self.hub.operator.public
            self.directory = AgentDirectory(self.store, self.link, operator)
        return self.link

    async def start(self) -> None:
        """Run the agent loop (receive, decrypt, verify, receipts, resend) in the background."""
        link = await self.connect()
        assert self.directory is not None
        self._stop = asyncio.Event()
        self._task = asyncio.create_task(self.agent.run(link, self.directory, self._stop))

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        if self.link is not None:
            await self.link.close()
            self.link = None

    async def close(self) -> None:
        await self.stop()
        if self.agent.witness is not None:
            with contextlib.suppress(sqlite3.ProgrammingError):  # closed before
                self.alarms_seen = self.agent.witness.store.alarms()
            await self.agent.witness.stop()
            self.agent.witness.store.close()
        if self.agent.content_keys is not None:
            self.agent.content_keys.close()
        self.store.close()

    async def send(self, outgoing: Outgoing, *, wait: float = 10.0) -> SendResult:
        """Queue and submit any case message (the agent's lifecycle check runs first)."""
        link = await self.connect()
        assert self.directory is not None
        message_id = await self.agent.queue(outgoing, self.directory)
        return await self.agent.submit(link, message_id, wait)

    async def send_request(
        self,
        to: str,
        text: str = "Please take the evidence of the witness.",
        attachments: tuple[Attachment, ...] = (),
        *,
        wait: float = 10.0,
    ) -> tuple[str, str]:
        """Queue and submit a request; returns (message id, status)."""
        link = await self.connect()
        assert self.directory is not None
        message_id = await self.agent.queue(
            Outgoing(
                to=to,
                type="request.submit",
                case_id=ids.uuid7(),
                text=text,
                attachments=attachments,
                meta=CaseMeta(kind="mla", nature=["taking-evidence"], legal_basis="untoc-art18"),
            ),
            self.directory,
        )
        result = await self.agent.submit(link, message_id, wait)
        return message_id, result.status
