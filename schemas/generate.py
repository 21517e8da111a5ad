"""Generate ``schemas/json/v1/*.json`` from the Structs (STYLE rule 10).

Run ``python -m schemas.generate`` after changing a schema; a test fails when the checked-in
files differ from what this produces.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import msgspec

from schemas.access import AccessRequest, ConsentFile, TokenFile
from schemas.directory import AdmittedCard, CardFile, DirectorySnapshot, SignedSnapshot
from schemas.disclosure import Disclosure
from schemas.envelope import Body, Envelope, Header
from schemas.ledger import LedgerEntry
from schemas.receipt import Receipt, ReceiptBody
from schemas.transparency import ConsistencyProof, InclusionProof
from schemas.transport import Deliveries, Delivery, Submission, Verdict, Verdicts

__all__ = ["DOCUMENTS", "OUTPUT", "render", "write"]

OUTPUT = Path(__file__).parent / "json" / "v1"

DOCUMENTS: dict[str, Any] = {
    "authority-card-file": CardFile,
    "admitted-card": AdmittedCard,
    "directory-snapshot": DirectorySnapshot,
    "signed-directory-snapshot": SignedSnapshot,
    "envelope": Envelope,
    "envelope-header": Header,
    "envelope-body": Body,
    "receipt": Receipt,
    "receipt-body": ReceiptBody,
    "ledger-entry": LedgerEntry,
    "submission": Submission,
    "delivery": Delivery,
    "deliveries": Deliveries,
    "verdict": Verdict,
    "verdicts": Verdicts,
    "inclusion-proof": InclusionProof,
    "consistency-proof": ConsistencyProof,
    "disclosure": Disclosure,
    "liaison-consent-file": ConsentFile,
    "access-token-file": TokenFile,
    "access-request": AccessRequest,
}


def render() -> dict[str, bytes]:
    """File name -> JSON Schema document bytes, deterministic."""
    out: dict[str, bytes] = {}
    for name, type_ in DOCUMENTS.items():
        schema = msgspec.json.schema(type_)
        schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        schema["$id"] = f"https://mla-hub.example/schemas/v1/{name}.json"
        encoded = msgspec.json.encode(schema, order="sorted")
        out[f"{name}.json"] = msgspec.json.format(encoded, indent=2) + b"\n"
    return out


def write() -> list[Path]:
    OUTPUT.mkdir(parents=True, exist_ok=True)
    written = []
    for name, data in render().items():
        path = OUTPUT / name
        path.write_bytes(data)
        written.append(path)
    return written


if __name__ == "__main__":
    for path in write():
        sys.stdout.write(f"wrote {path.name}\n")
