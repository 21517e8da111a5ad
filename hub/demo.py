"""``hub demo``: the whole flow on an embedded NATS, in one process tree, told step by step.

An operator starts a hub; two central authorities are created and admitted; XA-MOJ sends a
sealed MLA request with a text body and one attachment to XB-MOJ; XB-MOJ's agent receives,
decrypts, verifies and returns a signed receipt, which XA-MOJ receives in turn. Everything it
starts (the nats-server child included) is stopped on exit, also on Ctrl-C.
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
import textwrap
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

from hub import ids, subjects
from hub.clock import SystemClock
from hub.console import table
from hub.crypto.keys import AuthorityKeys
from hub.errors import UnavailableError
from hub.gateway.connection import connect
from hub.gateway.intake_client import IntakeClient
from hub.ledger.describe import describe
from hub.operator import admission_request, init_hub, submit_admission
from hub.runtime import cancel_on_signals, running_hub
from hub.settings import HubPaths, HubSettings
from node_agent.agent import Agent, Attachment, Outgoing
from node_agent.config import AgentPaths, AgentSettings
from node_agent.directory import AgentDirectory
from node_agent.identity import card_file, init_agent
from node_agent.store import AgentStore
from node_agent.transport import HubLink
from schemas.codec import decode
from schemas.envelope import Body, CaseMeta
from schemas.ledger import LedgerEntry

__all__ = ["run_demo"]

_REQUEST_TEXT = """\
Request for mutual legal assistance under article 18 of the United Nations Convention against
Transnational Organized Crime.

