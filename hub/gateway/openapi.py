"""The read API's OpenAPI 3.1 document, generated from the same types the handlers encode.

Response schemas come from ``msgspec.json.schema_components`` over the projections' dataclasses
and the view types, so the document cannot drift from what the API sends (DESIGN.md 7).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

import msgspec

from hub.gateway.views import ApiError, DirectoryItem, Health, LedgerItem, WhoAmI
from hub.ledger.projections.cases import CaseStatus, TrailItem
from hub.ledger.projections.review import Review
from hub.ledger.projections.stats import GROUPINGS, Statistics
from schemas.access import CaseCopies

__all__ = ["PATHS", "openapi_json"]

_ALL = "operator, auditor, authority (its cases), liaison (its pair's cases)"
_META = "operator, auditor"


@dataclass(frozen=True, slots=True)
class _Param:
    name: str
    where: str = "query"
    type: str = "string"
    enum: tuple[str, ...] = ()
    help: str = ""


@dataclass(frozen=True, slots=True)
class _Path:
    path: str
    summary: str
    roles: str
    response: Any  # a type for schema_components, or None for non-JSON
    params: tuple[_Param, ...] = ()
    media: tuple[str, ...] = ()
    public: bool = False


_FORMAT_HELP = "json (default) or an export format"
PATHS: tuple[_Path, ...] = (
    _Path("/api/v1/whoami", "The scope of the token in use", _ALL, WhoAmI),
    _Path(
        "/api/v1/status", "Case status: state, holder, deadline, overdue, handling", _ALL,
        list[CaseStatus],
        (_Param("case", help="one case id"), _Param("authority", help="cases of one authority"),
         _Param("overdue", type="boolean", help="only cases past their deadline"),
         _Param("format", enum=("json", "csv"), help=_FORMAT_HELP)),
        ("text/csv",),
    ),
    _Path(
        "/api/v1/cases/{case_id}/trail", "Every ledger entry of one case", _ALL, list[TrailItem],
        (_Param("case_id", where="path"),),
    ),
    _Path(
        "/api/v1/review", "Bilateral case review of two authorities (rec. 11)", _ALL, Review,
        (_Param("first", help="authority id (default: a liaison officer's pair)"),
         _Param("second"), _Param("since", help="ISO 8601 date"),
         _Param("until", help="ISO 8601 date"),
         _Param("format", enum=("json", "csv", "html", "svg"), help=_FORMAT_HELP)),
        ("text/csv", "text/html", "image/svg+xml"),
    ),
    _Path(
        "/api/v1/stats", "Statistics over the cases in scope (rec. 6)", _ALL, Statistics,
        (_Param("by", enum=GROUPINGS), _Param("format", enum=("json", "csv", "svg"))),
        ("text/csv", "image/svg+xml"),
    ),
    _Path(
        "/api/v1/cases/{case_id}/copies",
        "Sealed copies of the messages the home authority copied this liaison officer on, with"
        " the operator-signed directory snapshot and sender cards to check them (rec. 16)",
        "liaison (its pair's cases)", CaseCopies, (_Param("case_id", where="path"),),
    ),
    _Path("/api/v1/directory", "Admitted authorities and their cards", "everyone",
          list[DirectoryItem]),
    _Path(
        "/api/v1/ledger", "Ledger entry metadata and leaf hashes (no content)", _META,
        list[LedgerItem],
        (_Param("from", type="integer"), _Param("limit", type="integer", help="at most 1000")),
    ),
    _Path(
        "/api/v1/checkpoint", "A signed checkpoint note (C2SP tlog-checkpoint), newest by default",
        "operator, auditor, authority", None, (_Param("size", type="integer"),), ("text/plain",),
    ),
    _Path(
        "/api/v1/events", "Server-sent events: status, directory and (operator, auditor) entry",
        _ALL, None, media=("text/event-stream",),
    ),
    _Path("/api/v1/openapi.json", "This document", "public", None, public=True),
    _Path("/healthz", "Liveness and ledger position", "public", Health, public=True),
    _Path("/metrics", "Prometheus text metrics", _META, None, media=("text/plain",)),
    _Path("/", "The dashboard (HTML; token kept in sessionStorage)", "public", None,
          media=("text/html",), public=True),
)  # fmt: skip


def _operation(p: _Path, ref: dict[str, Any] | None, error: dict[str, Any]) -> dict[str, Any]:
    content: dict[str, Any] = {}
    if ref is not None:
        content["application/json"] = {"schema": ref}
    for media in p.media:
        content[media] = {"schema": {"type": "string"}}
    if not content:
        content["application/json"] = {"schema": {}}
    responses: dict[str, Any] = {"200": {"description": "OK", "content": content}}
    problem = {"content": {"application/json": {"schema": error}}}
    if not p.public:
        responses["401"] = {"description": "no, unknown, expired or revoked token", **problem}
        responses["403"] = {"description": "out of the token's scope", **problem}
    if p.params:
        responses["400"] = {"description": "bad parameter", **problem}
    operation: dict[str, Any] = {
        "summary": p.summary,
        "description": f"Roles: {p.roles}.",
        "responses": responses,
        "parameters": [
            {
                "name": q.name,
                "in": q.where,
                "required": q.where == "path",
                "description": q.help,
                "schema": {"type": q.type, **({"enum": list(q.enum)} if q.enum else {})},
            }
            for q in p.params
        ],
    }
    if p.public:
        operation["security"] = []
    return operation


@cache
def openapi_json(title: str) -> bytes:
    """The OpenAPI 3.1 document (JSON bytes) for a hub named ``title``."""
    typed = [p.response for p in PATHS if p.response is not None]
    refs, components = msgspec.json.schema_components(
        [*typed, ApiError], ref_template="#/components/schemas/{name}"
    )
    *response_refs, error = refs
    by_path = dict(
        zip([p.path for p in PATHS if p.response is not None], response_refs, strict=True)
    )
    document = {
        "openapi": "3.1.0",
        "info": {
            "title": f"{title} read API",
            "version": "1",
            "description": "Metadata of cases, reviews, statistics, the directory and the ledger"
            " of an MLA hub. The hub holds no case content. Bearer tokens are scoped by role and"
            " pair (`hub token issue`, `hub liaison accredit`).",
        },
        "jsonSchemaDialect": "https://json-schema.org/draft/2020-12/schema",
        "security": [{"bearer": []}],
        "paths": {p.path: {"get": _operation(p, by_path.get(p.path), error)} for p in PATHS},
        "components": {
            "schemas": components,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "mlah_<id>_<secret>"}
            },
        },
    }
    return msgspec.json.encode(document, order="sorted")
