"""The node agent's delivery path and sender on a real hub, nats-server, SQLite and crypto.

Crashes are simulated by raising at one step; a delivery the crashed agent did not ack is handed
back with ``nak()`` (what JetStream does by itself once ``ack_wait`` expires) and the agent is
started again.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence

import msgspec
import pytest
import structlog
from nats.aio.msg import Msg
from structlog.testing import capture_logs

from hub import ids, subjects
from hub.crypto.keys import AuthorityKeys, _KeyFile
from hub.gateway.nats_security import delivery_consumer
from node_agent.agent import Outgoing
from node_agent.cli import cmd_inbox
from node_agent.config import AgentPaths
from node_agent.outgoing import Attachment
from node_agent.store import AgentStore, OutboxRow
from node_agent.transport import HubLink, Inbound
from schemas.codec import decode, encode
from schemas.envelope import Envelope
from schemas.ledger import LedgerEntry, ReceiptRecorded
from schemas.receipt import ReceiptBody
from schemas.transport import Deliveries, Delivery, Verdict, Verdicts
from tests.harness import AuthorityHarness, HubHarness, eventually

pytestmark = pytest.mark.nats


class Crash(Exception):
    """Stands for the agent's process dying at the point where it is raised."""


class CountingLink(HubLink):
    """The real link, counting what it publishes (and yielding once, as a slow network would)."""

    def __init__(self, link: HubLink) -> None:
        super().__init__(link.nc, link.authority)
        self.published: Counter[str] = Counter()

    async def publish(self, message_id: str, payload: bytes) -> None:
        self.published[message_id] += 1
        await asyncio.sleep(0)
        await super().publish(message_id, payload)

    async def publish_all(self, submissions: Sequence[tuple[str, bytes]]) -> int:
        self.published.update(message_id for message_id, _ in submissions)
        await asyncio.sleep(0)
        return await super().publish_all(submissions)


def receipts_queued(store: AgentStore) -> list[str]:
    return [r.message_id for r in store.outbox_all() if r.item == "receipt"]


async def receipts_recorded(hub: HubHarness, message_id: str) -> list[str]:
    return [
        body.receipt_id
        for entry in await hub.entries()
        if isinstance(entry.event, ReceiptRecorded)
        and (body := decode(entry.event.body, ReceiptBody)).message_id == message_id
    ]


async def crash_on_delivery(b: AuthorityHarness) -> None:
    """Fetch B's pending delivery, let ``handle`` die on it, hand it back if it was not acked."""
    link = await b.connect()
    assert b.directory is not None
    sub = await link.js.pull_subscribe_bind(
        durable=delivery_consumer(b.id), stream=subjects.DELIVER_STREAM
    )
    (msg,) = await sub.fetch(1, timeout=10.0)  # batch of one: no pull request left waiting
    with pytest.raises(Crash):
        await b.agent.handle([Inbound((decode(msg.data, Delivery),), (), msg)], b.directory)
    await msg.nak()  # what ack_wait would do (ignored by the server once acked)
    await sub.unsubscribe()


def fail(*_: object, **__: object) -> None:
    raise Crash


async def crash_inside_commit(b: AuthorityHarness, monkeypatch: pytest.MonkeyPatch) -> None:
    """After the inbox row is written, before its receipt is: the commit never happens."""
    monkeypatch.setattr(b.store, "outbox_add", fail)
    await crash_on_delivery(b)
    assert b.store.inbox_all() == []  # rolled back with the receipt
    assert receipts_queued(b.store) == []


async def crash_before_ack(b: AuthorityHarness, monkeypatch: pytest.MonkeyPatch) -> None:
    """After the commit, before the ack: row and receipt are kept; the delivery comes again."""

    async def ack(self: Inbound) -> None:
        raise Crash

    monkeypatch.setattr(Inbound, "ack", ack)
    await crash_on_delivery(b)
    assert len(b.store.inbox_all()) == 1
    assert len(receipts_queued(b.store)) == 1


async def crash_before_receipt_sent(b: AuthorityHarness, monkeypatch: pytest.MonkeyPatch) -> None:
    """After the ack, before the receipt is published: the outbox still holds it."""

    async def publish(self: HubLink, message_id: str, payload: bytes) -> None:
        raise Crash

    monkeypatch.setattr(HubLink, "publish", publish)
    await b.start()
    await eventually(lambda: len(receipts_queued(b.store)) == 1, "the receipt queued")
    await b.stop()
    assert [r.status for r in b.store.outbox_all()] == ["queued"]


