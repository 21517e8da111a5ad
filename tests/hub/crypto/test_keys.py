"""Private keys: files are 0600 from creation, never shown by repr, never logged."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from hub.crypto.keys import AuthorityKeys, OperatorKey
from hub.errors import ValidationError
from hub.keyfiles import read_private, write_private
from hub.logs import redact


def test_key_file_is_owner_only(tmp_path: Path) -> None:
    keys = AuthorityKeys.generate()
    path = tmp_path / "keys" / "authority.key"
    write_private(path, keys.to_bytes())
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    loaded = AuthorityKeys.from_bytes(read_private(path))
    assert loaded.key_id == keys.key_id


def test_refuses_to_overwrite_or_read_open_key(tmp_path: Path) -> None:
    path = tmp_path / "operator.key"
    write_private(path, OperatorKey.generate().to_bytes())
    with pytest.raises(ValidationError, match="already exists"):
        write_private(path, b"other")
    path.chmod(0o644)
    with pytest.raises(ValidationError, match="too open"):
        read_private(path)


def test_repr_never_shows_private_bytes() -> None:
    keys = AuthorityKeys.generate("x25519")
    private = keys.to_bytes()
    shown = repr(keys) + str(keys) + repr(OperatorKey.generate())
    assert "redacted" in shown
    assert private.hex()[:16] not in shown


def test_log_redaction_drops_secret_fields() -> None:
    event = {"event": "x", "private_key": "aa", "plaintext": "facts", "content_key": "k", "ok": 1}
    assert redact(None, "info", event) == {
        "event": "x",
        "private_key": "<redacted>",
        "plaintext": "<redacted>",
        "content_key": "<redacted>",
        "ok": 1,
    }
    with capture_logs() as logs:
        import structlog

        structlog.get_logger().info("message_received", message_id="m")
    assert logs[0]["event"] == "message_received"
