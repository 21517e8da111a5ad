"""From a signed header to the lifecycle's input: one mapping shared by hub, agent and auditor."""

from __future__ import annotations

from hub.ledger.lifecycle import CaseEvent
from schemas.envelope import Header

__all__ = ["case_event_of"]


def case_event_of(header: Header) -> CaseEvent:
    """The :class:`CaseEvent` that ``header`` asks the state machine to apply."""
    action = header.action
    return CaseEvent(
        type=header.type,
        sender=header.sender,
        recipients=tuple(header.recipients),
        partial=bool(action and action.partial),
        competent_authority=(action.competent_authority or "") if action else "",
    )
