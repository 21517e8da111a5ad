"""What an authority's node agent does: seal and queue outgoing messages, send the outbox,
and for each delivery decrypt, verify, keep and acknowledge with a signed receipt.

Order of work on a delivery (crash-safe): (1) verify and decrypt, (2) write attachments and the
inbox row (the row names the receipt id), (3) queue the signed receipt in the outbox, (4) ack the
delivery, (5) send. A redelivery after a crash finds the inbox row (a replay, not stored again)
and re-queues the receipt only if step (3) did not happen.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from hub import ids
from hub.clock import Clock
from hub.crypto import envelope as sealing
from hub.crypto import receipts
from hub.crypto.digest import sha256
from hub.crypto.keys import AuthorityKeys
from hub.errors import HubError, UnavailableError
from hub.logs import get_logger
from node_agent.cases import local_cases
from node_agent.directory import AgentDirectory
from node_agent.store import AgentStore, InboxRow
from node_agent.transport import HubLink, Inbound
from schemas.codec import decode, encode
from schemas.envelope import ActionMeta, AttachmentMeta, Body, CaseMeta, Header
from schemas.receipt import Receipt
from schemas.transport import Delivery, Verdict

__all__ = ["Agent", "Attachment", "Outgoing", "SendResult"]

_RESEND_EVERY_S = 2.0
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True, slots=True)
class Attachment:
    name: str
    data: bytes
    media_type: str = "application/octet-stream"
    role: str | None = None


@dataclass(frozen=True, slots=True)
class Outgoing:
    """A message a user asked to send."""

    to: str
    type: str
    case_id: str
    text: str
    attachments: Sequence[Attachment] = ()
    meta: CaseMeta | None = None
    in_reply_to: str | None = None
    fields: dict[str, str] | None = None
    action: ActionMeta | None = None


@dataclass(frozen=True, slots=True)
class SendResult:
    """Where a submission stands: queued (not yet at the hub), submitted (at the intake,
    verdict pending), or the hub's verdict."""

    status: str
    message_id: str
    case_id: str
    ledger_index: int | None = None
    reason: str | None = None
    detail: str | None = None


