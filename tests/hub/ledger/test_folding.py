"""The live fold's heap settling (``hub.ledger.folding.HeapSettler``)."""

from __future__ import annotations

import gc

from hub.ledger.folding import HeapSettler


def test_settles_every_n_entries_and_only_then() -> None:
    settler = HeapSettler(every=3)
    kept = [[object()] for _ in range(50)]  # container objects the collector tracks
    frozen = gc.get_freeze_count()
    settler.applied()
    settler.applied()
    assert gc.get_freeze_count() == frozen  # not yet: two entries
    settler.applied()
    after = gc.get_freeze_count()
    assert after >= frozen + len(kept)  # the survivors are in the permanent generation now
    settler.applied(2)
    assert gc.get_freeze_count() == after
    gc.unfreeze()  # leave the interpreter as other tests expect it
