"""The node agent's local store (SQLite, WAL): outbox, inbox, receipts, attachment files.

The outbox is written *before* the first send and keeps the sealed bytes, so a message can be
re-sent with the same id until the hub answers: nothing a user submitted is lost, and the hub's
duplicate detection makes sure nothing is recorded twice. The inbox holds what this authority
received, decrypted and verified; inserting a message id a second time is refused (replay).

Durability. Commits are ``synchronous=FULL`` (they return once the WAL is fsynced): the agent
acks a delivery only after the commit keeping its inbox row and queued receipt returns, and an
acked delivery is gone from the hub's DELIVER stream, so that commit must survive a power cut.
WAL with ``NORMAL`` survives a process crash, not a power cut (the WAL waits in the OS cache
until a checkpoint); it would be safe only if no ack went out before a later sync, which is
FULL with extra steps. FULL costs one fsync per commit, so the agent keeps a whole fetched batch
in one :meth:`~AgentStore.transaction`. Only writes whose loss is harmless use ``durable=False``:
marking rows submitted (if lost, they are re-sent with the same ``Nats-Msg-Id`` and the hub
answers ``duplicate``); the next FULL commit syncs them too.

The agent commits on its event loop, not in a worker thread: a commit is one fsync of the WAL
(0.2 ms and ~100 us of CPU on the bench machine), while handing it to a thread and back cost
50-85 us of CPU (thread wake-up and GIL hand-over) per commit; the inbound batch waits for its
commit either way. Measured end to end at saturation: +5-8 % requests/s. The lock stays: it
keeps every use of the connection serial should a caller use another thread.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, fields
from datetime import datetime
from pathlib import Path
from typing import Any

__all__ = ["AgentStore", "InboxRow", "OutboxRow", "ReceiptRow"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    message_id   TEXT PRIMARY KEY,
    case_id      TEXT NOT NULL,
    item         TEXT NOT NULL,          -- envelope | receipt
    type         TEXT NOT NULL,
    recipients   TEXT NOT NULL,          -- comma-separated ids
    payload      BLOB NOT NULL,          -- the sealed submission, sent as is on every retry
    body_text    TEXT NOT NULL DEFAULT '',
    created_at   TEXT NOT NULL,
    status       TEXT NOT NULL,          -- queued | submitted | accepted | duplicate | rejected
    ledger_index INTEGER,
    recorded_at  TEXT,
    reason       TEXT,
    detail       TEXT,
    updated_at   TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS outbox_case ON outbox(case_id);
CREATE INDEX IF NOT EXISTS outbox_status ON outbox(status);
CREATE TABLE IF NOT EXISTS inbox (
    message_id      TEXT PRIMARY KEY,
    case_id         TEXT NOT NULL,
    type            TEXT NOT NULL,
    sender          TEXT NOT NULL,
    sent_at         TEXT NOT NULL,
    ledger_index    INTEGER NOT NULL,
    recorded_at     TEXT NOT NULL,
    envelope_digest BLOB NOT NULL,
    header          BLOB NOT NULL,
    body            BLOB NOT NULL,       -- the decrypted Body, canonical msgpack
    attachment_dir  TEXT NOT NULL,
    receipt_id      TEXT NOT NULL,
    received_at     TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS inbox_case ON inbox(case_id);
CREATE TABLE IF NOT EXISTS directory_cache (
    authority    TEXT NOT NULL,
    key_id       TEXT NOT NULL,
    current      INTEGER NOT NULL,       -- 1 for the authority's current card
    admitted     BLOB NOT NULL,          -- AdmittedCard as served, re-verified on every load
    PRIMARY KEY (authority, key_id)
);
-- node_agent.disclosure's table (same DDL): the agent writes the content keys it receives
-- here, in the transaction that keeps their inbox rows (see AgentStore.content_key_add).
CREATE TABLE IF NOT EXISTS content_keys (
    message_id  TEXT PRIMARY KEY,
    content_key BLOB NOT NULL,
    sealed      BLOB NOT NULL,     -- the sealed envelope, as sent or received
    ledger_index INTEGER
);
CREATE TABLE IF NOT EXISTS receipts (
    receipt_id   TEXT PRIMARY KEY,
    message_id   TEXT NOT NULL,
    recipient    TEXT NOT NULL,
    received_at  TEXT NOT NULL,
    ledger_index INTEGER NOT NULL,
    body         BLOB NOT NULL,
    signature    BLOB NOT NULL
);
"""


@dataclass(frozen=True, slots=True)
class OutboxRow:
    message_id: str
    case_id: str
    item: str
    type: str
    recipients: tuple[str, ...]
    payload: bytes
    body_text: str
    created_at: str
    status: str
    ledger_index: int | None
    recorded_at: str | None
    reason: str | None
    detail: str | None


