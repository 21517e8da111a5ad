"""Checkpoints and witness cosignatures: C2SP tlog-checkpoint ("Note text") and
tlog-cosignature ("Format", "Signed message").

Pure (STYLE rule 1): time is an argument. A checkpoint is a signed note (:mod:`hub.crypto.note`)
whose text is the origin line, the decimal tree size, the base64 root hash and optional
extension lines. A cosignature is a signature line of type 0x04 whose 72 bytes are a u64
big-endian timestamp || Ed25519 over ``cosignature/v1\\ntime <t>\\n`` || checkpoint text.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Final

from hub.crypto._primitives import ed25519_public, ed25519_sign
from hub.crypto.note import (
    KeyType,
    NoteKeyMalformed,
    NoteSignature,
    NoteSignatureInvalid,
    NoteVerifier,
    key_id,
    parse_signature_line,
    split_note,
    verify_signature,
)
from hub.errors import ValidationError

__all__ = [
    "Checkpoint",
    "CheckpointMalformed",
    "CosignatureTally",
    "cosign",
    "cosign_with",
    "cosigned_message",
    "format_checkpoint",
    "parse_checkpoint",
    "tally_cosignatures",
    "verify_cosignature",
]

_MAX_UINT64: Final = (1 << 64) - 1
_COSIGNATURE_HEADER: Final = "cosignature/v1\n"
_COSIGNATURE_SIZE: Final = 8 + 64
_DECIMAL: Final = re.compile(r"0|[1-9][0-9]*")
_CONTROL: Final = re.compile(r"[\x00-\x09\x0b-\x1f]")


class CheckpointMalformed(ValidationError):
    """A note text that breaks tlog-checkpoint "Note text"; ``field`` names the line."""

    code = "checkpoint_malformed"


# --- checkpoints -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A tlog-checkpoint note text: origin, tree size, root hash, optional extension lines."""

    origin: str
    size: int
    root_hash: bytes
    extensions: tuple[str, ...] = ()


def _is_uint64(value: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= _MAX_UINT64


def _check_line(value: str, what: str) -> None:
    if not value or "\n" in value or _CONTROL.search(value):
        raise CheckpointMalformed(
            f"{what}: must be one non-empty line without control characters", field=what
        )


def format_checkpoint(cp: Checkpoint) -> str:
    """The note text: origin, decimal size, base64 root hash, extensions, each with newline."""
    _check_line(cp.origin, "origin")
    if not _is_uint64(cp.size):
        raise CheckpointMalformed("size: must be an integer in [0, 2**64)", field="size")
    if not isinstance(cp.root_hash, bytes) or len(cp.root_hash) != 32:
        raise CheckpointMalformed("root_hash: must be a 32-byte SHA-256 hash", field="root_hash")
    for i, ext in enumerate(cp.extensions):
        _check_line(ext, f"extensions[{i}]")
    lines = [cp.origin, str(cp.size), base64.b64encode(cp.root_hash).decode(), *cp.extensions]
    return "\n".join(lines) + "\n"


def _root_hash(text: str) -> bytes:
    what = "line 3 (root hash)"
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError) as e:
        raise CheckpointMalformed(
            f"{what}: not standard base64 (RFC 4648 section 4)", field=what
        ) from e
    if len(raw) != 32 or base64.b64encode(raw).decode() != text:
        raise CheckpointMalformed(
            f"{what}: must be the canonical base64 of 32 bytes", field="line 3"
        )
    return raw


def parse_checkpoint(text: str) -> Checkpoint:
    """Parse a checkpoint note text (already verified by :func:`hub.crypto.note.open_note`)."""
    if not text.endswith("\n"):
        raise CheckpointMalformed("checkpoint: must end with a newline", field="checkpoint")
    lines = text[:-1].split("\n")
    if len(lines) < 3:
        raise CheckpointMalformed(
            "checkpoint: needs origin, size and root hash lines", field="checkpoint"
        )
    origin, size, root, *extensions = lines
    _check_line(origin, "line 1 (origin)")
    if not _DECIMAL.fullmatch(size) or int(size) > _MAX_UINT64:
        raise CheckpointMalformed(
            "line 2 (size): must be a decimal uint64 without leading zeros", field="line 2"
        )
    root_hash = _root_hash(root)
    for i, ext in enumerate(extensions, 4):
        _check_line(ext, f"line {i} (extension)")
    return Checkpoint(
        origin=origin, size=int(size), root_hash=root_hash, extensions=tuple(extensions)
    )


# --- cosignatures ------------------------------------------------------------------------------


def _message(text: str, timestamp: int) -> bytes:
    return f"{_COSIGNATURE_HEADER}time {timestamp}\n{text}".encode()


