"""The crypto floor: what one request and its receipt cannot avoid, in ops/s on one core.

Per request + receipt: the sender seals (HPKE wrap + AES-256-GCM + Ed25519 signature), the hub
verifies the envelope (:func:`hub.crypto.envelope.verify_envelope`), the recipient opens it
(:func:`hub.crypto.envelope.open`, which verifies again and decrypts), the recipient issues a
receipt, the hub verifies the receipt, and the sender's agent verifies it again. The combined
rate is one over the sum of the per-operation times, all on one core.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from bench.world import StaticResolver, make_party, seal_request
from hub import ids
from hub.clock import SystemClock
from hub.crypto import envelope as sealing
from hub.crypto import receipts
from hub.crypto.keys import OperatorKey
from schemas.codec import decode, encode
from schemas.envelope import Envelope
from schemas.receipt import Receipt

__all__ = ["CryptoFloor", "measure_crypto_floor"]


@dataclass(frozen=True, slots=True)
class CryptoFloor:
    """Operations per second on one core."""

    seal: float
    hub_verify: float
    open: float
    receipt_issue: float
    receipt_verify: float

    @property
    def combined(self) -> float:
        """Requests + receipts per second on one core (receipt verified by hub and sender)."""
        seconds = (
            1 / self.seal
            + 1 / self.hub_verify
            + 1 / self.open
            + 1 / self.receipt_issue
            + 2 / self.receipt_verify
        )
        return 1 / seconds

    @property
    def hub_and_recipient(self) -> float:
        """The part of :attr:`combined` on the measured e2e path (senders pre-seal and do not
        verify receipts there): hub verify, open, issue, hub receipt verify."""
        seconds = 1 / self.hub_verify + 1 / self.open + 1 / self.receipt_issue
        return 1 / (seconds + 1 / self.receipt_verify)


def _rate(op: Callable[[int], object], count: int, limit_s: float) -> float:
    for i in range(min(20, count)):  # warm up caches and lazy imports
        op(i)
    start = time.perf_counter()
    done = 0
    while done < count and time.perf_counter() - start < limit_s:
        op(done)
        done += 1
    return done / (time.perf_counter() - start)


def measure_crypto_floor(count: int = 3000, limit_s: float = 1.5) -> CryptoFloor:
    """Each operation repeated up to ``count`` times or ``limit_s`` seconds."""
    operator = OperatorKey.generate()
    sender, recipient = make_party("XA-MOJ", operator), make_party("XB-MOJ", operator)
    resolver = StaticResolver([sender, recipient])
    now = SystemClock().now()
    _, sealed = seal_request(sender, recipient, now)
    envelope = decode(sealed, Envelope)
    verified = sealing.verify_envelope(envelope, resolver)
    receipt = receipts.issue(
        header=verified.header,
        envelope_digest=verified.envelope_digest,
        recipient=recipient.id,
        keys=recipient.keys,
        ledger_index=1,
        receipt_id=ids.uuid7(),
        now=now,
    )
    receipt = decode(encode(receipt), Receipt)

    def seal(_: int) -> object:
        return seal_request(sender, recipient, now)

    def hub_verify(_: int) -> object:
        return sealing.verify_envelope(decode(sealed, Envelope), resolver)

    def open_(_: int) -> object:
        return sealing.open(
            decode(sealed, Envelope),
            recipient=recipient.id,
            keys=[recipient.keys],
            resolver=resolver,
        )

    def issue(_: int) -> object:
        return encode(
            receipts.issue(
                header=verified.header,
                envelope_digest=verified.envelope_digest,
                recipient=recipient.id,
                keys=recipient.keys,
                ledger_index=1,
                receipt_id=ids.uuid7(),
                now=now,
            )
        )

    def verify_receipt(_: int) -> object:
        return receipts.verify(receipt, resolver)

    return CryptoFloor(
        seal=_rate(seal, count, limit_s),
        hub_verify=_rate(hub_verify, count, limit_s),
        open=_rate(open_, count, limit_s),
        receipt_issue=_rate(issue, count, limit_s),
        receipt_verify=_rate(verify_receipt, count, limit_s),
    )
