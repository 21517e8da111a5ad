"""``hub demo``: the whole product on an embedded NATS, in one process tree, told step by step.

An operator starts a hub; two central authorities are created and admitted; they play a
realistic case from informal consultation to closure, and a few shorter ones (``demo_story``),
XA-MOJ copying its accredited liaison magistrate in XB on its messages (``demo_liaison``);
then the demo prints the status of every case, the main case's audit trail, statistics, and
writes the bilateral review as an HTML page. Everything it starts (the nats-server child
included) is stopped on exit, also on Ctrl-C.
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
import textwrap
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from hub import subjects
from hub.clock import SystemClock
from hub.console import table
from hub.crypto.keys import AuthorityKeys
from hub.demo_liaison import accredit_officer, officer_reads
from hub.demo_story import Online, play
from hub.gateway.connection import connect
from hub.gateway.intake_client import IntakeClient
from hub.ledger.projections.cases import status_of
from hub.ledger.projections.review import bilateral_review
from hub.ledger.projections.state import HubState
from hub.ledger.projections.stats import statistics
from hub.operator import admission_request, init_hub, submit_admission
from hub.reports import review_html
from hub.runtime import cancel_on_signals, running_hub
from hub.settings import HubPaths, HubSettings
from node_agent.agent import Agent
from node_agent.config import AgentPaths, AgentSettings
from node_agent.directory import AgentDirectory
from node_agent.identity import card_file, init_agent, nats_credentials, nats_public
from node_agent.store import AgentStore
from node_agent.transport import HubLink

__all__ = ["run_demo"]


def _step(number: int, text: str) -> None:
    print(f"\n[{number}] {text}")


def _indent(text: str) -> str:
    return textwrap.indent(text.rstrip(), "    ")


class _Party:
    """One authority in the demo: its folder, agent and running loop."""

    def __init__(self, root: Path, authority: str, hub: HubPaths, hub_url: str, operator: str):
        self.paths = AgentPaths(root / authority)
        self.settings = AgentSettings(
            id=authority,
            state=authority[:2],
            name=f"Central Authority of {authority[:2]}",
            kinds=["mla", "extradition"],
            languages=["en", "fr"],
            hub=hub_url,
            operator_key=operator,
        )
        self.keys: AuthorityKeys = init_agent(
            self.paths, self.settings, now=SystemClock().now(), hub_ca=hub.hub_ca.read_bytes()
        )
        self.store = AgentStore(self.paths.database)
        self.agent = Agent(
            authority=authority,
            keys=self.keys,
            store=self.store,
            inbox_dir=self.paths.inbox,
            clock=SystemClock(),
        )

    @asynccontextmanager
    async def online(self) -> AsyncIterator[Online]:
        stop = asyncio.Event()
        credentials = nats_credentials(self.paths, self.settings.id)
        nc = await connect(self.settings.hub, name=self.settings.id, credentials=credentials)
        link = HubLink(nc, self.settings.id)
        operator = bytes.fromhex(self.settings.operator_key or "")
        directory = AgentDirectory(self.store, link, operator)
        task = asyncio.create_task(self.agent.run(link, directory, stop))
        try:
            yield Online(self.settings.id, self.agent, self.store, link, directory)
        finally:
            stop.set()
            await asyncio.gather(task, return_exceptions=True)
            await link.close()
            self.store.close()


async def run_demo(data: Path | None) -> int:
    """Run the demo in ``data`` (a fresh temporary folder by default)."""
    with contextlib.ExitStack() as cleanup:
        root = data or Path(cleanup.enter_context(tempfile.TemporaryDirectory(prefix="mla-demo-")))
        return await _demo(root, None if data else Path("demo-out"))


def _report(state: HubState, case: str, out_dir: Path) -> None:
    now = SystemClock().now()
    print("\n[9] Status of every case (the hub's projection, folded from the ledger):")
    rows = [status_of(r, now) for r in state.cases.by_id.values()]
    print(
        _indent(
            table(
                ("case", "kind", "from -> to", "state", "held by", "deadline"),
                [
                    (
                        r.case_id[:13] + "...",
                        r.kind,
                        f"{r.requesting} -> {r.requested}",
                        r.state,
                        r.holder,
                        "OVERDUE" if r.overdue else ("-" if r.deadline is None else "ok"),
                    )
                    for r in rows
                ],
            )
        )
    )
    record = state.cases.by_id[case]
    print(f"\n[10] Audit trail of the main case ({len(record.trail)} ledger entries):")
    print(
        _indent(
            table(
                ("index", "type", "actor", "digest"),
                [(t.index, t.type, t.actor, t.digest[:16] + "...") for t in record.trail],
            )
        )
    )
    stats = statistics(state.cases.by_id.values(), "legal-basis", now=now)
    print(
        f"\n[11] Statistics by legal basis (UNTOC used in {stats.untoc_as_legal_basis} of "
        f"{stats.requests} requests):"
    )
    print(
        _indent(
            table(
                ("legal basis", "requests", "executed", "refused", "withdrawn", "pending"),
                [
                    (r.group, r.requests, r.executed, r.refused, r.withdrawn, r.pending)
                    for r in stats.rows
                ],
            )
        )
    )
    review = bilateral_review(
        state.cases.by_id.values(), "XA-MOJ", "XB-MOJ", since=None, until=None, now=now
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "review-XA-MOJ-XB-MOJ.html"
    path.write_text(review_html(review))
    print(f"\n[12] Bilateral case review (rec. 11) written to {path.resolve()}")
    print(f"     the ledger holds {state.next_index} entries; none of them holds any content")


async def _demo(root: Path, review_dir: Path | None) -> int:
    stop = asyncio.Event()
    cancel_on_signals()
    hub_paths = HubPaths(root / "hub")
    operator = init_hub(
        hub_paths, HubSettings(origin="demo.mla-hub.example"), now=SystemClock().now()
    )
    _step(1, f"Hub initialised in {hub_paths.root}; operator key {operator.public.hex()[:16]}...")
    async with running_hub(hub_paths, HubSettings(), nats_port=0, http_port=0) as hub:
        hub_task = asyncio.create_task(hub.service.run(stop))
        try:
            _step(
                2,
                f"Embedded nats-server up at {hub.nats_url}: JetStream with fsync before ack; "
                "TLS only, nkey users, each authority limited to its own subjects",
            )
            xa = _Party(root, "XA-MOJ", hub_paths, hub.nats_url, operator.public.hex())
            xb = _Party(root, "XB-MOJ", hub_paths, hub.nats_url, operator.public.hex())
            _step(3, "Two central authorities created (Ed25519 + ML-KEM-768/X25519 keys):")
            for party in (xa, xb):
                print(f"    {party.settings.id}  key id {party.keys.key_id}  {party.paths.root}")
            client = IntakeClient(hub.nc, subjects.OPERATOR)
            _step(4, "The operator admits both self-signed cards into the directory:")
            for party in (xa, xb):
                made = card_file(
                    party.settings,
                    party.keys,
                    now=SystemClock().now(),
                    nats_public=nats_public(party.paths, party.settings.id),
                )
                request = admission_request(made, operator, now=SystemClock().now())
                verdict = await submit_admission(client, request, 10.0)
                index = verdict.ledger_index
                print(f"    {party.settings.id}: {verdict.status} at ledger index {index}")
            officer = await accredit_officer(
                root, hub, operator, xa.settings.id, xa.keys, xb.settings.id
            )
            async with xa.online() as a_online, xb.online() as b_online:
                case = await play(a_online, b_online)
            _report(hub.service.state, case, review_dir or root)
            assert hub.http_url is not None
            await officer_reads(officer, hub.http_url, case, 13)
        finally:
            stop.set()
            await asyncio.gather(hub_task, return_exceptions=True)
    print("\nDemo complete: every process it started has been stopped.")
    return 0
