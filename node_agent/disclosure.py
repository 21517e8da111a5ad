"""Keeping each message's content key, so that one message can be disclosed later.

The sender keeps the key it sealed with; the recipient keeps the key it unwrapped and the sealed
envelope it received. ``node-agent disclose`` hands both to a third party (an auditor, a court),
who proves them against the ledger with ``hub audit check-disclosure``; no other message's key
is revealed. The keys live in the agent's own database, beside the plaintext it already holds.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime
from pathlib import Path

from hub.errors import ValidationError
from node_agent.store import AgentStore
from schemas.codec import decode
from schemas.disclosure import Disclosure
from schemas.envelope import Envelope

__all__ = ["ContentKeys", "make_disclosure"]


class ContentKeys:
    """Reads content keys by message id (own connection). The agent writes them in the same
    commit as the outbox or inbox row they belong to (``AgentStore.content_key_add``), into
    the ``content_keys`` table its store creates."""

    def __init__(self, path: Path) -> None:
        AgentStore(path).close()  # the schema, if this database is new
        self._db = sqlite3.connect(path, timeout=30.0, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")

    def close(self) -> None:
        self._db.close()

    def get(self, message_id: str) -> tuple[bytes, bytes, int | None] | None:
        row = self._db.execute(
            "SELECT content_key, sealed, ledger_index FROM content_keys WHERE message_id=?",
            (message_id,),
        ).fetchone()
        return None if row is None else (bytes(row[0]), bytes(row[1]), row[2])


def make_disclosure(
    keys: ContentKeys,
    message_id: str,
    *,
    ledger_index: int | None,
    disclosed_by: str,
    now: datetime,
) -> Disclosure:
    """The disclosure of one message this agent sent or received (it must be recorded)."""
    kept = keys.get(message_id)
    if kept is None:
        raise ValidationError(
            f"--message: no content key kept for {message_id} (not sent or received here)",
            field="message",
        )
    content_key, sealed, index = kept
    index = index if index is not None else ledger_index
    if index is None:
        raise ValidationError(
            f"--message: {message_id} has no ledger index yet (wait for the hub's verdict)",
            field="message",
        )
    return Disclosure(
        message_id=message_id,
        ledger_index=index,
        envelope=decode(sealed, Envelope, what="sealed envelope"),
        content_key=content_key,
        disclosed_by=disclosed_by,
        disclosed_at=now,
    )
