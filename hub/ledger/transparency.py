"""The hub's transparency log: the RFC 9162 tree over ledger entries, and signed checkpoints.

Pure: entry bytes in, hashes, proofs and signed notes out; the service stores and serves them.
Every ledger entry's exact stored bytes are a leaf (``leaf_hash = SHA-256(0x00 || bytes)``).
Checkpoints are C2SP tlog-checkpoint notes whose origin line names the hub, signed with the
hub's Ed25519 note key (C2SP signed-note); witnesses' cosignatures are added as further lines.
"""

from __future__ import annotations

from dataclasses import dataclass

from hub.crypto.checkpoint import (
    Checkpoint,
    format_checkpoint,
    parse_checkpoint,
    verify_cosignature,
)
from hub.crypto.note import (
    KeyType,
    NoteVerifier,
    add_signatures,
    open_note,
    parse_signer_key,
    parse_verifier_key,
    sign_note,
    signer_key,
    signer_verifier_key,
)
from hub.crypto.note import key_id as note_key_id
from hub.errors import ValidationError
from hub.ledger.merkle import MerkleTree, leaf_hash

__all__ = ["LogVerifier", "SignedCheckpoint", "TransparencyLog", "new_log_key", "witness_verifier"]


@dataclass(frozen=True, slots=True)
class SignedCheckpoint:
    size: int
    root: bytes
    note: str  # the signed note, cosignature lines included

    @property
    def text(self) -> str:
        """The checkpoint body (what every signature and cosignature covers)."""
        return self.note.split("\n\n", 1)[0] + "\n"


def new_log_key(origin: str, seed: bytes) -> str:
    """The signer key string (x/mod ``PRIVATE+KEY+...``) for a new 32-byte Ed25519 ``seed``."""
    return signer_key(origin, seed)


def witness_verifier(authority: str, signing_public: bytes) -> NoteVerifier:
    """An authority cosigns with its Ed25519 signing key, as a cosignature/v1 key named by id."""
    return NoteVerifier(
        name=authority,
        key_id=note_key_id(authority, KeyType.COSIGNATURE_V1, signing_public),
        kind=KeyType.COSIGNATURE_V1,
        public=signing_public,
    )


class LogVerifier:
    """What anyone holding only the hub's verifier key checks: its signed checkpoints."""

    def __init__(self, vkey: str) -> None:
        self.verifier_key = vkey
        self.verifier = parse_verifier_key(vkey)
        self.origin = self.verifier.name

    def open(self, note: str) -> SignedCheckpoint:
        """Verify a note signed by this log's key and parse its checkpoint."""
        opened = open_note(note, [self.verifier])
        checkpoint = parse_checkpoint(opened.text)
        if checkpoint.origin != self.origin:
            raise ValidationError(f"checkpoint: origin {checkpoint.origin!r} is not this hub's")
        return SignedCheckpoint(checkpoint.size, checkpoint.root_hash, note)


class TransparencyLog(LogVerifier):
    """The Merkle tree of the ledger and the checkpoints signed over it (the hub's side)."""

    def __init__(self, log_key: str) -> None:
        super().__init__(signer_verifier_key(log_key))
        self._private = parse_signer_key(log_key).private
        self.tree = MerkleTree()
        self.latest: SignedCheckpoint | None = None

    def __repr__(self) -> str:
        return f"TransparencyLog(origin={self.origin!r}, size={self.tree.size}, key=<redacted>)"

    @property
    def size(self) -> int:
        return self.tree.size

    def reset(self) -> None:
        """Forget every leaf (before folding the ledger again from entry 0)."""
        self.tree = MerkleTree()
        self.latest = None

    def append(self, entry: bytes) -> bytes:
        """Add the entry's leaf; returns its leaf hash."""
        leaf = leaf_hash(entry)
        self.tree.append(leaf)
        return leaf

    def checkpoint(self) -> SignedCheckpoint:
        """The newest checkpoint, signed now if the tree grew since the last one."""
        if self.latest is not None and self.latest.size == self.tree.size:
            return self.latest
        root = self.tree.root()
        text = format_checkpoint(Checkpoint(self.origin, self.tree.size, root))
        note = sign_note(text, self.origin, self._private)
        self.latest = SignedCheckpoint(self.tree.size, root, note)
        return self.latest

    def inclusion(self, index: int, size: int) -> list[bytes]:
        return self.tree.inclusion_proof(index, size)

    def consistency(self, old_size: int, new_size: int) -> list[bytes]:
        return self.tree.consistency_proof(old_size, new_size)

    def with_cosignature(
        self, stored: SignedCheckpoint, line: str, witness: NoteVerifier
    ) -> SignedCheckpoint:
        """``stored`` with a witness's cosignature line added, once it verifies."""
        verify_cosignature(stored.text, line, witness)
        return SignedCheckpoint(stored.size, stored.root, add_signatures(stored.note, [line]))
