"""The node agent's local store (SQLite, WAL): outbox, inbox, receipts.

The outbox is written *before* the first send and keeps the sealed bytes, so a message can be
re-sent with the same id until the hub answers: nothing a user submitted is lost, and the hub's
duplicate detection makes sure nothing is recorded twice. The inbox holds what this authority
received, decrypted and verified; inserting a message id a second time is refused (replay).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

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


@dataclass(frozen=True, slots=True)
class ReceiptRow:
    receipt_id: str
    message_id: str
    recipient: str
    received_at: str
    ledger_index: int


class AgentStore:
    """One SQLite database in the agent's data folder; safe for a CLI and ``run`` at once."""

    def __init__(self, path: Path) -> None:
        self._db = sqlite3.connect(path, timeout=30.0, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        self._db.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

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
        with self._tx() as db:
            db.execute(
                "INSERT INTO outbox (message_id, case_id, item, type, recipients, payload,"
                " body_text, created_at, status, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'queued', ?)",
                (
                    message_id,
                    case_id,
                    item,
                    type,
                    ",".join(recipients),
                    payload,
                    body_text,
                    now.isoformat(),
                    now.isoformat(),
                ),
            )

    def outbox_mark_submitted(self, message_id: str, now: datetime) -> None:
        """The intake acked the publish: durable at the hub, verdict pending."""
        with self._tx() as db:
            db.execute(
                "UPDATE outbox SET status='submitted', updated_at=? "
                "WHERE message_id=? AND status='queued'",
                (now.isoformat(), message_id),
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
        cursor = self._db.execute(
            "SELECT message_id, case_id, item, type, recipients, payload, body_text, created_at,"
            f" status, ledger_index, recorded_at, reason, detail FROM outbox {where}",
            args,
        )
        return [
            OutboxRow(r[0], r[1], r[2], r[3], tuple(r[4].split(",")), *r[5:])
            for r in cursor.fetchall()
        ]

    # --- inbox -------------------------------------------------------------------------------

    def inbox_add(self, row: InboxRow) -> bool:
        """Insert a received message; False when its id was already received (a replay)."""
        with self._tx() as db:
            cursor = db.execute(
                "INSERT OR IGNORE INTO inbox VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    row.message_id,
                    row.case_id,
                    row.type,
                    row.sender,
                    row.sent_at,
                    row.ledger_index,
                    row.recorded_at,
                    row.envelope_digest,
                    row.header,
                    row.body,
                    row.attachment_dir,
                    row.receipt_id,
                    row.received_at,
                ),
            )
            return cursor.rowcount > 0

    def inbox_get(self, message_id: str) -> InboxRow | None:
        rows = self._inbox("WHERE message_id=?", (message_id,))
        return rows[0] if rows else None

    def inbox_all(self) -> list[InboxRow]:
        return self._inbox("ORDER BY ledger_index")

    def case_ids(self) -> list[str]:
        """Every case this agent sent or received a message on, oldest first."""
        rows = self._db.execute(
            "SELECT case_id FROM ("
            " SELECT case_id, created_at AS at FROM outbox WHERE item='envelope'"
            " UNION ALL SELECT case_id, received_at AS at FROM inbox"
            ") GROUP BY case_id ORDER BY MIN(at)"
        ).fetchall()
        return [r[0] for r in rows]

    def inbox_of_case(self, case_id: str) -> list[InboxRow]:
        return self._inbox("WHERE case_id=? ORDER BY ledger_index", (case_id,))

    def _inbox(self, where: str, args: tuple[object, ...] = ()) -> list[InboxRow]:
        cursor = self._db.execute(f"SELECT * FROM inbox {where}", args)
        return [InboxRow(*r) for r in cursor.fetchall()]

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
        if key_id is None:
            row = self._db.execute(
                "SELECT admitted FROM directory_cache WHERE authority=? AND current=1",
                (authority,),
            ).fetchone()
        else:
            row = self._db.execute(
                "SELECT admitted FROM directory_cache WHERE authority=? AND key_id=?",
                (authority, key_id),
            ).fetchone()
        return None if row is None else bytes(row[0])

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
        with self._tx() as db:
            cursor = db.execute(
                "INSERT OR IGNORE INTO receipts VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    receipt_id,
                    message_id,
                    recipient,
                    received_at.isoformat(),
                    ledger_index,
                    body,
                    signature,
                ),
            )
            return cursor.rowcount > 0

    def receipts_for(self, message_id: str) -> list[ReceiptRow]:
        cursor = self._db.execute(
            "SELECT receipt_id, message_id, recipient, received_at, ledger_index"
            " FROM receipts WHERE message_id=? ORDER BY ledger_index",
            (message_id,),
        )
        return [ReceiptRow(*r) for r in cursor.fetchall()]
