"""The ledger's Merkle tree: RFC 9162 section 2.1 hashing, proofs and proof verification.

Pure (STYLE rule 1): no I/O, no clock. SHA-256 with RFC 6962 domain separation (2.1.1), so
standard transparency tooling and C2SP tlog witnesses can check our checkpoints.
:func:`root_from_leaf_hashes` is the reference MTH (2.1.1); :class:`CompactTree` is the
frontier, enough to append and sign; :class:`MerkleTree` caches every complete subtree to
serve inclusion (2.1.3.1) and consistency (2.1.4.1) proofs; :func:`verify_inclusion` and
:func:`verify_consistency` are the 2.1.3.2 and 2.1.4.2 algorithms step for step, returning
nothing or raising. Ideas from transparency-dev/merkle (``compact/range.go``,
``proof/verify.go``) and sigstore-python (``_internal/merkle.py``); no code copied.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from typing import Final

from hub.errors import ValidationError, VerificationError

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "CompactTree",
    "ConsistencyProofInvalid",
    "InclusionProofInvalid",
    "MerkleTree",
    "leaf_hash",
    "node_hash",
    "root_from_leaf_hashes",
    "verify_consistency",
    "verify_inclusion",
]

HASH_SIZE: Final = 32
EMPTY_ROOT: Final = hashlib.sha256(b"").digest()
_LEAF_PREFIX: Final = b"\x00"
_NODE_PREFIX: Final = b"\x01"


class InclusionProofInvalid(VerificationError):
    """The inclusion proof does not lead from the leaf hash to the claimed root."""

    code = "inclusion_proof_invalid"


class ConsistencyProofInvalid(VerificationError):
    """The consistency proof does not show the new tree extends the old one."""

    code = "consistency_proof_invalid"


def leaf_hash(entry: bytes) -> bytes:
    """MTH of a one-entry list: SHA-256(0x00 || entry) (RFC 9162 section 2.1.1)."""
    return hashlib.sha256(_LEAF_PREFIX + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """An interior node: SHA-256(0x01 || left || right) (RFC 9162 section 2.1.1)."""
    return hashlib.sha256(_NODE_PREFIX + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two strictly smaller than ``n`` (n >= 2): the RFC's ``k``."""
    return 1 << ((n - 1).bit_length() - 1)


def _check_hash(value: bytes, what: str) -> None:
    if not isinstance(value, bytes) or len(value) != HASH_SIZE:
        raise ValidationError(f"{what}: must be {HASH_SIZE} bytes (a SHA-256 hash)", field=what)