class TestCrashSafeDelivery:
    """Whatever step the recipient dies at, it ends with one inbox row and one receipt."""

    @pytest.mark.parametrize(
        "crash", [crash_inside_commit, crash_before_ack, crash_before_receipt_sent]
    )
    async def test_one_row_and_one_receipt_after_a_crash(
        self,
        hub: HubHarness,
        monkeypatch: pytest.MonkeyPatch,
        crash: Callable[[AuthorityHarness, pytest.MonkeyPatch], Awaitable[None]],
    ) -> None:
        a = await hub.authority("XA-MOJ")
        b = await hub.authority("XB-MOJ")
        message_id, status = await a.send_request("XB-MOJ")
        assert status == "accepted"

        await crash(b, monkeypatch)
        monkeypatch.undo()
        await b.start()  # B comes back; JetStream delivers what it did not ack
        await a.start()
        await eventually(lambda: bool(a.store.receipts_for(message_id)), "the receipt at A")

        assert [r.message_id for r in b.store.inbox_all()] == [message_id]
        (row,) = b.store.inbox_all()
        assert receipts_queued(b.store) == [row.receipt_id]
        await eventually(
            lambda: b.store.outbox_get(row.receipt_id).status == "accepted",  # type: ignore[union-attr]
            "the receipt's verdict at B",
        )
        assert await receipts_recorded(hub, message_id) == [row.receipt_id]
        assert [r.receipt_id for r in a.store.receipts_for(message_id)] == [row.receipt_id]


class TestReceiptVerdicts:
    """The verdicts on an agent's receipts come together, one message per hub batch (alone
    when a batch held one)."""

    async def test_every_receipt_gets_its_verdict_and_proof(self, hub: HubHarness) -> None:
        a = await hub.authority("XA-MOJ")
        b = await hub.authority("XB-MOJ")
        sent = [(await a.send_request("XB-MOJ", f"request {i}"))[0] for i in range(4)]
        seen: list[Verdicts] = []

        async def keep(msg: Msg) -> None:
            answer = decode(msg.data, Verdict | Verdicts)
            seen.append(answer if isinstance(answer, Verdicts) else Verdicts(verdicts=[answer]))

        assert hub.nc is not None
        sub = await hub.nc.jetstream().subscribe(
            subjects.verdicts_of("XB-MOJ"), cb=keep, ordered_consumer=True
        )
        await b.start()  # four deliveries waiting: their receipts go out, and come back together
        await eventually(lambda: _receipt_rows(b.store, 4) is not None, "B's receipts recorded")
        rows = _receipt_rows(b.store, 4) or []
        await eventually(lambda: len(_bodies(seen)) == 4, "the verdicts on the stream")
        await sub.unsubscribe()

        recorded = {
            decode(e.event.body, ReceiptBody).receipt_id: e.index
            for e in await hub.entries()
            if isinstance(e.event, ReceiptRecorded)
        }
        assert {r.message_id: r.ledger_index for r in rows} == recorded
        assert sorted(decode(e, ReceiptBody).message_id for e in _bodies(seen)) == sorted(sent)
        assert 1 <= len(seen) <= 4  # a hub batch sends one message for all of B's receipts
        assert b.agent.witness is not None and b.agent.witness.store.alarms() == []