@dataclass(frozen=True, slots=True)
class InboxRow:
    """A received message. ``attachment_dir`` is the folder of its decrypted attachments; it is
    created only when the message has attachments (a reader must accept a missing folder)."""

    message_id: str
    case_id: str
    type: str
    sender: str
    sent_at: str
    ledger_index: int
    recorded_at: str
    envelope_digest: bytes
    header: bytes
    body: bytes
    attachment_dir: str
    receipt_id: str
    received_at: str


_INBOX_COLUMNS = tuple(f.name for f in fields(InboxRow))  # the table's column order


@dataclass(frozen=True, slots=True)
class ReceiptRow:
    receipt_id: str
    message_id: str
    recipient: str
    received_at: str
    ledger_index: int


class AgentStore:
    """One SQLite database in the agent's data folder; safe for a CLI and ``run`` at once, and
    for several threads of one process at once (one lock)."""

    def __init__(self, path: Path) -> None:
        self._db = sqlite3.connect(
            path, timeout=30.0, isolation_level=None, check_same_thread=False
        )
        self._lock = threading.RLock()
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")  # see the module docstring
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def transaction(self, *, durable: bool = True) -> Iterator[None]:
        """One atomic commit for every write made inside (nested calls join the outer one,
        which alone decides durability; an exception rolls back everything).

        ``durable=False`` (only for writes whose loss is harmless; see the module docstring)
        commits without waiting for the disk; it is ignored inside a durable transaction.
        """
        with self._lock:
            if self._db.in_transaction:  # this thread's outer transaction (we hold the lock)
                yield
                return
            if not durable:
                self._db.execute("PRAGMA synchronous=NORMAL")
            try:
                self._db.execute("BEGIN IMMEDIATE")
                yield
                self._db.execute("COMMIT")
            except BaseException:
                if self._db.in_transaction:  # SQLite may have rolled back already
                    self._db.execute("ROLLBACK")
                raise
            finally:
                if not durable:
                    self._db.execute("PRAGMA synchronous=FULL")

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self.transaction():
            yield self._db

    def _rows(self, sql: str, args: tuple[object, ...] = ()) -> list[Any]:
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    # --- outbox ------------------------------------------------------------------------------

    def outbox_add(
        self,
        *,
        message_id: str,
        case_id: str,
        item: str,
        type: str,
        recipients: tuple[str, ...],
        payload: bytes,
        body_text: str,
        now: datetime,
    ) -> None:
        at, to = now.isoformat(), ",".join(recipients)
        with self._tx() as db:
            db.execute(
                "INSERT INTO outbox (message_id, case_id, item, type, recipients, payload,"
                " body_text, created_at, status, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'queued', ?)",
                (message_id, case_id, item, type, to, payload, body_text, at, at),
            )

    def outbox_mark_submitted(self, message_ids: Sequence[str], now: datetime) -> None:
        """The intake acked these publishes: durable at the hub, verdict pending.

        Not durable (one commit, no fsync): losing it only re-sends the same ids, which the hub
        answers as duplicates.
        """
        with self.transaction(durable=False):
            self._db.executemany(
                "UPDATE outbox SET status='submitted', updated_at=? "
                "WHERE message_id=? AND status='queued'",
                [(now.isoformat(), message_id) for message_id in message_ids],
            )

    def outbox_record_verdict(
        self,
        message_id: str,
        *,
        status: str,
        ledger_index: int | None,
        recorded_at: datetime | None,
        reason: str | None,
        detail: str | None,
        now: datetime,
    ) -> bool:
        """Store the hub's verdict; False if the message is not in this outbox."""
        recorded = recorded_at.isoformat() if recorded_at else None
        with self._tx() as db:
            cursor = db.execute(
                "UPDATE outbox SET status=?, ledger_index=?, recorded_at=?, reason=?, detail=?,"
                " updated_at=? WHERE message_id=?",
                (status, ledger_index, recorded, reason, detail, now.isoformat(), message_id),
            )
            return cursor.rowcount > 0

    def outbox_unsent(self) -> list[OutboxRow]:
        """Messages the intake has not acked yet, oldest first."""
        return self._outbox("WHERE status='queued' ORDER BY created_at")

    def outbox_get(self, message_id: str) -> OutboxRow | None:
        rows = self._outbox("WHERE message_id=?", (message_id,))
        return rows[0] if rows else None

    def outbox_all(self) -> list[OutboxRow]:
        return self._outbox("ORDER BY created_at")

    def outbox_of_case(self, case_id: str) -> list[OutboxRow]:
        return self._outbox("WHERE case_id=? AND item='envelope' ORDER BY created_at", (case_id,))

    def _outbox(self, where: str, args: tuple[object, ...] = ()) -> list[OutboxRow]:
        rows = self._rows(
            "SELECT message_id, case_id, item, type, recipients, payload, body_text, created_at,"
            f" status, ledger_index, recorded_at, reason, detail FROM outbox {where}",
            args,
        )
        return [OutboxRow(r[0], r[1], r[2], r[3], tuple(r[4].split(",")), *r[5:]) for r in rows]

    # --- inbox -------------------------------------------------------------------------------

    def inbox_add(self, row: InboxRow, receipt: bytes, now: datetime) -> bool:
        """Keep a received message and queue its signed ``receipt`` (to ``row.sender``, id
        ``row.receipt_id``) in one commit; False when the id was already received (a replay).

        On a replay the receipt is queued only if it is the stored row's and is missing, so a
        message never gets two receipts, nor none.
        """
        with self._tx() as db:
            cursor = db.execute(
                "INSERT OR IGNORE INTO inbox VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                tuple(getattr(row, name) for name in _INBOX_COLUMNS),
            )
            added = cursor.rowcount > 0
            mine = added or self._rows(
                "SELECT 1 FROM inbox WHERE message_id=? AND receipt_id=?",
                (row.message_id, row.receipt_id),
            )
            if mine and (added or self.outbox_get(row.receipt_id) is None):
                self.outbox_add(
                    message_id=row.receipt_id,
                    case_id=row.case_id,
                    item="receipt",
                    type="receipt",
                    recipients=(row.sender,),
                    payload=receipt,
                    body_text="",
                    now=now,
                )
            return added

    def content_key_add(
        self, message_id: str, content_key: bytes, sealed: bytes, ledger_index: int | None
    ) -> None:
        """Keep a received message's content key (for :mod:`node_agent.disclosure`, which reads
        the same table). Called inside the transaction that keeps the inbox row, so the key is
        durable with the row that needs it, for no extra fsync."""
        with self._tx() as db:
            db.execute(
                "INSERT OR IGNORE INTO content_keys VALUES (?, ?, ?, ?)",
                (message_id, content_key, sealed, ledger_index),
            )

    def inbox_get(self, message_id: str) -> InboxRow | None:
        rows = self._inbox("WHERE message_id=?", (message_id,))
        return rows[0] if rows else None

    def inbox_all(self) -> list[InboxRow]:
        return self._inbox("ORDER BY ledger_index")

    def case_ids(self) -> list[str]:
        """Every case this agent sent or received a message on, oldest first."""
        rows = self._rows(
            "SELECT case_id FROM ("
            " SELECT case_id, created_at AS at FROM outbox WHERE item='envelope'"
            " UNION ALL SELECT case_id, received_at AS at FROM inbox"
            ") GROUP BY case_id ORDER BY MIN(at)"
        )
        return [r[0] for r in rows]

    def inbox_of_case(self, case_id: str) -> list[InboxRow]:
        return self._inbox("WHERE case_id=? ORDER BY ledger_index", (case_id,))

    def _inbox(self, where: str, args: tuple[object, ...] = ()) -> list[InboxRow]:
        return [InboxRow(*r) for r in self._rows(f"SELECT * FROM inbox {where}", args)]

    # --- directory cache (to seal while the hub is unreachable) ------------------------------

    def cache_card(self, authority: str, key_id: str, admitted: bytes, *, current: bool) -> None:
        with self._tx() as db:
            if current:
                db.execute("UPDATE directory_cache SET current=0 WHERE authority=?", (authority,))
            db.execute(
                "INSERT OR REPLACE INTO directory_cache VALUES (?, ?, ?, ?)",
                (authority, key_id, int(current), admitted),
            )

    def cached_card(self, authority: str, key_id: str | None = None) -> bytes | None:
        which, args = (
            ("current=1", (authority,)) if key_id is None else ("key_id=?", (authority, key_id))
        )
        rows = self._rows(
            f"SELECT admitted FROM directory_cache WHERE authority=? AND {which}", args
        )
        return bytes(rows[0][0]) if rows else None

    # --- receipts for what we sent -----------------------------------------------------------

    def receipt_add(
        self,
        *,
        receipt_id: str,
        message_id: str,
        recipient: str,
        received_at: datetime,
        ledger_index: int,
        body: bytes,
        signature: bytes,
    ) -> bool:
        at = received_at.isoformat()
        with self._tx() as db:
            cursor = db.execute(
                "INSERT OR IGNORE INTO receipts VALUES (?, ?, ?, ?, ?, ?, ?)",
                (receipt_id, message_id, recipient, at, ledger_index, body, signature),
            )
            return cursor.rowcount > 0

    def receipts_for(self, message_id: str) -> list[ReceiptRow]:
        rows = self._rows(
            "SELECT receipt_id, message_id, recipient, received_at, ledger_index"
            " FROM receipts WHERE message_id=? ORDER BY ledger_index",
            (message_id,),
        )
        return [ReceiptRow(*r) for r in rows]
