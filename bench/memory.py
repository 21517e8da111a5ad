"""Memory and growth: N entries' worth of hub state and Merkle tree, in a fresh process.

``python -m bench.memory --n 1000000`` (``python -m bench --bulk N`` runs it as a child) folds
N generated ledger entries (:mod:`bench.ledger_gen`) into a :class:`HubState` (decode included)
and appends their leaf hashes to a :class:`MerkleTree`, then prints one JSON object: resident
memory (``VmRSS`` from ``/proc/self/status``) each structure added, bytes per entry, and the
mean time per append over the first and the last 10 % (flat means O(1) amortized; O(log n)
would grow by log2(N)/log2(N/10), about 1.2x here). Entries are generated in chunks outside
the timed sections and dropped after use, so the growth is the structures' own.
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from pathlib import Path

import msgspec

from bench.ledger_gen import EntryFactory
from hub.ledger.folding import HeapSettler
from hub.ledger.merkle import MerkleTree, leaf_hash
from hub.ledger.projections.state import HubState
from schemas.codec import decode
from schemas.ledger import LedgerEntry

__all__ = ["measure_bulk", "rss_bytes"]

_CHUNKS = 20  # 5 % each: the first and last two make the 10 % figures


def rss_bytes() -> int:
    """Resident set size of this process (``VmRSS``), in bytes; 0 where /proc is missing."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _timed_fold(state: HubState, chunk: list[bytes], settler: HeapSettler) -> float:
    """Entries folded one by one as the live hub does (collector on, heap settled)."""
    start = time.perf_counter()
    for data in chunk:
        state.apply(decode(data, LedgerEntry, what="entry"))
        settler.applied()
    return time.perf_counter() - start


def _timed_tree(tree: MerkleTree, chunk: list[bytes]) -> float:
    start = time.perf_counter()
    for data in chunk:
        tree.append(leaf_hash(data))
    return time.perf_counter() - start


def _growth(times: list[float], sizes: list[int]) -> tuple[float, float]:
    first = sum(times[:2]) / sum(sizes[:2]) * 1e6
    last = sum(times[-2:]) / sum(sizes[-2:]) * 1e6
    return first, last


def measure_bulk(n: int) -> dict[str, float]:
    """Fold ``n`` entries into a HubState and a MerkleTree; memory and per-append times."""
    factory = EntryFactory()
    gc.collect()
    base = rss_bytes()
    state, tree, settler = HubState(), MerkleTree(), HeapSettler()
    state_s: list[float] = []
    tree_s: list[float] = []
    sizes: list[int] = []
    state_rss = 0
    chunk_size = max(1, n // _CHUNKS)
    done = 0
    while done < n:
        count = min(chunk_size, n - done)
        chunk = list(factory.entries(count, start=done))
        before = rss_bytes()
        state_s.append(_timed_fold(state, chunk, settler))
        state_rss += rss_bytes() - before
        tree_s.append(_timed_tree(tree, chunk))
        sizes.append(count)
        done += count
        del chunk
    gc.collect()
    total = rss_bytes() - base
    state_first, state_last = _growth(state_s, sizes)
    tree_first, tree_last = _growth(tree_s, sizes)
    tree_bytes = sum(len(level) for level in tree._levels)  # packed hashes, exact
    return {
        "entries": n,
        "rss_added_mb": total / 2**20,
        "state_rss_mb": state_rss / 2**20,
        "state_bytes_per_entry": state_rss / n,
        "merkle_mb": tree_bytes / 2**20,
        "merkle_bytes_per_entry": tree_bytes / n,
        "state_us_per_append_first10": state_first,
        "state_us_per_append_last10": state_last,
        "merkle_us_per_append_first10": tree_first,
        "merkle_us_per_append_last10": tree_last,
        "state_appends_per_s": n / sum(state_s),
        "merkle_appends_per_s": n / sum(tree_s),
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.memory")
    parser.add_argument("--n", type=int, required=True, help="entries to fold (e.g. 1000000)")
    args = parser.parse_args()
    sys.stdout.buffer.write(msgspec.json.encode(measure_bulk(args.n)) + b"\n")


if __name__ == "__main__":
    main()
