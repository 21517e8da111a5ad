"""What a user asks the node agent to send, and where a submission stands (``node_agent.agent``
seals and queues it)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from hub.crypto.digest import sha256
from schemas.envelope import ActionMeta, AttachmentMeta, Body, CaseMeta

__all__ = ["Attachment", "Outgoing", "SendResult", "body_of"]


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
    copy_liaisons: bool = True  # seal to our liaison officers posted with ``to`` as well


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


def body_of(outgoing: Outgoing) -> Body:
    """The body to seal: the text, each attachment described (name, role, size, SHA-256), and
    the named fields."""
    return Body(
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
