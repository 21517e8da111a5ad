"""Canonical bytes for every wire struct, and the decoders that turn bad bytes into typed errors.

Canonical form (DESIGN.md section 4): msgpack, struct fields in definition order, any map keys
sorted (``order="deterministic"``). Signatures are always made and checked over these exact
bytes, never over a re-encoding (STYLE rule 4). One encoder and one decoder per type are built
once and reused.
"""

from __future__ import annotations

from functools import cache
from typing import Any, TypeVar, overload

import msgspec

from hub.errors import Malformed, SchemaInvalid

__all__ = ["Evolving", "Strict", "decode", "decode_json", "encode", "encode_json", "to_builtins"]

T = TypeVar("T")

_ENCODER = msgspec.msgpack.Encoder(order="deterministic")
_JSON_ENCODER = msgspec.json.Encoder(order="deterministic")


class Strict(
    msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, tag_field="schema"
):
    """Base of outer wire structs: unknown fields are an error."""


class Evolving(msgspec.Struct, frozen=True, kw_only=True, tag_field="schema"):
    """Base of inner payloads that may gain fields: unknown fields are ignored on decode."""


def encode(value: object) -> bytes:
    """Canonical msgpack bytes of ``value``."""
    return _ENCODER.encode(value)


def encode_json(value: object) -> bytes:
    """Deterministic JSON (bytes as base64), for files and ``--json`` output."""
    return _JSON_ENCODER.encode(value)


def to_builtins(value: object) -> Any:
    """Plain Python data (bytes as base64 strings) for JSON output."""
    return msgspec.to_builtins(value, order="deterministic")


@cache
def _msgpack_decoder(type_: Any) -> msgspec.msgpack.Decoder[Any]:
    return msgspec.msgpack.Decoder(type_)


@cache
def _json_decoder(type_: Any) -> msgspec.json.Decoder[Any]:
    return msgspec.json.Decoder(type_)


def _describe(type_: Any) -> str:
    return getattr(type_, "__name__", None) or str(type_)


@overload
def decode(data: bytes, type_: type[T], *, what: str | None = None) -> T: ...
@overload
def decode(data: bytes, type_: Any, *, what: str | None = None) -> Any: ...
def decode(data: bytes, type_: Any, *, what: str | None = None) -> Any:
    """Decode canonical msgpack into ``type_`` or raise :class:`Malformed` / :class:`SchemaInvalid`.

    The error message names the offending field path (msgspec reports it as ``$.field``).
    """
    name = what or _describe(type_)
    try:
        result = _msgpack_decoder(type_).decode(data)
    except msgspec.ValidationError as e:
        raise SchemaInvalid(f"{name}: {e}", field=_field_of(e)) from e
    except (msgspec.DecodeError, ValueError, OverflowError) as e:  # bad UTF-8 is a ValueError
        raise Malformed(f"{name}: not valid msgpack ({e})") from e
    return result


@overload
def decode_json(data: bytes | str, type_: type[T], *, what: str | None = None) -> T: ...
@overload
def decode_json(data: bytes | str, type_: Any, *, what: str | None = None) -> Any: ...
def decode_json(data: bytes | str, type_: Any, *, what: str | None = None) -> Any:
    """Like :func:`decode`, for JSON documents (cards, configuration)."""
    name = what or _describe(type_)
    try:
        result = _json_decoder(type_).decode(data)
    except msgspec.ValidationError as e:
        raise SchemaInvalid(f"{name}: {e}", field=_field_of(e)) from e
    except (msgspec.DecodeError, ValueError, OverflowError) as e:  # bad UTF-8 is a ValueError
        raise Malformed(f"{name}: not valid JSON ({e})") from e
    return result


def _field_of(error: msgspec.ValidationError) -> str | None:
    text = str(error)
    marker = "at `"
    if marker in text:
        return text.split(marker, 1)[1].split("`", 1)[0]
    return None
