"""The auditors' replay: every ledger entry and checkpoint, checked in order (DESIGN.md 4, 5).

Pure (STYLE rule 1): no I/O, no clock, no asyncio. The shell (:mod:`hub.audit.runner`) feeds
entry bytes and checkpoint notes; this module says where the history first diverges.

Per entry, a numbered checklist (check ids from :mod:`hub.audit.outcome`):

1. ``entry_decode``: the bytes decode as a ``LedgerEntry``
2. ``entry_index``: ``entry.index`` is its position; its leaf hash joins the rebuilt tree
3. the signer's key, as the directory folded so far says it was valid when it signed:
   ``operator_key`` (pinned operator key), ``sender_key``, ``receipt_key``
4. the signature, as a :class:`~hub.audit.jobs.SignatureJob` the shell may run on any core:
   ``operator_signature``, ``sender_signature``, ``receipt_signature``,
   ``rotation_signature`` (new keys signed by the key they replace), ``revocation_signature``
5. ``authority_card``: an admitted card's self-signature and id; ``rotation``: new keys follow
   the rotation rules; ``revocation``: of an admitted authority, once
6. references: ``unknown_recipient``, ``duplicate_message``, ``receipt_reference`` (the
   message exists, the signer was a recipient, the digest matches, first receipt),
   ``revoked_party`` (nothing by or to an authority after its revocation)
7. ``lifecycle``: the same rules the hub applies (``Cases.check``: ``next_state`` and the
   submission rules)
8. ``fold``: the entry folds into a :class:`~hub.ledger.projections.state.HubState`, the
   projection code the hub itself runs

Checkpoints follow :mod:`hub.audit.checkpoints`. Signature jobs run late and out of order, so
every divergence carries a :func:`~hub.audit.outcome.rank` and :meth:`Replayer.finish` returns
the smallest: a failing job at index k is the answer only if nothing ranked before it failed.
Main-side checks stop at their first failure; jobs only exist for entries before it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import msgspec

from hub import subjects
from hub.audit.checkpoints import CheckpointChecks, witness_verifiers
from hub.audit.entries import Counts, EntryDiverged, check_event, diverged
from hub.audit.jobs import SignatureJob
from hub.audit.outcome import Divergence, Rank, Report, rank
from hub.crypto.note import NoteVerifier, parse_verifier_key
from hub.errors import HubError, ValidationError
from hub.ledger.merkle import MerkleTree, leaf_hash
from hub.ledger.projections.state import HubState
from schemas.codec import decode, encode
from schemas.directory import RevokedAuthority
from schemas.ledger import LedgerEntry

__all__ = ["Replayer", "TrustAnchors"]


@dataclass(frozen=True, slots=True)
class TrustAnchors:
    """What the auditor trusts: the hub's origin and checkpoint key, the operator key(s)."""

    origin: str
    log_key: NoteVerifier
    operator_keys: frozenset[bytes]

    @classmethod
    def parse(cls, origin: str, log_key: str, operator_keys: Iterable[str]) -> TrustAnchors:
        """From the archive header's strings (a signed-note verifier key, hex Ed25519 keys)."""
        keys: set[bytes] = set()
        for i, text in enumerate(operator_keys):
            try:
                key = bytes.fromhex(text)
            except ValueError:
                key = b""
            if len(key) != 32:
                raise ValidationError(
                    f"operator_keys[{i}]: must be 64 hex characters", field="operator_keys"
                )
            keys.add(key)
        return cls(
            origin=origin, log_key=parse_verifier_key(log_key), operator_keys=frozenset(keys)
        )


_ENTRY_DECODER = msgspec.msgpack.Decoder(LedgerEntry)


def _decode_entry(data: bytes, index: int) -> LedgerEntry:
    """``decode(data, LedgerEntry)``, without building its error context for every entry."""
    try:
        return _ENTRY_DECODER.decode(data)
    except (msgspec.MsgspecError, ValueError, OverflowError):
        return decode(data, LedgerEntry, what=f"ledger entry {index}")  # raises the typed error


