"""Admission rules for the operator's commands on the operator intake (issue 5). Pure.

Admitting or rotating an authority card, revoking an authority, and access statements
(accrediting a liaison officer, admitting an auditor, revoking either). Each arrives only on the
operator's intake subject and carries the operator's signature; the directory and accreditation
rules themselves live in the projections, shared with the auditor's replay.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from hub import subjects
from hub.crypto import access, cards
from hub.errors import CardInvalid, SenderMismatch, SignatureInvalid, UnknownRecipient
from hub.gateway.decisions import Accept, Decision, Duplicate
from hub.ledger.projections.state import HubState
from schemas.access import AccessRequest, AccessRevocation
from schemas.directory import AdmissionRequest, RevocationRequest
from schemas.ledger import AccessRecorded, AuthorityAdmitted, AuthorityRevoked

__all__ = ["admit_access", "admit_card", "admit_revocation"]


def _only_operator(intake_sender: str, what: str) -> None:
    if intake_sender != subjects.OPERATOR:  # (3)
        raise SenderMismatch(f"submission: only the operator may {what}")


def admit_card(
    request: AdmissionRequest,
    intake_sender: str,
    state: HubState,
    now: datetime,
    operator_key: bytes,
) -> Decision:
    _only_operator(intake_sender, "admit authorities")
    try:
        cards.verify_admission(request.signed, operator_key, request.operator_signature)  # (5)
    except SignatureInvalid as e:
        raise SignatureInvalid("operator_signature: not made by this hub's operator key") from e
    card = cards.open_card(request.signed)
    if card.valid_until is not None and card.valid_until <= now:
        raise CardInvalid(f"valid_until: the card expired at {card.valid_until.isoformat()}")
    previous_key = state.directory.check_card(card, request.signed)  # revoked; rotation rules
    if previous_key is not None:
        cards.verify_rotation(request.signed, previous_key)  # (5)
    current = state.directory.get(card.id)  # (6)
    if current is not None and current.admitted.card_digest == cards.card_digest(request.signed):
        return Duplicate(request.request_id, intake_sender, current.admitted.ledger_index)
    return Accept(
        event=AuthorityAdmitted(
            authority=card.id,
            signed=request.signed,
            operator_key=operator_key,
            operator_signature=request.operator_signature,
        ),
        dedup_id=f"admission:{cards.card_digest(request.signed).hex()}",
        message_id=request.request_id,
        reply_to=intake_sender,
    )


def admit_revocation(
    request: RevocationRequest, intake_sender: str, state: HubState, operator_key: bytes
) -> Decision:
    _only_operator(intake_sender, "revoke authorities")
    try:  # (5)
        cards.verify_revocation(
            request.authority, request.reason, operator_key, request.operator_signature
        )
    except SignatureInvalid as e:
        raise SignatureInvalid("operator_signature: not made by this hub's operator key") from e
    if state.directory.get(request.authority) is None:  # (4)
        raise UnknownRecipient(
            f"authority: {request.authority} is not admitted to the directory", field="authority"
        )
    earlier = state.directory.revocation(request.authority)  # (6)
    if earlier is not None:
        return Duplicate(request.request_id, intake_sender, earlier.ledger_index)
    return Accept(
        event=AuthorityRevoked(
            authority=request.authority,
            reason=request.reason,
            operator_key=operator_key,
            operator_signature=request.operator_signature,
        ),
        dedup_id=f"revocation:{request.authority}",
        message_id=request.request_id,
        reply_to=intake_sender,
    )


def admit_access(
    request: AccessRequest,
    intake_sender: str,
    state: HubState,
    now: datetime,
    operator_key: bytes,
    max_skew: timedelta,
) -> Decision:
    """An accreditation, an auditor admission or a revocation of either (schemas.access)."""
    _only_operator(intake_sender, "accredit or revoke access")
    access.verify_statement(request.statement, operator_key, request.operator_signature)  # (5)
    statement = access.open_statement(request.statement)  # (2)
    earlier = state.access.check(  # (4)(6)(7)
        statement, request.statement, state.directory, at=now, max_skew=max_skew
    )
    if earlier is not None:
        return Duplicate(request.request_id, intake_sender, earlier)
    kind = "revocation" if isinstance(statement, AccessRevocation) else "accreditation"
    return Accept(
        event=AccessRecorded(
            statement=request.statement,
            operator_key=operator_key,
            operator_signature=request.operator_signature,
        ),
        dedup_id=f"access-{kind}:{statement.accreditation_id}",
        message_id=request.request_id,
        reply_to=intake_sender,
    )
