"""Admission rules: what the hub does with one submission. Pure: state, time and limits are in.

``admit`` runs a numbered checklist and returns a decision for the service to carry out:

1. size within limits (before any decoding)
2. decodes as a known submission (envelope, receipt, or an operator command: admission,
   revocation, access statement; those follow ``hub.gateway.operator_rules``); version accepted
3. the intake subject's sender is the one the submission names
4. parties admitted; sender time not in the future (beyond the allowed clock skew)
5. signature (sender key valid at signing time; for a rotated card, the rotation signature by
   the authority's current key)
6. not already recorded (same id and same digest: ``Duplicate``; same id, other bytes: reject);
   then, for a new submission: neither sender nor recipient revoked (``revoked``), and every
   wrapped key sealed to the recipient's current key (``stale_recipient_key``); each copied
   liaison officer (``observers``) accredited now, the sender's own, posted with a recipient,
   and sealed to the officer key of the consent (``not_a_recipient``, ``stale_recipient_key``)
7. consistent with what the ledger holds: the case lifecycle allows this action now
   (``hub.ledger.lifecycle.next_state``); a receipt's message exists and its signer was addressed

Every failure becomes a ``Reject`` holding the typed reason sent back to the sender and the
``SubmissionRejected`` event recorded in the ledger.
"""

from __future__ import annotations

from datetime import datetime

from hub.crypto import _primitives as p
from hub.crypto import receipts
from hub.crypto.envelope import record_of, verify_envelope
from hub.errors import (
    DigestMismatch,
    HubError,
    NotARecipient,
    Revoked,
    SenderMismatch,
    StaleRecipientKey,
    TooLarge,
    UnknownMessage,
    UnknownRecipient,
    ValidationError,
)
from hub.gateway.decisions import Accept, Decision, Duplicate, Item, Limits, Reject
from hub.gateway.operator_rules import admit_access, admit_card, admit_revocation
from hub.ledger.projections.state import HubState
from schemas.access import AccessRequest
from schemas.codec import decode
from schemas.common import UUID_RE
from schemas.directory import RevocationRequest
from schemas.envelope import Envelope, Header
from schemas.ledger import ReceiptRecorded, SubmissionRejected
from schemas.receipt import Receipt
from schemas.transport import Submission

__all__ = ["Accept", "Decision", "Duplicate", "Item", "Limits", "Reject", "admit"]


def admit(
    raw: bytes,
    *,
    intake_sender: str,
    state: HubState,
    limits: Limits,
    now: datetime,
    operator_key: bytes,
) -> Decision:
    """Decide what to do with the submission ``raw`` that arrived on ``intake_sender``'s subject."""
    message_id: str | None = None
    try:
        if len(raw) > limits.max_submission_bytes:  # (1)
            raise TooLarge(
                f"submission: {len(raw)} bytes exceeds the limit of "
                f"{limits.max_submission_bytes} bytes",
                field="submission",
            )
        submission: Submission = decode(raw, Submission, what="submission")  # (2)
        if isinstance(submission, Envelope):
            return _admit_envelope(submission, raw, intake_sender, state, limits, now)
        if isinstance(submission, Receipt):
            return _admit_receipt(submission, intake_sender, state)
        message_id = submission.request_id
        if isinstance(submission, RevocationRequest):
            return admit_revocation(submission, intake_sender, state, operator_key)
        if isinstance(submission, AccessRequest):
            return admit_access(
                submission, intake_sender, state, now, operator_key, limits.max_clock_skew
            )
        return admit_card(submission, intake_sender, state, now, operator_key)
    except HubError as error:
        return _reject(raw, intake_sender, message_id or _guess_id(raw), error, state)


def _admit_envelope(
    envelope: Envelope,
    raw: bytes,
    intake_sender: str,
    state: HubState,
    limits: Limits,
    now: datetime,
) -> Decision:
    verified = verify_envelope(envelope, _IntakeBoundResolver(state, intake_sender))  # (3)(5)
    header = verified.header
    if header.sent_at > now + limits.max_clock_skew:  # (4)
        raise ValidationError(
            f"sent_at: {header.sent_at.isoformat()} is in the future for this hub",
            field="sent_at",
        )
    for recipient in header.recipients:  # (4)
        if state.directory.get(recipient) is None:
            raise UnknownRecipient(
                f"recipients: {recipient} is not admitted to the directory", field="recipients"
            )
    known = state.messages.messages.get(header.message_id)  # (6)
    deliveries = tuple((r, envelope) for r in header.recipients)
    if known is not None:
        if known.envelope_digest != verified.envelope_digest:
            raise ValidationError(
                f"message_id: {header.message_id} is already recorded for a different envelope",
                field="message_id",
            )
        return Duplicate(
            header.message_id,
            intake_sender,
            known.ledger_index,
            deliveries,
            content_digest=verified.envelope_digest,
            content=raw,
        )
    _check_parties(envelope, header, state)  # (6) a new submission: no revoked party, no stale key
    key_ids = {w.recipient: w.key_id for w in envelope.wrapped_keys}
    state.access.check_observers(header, state.directory, at=now, key_ids=key_ids)  # (6)
    state.cases.check(header)  # (7) the lifecycle rules: same function as the node agent's
    return Accept(
        event=record_of(verified, envelope),
        dedup_id=header.message_id,
        message_id=header.message_id,
        reply_to=intake_sender,
        content_digest=verified.envelope_digest,
        content=raw,
        deliveries=deliveries,
        decoded=header,
    )


