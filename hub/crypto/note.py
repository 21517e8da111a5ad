"""Signed notes, Ed25519 only: C2SP signed-note ("Format", "Signatures", "Signature types").

Pure (STYLE rule 1): signatures are checked over the exact UTF-8 bytes of the note text
(rule 4). Key ID = SHA-256(name || 0x0A || type || public key)[:4]; key strings follow
golang.org/x/mod sumdb/note: ``<name>+<hex key ID>+<base64(type || key)>`` and
``PRIVATE+KEY+<name>+<hex key ID>+<base64(0x01 || seed)>``. Type 0x01 signs the text itself;
type 0x04 (tlog-cosignature) is defined over checkpoints, so its signed message and its
checkpoint rules live in :mod:`hub.crypto.checkpoint`, which this module calls for 0x04 lines.
"""

from __future__ import annotations

import base64
import binascii
import enum
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final, NamedTuple

from hub.crypto._primitives import ed25519_public, ed25519_sign, ed25519_verify, sha256
from hub.errors import SignatureInvalid, ValidationError, VerificationError

__all__ = [
    "signer_verifier_key",
    "KeyType",
    "NoteKeyMalformed",
    "NoteMalformed",
    "NoteSignature",
    "NoteSignatureInvalid",
    "NoteSigner",
    "NoteUnverified",
    "NoteVerifier",
    "OpenedNote",
    "add_signatures",
    "key_id",
    "open_note",
    "parse_signature_line",
    "parse_signer_key",
    "parse_verifier_key",
    "sign_note",
    "split_note",
    "signer_key",
    "verifier_key",
    "verify_signature",
]

_DASH: Final = "\u2014 "  # em dash and space open every signature line
_MAX_SIGNATURES: Final = 100  # the spec asks for at least 16; x/mod's limit
_HEX_ID: Final = re.compile(r"[0-9a-fA-F]{8}")
_CONTROL: Final = re.compile(r"[\x00-\x09\x0b-\x1f]")


class KeyType(enum.IntEnum):
    """Signature type bytes assigned by signed-note "Signature types"."""

    ED25519 = 0x01
    COSIGNATURE_V1 = 0x04  # timestamped Ed25519 witness cosignature


# --- errors ------------------------------------------------------------------------------------


class NoteMalformed(ValidationError):
    """A signed note whose framing or signature lines break signed-note "Format"."""

    code = "note_malformed"


class NoteKeyMalformed(ValidationError):
    """A key name, verifier key or signer key string that is not well formed."""

    code = "note_key_malformed"


class NoteUnverified(VerificationError):
    """No signature from a known key: the spec says the note MUST be rejected."""

    code = "note_unverified"


class NoteSignatureInvalid(SignatureInvalid):
    """A signature from a known key (name and key ID match) that does not verify."""

    code = "note_signature_invalid"


# --- keys --------------------------------------------------------------------------------------


def _valid_name(name: str) -> bool:
    return bool(name) and not any(c.isspace() or c == "+" for c in name)


def _check_name(name: str, what: str = "name") -> None:
    if not _valid_name(name) or _CONTROL.search(name):
        raise NoteKeyMalformed(
            f"{what}: {name!r} must be non-empty, without spaces, '+' or control characters",
            field=what,
        )


def _check_key(value: bytes, what: str) -> None:
    if not isinstance(value, bytes) or len(value) != 32:
        raise NoteKeyMalformed(f"{what}: must be 32 raw Ed25519 bytes", field=what)


def _b64(text: str, what: str, error: type[ValidationError]) -> bytes:
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError) as e:
        raise error(f"{what}: not standard base64 (RFC 4648 section 4)", field=what) from e


def key_id(name: str, kind: KeyType, public: bytes) -> int:
    """SHA-256(name || 0x0A || type || public key)[:4] as a big-endian uint32."""
    _check_name(name)
    _check_key(public, "public")
    return int.from_bytes(sha256(name.encode() + b"\n" + bytes([kind]) + public)[:4], "big")


@dataclass(frozen=True, slots=True)
class NoteVerifier:
    """A trusted public key: signatures match it by (name, key_id) and type decides how."""

    name: str
    key_id: int
    kind: KeyType
    public: bytes

    def __post_init__(self) -> None:
        _check_name(self.name)
        _check_key(self.public, "public")
        if self.kind not in tuple(KeyType):
            raise NoteKeyMalformed(f"kind: {self.kind!r} is not 0x01 or 0x04", field="kind")


@dataclass(frozen=True, slots=True)
class NoteSigner:
    """A private key parsed from a signer key string (Ed25519 seed, type 0x01)."""

    name: str
    key_id: int
    private: bytes


def _key_string(name: str, kid: int, kind: KeyType, key: bytes) -> str:
    return f"{name}+{kid:08x}+{base64.b64encode(bytes([kind]) + key).decode()}"


