"""A progress bar on stderr for long work (ledger replays, audits, exports)."""

from __future__ import annotations

import sys
import time
from typing import TextIO

__all__ = ["Progress"]

_MIN_TOTAL = 5_000  # below this the work is instant: stay quiet unless stderr is a terminal


class Progress:
    """``update(done)`` as work advances; redraws at most ten times a second."""

    def __init__(self, label: str, total: int, stream: TextIO | None = None) -> None:
        self.label = label
        self.total = max(total, 0)
        self.stream = stream or sys.stderr
        self.enabled = self.total >= _MIN_TOTAL or self.stream.isatty()
        self._started = time.monotonic()
        self._drawn = 0.0

    def update(self, done: int) -> None:
        now = time.monotonic()
        if not self.enabled or (now - self._drawn < 0.1 and done < self.total):
            return
        self._drawn = now
        share = done / self.total if self.total else 1.0
        bar = "#" * int(share * 30)
        rate = done / max(now - self._started, 1e-9)
        self.stream.write(
            f"\r{self.label} [{bar:<30}] {done}/{self.total} ({share:.0%}, {rate:,.0f}/s)"
        )
        self.stream.flush()

    def finish(self) -> None:
        if self.enabled:
            self.update(self.total)
            self.stream.write("\n")
            self.stream.flush()
