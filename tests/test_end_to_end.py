"""A sealed request travels A -> B through a real hub on a real nats-server, and back a receipt."""

from __future__ import annotations

import pytest

from hub import ids
from hub.crypto.digest import sha256
from hub.errors import UnavailableError
from node_agent.agent import Attachment, Outgoing
from node_agent.directory import AgentDirectory
from schemas.codec import decode
from schemas.envelope import Body, Header
from schemas.ledger import EnvelopeRecorded, ReceiptRecorded
from schemas.receipt import ReceiptBody
from tests.harness import HubHarness, eventually

pytestmark = pytest.mark.nats


class TestRequestWithReceipt:
    """A request is recorded, delivered, decrypted, verified, and acknowledged by a receipt."""

    async def test_request_and_receipt(self, hub: HubHarness) -> None:
        a = await hub.authority("XA-MOJ")
        b = await hub.authority("XB-MOJ")
        await a.start()
        await b.start()
        pdf = b"%PDF-1.4 evidence list"
        message_id, status = await a.send_request(
            "XB-MOJ", "Take the evidence of W.", (Attachment("evidence-list.pdf", pdf),)
        )
        assert status == "accepted"

        await eventually(lambda: b.store.inbox_get(message_id) is not None, "delivery to B")
        row = b.store.inbox_get(message_id)
        assert row is not None
        assert row.sender == "XA-MOJ"
        assert decode(row.body, Body).text == "Take the evidence of W."
        saved = sorted(p for p in (b.root / "inbox" / message_id).iterdir())
        assert [p.name for p in saved] == ["00-evidence-list.pdf"]
        assert saved[0].read_bytes() == pdf

        await eventually(lambda: bool(a.store.receipts_for(message_id)), "receipt back at A")
        receipt = a.store.receipts_for(message_id)[0]
        assert receipt.recipient == "XB-MOJ"

        entries = await hub.entries()
        assert [type(e.event).__name__ for e in entries] == [
            "AuthorityAdmitted",
            "AuthorityAdmitted",
            "EnvelopeRecorded",
            "ReceiptRecorded",
        ]
        assert [e.index for e in entries] == [0, 1, 2, 3]
        recorded = entries[2].event
        assert isinstance(recorded, EnvelopeRecorded)
        header = decode(recorded.header, Header)
        assert (header.message_id, header.sender, header.recipients) == (
            message_id,
            "XA-MOJ",
            ["XB-MOJ"],
        )
        assert len(recorded.attachments) == 1
        assert recorded.envelope_digest == row.envelope_digest
        # The ledger holds digests, never the plaintext.
        assert b"Take the evidence" not in recorded.header
        receipt_event = entries[3].event
        assert isinstance(receipt_event, ReceiptRecorded)
        receipt_body = decode(receipt_event.body, ReceiptBody)
        assert receipt_body.envelope_digest == recorded.envelope_digest
        assert receipt_body.ledger_index == 2
        assert a.store.outbox_get(message_id).status == "accepted"  # type: ignore[union-attr]

    async def test_content_store_keeps_sealed_bytes_by_digest(self, hub: HubHarness) -> None:
        a = await hub.authority("XA-MOJ")
        await hub.authority("XB-MOJ")
        message_id, _ = await a.send_request("XB-MOJ")
        assert hub.service is not None
        record = hub.service.state.messages.messages[message_id]
        sealed = await hub.service._content.get(record.envelope_digest)
        assert sealed is not None
        assert sealed == a.store.outbox_get(message_id).payload  # type: ignore[union-attr]
        assert sha256(sealed) != record.envelope_digest  # keyed by envelope digest, not bytes


class TestOfflineAndRestart:
    """Store and forward: nothing accepted is lost when a party or the hub goes away."""

    async def test_offline_recipient_catches_up(self, hub: HubHarness) -> None:
        a = await hub.authority("XA-MOJ")
        b = await hub.authority("XB-MOJ")
        first, _ = await a.send_request("XB-MOJ", "first")
        second, _ = await a.send_request("XB-MOJ", "second")
        assert b.store.inbox_all() == []
        await b.start()  # B comes online only now
        await eventually(lambda: len(b.store.inbox_all()) == 2, "both messages at B")
        assert [r.message_id for r in b.store.inbox_all()] == [first, second]

    async def test_hub_restart_keeps_ledger_and_sequence(self, hub: HubHarness) -> None:
        a = await hub.authority("XA-MOJ")
        await hub.authority("XB-MOJ")
        before, _ = await a.send_request("XB-MOJ", "before restart")
        await a.stop()
        await hub.restart()
        after, status = await a.send_request("XB-MOJ", "after restart")
        assert status == "accepted"
        entries = await hub.entries()
        assert [e.index for e in entries] == list(range(4))
        assert hub.service is not None
        assert hub.service.state.messages.messages[before].ledger_index == 2
        assert hub.service.state.messages.messages[after].ledger_index == 3

    async def test_queued_while_hub_unreachable_then_sent_by_run(self, hub: HubHarness) -> None:
        a = await hub.authority("XA-MOJ")
        b = await hub.authority("XB-MOJ")
        await a.send_request("XB-MOJ", "caches B's card")
        await a.stop()
        await hub.stop()
        with pytest.raises(UnavailableError, match="cannot reach NATS"):
            await a.connect()
        # The hub is down: the message is sealed to B's cached card and queued, not lost.
        offline = AgentDirectory(a.store, None, hub.operator.public)
        outgoing = Outgoing(to="XB-MOJ", type="request.submit", case_id=ids.uuid7(), text="q")
        message_id = await a.agent.queue(outgoing, offline)
        result = await a.agent.submit(None, message_id, 1.0)
        assert result.status == "queued"
        assert a.store.outbox_get(message_id).status == "queued"  # type: ignore[union-attr]

        await hub.start_again()
        await a.start()  # `node-agent run` sends the outbox
        await b.start()
        await eventually(lambda: b.store.inbox_get(message_id) is not None, "queued message at B")
        await eventually(
            lambda: a.store.outbox_get(message_id).status == "accepted",  # type: ignore[union-attr]
            "the verdict at A",
        )
        assert decode(b.store.inbox_get(message_id).body, Body).text == "q"  # type: ignore[union-attr]