The Central Authority of XA requests the Central Authority of XB to take the evidence of two
witnesses in connection with proceedings for laundering of the proceeds of crime, and to provide
certified copies of the bank records listed in the attached evidence list.
"""
_ATTACHMENT = b"%PDF-1.4\n% evidence list (demo)\n1. Account statements 2024-2025\n2. KYC file\n"


def _step(number: int, text: str) -> None:
    print(f"\n[{number}] {text}")


def _indent(text: str) -> str:
    return textwrap.indent(text.rstrip(), "    ")


class _Party:
    """One authority in the demo: its folder, agent and running loop."""

    def __init__(self, root: Path, authority: str, name: str, hub_url: str, operator: str):
        self.paths = AgentPaths(root / authority)
        self.settings = AgentSettings(
            id=authority,
            state=authority[:2],
            name=name,
            kinds=["mla", "extradition"],
            languages=["en", "fr"],
            hub=hub_url,
            operator_key=operator,
        )
        self.keys: AuthorityKeys = init_agent(self.paths, self.settings, now=SystemClock().now())
        self.store = AgentStore(self.paths.database)
        self.agent = Agent(
            authority=authority,
            keys=self.keys,
            store=self.store,
            inbox_dir=self.paths.inbox,
            clock=SystemClock(),
        )

    @asynccontextmanager
    async def online(self, stop: asyncio.Event) -> AsyncIterator[tuple[HubLink, AgentDirectory]]:
        link = HubLink(await connect(self.settings.hub, name=self.settings.id), self.settings.id)
        operator = bytes.fromhex(self.settings.operator_key or "")
        directory = AgentDirectory(self.store, link, operator)
        task = asyncio.create_task(self.agent.run(link, directory, stop))
        try:
            yield link, directory
        finally:
            stop.set()
            await asyncio.gather(task, return_exceptions=True)
            await link.close()
            self.store.close()


async def _until(check: Callable[[], bool], what: str, timeout: float = 15.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not check():
        if loop.time() > deadline:
            raise UnavailableError(f"demo: timed out waiting for {what}")
        await asyncio.sleep(0.02)


async def run_demo(data: Path | None) -> int:
    """Run the demo in ``data`` (a fresh temporary folder by default)."""
    with contextlib.ExitStack() as cleanup:
        root = data or Path(cleanup.enter_context(tempfile.TemporaryDirectory(prefix="mla-demo-")))
        return await _demo(root)


async def _demo(root: Path) -> int:
    stop = asyncio.Event()
    cancel_on_signals()
    hub_paths = HubPaths(root / "hub")
    operator = init_hub(hub_paths, HubSettings(origin="demo.mla-hub.example"))
    _step(1, f"Hub initialised in {hub_paths.root}; operator key {operator.public.hex()[:16]}...")
    async with running_hub(hub_paths, HubSettings(), nats_port=0) as hub:
        hub_task = asyncio.create_task(hub.service.run(stop))
        try:
            _step(2, f"Embedded nats-server up at {hub.nats_url} (JetStream, fsync before ack)")
            xa = _Party(
                root, "XA-MOJ", "Central Authority of XA", hub.nats_url, operator.public.hex()
            )
            xb = _Party(
                root, "XB-MOJ", "Central Authority of XB", hub.nats_url, operator.public.hex()
            )
            _step(3, "Two central authorities created (Ed25519 + ML-KEM-768/X25519 keys):")
            for party in (xa, xb):
                print(f"    {party.settings.id}  key id {party.keys.key_id}  {party.paths.root}")
            client = IntakeClient(hub.nc, subjects.OPERATOR)
            _step(4, "The operator admits both self-signed cards into the directory:")
            for party in (xa, xb):
                made = card_file(party.settings, party.keys, now=SystemClock().now())
                request = admission_request(made, operator, now=SystemClock().now())
                verdict = await submit_admission(client, request, 10.0)
                index = verdict.ledger_index
                print(f"    {party.settings.id}: {verdict.status} at ledger index {index}")
            async with xa.online(asyncio.Event()) as (a_link, a_dir), xb.online(asyncio.Event()):
                _step(
                    5, "XA-MOJ seals an MLA request (text + 1 attachment) for XB-MOJ and sends it"
                )
                message_id = await xa.agent.queue(
                    Outgoing(
                        to="XB-MOJ",
                        type="request.submit",
                        case_id=ids.uuid7(),
                        text=_REQUEST_TEXT,
                        attachments=[
                            Attachment("evidence-list.pdf", _ATTACHMENT, "application/pdf")
                        ],
                        meta=CaseMeta(
                            kind="mla", nature=["taking-evidence"], legal_basis="untoc-art18"
                        ),
                    ),
                    a_dir,
                )
                result = await xa.agent.submit(a_link, message_id, 10.0)
                print(f"    hub verdict: {result.status}, ledger index {result.ledger_index}")
                print(f"    case {result.case_id}, message {message_id}")
                await _until(lambda: xb.store.inbox_get(message_id) is not None, "delivery to XB")
                row = xb.store.inbox_get(message_id)
                assert row is not None
                body = decode(row.body, Body, what="body")
                _step(6, "XB-MOJ's agent received it, checked XA-MOJ's signature and decrypted it:")
                print(f"    from {row.sender}, ledger index {row.ledger_index}, verified: yes")
                print(_indent(body.text))
                for meta in body.attachments:
                    digest = meta.sha256.hex()[:16]
                    print(f"    attachment: {meta.name} ({meta.size} bytes, sha256 {digest}...)")
                await _until(lambda: bool(xa.store.receipts_for(message_id)), "the receipt")
                receipt = xa.store.receipts_for(message_id)[0]
                _step(
                    7,
                    "XB-MOJ returned a signed receipt; the hub recorded it and XA-MOJ verified it:",
                )
                print(
                    f"    receipt {receipt.receipt_id} by {receipt.recipient}"
                    f" at {receipt.received_at}"
                )
                print(f"    recorded at ledger index {receipt.ledger_index}")
            _step(8, "The ledger (what the hub recorded, without any content):")
            entries = [
                describe(decode(data, LedgerEntry, what="ledger entry"))
                async for _, data in hub.service.ledger.read()
            ]
            print(
                _indent(
                    table(
                        ("index", "type", "actor", "digest", "detail"),
                        [
                            (e.index, e.type, e.actor, e.digest[:16] + "...", e.detail)
                            for e in entries
                        ],
                    )
                )
            )
        finally:
            stop.set()
            await asyncio.gather(hub_task, return_exceptions=True)
    print("\nDemo complete: every process it started has been stopped.")
    return 0
