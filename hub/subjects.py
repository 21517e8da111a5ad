"""NATS subjects, stream and bucket names: the wire contract between hub and node agents.

``mla.submit.<ID>``       intake; stream SUBMIT (durable the moment JetStream acks the publish)
``mla.ledger``            the event log; stream LEDGER (deny delete, deny purge)
``mla.deliver.<ID>``      recorded envelopes and receipts addressed to ID; stream DELIVER
``mla.verdict.<ID>.<M>``  the hub's verdict on ID's submission M; stream VERDICT
Key-value buckets: CONTENT (sealed bytes by envelope digest), DIRECTORY (``card.<ID>``,
``key.<ID>.<key id>``, ``revoked.<ID>``, ``snapshot``: see ``hub.gateway.snapshot``),
CHECKPOINTS (signed checkpoints by size), ACCESS_TOKENS (the read API's bearer-token records by
token id, hashes only; the hub's user alone may touch it). Core request/reply:
``mla.hub.checkpoint``, ``mla.hub.consistency``, ``mla.hub.cosign.<ID>`` (schemas.transparency).
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "ACCESS_TOKENS_BUCKET",
    "CHECKPOINTS_BUCKET",
    "CONTENT_BUCKET",
    "HUB_CHECKPOINT",
    "HUB_CONSISTENCY",
    "LOG_KEY",
    "hub_cosign",
    "DELIVER_STREAM",
    "DIRECTORY_BUCKET",
    "LEDGER_STREAM",
    "LEDGER_SUBJECT",
    "OPERATOR",
    "SUBMIT_STREAM",
    "VERDICT_STREAM",
    "card_key",
    "deliver",
    "is_token",
    "key_history_key",
    "revoked_key",
    "SNAPSHOT_KEY",
    "submit",
    "verdict",
    "verdicts_of",
]

SUBMIT_STREAM: Final = "SUBMIT"
LEDGER_STREAM: Final = "LEDGER"
DELIVER_STREAM: Final = "DELIVER"
VERDICT_STREAM: Final = "VERDICT"
CONTENT_BUCKET: Final = "CONTENT"
CHECKPOINTS_BUCKET: Final = "CHECKPOINTS"
ACCESS_TOKENS_BUCKET: Final = "ACCESS_TOKENS"
LOG_KEY: Final = "log_key"  # DIRECTORY key: the hub's checkpoint verifier key (signed-note vkey)
HUB_CHECKPOINT: Final = "mla.hub.checkpoint"
HUB_CONSISTENCY: Final = "mla.hub.consistency"
DIRECTORY_BUCKET: Final = "DIRECTORY"
LEDGER_SUBJECT: Final = "mla.ledger"
OPERATOR: Final = "OPERATOR"  # the intake "sender" of operator commands (admissions)


def is_token(value: str) -> bool:
    """True when ``value`` can stand as one token of a NATS subject."""
    return bool(value) and len(value) <= 128 and not any(c in value for c in ". *>\t\r\n")


def submit(sender: str) -> str:
    return f"mla.submit.{sender}"


def deliver(recipient: str) -> str:
    return f"mla.deliver.{recipient}"


def verdict(sender: str, message_id: str) -> str:
    return f"mla.verdict.{sender}.{message_id}"


def verdicts_of(sender: str) -> str:
    return f"mla.verdict.{sender}.*"


def hub_cosign(witness: str) -> str:
    return f"mla.hub.cosign.{witness}"


def card_key(authority: str) -> str:
    return f"card.{authority}"


def key_history_key(authority: str, key_id: str) -> str:
    return f"key.{authority}.{key_id}"


def revoked_key(authority: str) -> str:
    """DIRECTORY key of a revoked authority's ``RevokedAuthority`` (its ``card.<ID>`` is gone)."""
    return f"revoked.{authority}"


SNAPSHOT_KEY: Final = "snapshot"  # DIRECTORY key of the operator-signed ``SignedSnapshot``