def _check_size(value: int, what: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValidationError(f"{what}: must be an integer >= 0", field=what)


def _check_index(index: int, size: int) -> None:
    _check_size(index, "index")
    if index >= size:
        raise ValidationError(f"index: {index} must be < size {size}", field="index")


def _check_order(old_size: int, new_size: int) -> None:
    _check_size(old_size, "old_size")
    if old_size > new_size:
        msg = f"old_size: {old_size} must not exceed new_size {new_size}"
        raise ValidationError(msg, field="old_size")


def root_from_leaf_hashes(hashes: Sequence[bytes]) -> bytes:
    """The reference MTH(D[n]) of RFC 9162 section 2.1.1, recursing on index ranges."""
    for i, h in enumerate(hashes):
        _check_hash(h, f"hashes[{i}]")

    def mth(lo: int, hi: int) -> bytes:
        if hi - lo == 1:
            return hashes[lo]
        k = _split(hi - lo)
        return node_hash(mth(lo, lo + k), mth(lo + k, hi))

    return mth(0, len(hashes)) if hashes else EMPTY_ROOT


class CompactTree:
    """The frontier of a tree of ``size`` leaves: the roots of its perfect subtrees.

    There is one hash per set bit of ``size``, largest subtree first, so it holds at most 64
    hashes. Appending merges the equal-sized subtrees at the right edge (one hash per trailing
    one bit of the old size, one amortized). ``state()`` / ``from_state()`` let the shell
    persist it, so a restart does not rehash the log.
    """

    __slots__ = ("_frontier", "_size")

    def __init__(self) -> None:
        self._size = 0
        self._frontier: list[bytes] = []

    @classmethod
    def from_state(cls, size: int, hashes: Sequence[bytes]) -> CompactTree:
        """Restore the frontier saved by :meth:`state`; checks its shape, not its hashes."""
        _check_size(size, "size")
        if len(hashes) != size.bit_count():
            raise ValidationError(
                f"hashes: a tree of size {size} has {size.bit_count()} frontier hashes, "
                f"got {len(hashes)}",
                field="hashes",
            )
        for i, h in enumerate(hashes):
            _check_hash(h, f"hashes[{i}]")
        tree = cls()
        tree._size = size
        tree._frontier = list(hashes)
        return tree

    def state(self) -> tuple[int, tuple[bytes, ...]]:
        """(size, frontier hashes largest subtree first): what to persist."""
        return self._size, tuple(self._frontier)

    @property
    def size(self) -> int:
        return self._size

    def append(self, leaf: bytes) -> int:
        """Add a leaf hash (see :func:`leaf_hash`); return the new leaf's index."""
        _check_hash(leaf, "leaf_hash")
        index = self._size
        node, bits = leaf, index
        # Every trailing one bit of the old size is a perfect subtree of the same height as
        # the node we carry, sitting immediately to its left: merge them, like a binary carry.
        while bits & 1:
            node = node_hash(self._frontier.pop(), node)
            bits >>= 1
        self._frontier.append(node)
        self._size = index + 1
        return index

    def root(self) -> bytes:
        """MTH of the current tree in O(log n) hashes; :data:`EMPTY_ROOT` when empty."""
        if not self._frontier:
            return EMPTY_ROOT
        root = self._frontier[-1]  # fold the perfect subtrees right to left
        for h in reversed(self._frontier[:-1]):
            root = node_hash(h, root)
        return root

    def copy(self) -> CompactTree:
        return CompactTree.from_state(self._size, self._frontier)


class MerkleTree:
    """All leaf hashes plus every complete, aligned subtree hash, to serve proofs.

    ``_levels[k]`` packs, 32 bytes each, the hashes of the subtrees covering leaves
    [i * 2**k, (i + 1) * 2**k) that are already complete; level 0 is the leaf hashes. Those
    nodes never change once complete (the log is append-only), so they are computed once, on
    append. Any other node a proof or an earlier root needs lies on a right border and is
    rebuilt from O(log n) cached nodes.

    Memory: fewer than 2n hashes in packed ``bytearray`` levels, about 64 bytes per leaf (640 MB
    for ten million entries; a list of ``bytes`` would take ~73 bytes per hash). Appending costs
    one node hash amortized. A log that outgrows memory should move complete levels to storage
    (C2SP tlog-tiles), not change these algorithms.
    """

    __slots__ = ("_levels", "_size")

    def __init__(self) -> None:
        self._size = 0
        self._levels: list[bytearray] = [bytearray()]

    @classmethod
    def from_leaf_hashes(cls, hashes: Sequence[bytes]) -> MerkleTree:
        """Rebuild from stored leaf hashes (about n node hashes)."""
        tree = cls()
        for h in hashes:
            tree.append(h)
        return tree

    @property
    def size(self) -> int:
        return self._size

    def leaf_hash(self, index: int) -> bytes:
        """The leaf hash stored at ``index``."""
        _check_index(index, self._size)
        return self._node(0, index)

    def append(self, leaf: bytes) -> int:
        """Add a leaf hash (see :func:`leaf_hash`); return the new leaf's index."""
        _check_hash(leaf, "leaf_hash")
        index = self._size
        self._levels[0] += leaf
        node, level, position = leaf, 0, index
        # The new leaf completes the parent of every level where it is a right child.
        while position & 1:
            node = node_hash(self._node(level, position - 1), node)
            level, position = level + 1, position >> 1
            if level == len(self._levels):
                self._levels.append(bytearray())
            self._levels[level] += node
        self._size = index + 1
        return index

    def root(self, size: int | None = None) -> bytes:
        """MTH of the first ``size`` leaves (default: all) in O(log n) hashes."""
        size = self._size if size is None else size
        self._check_tree_size(size, "size")
        return self._subtree(0, size) if size else EMPTY_ROOT

    def compact(self) -> CompactTree:
        """The frontier of the current tree, read from the cache without hashing."""
        frontier, start = [], 0
        for level in reversed(range(self._size.bit_length())):
            if self._size >> level & 1:
                frontier.append(self._node(level, start >> level))
                start += 1 << level
        return CompactTree.from_state(self._size, frontier)

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        """PATH(index, D[size]) of RFC 9162 section 2.1.3.1, bottom-up, as the verifier wants."""
        size = self._size if size is None else size
        self._check_tree_size(size, "size")
        _check_index(index, size)
        top_down: list[bytes] = []
        lo, hi = 0, size
        while hi - lo > 1:
            k = _split(hi - lo)
            if index < lo + k:
                top_down.append(self._subtree(lo + k, hi))
                hi = lo + k
            else:
                top_down.append(self._subtree(lo, lo + k))
                lo += k
        top_down.reverse()
        return top_down

    def consistency_proof(self, old_size: int, new_size: int | None = None) -> list[bytes]:
        """PROOF(old_size, D[new_size]) of RFC 9162 section 2.1.4.1, bottom-up; empty when
        ``old_size`` is 0 or ``new_size``, which need none (see :func:`verify_consistency`)."""
        new_size = self._size if new_size is None else new_size
        self._check_tree_size(new_size, "new_size")
        _check_order(old_size, new_size)
        if old_size in (0, new_size):
            return []
        # SUBPROOF(m, D[lo:hi], b) unrolled: m counts the old leaves inside [lo, hi).
        top_down: list[bytes] = []
        m, lo, hi, complete = old_size, 0, new_size, True
        while m != hi - lo:
            k = _split(hi - lo)
            if m <= k:
                top_down.append(self._subtree(lo + k, hi))
                hi = lo + k
            else:
                top_down.append(self._subtree(lo, lo + k))
                m, lo, complete = m - k, lo + k, False
        if not complete:
            # The old tree's last subtree is a node of the new tree: the proof names it.
            top_down.append(self._subtree(lo, hi))
        top_down.reverse()
        return top_down

    # --- internals ---------------------------------------------------------------------------

    def _node(self, level: int, position: int) -> bytes:
        start = position * HASH_SIZE
        return bytes(self._levels[level][start : start + HASH_SIZE])

    def _subtree(self, lo: int, hi: int) -> bytes:
        """MTH(D[lo:hi]) for the ranges RFC recursion visits (lo aligned to a power of two
        at least hi - lo): a cache read if perfect, else split at k and rebuild the right
        border, whose left halves are all cached."""
        n = hi - lo
        if n & (n - 1) == 0:
            return self._node(n.bit_length() - 1, lo // n)
        k = _split(n)
        return node_hash(self._node(k.bit_length() - 1, lo // k), self._subtree(lo + k, hi))

    def _check_tree_size(self, size: int, what: str) -> None:
        _check_size(size, what)
        if size > self._size:
            raise ValidationError(f"{what}: {size} exceeds the tree size {self._size}", field=what)


# --- verification (RFC 9162 sections 2.1.3.2 and 2.1.4.2) ---------------------------------------


def verify_inclusion(
    leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> None:
    """Check that ``leaf_hash`` is leaf ``index`` of the tree of ``size`` leaves and ``root``.

    RFC 9162 section 2.1.3.2, step for step. Raises :class:`ValidationError` for arguments
    that cannot describe a proof, :class:`InclusionProofInvalid` if the proof fails.
    """
    _check_hash(leaf_hash, "leaf_hash")
    _check_hash(root, "root")
    _check_size(size, "size")
    for i, p in enumerate(proof):
        _check_hash(p, f"proof[{i}]")
    # (1) The leaf must be inside the tree.
    _check_index(index, size)
    # (2)-(3) fn walks the leaf's path, sn the tree's last leaf's path.
    fn, sn, r = index, size - 1, leaf_hash
    # (4) Fold each proof hash in on the side the path says.
    for p in proof:
        if sn == 0:
            raise InclusionProofInvalid("inclusion proof: longer than the path to the root")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            # On the right border a node may have no right sibling: skip those levels.
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    # (5) The path must end exactly at the root, and the hashes must agree.
    if sn != 0:
        raise InclusionProofInvalid("inclusion proof: shorter than the path to the root")
    if not hmac.compare_digest(r, root):
        raise InclusionProofInvalid("inclusion proof: does not lead to the root hash")


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> None:
    """Check that the tree (new_size, new_root) extends the tree (old_size, old_root).

    RFC 9162 section 2.1.4.2, step for step, for 0 < old_size < new_size. The RFC leaves the
    two trivial cases open; like transparency-dev, they need an empty proof, and here also:
    equal sizes need equal roots, and size 0 needs :data:`EMPTY_ROOT`.
    """
    _check_size(new_size, "new_size")
    _check_hash(old_root, "old_root")
    _check_hash(new_root, "new_root")
    for i, p in enumerate(proof):
        _check_hash(p, f"proof[{i}]")
    _check_order(old_size, new_size)
    if old_size in (0, new_size):
        if proof:
            raise ConsistencyProofInvalid("consistency proof: must be empty for these sizes")
        if old_size == 0 and not hmac.compare_digest(old_root, EMPTY_ROOT):
            raise ConsistencyProofInvalid("old_root: an empty tree's root is SHA-256('')")
        if old_size == new_size and not hmac.compare_digest(old_root, new_root):
            raise ConsistencyProofInvalid("consistency proof: same size, different roots")
        return
    # (1) A real extension always needs a proof.
    if not proof:
        raise ConsistencyProofInvalid("consistency proof: empty")
    # (2) A perfect old tree is itself a node of the new one: its root seeds the path.
    path = list(proof)
    if old_size & (old_size - 1) == 0:
        path.insert(0, old_root)
    # (3)-(4) Start at the old tree's last leaf, skipping levels where it is a right child.
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    # (5) Rebuild both roots at once from the first node.
    fr = sr = path[0]
    # (6) Left siblings feed both roots, right siblings only the new one.
    for c in path[1:]:
        if sn == 0:
            raise ConsistencyProofInvalid("consistency proof: longer than the path to the root")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    # (7) Both roots must match and the path must have reached the top.
    if sn != 0:
        raise ConsistencyProofInvalid("consistency proof: shorter than the path to the root")
    if not hmac.compare_digest(fr, old_root):
        raise ConsistencyProofInvalid("consistency proof: does not lead to the old root")
    if not hmac.compare_digest(sr, new_root):
        raise ConsistencyProofInvalid("consistency proof: does not lead to the new root")
