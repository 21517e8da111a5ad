"""Private key files: created with mode 0600 from the start, never world-readable."""

from __future__ import annotations

import os
from pathlib import Path

from hub.errors import ValidationError

__all__ = ["read_private", "write_private"]


def write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to a new file readable by its owner only (refuses to overwrite)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError as e:
        raise ValidationError(f"{path}: a key file already exists; refusing to overwrite") from e
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def read_private(path: Path) -> bytes:
    """Read a key file, refusing one that group or others may read."""
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        raise ValidationError(f"{path}: permissions {oct(mode)} are too open; expected 0600")
    return path.read_bytes()