class Replayer:
    """Feed entries in order (:meth:`feed`) and checkpoints (:meth:`add_checkpoint`); run the
    jobs from :meth:`take_jobs` anywhere, report failures with :meth:`job_failed`; then
    :meth:`finish`."""

    def __init__(self, anchors: TrustAnchors, *, witnesses: int = 0) -> None:
        self._anchors = anchors
        self._witnesses = witnesses
        self.state = HubState()
        self.tree = MerkleTree()
        self._checkpoints = CheckpointChecks(anchors.origin, anchors.log_key)
        self._jobs: list[SignatureJob] = []
        self._first: tuple[Rank, Divergence] | None = None
        self._stopped = False
        self._directory: dict[str, bytes] = {}
        self._cosigners: tuple[NoteVerifier, ...] = ()
        self._cosigners_version = -1
        self._counts = Counts()

    # --- the shell's side ---------------------------------------------------------------------

    @property
    def position(self) -> int:
        """Entries fed so far (the next index expected)."""
        return self.tree.size

    @property
    def stopped(self) -> bool:
        """True once a divergence is known: no later entry can change the answer."""
        return self._stopped

    @property
    def pending_jobs(self) -> int:
        return len(self._jobs)

    def take_jobs(self) -> list[SignatureJob]:
        """Hand over the signature jobs emitted so far (in entry order)."""
        jobs, self._jobs = self._jobs, []
        return jobs

    def job_failed(self, divergence: Divergence) -> None:
        """Report a failed job (the first failure of a batch is enough)."""
        self._record(divergence, divergence.index if divergence.index is not None else 0)

    def add_checkpoint(self, note: str) -> None:
        """Queue a checkpoint note; it is checked once the tree holds the entries it covers."""
        self._checkpoints.add(note)
        self._check_due()

    def feed(self, index: int, data: bytes) -> None:
        """Check and fold entry ``index`` (its exact stored bytes)."""
        if self._stopped:
            raise ValidationError("feed: the replay already stopped at a divergence")
        if index != self.position:
            raise ValidationError(
                f"feed: entries must come in order: got {index}, expected {self.position}"
            )
        try:
            self._entry(index, data)
        except EntryDiverged as d:
            self._record(d.divergence, index)
            return
        self._check_due()

    def directory_projection(self) -> Mapping[str, bytes]:
        """The DIRECTORY key-value contents the hub should serve after these entries (cards,
        key history, revocation markers; not the operator-signed ``snapshot``)."""
        return dict(self._directory)

    def finish(self) -> Report | Divergence:
        """The first divergence, or the report. Every job taken must have been run by now."""
        if self._first is not None:
            return self._first[1]
        missing = self._checkpoints.missing(self.position)
        if missing is not None:
            return missing
        tally = self._checkpoints.witnesses(self._cosigners)
        names = sorted(s.name for s in tally.valid) if tally else []
        if len(names) < self._witnesses:
            return self._too_few_witnesses(names, tally.invalid if tally else ())
        last = self._checkpoints.last
        return Report(
            entries=self.position,
            checkpoints=self._checkpoints.verified,
            tree_root=self.tree.root().hex(),
            final_size=last.size if last else None,
            final_root=last.root.hex() if last else None,
            unanchored=self.position - (last.size if last else 0),
            witnesses=names,
            signatures=self._counts.signatures,
            envelopes=self._counts.envelopes,
            receipts=self._counts.receipts,
            admissions=self._counts.admissions,
            rejections=self._counts.rejections,
            rotations=self._counts.rotations,
            revocations=self._counts.revocations,
            accreditations=self._counts.accreditations,
        )

    # --- per entry ----------------------------------------------------------------------------

    def _entry(self, index: int, data: bytes) -> None:
        try:
            entry = _decode_entry(data, index)  # (1)
        except HubError as e:
            expected = "a mla.ledger.entry.v1 record"
            raise diverged(
                index, "entry_decode", expected, f"{e.code}: {e}", "does not decode"
            ) from e
        if entry.index != index:  # (2)
            where = "is out of place (dropped, swapped or inserted)"
            raise diverged(index, "entry_index", str(index), str(entry.index), where)
        self.tree.append(leaf_hash(data))
        decoded = check_event(  # (3)-(7)
            self.state,
            self._anchors.operator_keys,
            index,
            entry.event,
            data,
            self._jobs,
            self._counts,
            recorded_at=entry.recorded_at,
        )
        try:
            change = self.state.apply(entry, decoded)  # (8)
        except HubError as e:
            expected = "an entry the hub's projections accept"
            raise diverged(index, "fold", expected, f"{e.code}: {e}", "does not fold") from e
        if isinstance(change, RevokedAuthority):
            self._directory.pop(subjects.card_key(change.authority), None)
            self._directory[subjects.revoked_key(change.authority)] = encode(change)
        elif change is not None:
            card, value = change.card, encode(change.admitted)
            self._directory[subjects.card_key(card.id)] = value
            self._directory[subjects.key_history_key(card.id, card.keys.key_id)] = value

    # --- ordering, checkpoints, witnesses -----------------------------------------------------

    def _record(self, divergence: Divergence, position: int) -> None:
        key = rank(divergence, position)
        if self._first is None or key < self._first[0]:
            self._first = (key, divergence)
        self._stopped = True

    def _check_due(self) -> None:
        while not self._stopped and self._checkpoints.due(self.position):
            failure = self._checkpoints.check_next(self.tree)
            if failure is not None:
                self._record(failure, self.position - 1)
            else:
                self._snapshot_cosigners()

    def _snapshot_cosigners(self) -> None:
        version = self._counts.admissions + self._counts.revocations
        if version != self._cosigners_version:
            current = self.state.directory.authorities()
            self._cosigners = witness_verifiers((r.card.id, r.card.keys.signing) for r in current)
            self._cosigners_version = version

    def _too_few_witnesses(self, names: list[str], invalid: Iterable[str]) -> Divergence:
        last = self._checkpoints.last
        bad = sorted(invalid)
        return Divergence(
            index=None,
            checkpoint=last.size if last else None,
            check="witnesses",
            expected=f">= {self._witnesses} cosignatures by admitted authorities",
            found=f"{len(names)}" + (f" ({', '.join(names)})" if names else ""),
            message="the final checkpoint lacks witness cosignatures"
            + (f"; invalid cosignature(s) from {', '.join(bad)}" if bad else ""),
        )
