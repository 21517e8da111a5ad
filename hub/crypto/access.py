"""The operator's access statements: liaison accreditations, auditor admissions, revocations.

Signature: Ed25519(operator, "mla-hub/v1/access" 0x00 || statement bytes), over the canonical
bytes carried in ``AccessRequest.statement`` and recorded verbatim in ``AccessRecorded``, so
an auditor checks exactly what the operator signed (STYLE rule 4).
"""

from __future__ import annotations

from hub import ids
from hub.crypto import _primitives as p
from hub.crypto.keys import OperatorKey
from hub.errors import SignatureInvalid
from schemas.access import AccessRequest, AccessStatement
from schemas.codec import decode, encode

__all__ = ["open_statement", "sign_statement", "statement_digest", "verify_statement"]

_LABEL = b"mla-hub/v1/access\x00"


def sign_statement(statement: AccessStatement, operator: OperatorKey) -> AccessRequest:
    """Encode ``statement``, check its fields as the hub will, and sign it as the operator."""
    data = encode(statement)
    open_statement(data)  # msgspec checks constraints on decode only: fail here, not at the hub
    return AccessRequest(
        request_id=ids.uuid7(), statement=data, operator_signature=operator.sign(_LABEL + data)
    )


def verify_statement(statement: bytes, operator_public: bytes, signature: bytes) -> None:
    """Raise :class:`SignatureInvalid` unless the operator key signed these exact bytes."""
    try:
        p.ed25519_verify(operator_public, signature, _LABEL + statement)
    except SignatureInvalid as e:
        raise SignatureInvalid(
            "operator_signature: the access statement is not signed by this operator key",
            field="operator_signature",
        ) from e


def open_statement(statement: bytes) -> AccessStatement:
    """Decode an access statement (typed error naming the field on bad bytes)."""
    opened: AccessStatement = decode(statement, AccessStatement, what="statement")
    return opened


def statement_digest(statement: bytes) -> bytes:
    """SHA-256 of a statement's bytes: tells a resubmission from a conflicting reuse of its id."""
    return p.sha256(statement)
