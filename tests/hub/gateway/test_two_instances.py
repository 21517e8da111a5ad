"""Two hub instances on one JetStream: one total order, nothing recorded twice or lost.

Both consume the shared intake consumer and append with expected last sequences; a loser of
the race rebuilds its state from the ledger and the batch comes back (hub.gateway.service).
"""

from __future__ import annotations

import asyncio

import pytest

from hub import ids
from hub.gateway.connection import close, connect
from hub.gateway.service import HubService
from node_agent.agent import Outgoing
from schemas.codec import decode
from schemas.envelope import CaseMeta, Header
from schemas.ledger import EnvelopeRecorded, ReceiptRecorded
from tests.harness import HubHarness, eventually

pytestmark = pytest.mark.nats


async def test_two_instances_share_the_intake(hub: HubHarness) -> None:
    a = await hub.authority("XA-MOJ")
    b = await hub.authority("XB-MOJ")
    nc = await connect(hub.url, name="second-hub")
    second = await HubService.open(nc, operator_key=hub.operator.public, log_key=hub.log_key)
    stop = asyncio.Event()
    task = asyncio.create_task(second.run(stop))
    try:
        await b.start()
        link = await a.connect()
        assert a.directory is not None
        sent = []
        for n in range(40):
            outgoing = Outgoing(
                to="XB-MOJ", type="request.submit", case_id=ids.uuid7(), text=f"request {n}",
                meta=CaseMeta(legal_basis="untoc-art18"),
            )  # fmt: skip
            sent.append(await a.agent.queue(outgoing, a.directory))
        await a.agent.flush(link)  # all 40 at the intake at once: both instances take some
        await a.start()

        def all_recorded() -> bool:
            # "duplicate" too: a batch that lost the race comes back whole, and what it had
            # stored before the loss is then answered as already recorded (same index).
            rows = [a.store.outbox_get(m) for m in sent]
            return all(r is not None and r.status in ("accepted", "duplicate") for r in rows)

        await eventually(all_recorded, "every request recorded", timeout=60)
        await eventually(lambda: len(b.store.inbox_all()) == 40, "every request at B", 30)
        entries = await hub.entries()
        assert [e.index for e in entries] == list(range(len(entries)))
        recorded = [
            decode(e.event.header, Header).message_id
            for e in entries
            if isinstance(e.event, EnvelopeRecorded)
        ]
        assert sorted(recorded) == sorted(sent)  # each exactly once
        indices = {a.store.outbox_get(m).ledger_index for m in sent}  # type: ignore[union-attr]
        assert len(indices) == 40
        await eventually(lambda: len(a.store.outbox_all()) >= 40, "outbox", 5)
        receipts = [e for e in await hub.entries() if isinstance(e.event, ReceiptRecorded)]
        assert len(receipts) <= 40
    finally:
        stop.set()
        await asyncio.gather(task, return_exceptions=True)
        await close(nc)
