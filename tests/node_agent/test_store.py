"""The agent store keeps an inbox row and its queued receipt in one commit (real SQLite)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from node_agent.disclosure import ContentKeys
from node_agent.inbound import write_files
from node_agent.store import AgentStore, InboxRow

NOW = datetime(2026, 5, 4, 12, 0, tzinfo=UTC)


class Crash(Exception):
    """Stands for the process dying at the point where it is raised."""


@pytest.fixture
def store(tmp_path: Path) -> Iterator[AgentStore]:
    made = AgentStore(tmp_path / "agent.db")
    try:
        yield made
    finally:
        made.close()


def make_row(message_id: str = "m-1", receipt_id: str = "r-1") -> InboxRow:
    return InboxRow(
        message_id=message_id,
        case_id="case-1",
        type="request.submit",
        sender="XA-MOJ",
        sent_at=NOW.isoformat(),
        ledger_index=7,
        recorded_at=NOW.isoformat(),
        envelope_digest=b"\x01" * 32,
        header=b"header",
        body=b"body",
        attachment_dir="/nowhere/m-1",
        receipt_id=receipt_id,
        received_at=NOW.isoformat(),
    )


def receipts_queued(store: AgentStore) -> list[str]:
    return [r.message_id for r in store.outbox_all() if r.item == "receipt"]


class TestInboxWithReceipt:
    """A received message and its receipt are kept together, once, or not at all."""

    def test_keeps_row_and_queues_receipt(self, store: AgentStore) -> None:
        assert store.inbox_add(make_row(), b"signed receipt", NOW) is True
        assert store.inbox_get("m-1") == make_row()
        queued = store.outbox_get("r-1")
        assert queued is not None
        assert (queued.item, queued.status, queued.recipients) == ("receipt", "queued", ("XA-MOJ",))
        assert queued.payload == b"signed receipt"

    def test_crash_between_row_and_receipt_keeps_neither(
        self, store: AgentStore, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        def crash(**_: object) -> None:
            raise Crash

        monkeypatch.setattr(store, "outbox_add", crash)  # dies after the inbox INSERT
        with pytest.raises(Crash):
            store.inbox_add(make_row(), b"signed receipt", NOW)
        monkeypatch.undo()
        assert store.inbox_all() == []
        assert store.outbox_all() == []
        # The redelivery keeps it now, exactly once.
        assert store.inbox_add(make_row(receipt_id="r-2"), b"signed receipt", NOW) is True
        assert [r.message_id for r in store.inbox_all()] == ["m-1"]
        assert receipts_queued(store) == ["r-2"]

    def test_replay_keeps_one_row_and_one_receipt(self, store: AgentStore) -> None:
        store.inbox_add(make_row(receipt_id="r-1"), b"first", NOW)
        assert store.inbox_add(make_row(receipt_id="r-2"), b"second", NOW) is False
        assert store.inbox_add(make_row(receipt_id="r-1"), b"first again", NOW) is False
        assert [r.message_id for r in store.inbox_all()] == ["m-1"]
        assert receipts_queued(store) == ["r-1"]
        assert store.outbox_get("r-1").payload == b"first"  # type: ignore[union-attr]

    def test_same_message_twice_in_one_batch(self, store: AgentStore) -> None:
        with store.transaction():
            assert store.inbox_add(make_row(receipt_id="r-1"), b"first", NOW) is True
            assert store.inbox_add(make_row(receipt_id="r-2"), b"second", NOW) is False
        assert receipts_queued(store) == ["r-1"]

    def test_row_kept_without_receipt_gets_it_on_replay(self, store: AgentStore) -> None:
        """A row an older agent kept before queueing its receipt (two commits) is repaired."""
        with store.transaction():
            store.inbox_add(make_row(), b"lost", NOW)
            store._db.execute("DELETE FROM outbox")
        assert receipts_queued(store) == []
        assert store.inbox_add(make_row(), b"re-signed", NOW) is False
        assert receipts_queued(store) == ["r-1"]

    def test_crash_in_a_batch_rolls_back_the_whole_batch(self, store: AgentStore) -> None:
        with pytest.raises(Crash), store.transaction():
            store.inbox_add(make_row("m-1", "r-1"), b"one", NOW)
            store.inbox_add(make_row("m-2", "r-2"), b"two", NOW)
            raise Crash
        assert store.inbox_all() == []
        assert store.outbox_all() == []


class TestDurability:
    """Acked work is fsynced; only the harmless 'submitted' mark skips the wait for the disk."""

    def synchronous(self, store: AgentStore) -> int:
        return int(store._rows("PRAGMA synchronous")[0][0])

    def test_full_sync_is_restored_after_marking_submitted(self, store: AgentStore) -> None:
        store.inbox_add(make_row(), b"receipt", NOW)
        assert self.synchronous(store) == 2  # FULL
        store.outbox_mark_submitted(["r-1"], NOW)
        assert store.outbox_get("r-1").status == "submitted"  # type: ignore[union-attr]
        assert self.synchronous(store) == 2

    def test_mark_submitted_never_overwrites_a_verdict(self, store: AgentStore) -> None:
        store.inbox_add(make_row(), b"receipt", NOW)
        store.outbox_record_verdict(
            "r-1",
            status="accepted",
            ledger_index=9,
            recorded_at=NOW,
            reason=None,
            detail=None,
            now=NOW,
        )
        store.outbox_mark_submitted(["r-1"], NOW)
        assert store.outbox_get("r-1").status == "accepted"  # type: ignore[union-attr]

    def test_usable_from_worker_threads(self, store: AgentStore) -> None:
        def keep(i: int) -> None:
            store.inbox_add(make_row(f"m-{i}", f"r-{i}"), b"receipt", NOW)

        threads = [threading.Thread(target=keep, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(store.inbox_all()) == 8
        assert len(receipts_queued(store)) == 8

    def test_attachment_files_are_written(self, tmp_path: Path) -> None:
        folder = tmp_path / "inbox" / "m-1"
        write_files(folder, [("00-a.pdf", b"%PDF"), ("01-b.txt", b"b")])
        assert sorted(p.name for p in folder.iterdir()) == ["00-a.pdf", "01-b.txt"]
        assert (folder / "00-a.pdf").read_bytes() == b"%PDF"


class TestContentKeys:
    """A received content key is written in the inbox row's commit, where disclosure reads it."""

    def test_kept_with_the_row_and_read_by_disclosure(self, tmp_path: Path) -> None:
        store = AgentStore(tmp_path / "agent.db")
        keys = ContentKeys(tmp_path / "agent.db")
        try:
            with store.transaction():
                store.content_key_add("m-1", b"k" * 32, b"sealed", 7)
                store.inbox_add(make_row(), b"signed receipt", NOW)
            assert keys.get("m-1") == (b"k" * 32, b"sealed", 7)
        finally:
            keys.close()
            store.close()

    def test_rolled_back_with_the_row(self, store: AgentStore) -> None:
        with pytest.raises(Crash), store.transaction():
            store.content_key_add("m-1", b"k" * 32, b"sealed", 7)
            store.inbox_add(make_row(), b"signed receipt", NOW)
            raise Crash
        assert store.inbox_get("m-1") is None
        assert store._rows("SELECT message_id FROM content_keys") == []
