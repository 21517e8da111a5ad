"""Steps 3-7 of the replay's per-entry checklist (see :mod:`hub.audit.replay`), by event type.

Key lifecycle (DESIGN.md section 4): an admission with new keys must follow the hub's rotation
rules (``Directory.check_card``) and carry a rotation signature by the key it replaces (a
``rotation_signature`` job); a revocation is the pinned operator's (``revocation_signature``);
signatures are resolved against the key valid when made (``Directory.signing_key``: expired,
replaced and revoked keys end there); nothing is recorded by or to an authority after its
revocation (``revoked_party``). Access statements (liaison accreditations, auditors,
revocations) are the pinned operator's (``access_signature``) and follow the hub's access rules
at their recorded time, the home authority's consent included (``accreditation``); a message
copies only the sender's own accredited officers (``observers``). The hub's
``stale_recipient_key`` rule cannot be replayed: the ledger keeps only the digest of the wrapped
keys.

Pure (STYLE rule 1). Each function reads the projections folded *before* the entry (the
directory with its key history, the message index, the cases), appends the entry's signature
job to ``jobs`` as soon as its key is resolved, so the job survives a later step failing, and
raises :class:`EntryDiverged` at the first failed step. The rules are the hub's own admission
rules (``hub/gateway/admission.py`` steps 4-7) replayed from the ledger alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from hub.audit.jobs import JobCheck, SignatureJob
from hub.audit.outcome import Divergence
from hub.crypto import receipts
from hub.crypto.access import open_statement
from hub.crypto.cards import open_card
from hub.crypto.envelope import recorded_signed_message
from hub.errors import HubError, InvalidTransition, Revoked
from hub.gateway.decisions import Limits
from hub.ledger.lifecycle import allowed_types
from hub.ledger.projections.state import HubState
from schemas.codec import decode
from schemas.envelope import Header
from schemas.ledger import (
    AccessRecorded,
    AuthorityAdmitted,
    AuthorityRevoked,
    EnvelopeRecorded,
    LedgerEvent,
    ReceiptRecorded,
)
from schemas.receipt import ReceiptBody

__all__ = ["Counts", "EntryDiverged", "check_event", "diverged"]


class EntryDiverged(Exception):
    """Carries the divergence found at one entry (internal control flow of the replay)."""

    def __init__(self, divergence: Divergence) -> None:
        super().__init__(divergence.message)
        self.divergence = divergence


def diverged(index: int, check: str, expected: str, found: str, message: str) -> EntryDiverged:
    """The exception for a failed ``check`` at entry ``index``."""
    return EntryDiverged(
        Divergence(
            index=index,
            checkpoint=None,
            check=check,
            expected=expected,
            found=found,
            message=f"entry {index}: {message}",
        )
    )


def _error(e: HubError) -> str:
    return f"{e.code}: {e}"


@dataclass(slots=True)
class Counts:
    """What the replay has checked so far, for the report."""

    signatures: int = 0
    envelopes: int = 0
    receipts: int = 0
    admissions: int = 0
    rejections: int = 0
    rotations: int = 0
    revocations: int = 0
    accreditations: int = 0


@dataclass(slots=True)
class _Context:
    state: HubState
    index: int
    data: bytes
    jobs: list[SignatureJob]
    counts: Counts
    recorded_at: datetime

    def job(
        self,
        check: JobCheck,
        key: bytes,
        signer: str,
        key_id: str = "",
        *,
        signed: tuple[bytes, bytes] | None = None,
    ) -> None:
        """Queue a signature check; ``signed`` = (message, signature) when already derived."""
        message, signature = signed or (b"", b"")
        self.jobs.append(
            SignatureJob(
                index=self.index,
                check=check,
                entry=b"" if signed else self.data,
                key=key,
                signer=signer,
                key_id=key_id,
                message=message,
                signature=signature,
            )
        )
        self.counts.signatures += 1

    def fail(self, check: str, expected: str, found: str, message: str) -> EntryDiverged:
        return diverged(self.index, check, expected, found, message)

    def signing_key(self, check: str, authority: str, key_id: str, at: datetime) -> bytes:
        try:
            return self.state.directory.signing_key(authority, key_id, at)
        except HubError as e:
            raise self.fail(
                check,
                f"a key {key_id} of {authority} valid at {at.isoformat()}",
                _error(e),
                "no such key was valid when it signed",
            ) from e


def check_event(
    state: HubState,
    operator_keys: frozenset[bytes],
    index: int,
    event: LedgerEvent,
    data: bytes,
    jobs: list[SignatureJob],
    counts: Counts,
    *,
    recorded_at: datetime,
) -> Header | ReceiptBody | None:
    """Run steps 3-7 on ``event`` (entry ``index``, exact bytes ``data``, recorded by the hub
    at ``recorded_at``) before it is folded; returns the header or receipt body it decoded,
    for the fold (``HubState.apply``) to reuse."""
    ctx = _Context(state, index, data, jobs, counts, recorded_at)
    if isinstance(event, AuthorityAdmitted):
        _admission(ctx, event, operator_keys)
    elif isinstance(event, AuthorityRevoked):
        _revocation(ctx, event, operator_keys)
    elif isinstance(event, AccessRecorded):
        _access(ctx, event, operator_keys)
    elif isinstance(event, EnvelopeRecorded):
        return _envelope(ctx, event)
    elif isinstance(event, ReceiptRecorded):
        return _receipt(ctx, event)
    else:  # SubmissionRejected: the hub's own statement, nothing signed to check
        counts.rejections += 1
    return None


def _pinned(ctx: _Context, key: bytes, operator_keys: frozenset[bytes], what: str) -> None:
    if key not in operator_keys:
        pinned = ", ".join(sorted(k.hex() for k in operator_keys))
        raise ctx.fail("operator_key", pinned, key.hex(), f"{what} by another key")


def _admission(ctx: _Context, event: AuthorityAdmitted, operator_keys: frozenset[bytes]) -> None:
    _pinned(ctx, event.operator_key, operator_keys, "admitted")  # (3)
    ctx.job("operator_signature", event.operator_key, "operator")  # (4)
    try:
        card = open_card(event.signed)  # (5)
    except HubError as e:
        raise ctx.fail(
            "authority_card", "a card self-signed by its key", _error(e), "bad card"
        ) from e
    if card.id != event.authority:
        raise ctx.fail("authority_card", event.authority, card.id, "the card is another's")
    if card.valid_until is not None and card.valid_until <= ctx.recorded_at:  # (5) as the hub
        raise ctx.fail(
            "card_expired",
            f"a card valid when recorded ({ctx.recorded_at.isoformat()})",
            f"valid until {card.valid_until.isoformat()}",
            "an expired card was admitted",
        )
    directory = ctx.state.directory
    try:
        previous = directory.check_card(card, event.signed)  # (5) the hub's rotation rules
    except HubError as e:
        raise ctx.fail(
            "revoked_party" if isinstance(e, Revoked) else "rotation",
            "a first admission, a card with the same keys, or new keys with a rotation",
            _error(e),
            "the card may not be admitted",
        ) from e
    if previous is not None:  # (4) new keys: signed by the key they replace
        current = directory.get(card.id)
        old_key_id = current.card.keys.key_id if current is not None else ""
        ctx.job("rotation_signature", previous, card.id, old_key_id)
        ctx.counts.rotations += 1
    ctx.counts.admissions += 1


def _revocation(ctx: _Context, event: AuthorityRevoked, operator_keys: frozenset[bytes]) -> None:
    _pinned(ctx, event.operator_key, operator_keys, "revoked")  # (3)
    ctx.job("revocation_signature", event.operator_key, "operator")  # (4)
    directory = ctx.state.directory
    if directory.get(event.authority) is None:  # (5)
        raise ctx.fail(
            "revocation", "an admitted authority", event.authority, "revokes an unknown authority"
        )
    earlier = directory.revocation(event.authority)
    if earlier is not None:
        raise ctx.fail(
            "revocation",
            "one revocation per authority",
            f"a second one (the first is at {earlier.ledger_index})",
            f"{event.authority} revoked twice",
        )
    ctx.counts.revocations += 1


def _access(ctx: _Context, event: AccessRecorded, operator_keys: frozenset[bytes]) -> None:
    """A liaison accreditation, an auditor admission or a revocation: the hub's own rules
    (``Accreditations.check``) replayed at the entry's recorded time."""
    _pinned(ctx, event.operator_key, operator_keys, "access statement")  # (3)
    ctx.job("access_signature", event.operator_key, "operator")  # (4)
    try:
        statement = open_statement(event.statement)  # (5)
    except HubError as e:
        raise ctx.fail(
            "access_statement", "an operator access statement", _error(e), "does not decode"
        ) from e
    state = ctx.state
    try:  # (6) the consent's signature by the home authority's key of the time is checked here
        earlier = state.access.check(
            statement,
            event.statement,
            state.directory,
            at=ctx.recorded_at,
            max_skew=Limits().max_clock_skew,
        )
    except HubError as e:
        raise ctx.fail(
            "accreditation",
            "a statement the hub's access rules accept",
            _error(e),
            "the access statement may not be recorded",
        ) from e
    if earlier is not None:
        raise ctx.fail(
            "accreditation",
            "each access statement recorded once",
            f"the same statement again (first at {earlier})",
            "access statement recorded twice",
        )
    ctx.counts.accreditations += 1


