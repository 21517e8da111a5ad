"""Wire schemas: generated JSON Schema is current, encoding is deterministic and versioned."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from hub.errors import Malformed, SchemaInvalid
from schemas import generate
from schemas.codec import decode, encode
from schemas.envelope import CaseMeta, Header


def test_checked_in_json_schemas_are_current() -> None:
    """A stale file fails with its name (fix: run `python -m schemas.generate`)."""
    rendered = generate.render()
    on_disk = {p.name: p.read_bytes() for p in generate.OUTPUT.glob("*.json")}
    assert sorted(on_disk) == sorted(rendered)
    stale = [name for name, data in rendered.items() if on_disk[name] != data]
    assert stale == [], f"stale JSON Schema files: {stale}; run python -m schemas.generate"


def _header(**changes: object) -> Header:
    fields: dict[str, object] = {
        "message_id": "01a20db9-9003-75a2-b9f1-c30b99ac8960",
        "case_id": "01a20db9-9000-7b1c-8313-afd169a9fbfb",
        "type": "request.submit",
        "sender": "XA-MOJ",
        "sender_key_id": "0011223344556677",
        "recipients": ["XB-MOJ"],
        "sent_at": datetime(2026, 11, 24, 12, 0, tzinfo=UTC),
        "meta": CaseMeta(kind="extradition", nature=["taking-evidence"]),
    }
    fields.update(changes)
    return Header(**fields)  # type: ignore[arg-type]


def test_encoding_is_deterministic_and_tagged() -> None:
    one, two = encode(_header()), encode(_header())
    assert one == two
    assert b"mla.envelope.header.v1" in one
    assert decode(one, Header) == _header()


@pytest.mark.parametrize(
    ("field", "value", "where"),
    [
        ("sender", "xa-moj", "$.sender"),
        ("recipients", [], "$.recipients"),
        ("message_id", "not-a-uuid", "$.message_id"),
        ("type", "request.teleport", "$.type"),
    ],
)
def test_bad_field_is_named(field: str, value: object, where: str) -> None:
    with pytest.raises(SchemaInvalid) as caught:
        decode(encode(_header(**{field: value})), Header)
    assert caught.value.field == where
    assert where in str(caught.value)


def test_garbage_is_malformed() -> None:
    with pytest.raises(Malformed, match="not valid msgpack"):
        decode(b"\xc1", Header)
