"""Minting identifiers (an edge concern: it reads the clock and the random source)."""

from __future__ import annotations

import os
import time

__all__ = ["uuid7"]


def uuid7() -> str:
    """A UUIDv7 (RFC 9562): 48-bit Unix milliseconds, then random bits; sorts by creation.

    Laid out as bytes and hex-formatted directly (a hot path: ids for every receipt and
    message; ``str(uuid.UUID(int=...))`` cost three times as much).
    """
    millis = time.time_ns() // 1_000_000
    r = os.urandom(10)
    raw = (
        (millis & 0xFFFF_FFFF_FFFF).to_bytes(6, "big")
        + bytes((0x70 | (r[0] & 0x0F), r[1], 0x80 | (r[2] & 0x3F)))  # version 7; variant 10
        + r[3:]
    )
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