def _parse_key_string(
    text: str, what: str, kinds: tuple[KeyType, ...]
) -> tuple[str, int, KeyType, bytes]:
    """``<name>+<8 hex>+<base64(type || 32 bytes)>``: split at the first two '+' only,
    since base64 uses '+' too."""
    name, _, rest = text.partition("+")
    hex_id, _, key64 = rest.partition("+")
    _check_name(name, f"{what} name")
    if not _HEX_ID.fullmatch(hex_id):
        raise NoteKeyMalformed(f"{what}: key ID must be 8 hex digits", field="key_id")
    raw = _b64(key64, what, NoteKeyMalformed)
    if len(raw) != 33 or raw[0] not in kinds:
        allowed = " or ".join(f"0x{k:02x}" for k in kinds)
        raise NoteKeyMalformed(f"{what}: must be type {allowed} and 32 key bytes", field="key")
    return name, int(hex_id, 16), KeyType(raw[0]), raw[1:]


def verifier_key(name: str, public: bytes, *, kind: KeyType = KeyType.ED25519) -> str:
    """``<name>+<hex key ID>+<base64(type || public)>``, the form verifiers are configured by."""
    return _key_string(name, key_id(name, kind, public), kind, public)


def parse_verifier_key(vkey: str) -> NoteVerifier:
    """Parse a verifier key (type 0x01 or 0x04); its key ID must match its name and key."""
    name, kid, kind, public = _parse_key_string(vkey, "verifier key", tuple(KeyType))
    if kid != key_id(name, kind, public):
        raise NoteKeyMalformed("verifier key: key ID does not match name and key", field="key_id")
    return NoteVerifier(name=name, key_id=kid, kind=kind, public=public)


def signer_key(name: str, private: bytes) -> str:
    """``PRIVATE+KEY+<name>+<hex key ID>+<base64(0x01 || seed)>`` (x/mod sumdb/note)."""
    _check_key(private, "private")
    kid = key_id(name, KeyType.ED25519, ed25519_public(private))
    return "PRIVATE+KEY+" + _key_string(name, kid, KeyType.ED25519, private)


def signer_verifier_key(skey: str) -> str:
    """The verifier key string matching a signer key string (what verifiers are given)."""
    signer = parse_signer_key(skey)
    return verifier_key(signer.name, ed25519_public(signer.private))


def parse_signer_key(skey: str) -> NoteSigner:
    """Parse a signer key; its key ID must match the public key derived from the seed."""
    if not skey.startswith("PRIVATE+KEY+"):
        raise NoteKeyMalformed("signer key: must start with PRIVATE+KEY+", field="key")
    key = _parse_key_string(skey.removeprefix("PRIVATE+KEY+"), "signer key", (KeyType.ED25519,))
    name, kid, _, private = key
    if kid != key_id(name, KeyType.ED25519, ed25519_public(private)):
        raise NoteKeyMalformed("signer key: key ID does not match name and key", field="key_id")
    return NoteSigner(name=name, key_id=kid, private=private)


# --- signed notes ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NoteSignature:
    """One signature line. ``signature`` excludes the key ID; cosignatures carry a time."""

    name: str
    key_id: int
    signature: bytes
    timestamp: int | None = None

    def line(self) -> str:
        """``— <name> base64(key ID || signature)`` and its newline."""
        blob = self.key_id.to_bytes(4, "big") + self.signature
        return f"{_DASH}{self.name} {base64.b64encode(blob).decode()}\n"


class OpenedNote(NamedTuple):
    """The verified note text and the signatures from known keys that verified it."""

    text: str
    signatures: list[NoteSignature]


def _check_text(text: str, what: str) -> None:
    if _CONTROL.search(text):
        raise NoteMalformed(f"{what}: control characters other than newline", field=what)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as e:
        raise NoteMalformed(f"{what}: not valid UTF-8", field=what) from e


def _parse_line(line: str, number: int) -> NoteSignature:
    what = f"signature line {number}"
    if not line.startswith(_DASH):
        raise NoteMalformed(f"{what}: must start with an em dash and a space", field=what)
    name, _, b64 = line[len(_DASH) :].partition(" ")
    if not _valid_name(name):
        raise NoteMalformed(f"{what}: key name must be non-empty, no spaces or '+'", field=what)
    raw = _b64(b64, what, NoteMalformed)
    if len(raw) < 5:
        raise NoteMalformed(f"{what}: must hold a 4-byte key ID and a signature", field=what)
    return NoteSignature(name=name, key_id=int.from_bytes(raw[:4], "big"), signature=raw[4:])


def parse_signature_line(line: str, number: int = 1) -> NoteSignature:
    """Parse one ``— <name> <base64>`` line (trailing newline optional); nothing is verified."""
    _check_text(line, "line")
    return _parse_line(line.removesuffix("\n"), number)


