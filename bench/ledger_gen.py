"""Synthetic but realistic ledger entries, generated from a few real sealed envelopes.

The entries start with real ``AuthorityAdmitted`` records, then alternate ``EnvelopeRecorded``
(a real record whose header is cloned with a fresh message and case id) and ``ReceiptRecorded``
(a real receipt body for that message). Cloned headers do not match their signatures: fine for
the projection fold and memory measurements, which do not verify, but these entries would not
pass an audit.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass

import msgspec

from bench.world import Party, StaticResolver, make_party, seal_request
from hub.clock import SystemClock
from hub.crypto import envelope as sealing
from hub.crypto.keys import OperatorKey
from hub.operator import admission_request
from node_agent.identity import card_file
from schemas.codec import decode, encode
from schemas.envelope import Envelope, Header
from schemas.ledger import AuthorityAdmitted, EnvelopeRecorded, LedgerEntry, ReceiptRecorded
from schemas.receipt import ReceiptBody

__all__ = ["EntryFactory"]

_SENDERS = ("XA-MOJ", "XB-MOJ", "XC-MOJ", "XD-MOJ")
_RECIPIENTS = ("YA-MOJ", "YB-MOJ", "YC-MOJ", "YD-MOJ")


@dataclass(frozen=True, slots=True)
class _Template:
    record: EnvelopeRecorded
    header: Header
    recipient: Party


class EntryFactory:
    """Makes ledger entries (encoded, as stored in LEDGER) from 16 real sender/recipient pairs."""

    def __init__(self) -> None:
        operator = OperatorKey.generate()
        self.parties = [make_party(a, operator) for a in _SENDERS + _RECIPIENTS]
        senders, recipients = self.parties[:4], self.parties[4:]
        resolver = StaticResolver(self.parties)
        self.now = SystemClock().now()
        self.admissions: list[AuthorityAdmitted] = []
        for party in self.parties:
            made = card_file(party.settings, party.keys, now=self.now)
            request = admission_request(made, operator, now=self.now)
            self.admissions.append(
                AuthorityAdmitted(
                    authority=party.id,
                    signed=request.signed,
                    operator_key=operator.public,
                    operator_signature=request.operator_signature,
                )
            )
        self._templates: list[_Template] = []
        for s in senders:
            for r in recipients:
                envelope = decode(seal_request(s, r, self.now)[1], Envelope)
                verified = sealing.verify_envelope(envelope, resolver)
                record = sealing.record_of(verified, envelope)
                self._templates.append(_Template(record, verified.header, r))
        self._receipt_signature = os.urandom(64)

    def _uuid(self) -> str:
        raw = bytearray(os.urandom(16))
        raw[6] = (raw[6] & 0x0F) | 0x70
        raw[8] = (raw[8] & 0x3F) | 0x80
        h = raw.hex()
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"

    def _pair(self, k: int) -> tuple[EnvelopeRecorded, ReceiptRecorded]:
        t = self._templates[k % len(self._templates)]
        header = msgspec.structs.replace(t.header, message_id=self._uuid(), case_id=self._uuid())
        digest = os.urandom(32)
        record = msgspec.structs.replace(t.record, header=encode(header), envelope_digest=digest)
        body = ReceiptBody(
            receipt_id=self._uuid(),
            message_id=header.message_id,
            case_id=header.case_id,
            envelope_digest=digest,
            sender=header.sender,
            recipient=t.recipient.id,
            recipient_key_id=t.recipient.keys.key_id,
            received_at=self.now,
            ledger_index=0,
        )
        return record, ReceiptRecorded(body=encode(body), signature=self._receipt_signature)

    def entries(self, count: int, start: int = 0) -> Iterator[bytes]:
        """Encoded entries ``start`` .. ``start + count - 1`` of one ledger (admissions first)."""
        index = start
        while index < start + count:
            if index < len(self.admissions):
                events: tuple[object, ...] = (self.admissions[index],)
            else:
                events = self._pair(index)
            for event in events:
                if index >= start + count:
                    break
                yield encode(LedgerEntry(index=index, recorded_at=self.now, event=event))  # type: ignore[arg-type]
                index += 1

    def envelope_record(self) -> EnvelopeRecorded:
        """One real, verifiable envelope record (for ledger append figures)."""
        return self._templates[0].record
