"""The live fold's heap settling (``hub.ledger.folding.HeapSettler``)."""

from __future__ import annotations

import gc

from hub.ledger.folding import HeapSettler


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
