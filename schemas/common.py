"""Constrained scalar types shared by every wire schema (DESIGN.md sections 4 and 5).

These are ``Annotated`` types, so msgspec enforces them on every decode and writes them into
the generated JSON Schema.
"""

from __future__ import annotations

import re
from typing import Annotated, Final, Literal

import msgspec

__all__ = [
    "AUTHORITY_ID_PATTERN",
    "CASE_MESSAGE_TYPES",
    "AuthorityId",
    "Digest",
    "Kind",
    "MessageId",
    "MessageType",
    "StateCode",
    "UUID_RE",
    "is_authority_id",
]

AUTHORITY_ID_PATTERN: Final = r"^[A-Z]{2}-[A-Z0-9-]{2,32}$"
_UUID_PATTERN: Final = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"

AuthorityId = Annotated[
    str,
    msgspec.Meta(
        pattern=AUTHORITY_ID_PATTERN,
        description="Directory id of an authority: State code, dash, 2-32 of A-Z 0-9 -",
        examples=["XA-MOJ"],
    ),
]
MessageId = Annotated[
    str, msgspec.Meta(pattern=_UUID_PATTERN, description="Lower-case UUID (v7 when minted here)")
]
Digest = Annotated[bytes, msgspec.Meta(min_length=32, max_length=32, description="SHA-256 digest")]
StateCode = Annotated[
    str,
    msgspec.Meta(pattern=r"^[A-Z]{2}$", description="ISO 3166-1 alpha-2 (user-assigned allowed)"),
]

Kind = Literal["mla", "extradition", "transfer-of-sentenced-persons", "confiscation"]

MessageType = Literal[
    "consultation.open",
    "consultation.message",
    "consultation.close",
    "request.submit",
    "request.acknowledge",
    "request.supplement_requested",
    "request.supplemented",
    "request.transfer",
    "request.progress",
    "request.postpone",
    "request.refusal_consultation",
    "request.refuse",
    "request.execute",
    "request.withdraw",
    "case.close",
]
CASE_MESSAGE_TYPES: Final[tuple[str, ...]] = MessageType.__args__  # type: ignore[attr-defined]

_AUTHORITY_ID_RE: Final = re.compile(AUTHORITY_ID_PATTERN)
UUID_RE: Final = re.compile(_UUID_PATTERN)


def is_authority_id(value: str) -> bool:
    """True when ``value`` is a well-formed authority id."""
    return _AUTHORITY_ID_RE.fullmatch(value) is not None
