"""A real, small ledger history built with the real code, for the audit tests.

Authorities are admitted by the operator (``cards.admit``), envelopes sealed with
``envelope.seal`` and recorded with ``record_of``, receipts issued with ``receipts.issue``,
every entry wrapped in a ``LedgerEntry`` and encoded as the hub stores it; checkpoints are
signed with the hub's note key over ``format_checkpoint``. Keys come from fixed seeds.
"""

from __future__ import annotations

import hashlib
import io
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import msgspec

from hub.audit.archive import ArchiveHeader
from hub.audit.replay import TrustAnchors
from hub.audit.runner import export_archive
from hub.crypto import cards, receipts
from hub.crypto import envelope as sealing
from hub.crypto._primitives import ed25519_public
from hub.crypto.checkpoint import Checkpoint, cosign, format_checkpoint
from hub.crypto.keys import AuthorityKeys, OperatorKey
from hub.crypto.note import add_signatures, sign_note, verifier_key
from hub.ledger.merkle import MerkleTree, leaf_hash
from schemas.codec import encode
from schemas.directory import AuthorityCard
from schemas.envelope import ActionMeta, Body, CaseMeta, Header
from schemas.ledger import (
    AuthorityAdmitted,
    EnvelopeRecorded,
    LedgerEntry,
    LedgerEvent,
    ReceiptRecorded,
    SubmissionRejected,
)

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
ORIGIN = "mla-hub.example"
LOG_SEED = hashlib.sha256(b"audit test: hub checkpoint key").digest()
OTHER_LOG_SEED = hashlib.sha256(b"audit test: someone else's key").digest()
OPERATOR = OperatorKey(hashlib.sha256(b"audit test: operator").digest())
ANCHORS = TrustAnchors.parse(
    ORIGIN, verifier_key(ORIGIN, ed25519_public(LOG_SEED)), [OPERATOR.public.hex()]
)
HEADER = ArchiveHeader(
    origin=ORIGIN,
    log_key=verifier_key(ORIGIN, ed25519_public(LOG_SEED)),
    operator_keys=[OPERATOR.public.hex()],
)


def seed(name: str) -> bytes:
    return hashlib.sha256(f"audit test: {name}".encode()).digest()


def authority_keys(name: str) -> AuthorityKeys:
    return AuthorityKeys(seed(name + "/signing"), seed(name + "/encryption"), "x25519")


KEYS = {a: authority_keys(a) for a in ("XA-MOJ", "XB-MOJ", "XC-MOJ", "XZ-EVIL")}


def mid(n: int) -> str:
    """A deterministic, well-formed message / case id."""
    return str(uuid.UUID(int=n))


class _Resolver:
    def signing_key(self, authority: str, key_id: str, at: datetime) -> bytes:
        return KEYS[authority].signing_public


def admission(authority: str, keys: AuthorityKeys | None = None) -> AuthorityAdmitted:
    keys = keys or KEYS[authority]
    card = AuthorityCard(
        id=authority,
        state=authority[:2],
        name=f"Central Authority of {authority[:2]}",
        kinds=["mla"],
        languages=["en"],
        keys=keys.public(),
        valid_from=NOW - timedelta(days=1),
        valid_until=NOW + timedelta(days=365),
    )
    signed = cards.sign_card(card, keys)
    return AuthorityAdmitted(
        authority=authority,
        signed=signed,
        operator_key=OPERATOR.public,
        operator_signature=cards.admit(signed, OPERATOR, now=NOW),
    )


@dataclass
class Sent:
    index: int
    header: Header
    digest: bytes


