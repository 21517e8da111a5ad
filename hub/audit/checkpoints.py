"""The replay's checkpoint checks: the hub's signed tree heads against the rebuilt tree.

C2SP tlog-checkpoint and signed-note for the format and the hub's signature, RFC 9162
section 2.1.4 for consistency, C2SP tlog-cosignature for witnesses. Pure (STYLE rule 1).

Checkpoints are checked in the order the hub issued them, each as soon as the rebuilt tree
holds the entries it covers, so a divergence is located where it first shows. Checklist:

1. ``checkpoint_signature``: the note verifies with the hub's checkpoint key
2. ``checkpoint_format``: its text is a tlog-checkpoint
3. ``checkpoint_origin``: it names this hub
4. ``checkpoint_order``: sizes never decrease
5. ``split_view``: a second checkpoint of the same size has the same root
6. ``checkpoint_root``: the root is the rebuilt tree's root at that size
7. ``consistency``: a consistency proof from the previous checkpoint, generated from the
   rebuilt tree, verifies (RFC 9162 2.1.4.2; a cross-check of the proof code once 6 passed)
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass

from hub.audit.outcome import Divergence
from hub.crypto.checkpoint import (
    CheckpointMalformed,
    CosignatureTally,
    parse_checkpoint,
    tally_cosignatures,
)
from hub.crypto.note import KeyType, NoteUnverified, NoteVerifier, key_id, open_note, split_note
from hub.errors import ValidationError, VerificationError
from hub.ledger.merkle import MerkleTree, verify_consistency

__all__ = ["CheckpointChecks", "Head", "claimed_size", "witness_verifiers"]


def claimed_size(note: str) -> int | None:
    """The tree size a checkpoint note claims, read without verifying (``None``: unreadable)."""
    try:
        return parse_checkpoint(split_note(note)[0]).size
    except ValidationError:
        return None


def witness_verifiers(keys: Iterable[tuple[str, bytes]]) -> tuple[NoteVerifier, ...]:
    """Cosignature (0x04) verifiers named by authority id, for (id, Ed25519 public key) pairs."""
    return tuple(
        NoteVerifier(
            name, key_id(name, KeyType.COSIGNATURE_V1, public), KeyType.COSIGNATURE_V1, public
        )
        for name, public in keys
    )


@dataclass(frozen=True, slots=True)
class Head:
    """A checkpoint that passed every check."""

    size: int
    root: bytes
    note: str


class CheckpointChecks:
    """Queued checkpoints and the last one verified."""

    def __init__(self, origin: str, log_key: NoteVerifier) -> None:
        self._origin = origin
        self._log_key = log_key
        self._queue: deque[tuple[str, int | None]] = deque()
        self.last: Head | None = None
        self.verified = 0

    def add(self, note: str) -> None:
        """Queue a checkpoint note, in the order the hub issued it."""
        self._queue.append((note, claimed_size(note)))

    def due(self, tree_size: int) -> bool:
        """True when the next queued checkpoint can be checked against a tree of ``tree_size``."""
        if not self._queue:
            return False
        size = self._queue[0][1]
        return size is None or size <= tree_size

    def waiting(self) -> list[int]:
        """Sizes claimed by the checkpoints still queued (beyond the tree)."""
        return [size for _, size in self._queue if size is not None]

    def check_next(self, tree: MerkleTree) -> Divergence | None:
        """Run the checklist on the next due checkpoint; on success it becomes :attr:`last`."""
        note, claimed = self._queue.popleft()
        try:
            text = open_note(note, [self._log_key]).text  # (1)
        except (ValidationError, VerificationError) as e:
            return self._fail(
                claimed, "checkpoint_signature", self._expected_signer(), _signers(note, e), f"{e}"
            )
        try:
            cp = parse_checkpoint(text)  # (2)
        except CheckpointMalformed as e:
            return self._fail(
                claimed, "checkpoint_format", "a tlog-checkpoint note text", f"{e}", f"{e}"
            )
        if cp.origin != self._origin:  # (3)
            return self._fail(
                cp.size,
                "checkpoint_origin",
                self._origin,
                cp.origin,
                "the checkpoint names another log",
            )
        last = self.last
        if last is not None and cp.size < last.size:  # (4)
            return self._fail(
                cp.size, "checkpoint_order", f"size >= {last.size}", str(cp.size), "the tree shrank"
            )
        if last is not None and cp.size == last.size and cp.root_hash != last.root:  # (5)
            return self._fail(
                cp.size,
                "split_view",
                last.root.hex(),
                cp.root_hash.hex(),
                "another checkpoint of this size has another root: the hub signed two histories",
            )
        rebuilt = tree.root(cp.size)
        if cp.root_hash != rebuilt:  # (6)
            return self._root_mismatch(cp.size, rebuilt, cp.root_hash)
        if last is not None:  # (7)
            try:
                proof = tree.consistency_proof(last.size, cp.size)
                verify_consistency(last.size, cp.size, last.root, cp.root_hash, proof)
            except (ValidationError, VerificationError) as e:
                return self._fail(
                    cp.size, "consistency", f"an extension of size {last.size}", f"{e}", f"{e}"
                )
        self.last = Head(size=cp.size, root=cp.root_hash, note=note)
        self.verified += 1
        return None

    def missing(self, tree_size: int) -> Divergence | None:
        """At the end: a queued checkpoint that covers entries the history does not hold."""
        if not self._queue:
            return None
        size = self._queue[0][1] or 0
        return Divergence(
            index=tree_size,
            checkpoint=size,
            check="missing_entries",
            expected=f"{size} entries",
            found=f"{tree_size} entries",
            message=f"checkpoint {size}: covers entries from {tree_size} on, which are missing",
        )

    def witnesses(self, keys: Iterable[NoteVerifier]) -> CosignatureTally | None:
        """Valid cosignatures on the last verified checkpoint by ``keys``."""
        return None if self.last is None else tally_cosignatures(self.last.note, keys)

    # --- internals ---------------------------------------------------------------------------

    def _expected_signer(self) -> str:
        return f"a signature by {self._log_key.name}+{self._log_key.key_id:08x}"

    def _fail(
        self, size: int | None, check: str, expected: str, found: str, message: str
    ) -> Divergence:
        return Divergence(
            index=None,
            checkpoint=size,
            check=check,
            expected=expected,
            found=found,
            message=f"checkpoint {size if size is not None else '(unreadable)'}: {message}",
        )

    def _root_mismatch(self, size: int, rebuilt: bytes, signed: bytes) -> Divergence:
        start = self.last.size if self.last is not None else 0
        if size - start == 1:
            where, index = f"entry {start} differs", start
        else:
            where, index = f"one of entries {start}..{size - 1} differs", None
        return Divergence(
            index=index,
            checkpoint=size,
            check="checkpoint_root",
            expected=signed.hex(),
            found=rebuilt.hex(),
            message=f"checkpoint {size}: the tree rebuilt from the entries has another root; "
            f"{where} from what the hub signed",
        )


def _signers(note: str, error: Exception) -> str:
    if not isinstance(error, NoteUnverified):
        return f"{getattr(error, 'code', 'invalid')}: {error}"
    try:
        signatures = split_note(note)[1]
    except ValidationError:
        return f"{error}"
    return "signatures by " + ", ".join(f"{s.name}+{s.key_id:08x}" for s in signatures)