def cosigned_message(checkpoint_text: str, sig: NoteSignature) -> tuple[int, bytes, bytes]:
    """tlog-cosignature "Signed message": (timestamp, message, Ed25519 signature) of ``sig``.

    The text must be a checkpoint and the signature exactly u64 timestamp || 64 bytes; raises
    :class:`CheckpointMalformed` or :class:`~hub.crypto.note.NoteSignatureInvalid`.
    """
    parse_checkpoint(checkpoint_text)
    if len(sig.signature) != _COSIGNATURE_SIZE:
        raise NoteSignatureInvalid(
            f"cosignature {sig.name}+{sig.key_id:08x}: must be {_COSIGNATURE_SIZE} bytes",
            field=sig.name,
        )
    timestamp = int.from_bytes(sig.signature[:8], "big")
    return timestamp, _message(checkpoint_text, timestamp), sig.signature[8:]


def cosign(checkpoint_text: str, name: str, private: bytes, timestamp: int) -> str:
    """A witness's cosignature/v1 line over ``checkpoint_text`` at ``timestamp`` (Unix s).

    The caller has already checked consistency; the line goes to
    :func:`hub.crypto.note.add_signatures`.
    """
    if not isinstance(private, bytes) or len(private) != 32:
        raise NoteKeyMalformed("private: must be 32 raw Ed25519 bytes", field="private")
    return cosign_with(
        checkpoint_text,
        name,
        ed25519_public(private),
        lambda m: ed25519_sign(private, m),
        timestamp,
    )


def cosign_with(
    checkpoint_text: str,
    name: str,
    public: bytes,
    sign: Callable[[bytes], bytes],
    timestamp: int,
) -> str:
    """:func:`cosign` with a signing function instead of the seed, e.g. a node agent's
    ``AuthorityKeys.sign`` (``public`` = its ``signing_public``; ``name`` = its authority id)."""
    parse_checkpoint(checkpoint_text)
    kid = key_id(name, KeyType.COSIGNATURE_V1, public)
    if not _is_uint64(timestamp):
        raise ValidationError("timestamp: must be an integer in [0, 2**64)", field="timestamp")
    sig = NoteSignature(
        name=name,
        key_id=kid,
        signature=timestamp.to_bytes(8, "big") + sign(_message(checkpoint_text, timestamp)),
        timestamp=timestamp,
    )
    return sig.line()


def verify_cosignature(checkpoint_text: str, line: str, verifier: NoteVerifier) -> int:
    """Verify one cosignature line by ``verifier`` over ``checkpoint_text``; return its time.

    The caller judges freshness against its own clock. Raises
    :class:`~hub.crypto.note.NoteSignatureInvalid` if the line is not from ``verifier`` or
    does not verify.
    """
    if verifier.kind != KeyType.COSIGNATURE_V1:
        raise NoteKeyMalformed("verifier: must be a cosignature/v1 (0x04) key", field="verifier")
    sig = parse_signature_line(line)
    if (sig.name, sig.key_id) != (verifier.name, verifier.key_id):
        raise NoteSignatureInvalid(
            f"cosignature: made by {sig.name}+{sig.key_id:08x}, not by {verifier.name}",
            field=sig.name,
        )
    verify_signature(verifier, checkpoint_text, sig)
    return int.from_bytes(sig.signature[:8], "big")


@dataclass(frozen=True, slots=True)
class CosignatureTally:
    """Which known witnesses cosigned a checkpoint note: ``valid`` lines carry their time;
    ``invalid`` names known witnesses whose line did not verify."""

    text: str
    valid: tuple[NoteSignature, ...]
    invalid: tuple[str, ...]


def tally_cosignatures(note: str, witnesses: Iterable[NoteVerifier]) -> CosignatureTally:
    """Verify each cosignature line of ``note`` by one of ``witnesses`` (0x04 keys).

    Unlike :func:`hub.crypto.note.open_note`, a failing line does not reject the note: it is
    counted in ``invalid`` and the others still count (a witness policy needs the number of
    good cosignatures). Lines by unknown keys, and repeats of a key, are ignored. The caller
    checks the log's own signature with ``open_note`` first.
    """
    known = {(w.name, w.key_id): w for w in witnesses if w.kind == KeyType.COSIGNATURE_V1}
    text, signatures = split_note(note)
    valid: list[NoteSignature] = []
    invalid: list[str] = []
    seen: set[tuple[str, int]] = set()
    for sig in signatures:
        verifier = known.get((sig.name, sig.key_id))
        if verifier is None or (sig.name, sig.key_id) in seen:
            continue
        seen.add((sig.name, sig.key_id))
        try:
            valid.append(verify_signature(verifier, text, sig))
        except (NoteSignatureInvalid, CheckpointMalformed):
            invalid.append(sig.name)
    return CosignatureTally(text=text, valid=tuple(valid), invalid=tuple(invalid))
