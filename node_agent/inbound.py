"""What an agent's checked inbound batch leaves to write, and writing it in one durable commit.

``Agent.handle`` checks every item of a batch first (verify, decrypt, sign the receipt), then
:func:`keep` writes them all: attachment files (fsynced), then one commit for every row. On the
event loop, on purpose: a commit is one fsync, cheaper than a worker thread's hand-off (figures
in ``node_agent.store``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from node_agent.store import AgentStore, InboxRow
from schemas.receipt import Receipt, ReceiptBody
from schemas.transport import Delivery, Verdict

__all__ = ["Checked", "keep", "safe_name", "store_verdict", "write_files"]

_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True, slots=True)
class Checked:
    """One inbound item, checked: what it leaves to write, and its log line once kept."""

    event: str
    log: dict[str, object]
    verdicts: tuple[Verdict, ...] = ()
    message: tuple[InboxRow, bytes] | None = None  # the row and its signed receipt
    files: Sequence[tuple[str, bytes]] = ()  # its attachments (name, data)
    receipt: tuple[ReceiptBody, Receipt, Delivery] | None = None  # a receipt we got
    content_key: tuple[bytes, bytes] | None = None  # (key, sealed envelope) to keep


def keep(store: AgentStore, checked: Sequence[Checked], now: datetime) -> None:
    """Attachment files first (fsynced), then one durable commit for every row: each inbox row
    with its queued receipt and content key, receipts, verdicts."""
    for item in checked:
        if item.message is not None and item.files:
            write_files(Path(item.message[0].attachment_dir), item.files)
    with store.transaction():
        for item in checked:
            for verdict in item.verdicts:
                store_verdict(store, verdict, now)
            if item.message is not None:
                if item.content_key is not None:  # first, as it was: before the row
                    row = item.message[0]
                    store.content_key_add(row.message_id, *item.content_key, row.ledger_index)
                store.inbox_add(*item.message, now)
            if item.receipt is not None:
                body, receipt, delivery = item.receipt
                store.receipt_add(
                    receipt_id=body.receipt_id,
                    message_id=body.message_id,
                    recipient=body.recipient,
                    received_at=body.received_at,
                    ledger_index=delivery.ledger_index,
                    body=receipt.body,
                    signature=receipt.signature,
                )


def store_verdict(store: AgentStore, verdict: Verdict, now: datetime) -> None:
    """The hub's verdict on one of our submissions, on its outbox row."""
    if verdict.message_id is not None:
        store.outbox_record_verdict(
            verdict.message_id,
            status=verdict.status,
            ledger_index=verdict.ledger_index,
            recorded_at=verdict.recorded_at,
            reason=verdict.reason,
            detail=verdict.detail,
            now=now,
        )


def safe_name(name: str) -> str:
    """A file name that cannot climb out of its folder or hide."""
    cleaned = _SAFE_NAME.sub("_", name.rsplit("/", 1)[-1]).lstrip(".")
    return cleaned[:100] or "attachment"


def write_files(folder: Path, files: Iterable[tuple[str, bytes]]) -> None:
    """Write ``files`` (name, data) into ``folder`` and fsync them and the folder entries, so
    that they are on disk before the inbox row that names the folder is committed."""
    created = not folder.exists()
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in files:
        with (folder / name).open("wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    _fsync_dir(folder)
    if created:
        _fsync_dir(folder.parent)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
