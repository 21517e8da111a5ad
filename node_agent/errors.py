"""The node agent's errors: a subtree of the hub's one typed hierarchy (STYLE rule 7)."""

from __future__ import annotations

from hub.errors import HubError, ValidationError, VerificationError

__all__ = ["AgentError", "NotInitialized", "RecipientRevoked", "RecipientUnknown"]


class AgentError(HubError):
    """Root of errors that only the node agent raises."""

    code = "agent_error"


class NotInitialized(AgentError, ValidationError):
    """The data folder holds no agent (run ``node-agent init`` first)."""

    code = "not_initialized"


class RecipientUnknown(AgentError, ValidationError):
    """The directory has no admitted card for the addressee."""

    code = "unknown_recipient"


class RecipientRevoked(AgentError, VerificationError):
    """The operator revoked the addressee: the signed directory snapshot says when and why."""

    code = "revoked"
