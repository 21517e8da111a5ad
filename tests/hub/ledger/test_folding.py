"""The live fold's heap settling (``hub.ledger.folding.HeapSettler``), and what keeps the
indices out of young collections."""

from __future__ import annotations

import gc

from hub.ledger.folding import HeapSettler
from hub.ledger.projections.messages import MessageIndex


def test_settles_every_n_entries_and_only_then() -> None:
    settler = HeapSettler(every=3)
    kept = [[object()] for _ in range(50)]  # container objects the collector tracks
    # From an empty permanent generation: objects other tests froze may be freed meanwhile
    # (by their threads too), which lowers the count; only ours can raise it.
    gc.unfreeze()
    settler.applied()
    settler.applied()
    assert gc.get_freeze_count() == 0  # not yet: two entries
    settler.applied()
    after = gc.get_freeze_count()
    assert after >= len(kept)  # the survivors are in the permanent generation now
    settler.applied(2)
    assert gc.get_freeze_count() <= after  # nothing frozen again before the next 3
    gc.unfreeze()  # leave the interpreter as other tests expect it


def test_a_new_receipt_leaves_the_settled_index_out_of_young_collections() -> None:
    """The receipt index holds only untracked keys and values, so the collector untracks it;
    a new receipt must not track it again, or every young collection walks all of it (the
    live fold went from 7 to 14 us an entry over 1,000,000 entries with tuple keys)."""
    index = MessageIndex()
    for n in range(5000):
        index.add_receipt(f"r{n}", f"m{n}", "XB-MOJ", n)
    gc.unfreeze()
    gc.collect()
    gc.freeze()
    try:
        index.add_receipt("r-new", "m-new", "XB-MOJ", 5000)
        young = [o for o in gc.get_objects(generation=0) if isinstance(o, dict) and len(o) > 1000]
        assert young == []
        assert index.receipt_index("m-new", "XB-MOJ") == 5000
        assert index.receipt_index("m-new", "XC-MOJ") is None
    finally:
        gc.unfreeze()  # leave the interpreter as other tests expect it
