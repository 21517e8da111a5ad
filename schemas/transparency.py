"""The transparency protocol between hub and node agents (DESIGN.md section 4; issue 4).

Verdicts and deliveries carry the exact ledger entry, a signed checkpoint (C2SP
tlog-checkpoint in a signed note) and the RFC 9162 inclusion proof of the entry in it. Agents
keep the newest checkpoint they verified and ask the hub (core NATS request/reply) for the
consistency proof to every newer one; after verifying it they cosign (C2SP tlog-cosignature)
and hand the cosignature back to the hub, which serves each checkpoint with the cosignatures it
gathered.

Subjects: ``mla.hub.checkpoint`` (latest note), ``mla.hub.consistency`` (a proof),
``mla.hub.cosign.<ID>`` (an authority's cosignature).
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from schemas.codec import Strict

__all__ = [
    "ConsistencyProof",
    "ConsistencyRequest",
    "CosignatureSubmission",
    "InclusionProof",
    "TransparencyReply",
]

Size = Annotated[int, msgspec.Meta(ge=0)]


class InclusionProof(Strict, frozen=True, kw_only=True, tag="mla.transparency.inclusion.v1"):
    """Public contract of ``hub proof inclusion --json`` (hashes hex in JSON)."""

    leaf_index: Size
    tree_size: Size
    leaf_hash: bytes
    hashes: list[bytes]


class ConsistencyRequest(
    Strict, frozen=True, kw_only=True, tag="mla.transparency.consistency_request.v1"
):
    from_size: Size
    to_size: Size


class ConsistencyProof(Strict, frozen=True, kw_only=True, tag="mla.transparency.consistency.v1"):
    """Public contract of ``hub proof consistency --json`` (hashes hex in JSON)."""

    from_size: Size
    to_size: Size
    hashes: list[bytes]


class CosignatureSubmission(
    Strict, frozen=True, kw_only=True, tag="mla.transparency.cosignature.v1"
):
    """A witness's cosignature line (C2SP tlog-cosignature) on the checkpoint of ``size``."""

    size: Size
    line: str


class TransparencyReply(Strict, frozen=True, kw_only=True, tag="mla.transparency.reply.v1"):
    status: Literal["ok", "error"]
    detail: str = ""
    code: str = ""  # with "error": the hub's error code; "unavailable" means ask again later
    note: str | None = None  # mla.hub.checkpoint: the signed checkpoint with cosignatures
    proof: ConsistencyProof | None = None