def _admit_receipt(receipt: Receipt, intake_sender: str, state: HubState) -> Decision:
    body = receipts.verify(receipt, _IntakeBoundResolver(state, intake_sender))  # (3)-(5)
    original = state.messages.messages.get(body.message_id)  # (7)
    if original is None:
        raise UnknownMessage(f"message_id: {body.message_id} is not in the ledger")
    if body.recipient not in original.recipients:
        raise NotARecipient(
            f"recipient: {body.recipient} was not addressed by message {body.message_id}"
        )
    if body.envelope_digest != original.envelope_digest or body.sender != original.sender:
        raise DigestMismatch("envelope_digest: the receipt is not for the envelope on record")
    deliveries = ((original.sender, receipt),)
    earlier = state.messages.receipt_index(body.message_id, body.recipient)  # (6)
    if earlier is not None:
        return Duplicate(body.receipt_id, intake_sender, earlier, deliveries)
    _check_not_revoked(state, body.recipient, "recipient")
    return Accept(
        event=ReceiptRecorded(body=receipt.body, signature=receipt.signature),
        dedup_id=f"receipt:{body.receipt_id}",
        message_id=body.receipt_id,
        reply_to=intake_sender,
        deliveries=deliveries,
        decoded=body,
    )


def _check_not_revoked(state: HubState, authority: str, field: str) -> None:
    revoked = state.directory.revocation(authority)
    if revoked is None:
        return
    submits = field != "recipients"
    raise Revoked(
        f"{field}: {authority} was revoked at ledger index {revoked.ledger_index} "
        f"({revoked.revoked_at.isoformat()}): {revoked.reason}; "
        + ("it can no longer submit" if submits else "nothing more can be sent to it"),
        field=field,
    )


def _check_parties(envelope: Envelope, header: Header, state: HubState) -> None:
    """A new envelope: sender and recipients not revoked, each key wrapped to the current one."""
    _check_not_revoked(state, header.sender, "sender")
    for recipient in header.recipients:
        _check_not_revoked(state, recipient, "recipients")
    for wrapped in envelope.wrapped_keys:
        record = state.directory.get(wrapped.recipient)  # None for a copied officer
        if record is not None and wrapped.key_id != record.card.keys.key_id:
            raise StaleRecipientKey(
                f"wrapped_keys: sealed to {wrapped.recipient}'s key {wrapped.key_id}, which is "
                f"no longer current (now {record.card.keys.key_id}, admitted at ledger index "
                f"{record.admitted.ledger_index}); fetch the directory and seal again",
                field="wrapped_keys",
            )


class _IntakeBoundResolver:
    """Resolves keys only for the authority that owns the intake subject (check 3)."""

    def __init__(self, state: HubState, intake_sender: str) -> None:
        self._state = state
        self._intake_sender = intake_sender

    def signing_key(self, authority: str, key_id: str, at: datetime) -> bytes:
        if authority != self._intake_sender:
            raise SenderMismatch(
                f"sender: the submission names {authority} but arrived on "
                f"{self._intake_sender}'s intake subject",
                field="sender",
            )
        return self._state.directory.signing_key(authority, key_id, at)


def _guess_id(raw: bytes) -> str | None:
    """Best effort: the id a rejected submission claims, so its sender can match the verdict."""
    try:
        submission = decode(raw, dict[str, object])
        header = submission.get("header")
        if submission.get("schema") == "mla.envelope.v1" and isinstance(header, bytes):
            submission = decode(header, dict[str, object])
    except HubError:
        return None
    for field in ("message_id", "request_id"):
        value = submission.get(field)
        if isinstance(value, str) and UUID_RE.fullmatch(value):
            return value
    return None


def _reject(
    raw: bytes, intake_sender: str, message_id: str | None, error: HubError, state: HubState
) -> Reject:
    digest = p.sha256(raw)
    return Reject(
        message_id=message_id,
        reply_to=intake_sender,
        error=error,
        event=SubmissionRejected(
            submission_digest=digest,
            claimed_sender=intake_sender[:64],
            message_id=message_id,
            reason=error.code,
            detail=str(error)[:500],
        ),
        dedup_id=f"rejected:{digest.hex()}",
        recorded_index=state.messages.rejections.get(digest),
    )