def _not_revoked(ctx: _Context, authority: str, role: str) -> None:
    """(6) The hub refuses every new submission by, or addressed to, a revoked authority."""
    revoked = ctx.state.directory.revocation(authority)
    if revoked is not None:
        raise ctx.fail(
            "revoked_party",
            f"a {role} not revoked",
            f"{authority}, revoked at {revoked.ledger_index}",
            f"a {role} revoked before this entry",
        )


def _envelope(ctx: _Context, event: EnvelopeRecorded) -> Header:
    try:
        header = decode(event.header, Header, what="header")
    except HubError as e:
        raise ctx.fail(
            "sender_signature", "a signed envelope header", _error(e), "header does not decode"
        ) from e
    sender, key_id = header.sender, header.sender_key_id
    key = ctx.signing_key("sender_key", sender, key_id, header.sent_at)  # (3)
    try:
        message = recorded_signed_message(event)
    except HubError as e:
        raise ctx.fail(
            "sender_signature",
            f"a valid signature by {sender} key {key_id}",
            _error(e),
            "the sender signature does not verify",
        ) from e
    ctx.job("sender_signature", key, sender, key_id, signed=(message, event.signature))  # (4)
    state = ctx.state
    for recipient in header.recipients:  # (6)
        if state.directory.get(recipient) is None:
            raise ctx.fail(
                "unknown_recipient", "an admitted authority", recipient, "unknown recipient"
            )
    earlier = state.messages.messages.get(header.message_id)
    if earlier is not None:
        raise ctx.fail(
            "duplicate_message",
            "a message id not yet recorded",
            f"{header.message_id} recorded at {earlier.ledger_index}",
            "the message is recorded twice",
        )
    _not_revoked(ctx, sender, "sender")
    for recipient in header.recipients:
        _not_revoked(ctx, recipient, "recipient")
    try:  # (6) copied liaison officers (the key ids are not in the ledger, as for recipients)
        state.access.check_observers(header, state.directory, at=ctx.recorded_at, key_ids=None)
    except HubError as e:
        raise ctx.fail(
            "observers",
            "only the sender's own accredited officers, posted with a recipient",
            _error(e),
            "copies a liaison officer the hub should have refused",
        ) from e
    try:
        state.cases.check(header)  # (7)
    except HubError as e:
        raise _lifecycle(ctx, header, e) from e
    ctx.counts.envelopes += 1
    return header


