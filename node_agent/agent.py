"""What an authority's node agent does: seal and queue outgoing messages, send the outbox,
and for each delivery decrypt, verify, keep and acknowledge with a signed receipt.

Order of work on a batch of deliveries (crash-safe): (1) verify, decrypt and sign a receipt for
each; (2) write attachment files (fsynced); (3) ONE durable commit of every inbox row with its
receipt queued in the outbox; (4) ack the batch; (5) wake the sender. A crash before (3) leaves
nothing, and the deliveries come again; after (3), a redelivery finds the inbox row (a replay,
not kept again) with its receipt queued: no message is kept twice or left without a receipt.

One sender task per running agent publishes the outbox; ``send`` and ``flush`` share a lock, so
each queued row is published once per attempt. Store work runs on the event loop: a commit is
one fsync, cheaper than a hand-off to a worker thread (figures in ``node_agent.store``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Sequence
from pathlib import Path

from hub import ids
from hub.clock import Clock
from hub.crypto import envelope as sealing
from hub.crypto import receipts
from hub.crypto.keys import AuthorityKeys
from hub.errors import HubError, UnavailableError
from hub.logs import get_logger
from node_agent.cases import local_cases
from node_agent.directory import AgentDirectory
from node_agent.disclosure import ContentKeys
from node_agent.inbound import Checked, keep, safe_name, store_verdict
from node_agent.outgoing import Attachment, Outgoing, SendResult, body_of
from node_agent.store import AgentStore, InboxRow, OutboxRow
from node_agent.transport import HubLink, Inbound
from node_agent.witness import Witness, witness_delivery, witness_verdict, witness_verdicts
from schemas.codec import decode, encode
from schemas.envelope import Header
from schemas.receipt import Receipt
from schemas.transport import Delivery

__all__ = ["Agent", "Attachment", "Outgoing", "SendResult"]  # the last three: node_agent.outgoing


_RESEND_EVERY_S = 2.0


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
        previous_keys: Sequence[AuthorityKeys] = (),
        witness: Witness | None = None,
        content_keys: ContentKeys | None = None,
    ) -> None:
        self.authority = authority
        self.keys = keys
        self.previous_keys = tuple(previous_keys)  # to open what was sealed before a rotation
        self.witness = witness  # checks the hub's proofs and cosigns its checkpoints
        self.content_keys = content_keys  # kept per message, to disclose one later
        self.store = store
        self.inbox_dir = inbox_dir
        self.clock = clock
        self._log = get_logger("node_agent").bind(authority=authority)
        self._sending = asyncio.Lock()  # one publisher of the outbox at a time
        self._wake = asyncio.Event()  # something was queued: the sender should flush

    # --- outgoing ----------------------------------------------------------------------------

    async def queue(self, outgoing: Outgoing, directory: AgentDirectory) -> str:
        """Seal ``outgoing`` and write it to the outbox before any send; returns its id.

        Refuses (``InvalidTransition`` or ``ValidationError``, the same reason the hub would
        give) when the case lifecycle does not allow this action now.
        """
        recipient = await directory.recipient(outgoing.to)
        body = body_of(outgoing)
        message_id = ids.uuid7()
        now = self.clock.now()
        observers = (
            await directory.liaison_copies(self.authority, outgoing.to, now)
            if outgoing.copy_liaisons
            else []
        )
        content_key = sealing.new_content_key()
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
            content_key=content_key,
            observers=observers,
        )
        header = decode(envelope.header, Header, what="header")
        linked = outgoing.action.after_consultation if outgoing.action else None
        local_cases(self.store, [outgoing.case_id, linked]).check(header)  # as the hub will
        payload = encode(envelope)
        with self.store.transaction():  # the key (to disclose later) and the row: one commit
            if self.content_keys is not None:
                self.store.content_key_add(message_id, content_key, payload, None)
            self.store.outbox_add(
                message_id=message_id,
                case_id=outgoing.case_id,
                item="envelope",
                type=outgoing.type,
                recipients=(outgoing.to,),
                payload=payload,
                body_text=outgoing.text,
                now=now,
            )
        self._log.info("message_queued", message_id=message_id, case_id=outgoing.case_id)
        return message_id

    async def send(self, link: HubLink, message_id: str) -> bool:
        """Publish one outbox item to the intake; False (still queued) if the hub is away."""
        async with self._sending:
            row = self.store.outbox_get(message_id)
            if row is None or row.status != "queued":
                return row is not None
            return await self._publish([row], link) == 1

    async def flush(self, link: HubLink) -> int:
        """Send every queued item, oldest first; returns how many reached the intake.

        One flush at a time per agent (a lock): each queued row is published once per attempt,
        however many callers want the outbox sent.
        """
        return (await self._flush(link))[0]

    async def _flush(self, link: HubLink) -> tuple[int, bool]:
        """How many were sent, and whether that was all of them."""
        async with self._sending:
            rows = self.store.outbox_unsent()
            sent = await self._publish(rows, link)
            return sent, sent == len(rows)

    async def _publish(self, rows: Sequence[OutboxRow], link: HubLink) -> int:
        """Publish ``rows`` in order until the hub is away, then mark the sent ones submitted
        in one (non-durable) commit; the caller holds ``self._sending``."""
        sent: list[str] = []
        try:
            if len(rows) == 1:
                try:
                    await link.publish(rows[0].message_id, rows[0].payload)
                    sent.append(rows[0].message_id)
                except UnavailableError as e:
                    self._log.warning("send_deferred", message_id=rows[0].message_id, detail=str(e))
            elif rows:  # all in flight at once, in order: one wait, not one per row
                acked = await link.publish_all([(row.message_id, row.payload) for row in rows])
                sent = [row.message_id for row in rows[:acked]]
                if acked < len(rows):
                    self._log.warning(
                        "send_deferred",
                        message_id=rows[acked].message_id,
                        detail="hub intake: not acknowledged",
                    )
        finally:
            if sent:  # also when cancelled: what the intake acked is not sent again
                self.store.outbox_mark_submitted(sent, self.clock.now())
        return len(sent)

    async def submit(self, link: HubLink | None, message_id: str, wait: float) -> SendResult:
        """Send a queued message and wait up to ``wait`` seconds for the hub's verdict."""
        row = self.store.outbox_get(message_id)
        assert row is not None
        if link is None:
            return SendResult("queued", message_id, row.case_id)
        async with link.watch_verdicts() as verdicts:  # open before it is sent: none is missed
            if not await self.send(link, message_id):
                return SendResult("queued", message_id, row.case_id)
            verdict = await verdicts.wait(message_id, wait)
        if verdict is None:
            return SendResult("submitted", message_id, row.case_id)
        if self.witness is not None:
            await witness_verdict(self.witness, verdict, row.payload)
        store_verdict(self.store, verdict, self.clock.now())
        return SendResult(
            verdict.status,
            message_id,
            row.case_id,
            verdict.ledger_index,
            verdict.reason,
            verdict.detail,
        )

    # --- incoming ----------------------------------------------------------------------------

    async def handle(self, batch: Sequence[Inbound], directory: AgentDirectory) -> None:
        """Process a batch of inbound items: check each, keep them all in one durable commit,
        then ack them and log them in one ``inbound_kept`` line (a list of items per kind:
        ``message_received``, ``message_replayed``, ``receipt_received``, ``verdict_received``);
        a bad item is logged and parked, never fatal. Nothing is acked before the commit that
        keeps it has returned (see ``node_agent.store``)."""
        checked: list[Checked] = []
        to_ack: list[Inbound] = []
        for inbound in batch:
            try:
                items = await self._check(inbound, directory)
            except UnavailableError as e:  # all of the message comes back (kept ones: replays)
                self._log.warning("inbound_deferred", detail=str(e))
                await inbound.msg.nak(delay=1.0)
                continue
            except HubError as e:
                self._log.error("inbound_refused", reason=e.code, detail=str(e))
                await inbound.msg.term()
                continue
            checked.extend(items)
            to_ack.append(inbound)
        if checked:
            keep(self.store, checked, self.clock.now())
        for inbound in to_ack:
            await inbound.ack()
        kept: dict[str, list[dict[str, object]]] = {}
        for item in checked:
            kept.setdefault(item.event, []).append(item.log)
        if kept:  # one line per batch, a list per kind: a line per item cost 6% of the agent
            self._log.info("inbound_kept", **kept)
        if any(item.message for item in checked):
            self._wake.set()

    async def _check(self, inbound: Inbound, directory: AgentDirectory) -> list[Checked]:
        """Everything but the writes, for each item of the message. One of several
        deliveries that is refused is logged and left out (the others are kept, and the
        message acked, as a refused single delivery is parked); an unavailable one sends the
        whole message back."""
        if inbound.verdicts:
            if self.witness is not None:
                await witness_verdicts(self.witness, inbound.verdicts, self.store)
            log: dict[str, object] = {
                "verdicts": [
                    {"message_id": v.message_id, "status": v.status, "index": v.ledger_index}
                    for v in inbound.verdicts
                ]
            }
            return [Checked("verdict_received", log, verdicts=inbound.verdicts)]
        if len(inbound.deliveries) == 1:
            return [await self._check_delivery(inbound.deliveries[0], directory)]
        checked = []
        for delivery in inbound.deliveries:
            try:
                checked.append(await self._check_delivery(delivery, directory))
            except UnavailableError:
                raise
            except HubError as e:
                self._log.error(
                    "inbound_refused", reason=e.code, detail=str(e), index=delivery.ledger_index
                )
        return checked

    async def _check_delivery(self, delivery: Delivery, directory: AgentDirectory) -> Checked:
        """Decode, verify, decrypt, sign the receipt."""
        if self.witness is not None:
            await witness_delivery(self.witness, delivery)
        item = delivery.item
        if isinstance(item, Receipt):
            peek = decode(item.body, dict[str, object], what="receipt")
            await directory.prefetch(str(peek.get("recipient")), str(peek.get("recipient_key_id")))
            body = receipts.verify(item, directory)
            log: dict[str, object] = {"message_id": body.message_id, "recipient": body.recipient}
            return Checked("receipt_received", log, receipt=(body, item, delivery))
        header = decode(item.header, Header, what="header")
        log = {"message_id": header.message_id, "index": delivery.ledger_index}
        existing = self.store.inbox_get(header.message_id)
        if existing is not None:  # (5) replay: already kept; make sure the receipt is queued
            message = (existing, self._receipt(existing, header))
            return Checked("message_replayed", log, message=message)
        await directory.prefetch(header.sender, header.sender_key_id)
        opened = sealing.open(
            item,
            recipient=self.authority,
            keys=[self.keys, *self.previous_keys],
            resolver=directory,
        )
        # The content key is written with the inbox row (one durable commit in ``_keep``), not
        # here: a commit of its own cost one fsync per message on the event loop.
        content_key = (opened.content_key, encode(item)) if self.content_keys is not None else None
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
            attachment_dir=os.path.join(self.inbox_dir, header.message_id),  # made only if needed
            receipt_id=ids.uuid7(),
            received_at=self.clock.now().isoformat(),
        )
        named = zip(opened.body.attachments, opened.attachments, strict=True)
        files = [(f"{i:02d}-{safe_name(m.name)}", data) for i, (m, data) in enumerate(named)]
        log |= {"case_id": header.case_id, "sender": header.sender}
        message = (row, self._receipt(row, header))
        return Checked(
            "message_received",
            log,
            message=message,
            files=files,
            content_key=content_key,
        )

    def _receipt(self, row: InboxRow, header: Header) -> bytes:
        """The signed receipt for ``row`` (its id is the row's ``receipt_id``)."""
        receipt = receipts.issue(
            header=header,
            envelope_digest=row.envelope_digest,
            recipient=self.authority,
            keys=self.keys,
            ledger_index=row.ledger_index,
            receipt_id=row.receipt_id,
            now=self.clock.now(),
        )
        return encode(receipt)

    # --- the long-running loop ---------------------------------------------------------------

    async def run(self, link: HubLink, directory: AgentDirectory, stop: asyncio.Event) -> None:
        """Process inbound items and send the outbox until ``stop`` is set."""
        sender = asyncio.create_task(self._send_loop(link))
        try:
            async for batch in link.inbound(stop):
                if sender.done():  # it failed: fail the agent with its error, as a send would
                    sender.result()
                await self.handle(batch, directory)
        finally:
            sender.cancel()
            await asyncio.gather(sender, return_exceptions=True)
            if self.witness is not None:
                await self.witness.stop()

    async def _send_loop(self, link: HubLink) -> None:
        """The one sender of a running agent: flush when something was queued (``_wake``), and
        every few seconds for what the hub could not take; back off after a failed send."""
        while True:
            self._wake.clear()
            _, complete = await self._flush(link)
            if not complete:
                await asyncio.sleep(_RESEND_EVERY_S)  # the hub is away: do not spin
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), _RESEND_EVERY_S)
