"""Audit verify speed: a real, valid history replayed by ``hub.audit.runner.verify_archive``.

Runs as ``python -m bench.audit --n N`` (a fresh process, as ``hub audit verify`` runs):
the pool's workers are forked from the process that runs the audit, and forked from the bench
process after its earlier phases (~900 MB resident) they cost the audit ~8 %.

The history is honest end to end (every entry's signature verifies, every case follows the
lifecycle): admissions, then request + receipt pairs, each request a new case, sealed with
X25519 keys (the sealing cost is the generator's, not the auditor's), with a signed checkpoint
every 1,000 entries. The floor is Ed25519 verification, one signature per entry, on every core.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import time
from dataclasses import asdict, dataclass
from datetime import timedelta

import msgspec

from hub import ids
from hub.audit.archive import ArchiveHeader
from hub.audit.runner import export_archive, verify_archive
from hub.clock import SystemClock
from hub.crypto import envelope as sealing
from hub.crypto import receipts
from hub.crypto._primitives import ed25519_verify  # the floor itself
from hub.crypto.keys import AuthorityKeys, OperatorKey
from hub.ledger.transparency import TransparencyLog, new_log_key
from hub.operator import admission_request
from node_agent.config import AgentSettings
from node_agent.identity import card_file
from schemas.codec import encode
from schemas.envelope import Body, CaseMeta
from schemas.ledger import AuthorityAdmitted, LedgerEntry, ReceiptRecorded

__all__ = ["AuditFigures", "measure_audit", "valid_archive"]

_CHECKPOINT_EVERY = 1_000


@dataclass(frozen=True, slots=True)
class AuditFigures:
    entries: int
    entries_per_s: float
    entries_per_s_one_worker: float
    workers: int
    ed25519_verify_per_s_one_core: float


def valid_archive(n: int) -> bytes:
    """An archive of ``n`` honest entries (two authorities, request + receipt pairs)."""
    operator = OperatorKey.generate()
    log = TransparencyLog(new_log_key("bench.mla-hub.example", os.urandom(32)))
    now = SystemClock().now() - timedelta(minutes=1)
    keys = {name: AuthorityKeys.generate("x25519") for name in ("XA-MOJ", "XB-MOJ")}
    entries: list[bytes] = []
    notes: list[str] = []

    def add(event: object) -> int:
        data = encode(LedgerEntry(index=len(entries), recorded_at=now, event=event))  # type: ignore[arg-type]
        entries.append(data)
        log.append(data)
        if len(entries) % _CHECKPOINT_EVERY == 0:
            notes.append(log.checkpoint().note)
        return len(entries) - 1

    for name, key in keys.items():
        settings = AgentSettings(
            id=name, state=name[:2], name=name, kinds=["mla"], languages=["en"]
        )
        request = admission_request(card_file(settings, key, now=now), operator, now=now)
        add(
            AuthorityAdmitted(
                authority=name,
                signed=request.signed,
                operator_key=operator.public,
                operator_signature=request.operator_signature,
            )
        )
    a, b = keys["XA-MOJ"], keys["XB-MOJ"]
    to_b = sealing.Recipient("XB-MOJ", b.key_id, b.suite, b.encryption_public)
    meta = CaseMeta(kind="mla", legal_basis="untoc-art18")
    while len(entries) < n:
        envelope = sealing.seal(
            sender="XA-MOJ", sender_keys=a, recipients=[to_b], message_id=ids.uuid7(),
            case_id=ids.uuid7(), type="request.submit", body=Body(text="x"), now=now, meta=meta,
        )  # fmt: skip
        verified = sealing.verify_envelope(envelope, _Keys(keys))
        index = add(sealing.record_of(verified, envelope))
        if len(entries) < n:
            receipt = receipts.issue(
                header=verified.header, envelope_digest=verified.envelope_digest,
                recipient="XB-MOJ", keys=b, ledger_index=index, receipt_id=ids.uuid7(), now=now,
            )  # fmt: skip
            add(ReceiptRecorded(body=receipt.body, signature=receipt.signature))
    notes.append(log.checkpoint().note)
    header = ArchiveHeader(
        origin=log.origin,
        log_key=log.verifier_key,
        operator_keys=[operator.public.hex()],
        exported_at=now,
    )
    out = io.BytesIO()
    export_archive(enumerate(entries), notes, header, out)
    return out.getvalue()


class _Keys:
    def __init__(self, keys: dict[str, AuthorityKeys]) -> None:
        self._keys = keys

    def signing_key(self, authority: str, key_id: str, at: object) -> bytes:
        return self._keys[authority].signing_public


def _ed25519_floor(seconds: float = 1.0) -> float:
    """Ed25519 verifications per second on one core (what each audited entry cannot avoid)."""
    key = AuthorityKeys.generate("x25519")
    message = b"m" * 64
    signature = key.sign(message)
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        ed25519_verify(key.signing_public, signature, message)
        count += 1
    return count / (time.perf_counter() - start)


def measure_audit(n: int) -> AuditFigures:
    """Verify an ``n``-entry archive on every core and on one; the Ed25519 floor beside it."""
    archive = valid_archive(n)
    workers = os.cpu_count() or 1
    figures = {}
    for count in sorted({1, workers}):
        result = verify_archive(io.BytesIO(archive), workers=count)
        if not result.ok:
            raise RuntimeError(f"bench: the honest archive did not verify: {result.divergence}")
        figures[count] = result.entries_per_s
    return AuditFigures(n, figures[workers], figures[1], workers, _ed25519_floor())


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.audit")
    parser.add_argument("--n", type=int, required=True, help="entries in the archive")
    args = parser.parse_args()
    sys.stdout.buffer.write(msgspec.json.encode(asdict(measure_audit(args.n))) + b"\n")


if __name__ == "__main__":
    main()
