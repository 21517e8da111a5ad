"""The witness's own state in the agent's database: the newest checkpoint it verified (from
which it checks consistency and cosigns) and its alarms, kept for good (``node-agent status``
shows them). See ``node_agent.witness`` for what is checked.
"""

from __future__ import annotations

import sqlite3
import threading
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from hub.ledger.transparency import SignedCheckpoint

__all__ = ["Alarm", "WitnessStore"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS witness_checkpoints (
    size  INTEGER PRIMARY KEY,
    root  BLOB NOT NULL,
    note  TEXT NOT NULL,
    seen  TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS witness_alarms (
    id     INTEGER PRIMARY KEY AUTOINCREMENT,
    at     TEXT NOT NULL,
    kind   TEXT NOT NULL,
    detail TEXT NOT NULL
);
"""


@dataclass(frozen=True, slots=True)
class Alarm:
    """One alarm as kept: when, what kind (an error code), and the detail."""

    at: str
    kind: str
    detail: str


class WitnessStore:
    """The newest verified checkpoint and the alarms, in the agent's own database."""

    def __init__(self, path: Path) -> None:
        # Used from the agent's event loop (a checkpoint kept is one commit, one fsync: cheaper
        # there than a thread hand-off); the lock keeps any other thread's use serial.
        self._db = sqlite3.connect(
            path, timeout=30.0, isolation_level=None, check_same_thread=False
        )
        self._lock = threading.RLock()
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(_SCHEMA)
        self._latest: tuple[int, bytes, str] | None = None
        self._read = False

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def latest(self) -> tuple[int, bytes, str] | None:
        """The newest checkpoint in the database (another process may have kept one)."""
        with self._lock:
            row = self._db.execute(
                "SELECT size, root, note FROM witness_checkpoints ORDER BY size DESC LIMIT 1"
            ).fetchone()
            self._latest = None if row is None else (int(row[0]), bytes(row[1]), str(row[2]))
            self._read = True
            return self._latest

    def latest_known(self) -> tuple[int, bytes, str] | None:
        """:meth:`latest` as last read or kept by this process: the per-item check needs no
        query (the witness reads the database again for every checkpoint it advances to)."""
        return self._latest if self._read else self.latest()

    def keep(self, checkpoint: SignedCheckpoint, now: datetime) -> None:
        with self._lock:
            self._db.execute(
                "INSERT OR IGNORE INTO witness_checkpoints VALUES (?, ?, ?, ?)",
                (checkpoint.size, checkpoint.root, checkpoint.note, now.isoformat()),
            )
            if self._latest is None or checkpoint.size > self._latest[0]:
                self.latest()  # what the database holds now, not what we asked it to hold

    def raise_alarm(self, kind: str, detail: str, now: datetime) -> None:
        with self._lock:
            self._db.execute(
                "INSERT INTO witness_alarms (at, kind, detail) VALUES (?, ?, ?)",
                (now.isoformat(), kind, detail),
            )

    def alarms(self) -> list[Alarm]:
        with self._lock:
            rows = self._db.execute("SELECT at, kind, detail FROM witness_alarms ORDER BY id")
            return [Alarm(*r) for r in rows.fetchall()]
