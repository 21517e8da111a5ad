"""The bench's cast: operator, sending and receiving authorities, and what they exchange.

Keys, cards and admissions are made with the product's own functions (``node_agent.identity``,
``hub.operator``); envelopes are sealed with :func:`hub.crypto.envelope.seal` and receipts issued
with :func:`hub.crypto.receipts.issue`, so every byte the hub sees is a real submission.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from hub import ids, subjects
from hub.clock import SystemClock
from hub.crypto import envelope as sealing
from hub.crypto import receipts
from hub.crypto.keys import AuthorityKeys, OperatorKey
from hub.errors import UnknownSender
from hub.gateway.connection import connect
from hub.gateway.intake_client import IntakeClient
from hub.operator import admission_request, submit_admission
from node_agent.config import AgentPaths, AgentSettings
from node_agent.identity import card_file, init_agent
from schemas.codec import decode, encode
from schemas.envelope import Body, CaseMeta, Envelope
from schemas.receipt import ReceiptBody

__all__ = [
    "REQUEST_TEXT",
    "Party",
    "StaticResolver",
    "admission_bytes",
    "admit_all",
    "issue_receipt",
    "make_party",
    "seal_request",
]

# With one ML-KEM-768+X25519 wrapped key (1,120 bytes) the sealed envelope is ~2.0 KB: the
# size the JetStream floor publishes.
REQUEST_TEXT = "Please take the evidence of the witness named in the annex (art. 18 UNTOC)."


@dataclass(frozen=True, slots=True)
class Party:
    """One authority: its id, private keys and agent settings (for its card)."""

    id: str
    keys: AuthorityKeys
    settings: AgentSettings

    @property
    def recipient(self) -> sealing.Recipient:
        k = self.keys
        return sealing.Recipient(self.id, k.key_id, k.suite, k.encryption_public)


def make_party(authority_id: str, operator: OperatorKey, folder: Path | None = None) -> Party:
    """Keys and settings for ``authority_id``; with ``folder``, a full node-agent data folder."""
    settings = AgentSettings(
        id=authority_id,
        state=authority_id[:2],
        name=f"Central Authority of {authority_id[:2]}",
        kinds=["mla", "extradition"],
        languages=["en"],
        operator_key=operator.public.hex(),
    )
    if folder is None:
        keys = AuthorityKeys.generate()
    else:
        keys = init_agent(AgentPaths(folder), settings, now=SystemClock().now())
    return Party(authority_id, keys, settings)


def admission_bytes(party: Party, operator: OperatorKey) -> tuple[str, bytes]:
    """(request id, encoded admission request) for the operator's intake."""
    now = SystemClock().now()
    request = admission_request(card_file(party.settings, party.keys, now=now), operator, now=now)
    return request.request_id, encode(request)


async def admit_all(url: str, parties: list[Party], operator: OperatorKey) -> None:
    """Admit every party through the hub's intake (the hub must be running)."""
    nc = await connect(url, name="bench-operator")
    client = IntakeClient(nc, subjects.OPERATOR)
    try:
        for party in parties:
            now = SystemClock().now()
            made = card_file(party.settings, party.keys, now=now)
            verdict = await submit_admission(
                client, admission_request(made, operator, now=now), 30.0
            )
            if verdict.status != "accepted":
                raise RuntimeError(f"bench: admission of {party.id} failed: {verdict}")
    finally:
        await client.close()


class StaticResolver:
    """A :class:`~hub.crypto.keys.KeyResolver` over a fixed set of parties (crypto floor)."""

    def __init__(self, parties: list[Party]) -> None:
        self._keys = {(p.id, p.keys.key_id): p.keys.signing_public for p in parties}

    def signing_key(self, authority: str, key_id: str, at: datetime) -> bytes:
        try:
            return self._keys[(authority, key_id)]
        except KeyError as e:
            raise UnknownSender(f"sender: {authority} unknown to the bench") from e


def seal_request(sender: Party, recipient: Party, now: datetime) -> tuple[str, bytes]:
    """A sealed ``request.submit`` from ``sender`` to ``recipient``: (message id, bytes)."""
    message_id = ids.uuid7()
    envelope = sealing.seal(
        sender=sender.id,
        sender_keys=sender.keys,
        recipients=[recipient.recipient],
        message_id=message_id,
        case_id=ids.uuid7(),
        type="request.submit",
        body=Body(text=REQUEST_TEXT),
        now=now,
        meta=CaseMeta(kind="mla", nature=["taking-evidence"], legal_basis="untoc-art18"),
    )
    return message_id, encode(envelope)


def issue_receipt(
    sealed: bytes, recipient: Party, resolver: StaticResolver, ledger_index: int, now: datetime
) -> tuple[str, bytes]:
    """The recipient's signed receipt for ``sealed``: (receipt id, encoded receipt)."""
    envelope = decode(sealed, Envelope)
    verified = sealing.verify_envelope(envelope, resolver)
    receipt = receipts.issue(
        header=verified.header,
        envelope_digest=verified.envelope_digest,
        recipient=recipient.id,
        keys=recipient.keys,
        ledger_index=ledger_index,
        receipt_id=ids.uuid7(),
        now=now,
    )
    return decode(receipt.body, ReceiptBody).receipt_id, encode(receipt)