class TestGroupedDeliveries:
    """What one hub batch delivers to an authority comes in one message; each item is
    checked and kept on its own."""

    async def test_a_batch_of_requests_arrives_together_and_each_is_kept(
        self, hub: HubHarness
    ) -> None:
        a = await hub.authority("XA-MOJ")
        b = await hub.authority("XB-MOJ")
        link = await a.connect()
        assert a.directory is not None
        await hub.stop_service()  # so that the hub fetches the five in one batch
        queued = [
            await a.agent.queue(
                Outgoing(to="XB-MOJ", type="consultation.open", case_id=ids.uuid7(), text=f"q{i}"),
                a.directory,
            )
            for i in range(5)
        ]
        assert await a.agent.flush(link) == 5
        await hub.start_service()
        await b.start()
        await eventually(lambda: len(b.store.inbox_all()) == 5, "the five at B")
        await eventually(lambda: _receipt_rows(b.store, 5) is not None, "their receipts recorded")
        assert sorted(r.message_id for r in b.store.inbox_all()) == sorted(queued)
        assert hub.nc is not None
        stored = await hub.nc.jetstream().get_last_msg(
            subjects.DELIVER_STREAM, subjects.deliver("XB-MOJ")
        )
        grouped = decode(stored.data or b"", Deliveries)
        assert sorted(d.ledger_index for d in grouped.items) == sorted(
            r.ledger_index for r in b.store.inbox_all()
        )

    async def test_large_ones_of_one_batch_are_split_under_the_payload_limit(
        self, hub: HubHarness
    ) -> None:
        """Three ~3 MiB requests in one hub batch: together they exceed the server's 8 MiB
        payload, so they travel in several messages, and all three arrive."""
        a = await hub.authority("XA-MOJ")
        b = await hub.authority("XB-MOJ")
        link = await a.connect()
        assert a.directory is not None
        await hub.stop_service()  # so that the hub fetches the three in one batch
        scan = Attachment(name="scan.pdf", data=os.urandom(3 * 1024 * 1024))
        queued = [
            await a.agent.queue(
                Outgoing(
                    to="XB-MOJ",
                    type="consultation.open",
                    case_id=ids.uuid7(),
                    text=f"q{i}",
                    attachments=[scan],
                ),
                a.directory,
            )
            for i in range(3)
        ]
        assert await a.agent.flush(link) == 3
        await hub.start_service()
        await b.start()
        await eventually(lambda: len(b.store.inbox_all()) == 3, "the three at B", timeout=30)
        assert sorted(r.message_id for r in b.store.inbox_all()) == sorted(queued)
        assert hub.nc is not None
        to_b = subjects.deliver("XB-MOJ")  # (B's receipts go to A on the same stream)
        info = await hub.nc.jetstream().stream_info(subjects.DELIVER_STREAM, subjects_filter=to_b)
        assert info.state.subjects == {to_b: 3}  # each alone: two exceed the 1 MiB group limit

    async def test_a_bad_item_is_refused_and_the_others_kept(self, hub: HubHarness) -> None:
        hub.alarms_expected = True  # the forged item does not match its ledger entry
        a = await hub.authority("XA-MOJ")
        b = await hub.authority("XB-MOJ")
        first, _ = await a.send_request("XB-MOJ", "one")
        second, _ = await a.send_request("XB-MOJ", "two")
        assert hub.nc is not None
        js = hub.nc.jetstream()
        sub = await js.subscribe(subjects.deliver("XB-MOJ"), ordered_consumer=True)
        good = [decode((await sub.next_msg(5)).data, Delivery) for _ in range(2)]
        await sub.unsubscribe()
        envelope = good[1].item
        assert isinstance(envelope, Envelope)
        forged = msgspec.structs.replace(
            good[1], item=msgspec.structs.replace(envelope, signature=bytes(64))
        )
        await js.purge_stream(subjects.DELIVER_STREAM)  # only the crafted message is left
        await js.publish(subjects.deliver("XB-MOJ"), encode(Deliveries(items=[good[0], forged])))
        with capture_logs() as logs:
            await b.start()
            await eventually(lambda: len(b.store.inbox_all()) == 1, "the good one kept")
            await eventually(
                lambda: any(e["event"] == "inbound_refused" for e in logs), "the forged refused"
            )
            await b.stop()
        assert [r.message_id for r in b.store.inbox_all()] == [first]
        (refused,) = [e for e in logs if e["event"] == "inbound_refused"]
        assert (refused["reason"], refused["index"]) == ("bad_signature", good[1].ledger_index)
        info = await js.consumer_info(subjects.DELIVER_STREAM, delivery_consumer("XB-MOJ"))
        assert (info.num_ack_pending, info.num_pending) == (0, 0)  # acked: nothing comes back
        assert second not in {r.message_id for r in b.store.inbox_all()}


def _receipt_rows(store: AgentStore, n: int) -> list[OutboxRow] | None:
    rows = [r for r in store.outbox_all() if r.item == "receipt"]
    return rows if len(rows) == n and all(r.status == "accepted" for r in rows) else None


def _bodies(messages: list[Verdicts]) -> list[bytes]:
    """The receipt bodies the verdicts' ledger entries hold."""
    bodies = []
    for message in messages:
        for verdict in message.verdicts:
            assert verdict.entry is not None and verdict.inclusion_proof
            event = decode(verdict.entry, LedgerEntry).event
            assert isinstance(event, ReceiptRecorded)
            bodies.append(event.body)
    return bodies


