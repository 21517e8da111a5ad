"""Projection rebuild: fold N recorded ledger entries through ``HubState.apply``, decode included.

This is what a hub does at start (``HubService.catch_up``) minus the NATS read. The floor beside
it is decoding the same entries into ``LedgerEntry`` and doing nothing else.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from bench.ledger_gen import EntryFactory
from hub.ledger.folding import collector_paused
from hub.ledger.projections.state import HubState
from schemas.codec import decode
from schemas.ledger import LedgerEntry

__all__ = ["ProjectionFigures", "measure_projection"]


@dataclass(frozen=True, slots=True)
class ProjectionFigures:
    entries: int
    rebuild_per_s: float
    decode_per_s: float


def measure_projection(n: int) -> ProjectionFigures:
    """Generate ``n`` entries (admissions, then envelope + receipt pairs) and fold them."""
    entries = list(EntryFactory().entries(n))
    start = time.perf_counter()
    for data in entries:
        decode(data, LedgerEntry, what="entry")
    decode_s = time.perf_counter() - start
    state = HubState()
    start = time.perf_counter()
    with collector_paused():  # as the hub folds its ledger (hub.ledger.folding)
        for data in entries:
            state.apply(decode(data, LedgerEntry, what="entry"))
    rebuild_s = time.perf_counter() - start
    if state.next_index != n:
        raise RuntimeError(f"bench: folded {state.next_index} of {n} entries")
    return ProjectionFigures(n, n / rebuild_s, n / decode_s)