class Agent:
    """One authority's agent over its data folder."""

    def __init__(
        self,
        *,
        authority: str,
        keys: AuthorityKeys,
        store: AgentStore,
        inbox_dir: Path,
        clock: Clock,
    ) -> None:
        self.authority = authority
        self.keys = keys
        self.store = store
        self.inbox_dir = inbox_dir
        self.clock = clock
        self._log = get_logger("node_agent").bind(authority=authority)

    # --- outgoing ----------------------------------------------------------------------------

    async def queue(self, outgoing: Outgoing, directory: AgentDirectory) -> str:
        """Seal ``outgoing`` and write it to the outbox before any send; returns its id.

        Refuses (``InvalidTransition`` or ``ValidationError``, the same reason the hub would
        give) when the case lifecycle does not allow this action now.
        """
        recipient = await directory.recipient(outgoing.to)
        body = Body(
            text=outgoing.text,
            attachments=[
                AttachmentMeta(
                    name=a.name,
                    role=a.role,
                    media_type=a.media_type,
                    size=len(a.data),
                    sha256=sha256(a.data),
                )
                for a in outgoing.attachments
            ],
            fields=outgoing.fields or {},
        )
        message_id = ids.uuid7()
        now = self.clock.now()
        envelope = sealing.seal(
            sender=self.authority,
            sender_keys=self.keys,
            recipients=[recipient],
            message_id=message_id,
            case_id=outgoing.case_id,
            type=outgoing.type,
            body=body,
            attachments=[a.data for a in outgoing.attachments],
            now=now,
            in_reply_to=outgoing.in_reply_to,
            meta=outgoing.meta,
            action=outgoing.action,
        )
        header = decode(envelope.header, Header, what="header")
        linked = outgoing.action.after_consultation if outgoing.action else None
        local_cases(self.store, [outgoing.case_id, linked]).check(header)  # as the hub will
        self.store.outbox_add(
            message_id=message_id,
            case_id=outgoing.case_id,
            item="envelope",
            type=outgoing.type,
            recipients=(outgoing.to,),
            payload=encode(envelope),
            body_text=outgoing.text,
            now=now,
        )
        self._log.info("message_queued", message_id=message_id, case_id=outgoing.case_id)
        return message_id

    async def send(self, link: HubLink, message_id: str) -> bool:
        """Publish one outbox item to the intake; False (still queued) if the hub is away."""
        row = self.store.outbox_get(message_id)
        if row is None or row.status != "queued":
            return row is not None
        try:
            await link.publish(row.message_id, row.payload)
        except UnavailableError as e:
            self._log.warning("send_deferred", message_id=message_id, detail=str(e))
            return False
        self.store.outbox_mark_submitted(row.message_id, self.clock.now())
        return True

    async def flush(self, link: HubLink) -> int:
        """Send every queued item, oldest first; returns how many reached the intake."""
        sent = 0
        for row in self.store.outbox_unsent():
            if not await self.send(link, row.message_id):
                break
            sent += 1
        return sent

    async def submit(self, link: HubLink | None, message_id: str, wait: float) -> SendResult:
        """Send a queued message and wait up to ``wait`` seconds for the hub's verdict."""
        row = self.store.outbox_get(message_id)
        assert row is not None
        if link is None or not await self.send(link, message_id):
            return SendResult("queued", message_id, row.case_id)
        verdict = await link.wait_verdict(message_id, wait)
        if verdict is None:
            return SendResult("submitted", message_id, row.case_id)
        self._record_verdict(verdict)
        return SendResult(
            verdict.status,
            message_id,
            row.case_id,
            verdict.ledger_index,
            verdict.reason,
            verdict.detail,
        )

    def _record_verdict(self, verdict: Verdict) -> None:
        if verdict.message_id is None:
            return
        self.store.outbox_record_verdict(
            verdict.message_id,
            status=verdict.status,
            ledger_index=verdict.ledger_index,
            recorded_at=verdict.recorded_at,
            reason=verdict.reason,
            detail=verdict.detail,
            now=self.clock.now(),
        )

    # --- incoming ----------------------------------------------------------------------------

    async def handle(self, inbound: Inbound, link: HubLink, directory: AgentDirectory) -> None:
        """Process one inbound item and ack it; a bad item is logged and parked, never fatal."""
        try:
            if inbound.verdict is not None:
                self._record_verdict(inbound.verdict)
                self._log.info(
                    "verdict_received",
                    message_id=inbound.verdict.message_id,
                    status=inbound.verdict.status,
                    index=inbound.verdict.ledger_index,
                )
            elif inbound.delivery is not None:
                await self._handle_delivery(inbound.delivery, directory)
        except UnavailableError as e:
            self._log.warning("inbound_deferred", detail=str(e))
            await inbound.msg.nak(delay=1.0)
            return
        except HubError as e:
            self._log.error("inbound_refused", reason=e.code, detail=str(e))
            await inbound.msg.term()
            return
        await inbound.ack()
        await self.flush(link)

    async def _handle_delivery(self, delivery: Delivery, directory: AgentDirectory) -> None:
        item = delivery.item
        if isinstance(item, Receipt):
            await self._handle_receipt(item, delivery, directory)
            return
        header = decode(item.header, Header, what="header")
        existing = self.store.inbox_get(header.message_id)
        if existing is not None:  # (5) replay: already kept; make sure the receipt is queued
            self._queue_receipt(existing, header)
            return
        await directory.prefetch(header.sender, header.sender_key_id)
        opened = sealing.open(item, recipient=self.authority, keys=[self.keys], resolver=directory)
        attachment_dir = self._save_attachments(header.message_id, opened)
        row = InboxRow(
            message_id=header.message_id,
            case_id=header.case_id,
            type=header.type,
            sender=header.sender,
            sent_at=header.sent_at.isoformat(),
            ledger_index=delivery.ledger_index,
            recorded_at=delivery.recorded_at.isoformat(),
            envelope_digest=opened.verified.envelope_digest,
            header=item.header,
            body=encode(opened.body),
            attachment_dir=str(attachment_dir),
            receipt_id=ids.uuid7(),
            received_at=self.clock.now().isoformat(),
        )
        self.store.inbox_add(row)
        self._log.info(
            "message_received",
            message_id=header.message_id,
            case_id=header.case_id,
            sender=header.sender,
            index=delivery.ledger_index,
        )
        self._queue_receipt(row, header)

    def _save_attachments(self, message_id: str, opened: sealing.Opened) -> Path:
        folder = self.inbox_dir / message_id
        folder.mkdir(parents=True, exist_ok=True)
        for i, (meta, data) in enumerate(
            zip(opened.body.attachments, opened.attachments, strict=True)
        ):
            (folder / f"{i:02d}-{safe_name(meta.name)}").write_bytes(data)
        return folder

    def _queue_receipt(self, row: InboxRow, header: Header) -> None:
        if self.store.outbox_get(row.receipt_id) is not None:
            return
        receipt = receipts.issue(
            header=header,
            envelope_digest=row.envelope_digest,
            recipient=self.authority,
            keys=self.keys,
            ledger_index=row.ledger_index,
            receipt_id=row.receipt_id,
            now=self.clock.now(),
        )
        self.store.outbox_add(
            message_id=row.receipt_id,
            case_id=row.case_id,
            item="receipt",
            type="receipt",
            recipients=(header.sender,),
            payload=encode(receipt),
            body_text="",
            now=self.clock.now(),
        )

    async def _handle_receipt(
        self, receipt: Receipt, delivery: Delivery, directory: AgentDirectory
    ) -> None:
        peek = decode(receipt.body, dict[str, object], what="receipt")
        recipient, key_id = str(peek.get("recipient")), str(peek.get("recipient_key_id"))
        await directory.prefetch(recipient, key_id)
        body = receipts.verify(receipt, directory)
        self.store.receipt_add(
            receipt_id=body.receipt_id,
            message_id=body.message_id,
            recipient=body.recipient,
            received_at=body.received_at,
            ledger_index=delivery.ledger_index,
            body=receipt.body,
            signature=receipt.signature,
        )
        self._log.info("receipt_received", message_id=body.message_id, recipient=body.recipient)

    # --- the long-running loop ---------------------------------------------------------------

    async def run(self, link: HubLink, directory: AgentDirectory, stop: asyncio.Event) -> None:
        """Send the outbox and process inbound items until ``stop`` is set."""
        resender = asyncio.create_task(self._resend_loop(link, stop))
        try:
            async for inbound in link.inbound(stop):
                await self.handle(inbound, link, directory)
        finally:
            resender.cancel()
            await asyncio.gather(resender, return_exceptions=True)

    async def _resend_loop(self, link: HubLink, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await self.flush(link)
            try:
                await asyncio.wait_for(stop.wait(), _RESEND_EVERY_S)
            except TimeoutError:
                continue


def safe_name(name: str) -> str:
    """A file name that cannot climb out of its folder or hide."""
    cleaned = _SAFE_NAME.sub("_", name.rsplit("/", 1)[-1]).lstrip(".")
    return cleaned[:100] or "attachment"
