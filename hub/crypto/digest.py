"""Plain SHA-256 for content identities (attachments, parts), safe to call from anywhere."""

from __future__ import annotations

from hub.crypto._primitives import sha256

__all__ = ["sha256"]