def split_note(note: str | bytes) -> tuple[str, list[NoteSignature]]:
    """Split a note into its text and its parsed signature lines, verifying nothing.

    signed-note "Format": the text ends at the last blank line; each signature line is
    ``— <name> base64(key ID || signature)``. Use :func:`open_note` to trust the text.
    """
    if isinstance(note, bytes):
        try:
            note = note.decode("utf-8")
        except UnicodeDecodeError as e:
            raise NoteMalformed("note: not valid UTF-8", field="note") from e
    _check_text(note, "note")
    # The text ends at the last blank line: signature lines are never empty.
    split = note.rfind("\n\n")
    if split < 0:
        raise NoteMalformed("note: no blank line before the signatures", field="note")
    text, block = note[: split + 1], note[split + 2 :]
    if not block.endswith("\n"):
        raise NoteMalformed("note: must end with a signature line and a newline", field="note")
    lines = block[:-1].split("\n")
    if len(lines) > _MAX_SIGNATURES:
        raise NoteMalformed(f"note: more than {_MAX_SIGNATURES} signatures", field="note")
    return text, [_parse_line(line, i) for i, line in enumerate(lines, 1)]


def verify_signature(verifier: NoteVerifier, text: str, sig: NoteSignature) -> NoteSignature:
    """Check one signature whose (name, key ID) matched ``verifier``; return it with its time.

    Type 0x01 signs the text; type 0x04 is a tlog-cosignature (only over a checkpoint).
    Raises :class:`NoteSignatureInvalid`.
    """
    who = f"{sig.name}+{sig.key_id:08x}"
    if verifier.kind == KeyType.COSIGNATURE_V1:
        from hub.crypto.checkpoint import cosigned_message  # checkpoint imports this module

        timestamp, message, signature = cosigned_message(text, sig)
    else:
        timestamp, message, signature = None, text.encode(), sig.signature
    try:
        ed25519_verify(verifier.public, signature, message)
    except SignatureInvalid as e:
        raise NoteSignatureInvalid(f"signature {who}: does not verify", field=sig.name) from e
    return NoteSignature(sig.name, sig.key_id, sig.signature, timestamp)


def open_note(note: str | bytes, verifiers: Iterable[NoteVerifier]) -> OpenedNote:
    """Split a signed note, verify every signature from a known key, return the text.

    (1) framing (UTF-8, no control characters, blank line, signature lines); (2) each line
    whose (name, key ID) is known is verified; unknown ones are ignored, as the spec
    requires; (3) any known signature that fails rejects the note (the spec's MAY);
    (4) no verified signature at all rejects it (the spec's MUST).
    """
    known: dict[tuple[str, int], NoteVerifier] = {}
    for v in verifiers:
        if known.setdefault((v.name, v.key_id), v) != v:
            raise NoteKeyMalformed(
                f"verifiers: two different keys named {v.name}+{v.key_id:08x}", field="verifiers"
            )
    text, signatures = split_note(note)
    verified: list[NoteSignature] = []
    seen: set[tuple[str, int]] = set()
    for sig in signatures:
        verifier = known.get((sig.name, sig.key_id))
        if verifier is None or (sig.name, sig.key_id) in seen:
            continue
        seen.add((sig.name, sig.key_id))
        verified.append(verify_signature(verifier, text, sig))
    if not verified:
        raise NoteUnverified("note: no signature from a known key")
    return OpenedNote(text, verified)


def sign_note(text: str, name: str, private: bytes) -> str:
    """``text``, a blank line and one Ed25519 (type 0x01) signature line by ``name``."""
    if not text.endswith("\n"):
        raise NoteMalformed("text: must end with a newline", field="text")
    _check_text(text, "text")
    _check_name(name)
    _check_key(private, "private")
    sig = NoteSignature(
        name=name,
        key_id=key_id(name, KeyType.ED25519, ed25519_public(private)),
        signature=ed25519_sign(private, text.encode()),
    )
    return f"{text}\n{sig.line()}"


def add_signatures(note: str, more_signature_lines: Iterable[str]) -> str:
    """Append signature lines (e.g. cosignatures) to a signed note, without verifying them.

    A new line replaces an existing one with the same name and key ID, as x/mod ``Sign``
    does, so a witness's fresher cosignature supersedes its older one.
    """
    text, signatures = split_note(note)
    lines = {(s.name, s.key_id): s for s in signatures}
    for i, line in enumerate(more_signature_lines, 1):
        _check_text(line, f"new signature line {i}")
        sig = _parse_line(line.removesuffix("\n"), i)
        lines.pop((sig.name, sig.key_id), None)
        lines[(sig.name, sig.key_id)] = sig
    if len(lines) > _MAX_SIGNATURES:
        raise NoteMalformed(f"note: more than {_MAX_SIGNATURES} signatures", field="note")
    return text + "\n" + "".join(s.line() for s in lines.values())