def _receipt(ctx: _Context, event: ReceiptRecorded) -> ReceiptBody:
    try:
        body = decode(event.body, ReceiptBody, what="receipt")
    except HubError as e:
        raise ctx.fail(
            "receipt_signature", "a signed receipt body", _error(e), "receipt does not decode"
        ) from e
    key_id = body.recipient_key_id
    key = ctx.signing_key("receipt_key", body.recipient, key_id, body.received_at)  # (3)
    signed = (receipts.signed_message(event.body), event.signature)
    ctx.job("receipt_signature", key, body.recipient, key_id, signed=signed)  # (4)
    messages = ctx.state.messages
    original = messages.messages.get(body.message_id)  # (6)
    if original is None:
        raise ctx.fail(
            "receipt_reference",
            "a message recorded earlier",
            body.message_id,
            "a receipt for a message not in the ledger",
        )
    fields = (
        ("recipient", " or ".join(original.recipients), body.recipient),
        ("envelope_digest", original.envelope_digest.hex(), body.envelope_digest.hex()),
        ("sender", original.sender, body.sender),
        ("case_id", original.case_id, body.case_id),
    )
    for name, expected, found in fields:
        ok = found in original.recipients if name == "recipient" else found == expected
        if not ok:
            raise ctx.fail(
                "receipt_reference",
                expected,
                found,
                f"receipt {name} does not match message {body.message_id}",
            )
    earlier = messages.receipt_index(body.message_id, body.recipient)
    if earlier is not None:
        raise ctx.fail(
            "receipt_reference",
            "one receipt per recipient",
            f"a second receipt (the first is at {earlier})",
            "receipt recorded twice",
        )
    _not_revoked(ctx, body.recipient, "receipt signer")
    ctx.counts.receipts += 1
    return body


def _lifecycle(ctx: _Context, header: Header, error: HubError) -> EntryDiverged:
    record = ctx.state.cases.by_id.get(header.case_id)
    allowed = allowed_types(record.lifecycle if record else None, header.sender)
    state = record.state if record else "(no case)"
    rule = error.rule if isinstance(error, InvalidTransition) else error.code
    return ctx.fail(
        "lifecycle",
        f"one of {', '.join(allowed) or 'nothing'}",
        f"{header.type} by {header.sender} in state {state}",
        f"case {header.case_id}: {rule}: {error}",
    )