@dataclass
class History:
    """Ledger entries as stored (bytes) plus what tests need to extend or tamper with them."""

    entries: list[bytes] = field(default_factory=list)
    sent: dict[int, Sent] = field(default_factory=dict)
    _ids: int = 1000

    def _next_id(self) -> str:
        self._ids += 1
        return mid(self._ids)

    def entry(self, event: LedgerEvent, index: int | None = None) -> bytes:
        i = len(self.entries) if index is None else index
        return encode(LedgerEntry(index=i, recorded_at=NOW + timedelta(seconds=i), event=event))

    def append(self, event: LedgerEvent) -> int:
        self.entries.append(self.entry(event))
        return len(self.entries) - 1

    def admit(self, authority: str) -> int:
        return self.append(admission(authority))

    def envelope(
        self,
        sender: str,
        recipient: str,
        type_: str,
        case_id: str,
        *,
        partial: bool = False,
        signer: AuthorityKeys | None = None,
    ) -> EnvelopeRecorded:
        """A sealed, recorded envelope; ``signer`` forges the sender's signature."""
        r = KEYS[recipient]
        keys = KEYS[sender]
        sealed = sealing.seal(
            sender=sender,
            sender_keys=keys,
            recipients=[sealing.Recipient(recipient, r.key_id, r.suite, r.encryption_public)],
            message_id=self._next_id(),
            case_id=case_id,
            type=type_,
            body=Body(text=f"{type_} from {sender}"),
            now=NOW + timedelta(seconds=len(self.entries)),
            meta=CaseMeta(kind="mla", legal_basis="untoc-art18")
            if type_ == "request.submit"
            else None,
            action=ActionMeta(partial=partial) if partial else None,
        )
        verified = sealing.verify_envelope(sealed, _Resolver())
        record = sealing.record_of(verified, sealed)
        if signer is not None:
            forged = signer.sign(b"mla-hub/v1/envelope-signature\x00" + verified.envelope_digest)
            record = EnvelopeRecorded(
                header=record.header,
                envelope_digest=record.envelope_digest,
                body=record.body,
                attachments=record.attachments,
                wrapped_keys_digest=record.wrapped_keys_digest,
                signature=forged,
            )
        return record

    def send(self, sender: str, recipient: str, type_: str, case_id: str) -> int:
        record = self.envelope(sender, recipient, type_, case_id)
        index = self.append(record)
        verified_header = sealing.verify_recorded(record, _Resolver())
        self.sent[index] = Sent(index, verified_header, record.envelope_digest)
        return index

    def receipt_for(self, message_index: int, *, message_id: str | None = None) -> ReceiptRecorded:
        sent = self.sent[message_index]
        header = sent.header
        if message_id is not None:
            header = msgspec.structs.replace(header, message_id=message_id)
        recipient = header.recipients[0]
        receipt = receipts.issue(
            header=header,
            envelope_digest=sent.digest,
            recipient=recipient,
            keys=KEYS[recipient],
            ledger_index=message_index,
            receipt_id=self._next_id(),
            now=NOW + timedelta(seconds=len(self.entries)),
        )
        return ReceiptRecorded(body=receipt.body, signature=receipt.signature)

    def receipt(self, message_index: int) -> int:
        return self.append(self.receipt_for(message_index))

    def reject(self) -> int:
        return self.append(
            SubmissionRejected(
                submission_digest=hashlib.sha256(b"junk").digest(),
                claimed_sender="XA-MOJ",
                message_id=None,
                reason="malformed",
                detail="submission: not valid msgpack",
            )
        )


def standard() -> History:
    """13 entries: three admissions, a request executed with receipts, a consultation, a
    rejected submission."""
    h = History()
    for authority in ("XA-MOJ", "XB-MOJ", "XC-MOJ"):
        h.admit(authority)
    case = mid(1)
    submit = h.send("XA-MOJ", "XB-MOJ", "request.submit", case)  # 3
    h.receipt(submit)  # 4
    ack = h.send("XB-MOJ", "XA-MOJ", "request.acknowledge", case)  # 5
    h.receipt(ack)  # 6
    done = h.send("XB-MOJ", "XA-MOJ", "request.execute", case)  # 7
    h.receipt(done)  # 8
    consult = mid(2)
    opened = h.send("XA-MOJ", "XC-MOJ", "consultation.open", consult)  # 9
    h.reject()  # 10
    h.receipt(opened)  # 11
    h.send("XC-MOJ", "XA-MOJ", "consultation.message", consult)  # 12
    return h


def root(entries: Sequence[bytes], size: int | None = None) -> bytes:
    tree = MerkleTree()
    for data in entries[: len(entries) if size is None else size]:
        tree.append(leaf_hash(data))
    return tree.root()


def checkpoint(
    entries: Sequence[bytes],
    size: int,
    *,
    key: bytes = LOG_SEED,
    name: str = ORIGIN,
    origin: str = ORIGIN,
    root_hash: bytes | None = None,
) -> str:
    """A checkpoint note over the first ``size`` entries, signed by ``key``."""
    cp = Checkpoint(origin=origin, size=size, root_hash=root_hash or root(entries, size))
    return sign_note(format_checkpoint(cp), name, key)


def every_checkpoint(entries: Sequence[bytes]) -> list[str]:
    """One checkpoint per entry, so a changed entry is located exactly."""
    return [checkpoint(entries, size) for size in range(1, len(entries) + 1)]


def cosigned(note: str, *witnesses: str, key_of: dict[str, bytes] | None = None) -> str:
    """``note`` with cosignature lines by ``witnesses`` (authority ids, their signing seeds)."""
    text = note[: note.rindex("\n\n") + 1]
    keys = key_of or {}
    lines = [cosign(text, w, keys.get(w, seed(w + "/signing")), 1_800_000_000) for w in witnesses]
    return add_signatures(note, lines)


def archive(entries: Sequence[bytes], checkpoints: Sequence[str]) -> bytes:
    out = io.BytesIO()
    export_archive(enumerate(entries), checkpoints, HEADER, out)
    return out.getvalue()
