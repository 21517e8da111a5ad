"""Signature checks as independent jobs, so the runner can spread them over every core.

The replay (:mod:`hub.audit.replay`) resolves each signer's key *in order*, from the directory
as folded up to that entry (the key valid when the signature was made, DESIGN.md section 4),
and emits a :class:`SignatureJob`: the entry's exact bytes and that public key. A job is then a
pure function of its fields; it calls the same safe recipes as the hub (STYLE rule 3):
``cards.verify_admission``, ``envelope.verify_recorded``, ``receipts.verify``,
``cards.verify_rotation``, ``cards.verify_revocation``.

Jobs are msgspec structs. A batch crosses to a pool worker as one MessagePack blob
(:func:`encode_jobs`, :func:`run_encoded_jobs`): pickling each struct cost ~7 us a job
(a tenth of the signature check itself), the blob ~1 us. :func:`run_jobs` and
:func:`run_encoded_jobs` are top-level functions, so a ``ProcessPoolExecutor`` can run a batch
and return its first failure.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Literal

import msgspec

from hub.audit.outcome import Divergence
from hub.crypto import access, cards, receipts
from hub.crypto.envelope import verify_recorded
from hub.crypto.keys import verify_signature
from hub.errors import HubError, KeyNotValid
from schemas.codec import decode
from schemas.ledger import (
    AccessRecorded,
    AuthorityAdmitted,
    AuthorityRevoked,
    EnvelopeRecorded,
    LedgerEntry,
    ReceiptRecorded,
)
from schemas.receipt import Receipt

__all__ = [
    "JobCheck",
    "SignatureJob",
    "encode_jobs",
    "run_encoded_jobs",
    "run_job",
    "run_jobs",
]

JobCheck = Literal[
    "operator_signature",
    "sender_signature",
    "receipt_signature",
    "rotation_signature",
    "revocation_signature",
    "access_signature",
]


class SignatureJob(msgspec.Struct, frozen=True, kw_only=True, array_like=True):
    """Check the signature in ledger entry ``index`` with ``key`` (already resolved).

    Senders' and recipients' signatures (nearly every job) come *prepared*: ``message`` holds
    the exact signed bytes the replay derived from the entry it just decoded and checked, and
    ``signature`` the signature, so a worker only verifies. The operator's rarer signatures
    carry the whole ``entry`` and are re-derived in the worker.
    """

    index: int
    check: JobCheck
    key: bytes
    signer: str
    key_id: str = ""
    entry: bytes = b""
    message: bytes = b""
    signature: bytes = b""


class _PinnedKey:
    """A KeyResolver that knows one key: the one the replay resolved for this signer."""

    __slots__ = ("_job",)

    def __init__(self, job: SignatureJob) -> None:
        self._job = job

    def signing_key(self, authority: str, key_id: str, at: datetime) -> bytes:
        if (authority, key_id) != (self._job.signer, self._job.key_id):
            raise KeyNotValid(
                f"signer: the record names {authority} key {key_id}, "
                f"the replay resolved {self._job.signer} key {self._job.key_id}"
            )
        return self._job.key


_ENTRY_DECODER = msgspec.msgpack.Decoder(LedgerEntry)


def _event(job: SignatureJob) -> object:
    try:
        return _ENTRY_DECODER.decode(job.entry).event
    except (msgspec.MsgspecError, ValueError, OverflowError):  # the typed error, with context
        return decode(job.entry, LedgerEntry, what=f"ledger entry {job.index}").event


def _check(job: SignatureJob) -> None:
    if job.message:
        verify_signature(job.key, job.signature, job.message)
        return
    event = _event(job)
    if job.check == "operator_signature" and isinstance(event, AuthorityAdmitted):
        cards.verify_admission(event.signed, job.key, event.operator_signature)
    elif job.check == "sender_signature" and isinstance(event, EnvelopeRecorded):
        verify_recorded(event, _PinnedKey(job))
    elif job.check == "receipt_signature" and isinstance(event, ReceiptRecorded):
        receipts.verify(Receipt(body=event.body, signature=event.signature), _PinnedKey(job))
    elif job.check == "rotation_signature" and isinstance(event, AuthorityAdmitted):
        cards.verify_rotation(event.signed, job.key)
    elif job.check == "revocation_signature" and isinstance(event, AuthorityRevoked):
        cards.verify_revocation(event.authority, event.reason, job.key, event.operator_signature)
    elif job.check == "access_signature" and isinstance(event, AccessRecorded):
        access.verify_statement(event.statement, job.key, event.operator_signature)
    else:
        raise KeyNotValid(f"job: {job.check} does not apply to a {type(event).__name__}")


def run_job(job: SignatureJob) -> Divergence | None:
    """Verify one job; the divergence it is, or ``None`` when the signature verifies."""
    try:
        _check(job)
    except HubError as e:
        who = job.signer + (f" key {job.key_id}" if job.key_id else f" key {job.key.hex()}")
        return Divergence(
            index=job.index,
            checkpoint=None,
            check=job.check,
            expected=f"a valid signature by {who}",
            found=f"{e.code}: {e}",
            message=f"entry {job.index}: the {job.check.replace('_', ' ')} does not verify",
        )
    return None


def run_jobs(jobs: Sequence[SignatureJob]) -> Divergence | None:
    """Verify a batch in order and return its first failure (what a pool worker runs)."""
    for job in jobs:
        failure = run_job(job)
        if failure is not None:
            return failure
    return None


_ENCODER = msgspec.msgpack.Encoder()
_DECODER = msgspec.msgpack.Decoder(list[SignatureJob])


def encode_jobs(jobs: Sequence[SignatureJob]) -> bytes:
    """One batch as bytes, for :func:`run_encoded_jobs` in another process."""
    return _ENCODER.encode(jobs)


def run_encoded_jobs(blob: bytes) -> Divergence | None:
    """:func:`run_jobs` on a batch from :func:`encode_jobs` (what a pool worker runs)."""
    return run_jobs(_DECODER.decode(blob))
