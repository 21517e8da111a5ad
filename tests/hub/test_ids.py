"""UUIDv7 minting (``hub.ids``): RFC 9562 layout, creation order, no repeats."""

from __future__ import annotations

import time
import uuid

from hub.ids import uuid7
from schemas.common import UUID_RE


def test_layout_version_variant_and_time() -> None:
    before = time.time_ns() // 1_000_000
    minted = [uuid7() for _ in range(5000)]
    after = time.time_ns() // 1_000_000
    for text in minted:
        assert UUID_RE.fullmatch(text), text
        parsed = uuid.UUID(text)
        assert (parsed.version, parsed.variant) == (7, uuid.RFC_4122)
        assert str(parsed) == text
        assert before <= parsed.int >> 80 <= after  # 48-bit Unix milliseconds first
    assert len(set(minted)) == len(minted)
    assert [m[:13] for m in minted] == sorted(m[:13] for m in minted)  # ordered by the ms