class TestSender:
    """Each queued row is published once per attempt, however many flushes run at once."""

    async def test_concurrent_flushes_publish_each_row_once(self, hub: HubHarness) -> None:
        a = await hub.authority("XA-MOJ")
        await hub.authority("XB-MOJ")
        link = CountingLink(await a.connect())
        assert a.directory is not None
        queued = [
            await a.agent.queue(
                Outgoing(to="XB-MOJ", type="consultation.open", case_id=ids.uuid7(), text=f"q{i}"),
                a.directory,
            )
            for i in range(5)
        ]
        sent = await asyncio.gather(a.agent.flush(link), a.agent.flush(link), a.agent.flush(link))
        assert sorted(sent) == [0, 0, 5]
        assert link.published == Counter({message_id: 1 for message_id in queued})
        assert {a.store.outbox_get(m).status for m in queued} <= {  # type: ignore[union-attr]
            "submitted",
            "accepted",
        }
        assert await a.agent.flush(link) == 0
        assert sum(link.published.values()) == 5

    async def test_send_and_flush_do_not_publish_twice(self, hub: HubHarness) -> None:
        a = await hub.authority("XA-MOJ")
        await hub.authority("XB-MOJ")
        link = CountingLink(await a.connect())
        assert a.directory is not None
        outgoing = Outgoing(to="XB-MOJ", type="consultation.open", case_id=ids.uuid7(), text="q")
        message_id = await a.agent.queue(outgoing, a.directory)
        results = await asyncio.gather(a.agent.send(link, message_id), a.agent.flush(link))
        assert results[0] is True
        assert link.published == Counter({message_id: 1})


class TestContentKeys:
    """The recipient keeps each message's content key, for a later disclosure."""

    async def test_kept_with_the_inbox_row(self, hub: HubHarness) -> None:
        a = await hub.authority("XA-MOJ")
        b = await hub.authority("XB-MOJ")
        await b.start()
        message_id, _ = await a.send_request("XB-MOJ", "keep my key")
        await eventually(lambda: b.store.inbox_get(message_id) is not None, "delivery to B")
        row = b.store.inbox_get(message_id)
        assert b.agent.content_keys is not None and row is not None
        kept = b.agent.content_keys.get(message_id)
        assert kept is not None
        assert (len(kept[0]), kept[2]) == (32, row.ledger_index)


class TestInboxFolder:
    """A message gets an attachment folder only when it has attachments."""

    async def test_no_folder_without_attachments(
        self, hub: HubHarness, capsys: pytest.CaptureFixture[str]
    ) -> None:
        a = await hub.authority("XA-MOJ")
        b = await hub.authority("XB-MOJ")
        await b.start()
        message_id, _ = await a.send_request("XB-MOJ", "no attachments")
        await eventually(lambda: b.store.inbox_get(message_id) is not None, "delivery to B")
        row = b.store.inbox_get(message_id)
        assert row is not None
        assert row.attachment_dir == str(AgentPaths(b.root).inbox / message_id)
        assert not (AgentPaths(b.root).inbox / message_id).exists()

        capsys.readouterr()
        assert await cmd_inbox(argparse.Namespace(data=b.root, json=True)) == 0
        (shown,) = json.loads(capsys.readouterr().out)
        assert (shown["message_id"], shown["body"], shown["attachments"]) == (
            message_id,
            "no attachments",
            [],
        )


class TestKeysInMemory:
    """The agent's keys, held as prebuilt key objects, still never show their private bytes."""

    def test_repr_and_logs_stay_redacted(self) -> None:
        keys = AuthorityKeys.generate()
        f = decode(keys.to_bytes(), _KeyFile)  # the private bytes, as the key file holds them
        shown = repr(keys) + str(keys)
        shown += "".join(repr(getattr(keys, slot)) for slot in ("_signer", "_decrypter"))
        with capture_logs() as logs:
            structlog.get_logger().info("agent_started", keys=keys)
        shown += repr(logs)
        assert "redacted" in shown
        for part in (f.signing, f.encryption):
            assert part.hex()[:16] not in shown
            assert repr(part)[2:18] not in shown

    def test_prebuilt_keys_sign_like_loaded_ones(self) -> None:
        keys = AuthorityKeys.generate()
        again = AuthorityKeys.from_bytes(keys.to_bytes())
        assert again.key_id == keys.key_id
        assert keys.sign(b"m") == again.sign(b"m")  # Ed25519 is deterministic
