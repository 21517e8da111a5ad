"""Tests for hub/ledger/merkle.py (RFC 9162 section 2.1).

Known answers come from tests/vectors/rfc6962_merkle.json (transparency-dev/merkle test data).
Everything else is checked exhaustively against the reference MTH on one tree of 130 leaves:
every root, every inclusion proof and every consistency proof of every earlier size, each
with one test per way of tampering with it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.errors import ValidationError, VerificationError
from hub.ledger.merkle import (
    EMPTY_ROOT,
    CompactTree,
    ConsistencyProofInvalid,
    InclusionProofInvalid,
    MerkleTree,
    leaf_hash,
    node_hash,
    root_from_leaf_hashes,
    verify_consistency,
    verify_inclusion,
)

VECTORS: dict[str, Any] = json.loads(
    (Path(__file__).parents[2] / "vectors" / "rfc6962_merkle.json").read_text()
)
N = 130
LEAVES = [leaf_hash(b"entry %d" % i) for i in range(N)]
TREE = MerkleTree.from_leaf_hashes(LEAVES)
ROOTS = [root_from_leaf_hashes(LEAVES[:n]) for n in range(N + 1)]
OTHER = node_hash(b"x" * 32, b"y" * 32)  # a well-formed hash that is in no tree here


def _flip(h: bytes, bit: int = 0) -> bytes:
    return bytes([h[0] ^ (1 << bit)]) + h[1:]


def _fails(verify: Callable[..., None], args: tuple[Any, ...]) -> bool:
    try:
        verify(*args)
    except (VerificationError, ValidationError):
        return True
    return False


class TestHashing:
    """Leaf and node hashing are SHA-256 with RFC 6962 domain separation."""

    def test_known_hashes(self) -> None:
        want = VECTORS["hashes"]
        assert EMPTY_ROOT.hex() == want["empty_root"]
        assert leaf_hash(b"").hex() == want["leaf_of_empty"]
        assert leaf_hash(b"L123456").hex() == want["leaf_of_L123456"]
        assert node_hash(b"N123", b"N456").hex() == want["node_of_N123_N456"]

    def test_domain_separation(self) -> None:
        a, b = leaf_hash(b"Hello"), leaf_hash(b"World")
        assert node_hash(a, b) != leaf_hash(a + b)
        assert node_hash(a, b) != node_hash(b, a)
        assert leaf_hash(b"") != EMPTY_ROOT


class TestKnownVectors:
    """The 8-leaf reference tree: roots of every size and the published proofs."""

    leaves = [leaf_hash(bytes.fromhex(x)) for x in VECTORS["leaves"]]

    def test_roots_by_size(self) -> None:
        tree, compact = MerkleTree(), CompactTree()
        assert compact.root() == tree.root() == bytes.fromhex(VECTORS["roots_by_size"][0])
        for n, leaf in enumerate(self.leaves, 1):
            tree.append(leaf)
            compact.append(leaf)
            want = bytes.fromhex(VECTORS["roots_by_size"][n])
            assert compact.root() == tree.root() == root_from_leaf_hashes(self.leaves[:n]) == want
        for n, want in enumerate(VECTORS["roots_by_size"]):
            assert tree.root(n).hex() == want

    @pytest.mark.parametrize(
        "case", VECTORS["inclusion"], ids=lambda c: f"{c['index']}@{c['size']}"
    )
    def test_inclusion(self, case: dict[str, Any]) -> None:
        tree = MerkleTree.from_leaf_hashes(self.leaves)
        proof = [bytes.fromhex(h) for h in case["proof"]]
        assert tree.inclusion_proof(case["index"], case["size"]) == proof
        root = bytes.fromhex(VECTORS["roots_by_size"][case["size"]])
        verify_inclusion(self.leaves[case["index"]], case["index"], case["size"], proof, root)

    @pytest.mark.parametrize(
        "case", VECTORS["consistency"], ids=lambda c: f"{c['old_size']}-{c['new_size']}"
    )
    def test_consistency(self, case: dict[str, Any]) -> None:
        tree = MerkleTree.from_leaf_hashes(self.leaves)
        m, n = case["old_size"], case["new_size"]
        proof = [bytes.fromhex(h) for h in case["proof"]]
        assert tree.consistency_proof(m, n) == proof
        roots = VECTORS["roots_by_size"]
        verify_consistency(m, n, bytes.fromhex(roots[m]), bytes.fromhex(roots[n]), proof)


class TestRoots:
    """CompactTree, MerkleTree and the reference MTH agree at every size up to 130."""

    def test_every_size(self) -> None:
        compact = CompactTree()
        for n in range(1, N + 1):
            assert compact.append(LEAVES[n - 1]) == n - 1
            assert compact.size == n
            assert compact.root() == TREE.root(n) == ROOTS[n]
        assert TREE.root() == ROOTS[N]
        assert TREE.compact().state() == compact.state()

    def test_state_round_trip_and_copy(self) -> None:
        compact = TREE.compact()
        restored = CompactTree.from_state(*compact.state())
        assert restored.root() == compact.root()
        fork = restored.copy()
        fork.append(OTHER)
        assert restored.root() == ROOTS[N]
        assert fork.root() == root_from_leaf_hashes([*LEAVES, OTHER])

    def test_merkle_tree_append(self) -> None:
        tree = MerkleTree()
        assert tree.size == 0
        assert tree.root() == EMPTY_ROOT
        assert [tree.append(h) for h in LEAVES[:5]] == [0, 1, 2, 3, 4]
        assert tree.leaf_hash(3) == LEAVES[3]

    @pytest.mark.parametrize(
        ("size", "hashes"),
        [(3, [OTHER]), (2, [OTHER, OTHER]), (0, [OTHER]), (1, [b"short"]), (-1, [])],
    )
    def test_from_state_rejects_wrong_shape(self, size: int, hashes: list[bytes]) -> None:
        with pytest.raises(ValidationError):
            CompactTree.from_state(size, hashes)

    @pytest.mark.parametrize("bad", [b"", b"x" * 31, b"x" * 33])
    def test_append_rejects_wrong_hash_length(self, bad: bytes) -> None:
        with pytest.raises(ValidationError, match="leaf_hash"):
            CompactTree().append(bad)
        with pytest.raises(ValidationError, match="leaf_hash"):
            MerkleTree().append(bad)

    def test_root_of_future_size_is_rejected(self) -> None:
        with pytest.raises(ValidationError, match="size"):
            TREE.root(N + 1)


class TestInclusion:
    """Every proof at every size verifies; every tampered variant is refused."""

    def test_every_leaf_at_every_size(self) -> None:
        for n in range(1, N + 1):
            for i in range(n):
                verify_inclusion(LEAVES[i], i, n, TREE.inclusion_proof(i, n), ROOTS[n])

    def test_flipped_bits(self) -> None:
        for n in range(1, N + 1):
            for i in range(n):
                proof = TREE.inclusion_proof(i, n)
                for j in range(len(proof)):
                    bad = [*proof[:j], _flip(proof[j], j % 8), *proof[j + 1 :]]
                    with pytest.raises(InclusionProofInvalid):
                        verify_inclusion(LEAVES[i], i, n, bad, ROOTS[n])
                with pytest.raises(InclusionProofInvalid):
                    verify_inclusion(_flip(LEAVES[i]), i, n, proof, ROOTS[n])
                with pytest.raises(InclusionProofInvalid):
                    verify_inclusion(LEAVES[i], i, n, proof, _flip(ROOTS[n], 7))

    def test_wrong_index_size_and_length(self) -> None:
        for n in range(1, N + 1):
            for i in range(n):
                proof, leaf, root = TREE.inclusion_proof(i, n), LEAVES[i], ROOTS[n]
                probes: dict[str, tuple[Any, ...]] = {
                    "index - 1": (leaf, i - 1, n, proof, root),
                    "index + 1": (leaf, i + 1, n, proof, root),
                    "size * 2": (leaf, i, n * 2, proof, root),
                    "size // 2": (leaf, i, n // 2, proof, root),
                    "extended": (leaf, i, n, [*proof, OTHER], root),
                    "prepended": (leaf, i, n, [OTHER, *proof], root),
                    "truncated": (leaf, i, n, proof[:-1], root),
                    "earlier root": (leaf, i, n, proof, ROOTS[n - 1]),
                }
                if not proof:
                    del probes["truncated"]
                accepted = [k for k, args in probes.items() if not _fails(verify_inclusion, args)]
                assert accepted == [], f"leaf {i} of {n}"

    def test_empty_proof_only_for_single_leaf(self) -> None:
        verify_inclusion(LEAVES[0], 0, 1, [], ROOTS[1])
        with pytest.raises(InclusionProofInvalid, match="shorter"):
            verify_inclusion(LEAVES[0], 0, 2, [], ROOTS[2])
        with pytest.raises(InclusionProofInvalid, match="longer"):
            verify_inclusion(LEAVES[0], 0, 1, [LEAVES[1]], ROOTS[1])

    @pytest.mark.parametrize(
        ("index", "size", "field"),
        [(0, 0, "index"), (5, 5, "index"), (6, 5, "index"), (-1, 5, "index"), (0, -1, "size")],
    )
    def test_bad_arguments(self, index: int, size: int, field: str) -> None:
        with pytest.raises(ValidationError) as e:
            verify_inclusion(LEAVES[0], index, size, [], ROOTS[1])
        assert e.value.field == field
        assert not isinstance(e.value, VerificationError)

    @pytest.mark.parametrize("field", ["leaf_hash", "root", "proof[0]"])
    def test_wrong_hash_length(self, field: str) -> None:
        args = {"leaf_hash": LEAVES[0], "root": ROOTS[2], "proof[0]": LEAVES[1]}
        args[field] = args[field][:-1]
        with pytest.raises(ValidationError, match=r"must be 32 bytes") as e:
            verify_inclusion(args["leaf_hash"], 0, 2, [args["proof[0]"]], args["root"])
        assert e.value.field == field

    def test_proof_generation_rejects_bad_arguments(self) -> None:
        with pytest.raises(ValidationError, match="index"):
            TREE.inclusion_proof(5, 5)
        with pytest.raises(ValidationError, match="size"):
            TREE.inclusion_proof(0, N + 1)

    def test_error_codes(self) -> None:
        assert InclusionProofInvalid.code == "inclusion_proof_invalid"
        assert ConsistencyProofInvalid.code == "consistency_proof_invalid"
        assert issubclass(InclusionProofInvalid, VerificationError)
        assert issubclass(ConsistencyProofInvalid, VerificationError)


class TestConsistency:
    """Every (m, n) with 1 <= m <= n <= 130 verifies; every tampered variant is refused."""

    def test_every_pair(self) -> None:
        for n in range(1, N + 1):
            for m in range(1, n + 1):
                verify_consistency(m, n, ROOTS[m], ROOTS[n], TREE.consistency_proof(m, n))

    def test_tampered(self) -> None:
        for n in range(2, N + 1):
            for m in range(1, n):
                proof, old, new = TREE.consistency_proof(m, n), ROOTS[m], ROOTS[n]
                probes: dict[str, tuple[Any, ...]] = {
                    "old_size - 1": (m - 1, n, old, new, proof),
                    "old_size + 1": (m + 1, n, old, new, proof),
                    "new_size * 2": (m, n * 2, old, new, proof),
                    "swapped roots": (m, n, new, old, proof),
                    "wrong old root": (m, n, _flip(old), new, proof),
                    "wrong new root": (m, n, old, _flip(new), proof),
                    "empty": (m, n, old, new, []),
                    "truncated": (m, n, old, new, proof[:-1]),
                    "extended": (m, n, old, new, [*proof, OTHER]),
                    "prepended": (m, n, old, new, [OTHER, *proof]),
                }
                for j in range(len(proof)):
                    bad = [*proof[:j], _flip(proof[j], 4), *proof[j + 1 :]]
                    probes[f"flipped {j}"] = (m, n, old, new, bad)
                accepted = [k for k, args in probes.items() if not _fails(verify_consistency, args)]
                assert accepted == [], f"{m} -> {n}"

    def test_trivial_sizes(self) -> None:
        verify_consistency(0, 0, EMPTY_ROOT, EMPTY_ROOT, [])
        verify_consistency(0, 7, EMPTY_ROOT, ROOTS[7], [])
        verify_consistency(7, 7, ROOTS[7], ROOTS[7], [])
        assert TREE.consistency_proof(0, 7) == TREE.consistency_proof(7, 7) == []
        with pytest.raises(ConsistencyProofInvalid, match="empty tree"):
            verify_consistency(0, 7, ROOTS[1], ROOTS[7], [])
        with pytest.raises(ConsistencyProofInvalid, match="different roots"):
            verify_consistency(7, 7, ROOTS[7], ROOTS[6], [])
        with pytest.raises(ConsistencyProofInvalid, match="must be empty"):
            verify_consistency(7, 7, ROOTS[7], ROOTS[7], [OTHER])

    def test_bad_arguments(self) -> None:
        with pytest.raises(ValidationError, match="must not exceed") as e:
            verify_consistency(8, 7, ROOTS[8], ROOTS[7], [])
        assert e.value.field == "old_size"
        with pytest.raises(ValidationError, match="old_root: must be 32 bytes"):
            verify_consistency(1, 2, b"", ROOTS[2], [LEAVES[1]])
        with pytest.raises(ValidationError, match=r"proof\[0\]: must be 32 bytes"):
            verify_consistency(1, 2, ROOTS[1], ROOTS[2], [b"x"])
        with pytest.raises(ValidationError, match="must not exceed"):
            TREE.consistency_proof(8, 7)
        with pytest.raises(ValidationError, match="new_size"):
            TREE.consistency_proof(1, N + 1)


BIG = 3000
BIG_LEAVES = [leaf_hash(i.to_bytes(4, "big")) for i in range(BIG)]
BIG_TREE = MerkleTree.from_leaf_hashes(BIG_LEAVES)


@settings(max_examples=60, deadline=None)
@given(st.integers(1, BIG).flatmap(lambda n: st.tuples(st.integers(1, n), st.just(n))))
def test_large_trees_match_reference(sizes: tuple[int, int]) -> None:
    """Beyond 130 leaves: random (m, n) roots, proofs and frontier restore still agree."""
    m, n = sizes
    root_m, root_n = root_from_leaf_hashes(BIG_LEAVES[:m]), root_from_leaf_hashes(BIG_LEAVES[:n])
    assert BIG_TREE.root(m) == root_m
    assert BIG_TREE.root(n) == root_n
    verify_consistency(m, n, root_m, root_n, BIG_TREE.consistency_proof(m, n))
    verify_inclusion(BIG_LEAVES[m - 1], m - 1, n, BIG_TREE.inclusion_proof(m - 1, n), root_n)
    partial = MerkleTree.from_leaf_hashes(BIG_LEAVES[:m]).compact()
    for h in BIG_LEAVES[m:n]:
        partial.append(h)
    assert partial.root() == root_n
