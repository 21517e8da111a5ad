"""What an audit answers: the first :class:`Divergence`, or a :class:`Report` (DESIGN.md section 4).

Both are tagged, frozen wire structs so ``audit verify --json`` has a stable, versioned shape
(STYLE rule 8). ``check`` is a stable snake_case id from :data:`CHECKS`; ``index`` is the ledger
entry the divergence is located at (``None`` when it concerns a checkpoint as a whole) and
``checkpoint`` the tree size of the checkpoint concerned.

Divergences are ordered by where they occur in the replay (:func:`rank`), so the verifier can
run checks out of order (signatures on a process pool) and still name the *first* one.
"""

from __future__ import annotations

from typing import Final

from schemas.codec import Strict

__all__ = [
    "CHECKPOINT_CHECKS",
    "CHECKS",
    "ENTRY_CHECKS",
    "Divergence",
    "Rank",
    "Report",
    "rank",
]

Rank = tuple[int, int]

ENTRY_CHECKS: Final[dict[str, int]] = {
    # check id -> step of the per-entry checklist (hub.audit.replay), in the order they run
    "entry_decode": 1,
    "entry_index": 2,
    "operator_key": 3,
    "sender_key": 3,
    "receipt_key": 3,
    "operator_signature": 4,
    "sender_signature": 4,
    "receipt_signature": 4,
    "rotation_signature": 4,
    "revocation_signature": 4,
    "authority_card": 5,
    "rotation": 5,
    "revocation": 5,
    "unknown_recipient": 6,
    "revoked_party": 6,
    "duplicate_message": 6,
    "receipt_reference": 6,
    "lifecycle": 7,
    "fold": 8,
}
"""Checks on one entry, by checklist step."""

CHECKPOINT_CHECKS: Final[dict[str, int]] = {
    "checkpoint_signature": 101,
    "checkpoint_format": 102,
    "checkpoint_origin": 103,
    "checkpoint_order": 104,
    "split_view": 105,
    "checkpoint_root": 106,
    "consistency": 107,
    "missing_entries": 108,
}
"""Checks on one checkpoint, by step; a checkpoint is checked after the entries it covers."""

CHECKS: Final[tuple[str, ...]] = (
    "trust_anchor",
    *ENTRY_CHECKS,
    *CHECKPOINT_CHECKS,
    "witnesses",
    "projection",
)
"""Every check id an audit can report, in replay order."""


class Divergence(Strict, frozen=True, kw_only=True, tag="mla.audit.divergence.v1"):
    """The first place where the history does not check out."""

    index: int | None
    checkpoint: int | None
    check: str
    expected: str
    found: str
    message: str


class Report(Strict, frozen=True, kw_only=True, tag="mla.audit.report.v1"):
    """A replay that found no divergence: what was verified."""

    entries: int
    checkpoints: int
    signatures: int
    envelopes: int
    receipts: int
    admissions: int
    rejections: int
    tree_root: str
    final_size: int | None
    final_root: str | None
    unanchored: int
    """Entries after the final checkpoint: consistent, but not yet covered by a signed root."""
    witnesses: list[str]
    """Admitted authorities whose cosignature on the final checkpoint verifies."""
    rotations: int = 0
    """Admissions of new keys, each with its rotation signature by the previous key checked."""
    revocations: int = 0
    accreditations: int = 0  # liaison officers and auditors accredited, or revoked


def rank(divergence: Divergence, position: int) -> Rank:
    """Where ``divergence`` occurs in the replay: (entry position, checklist step).

    ``position`` is the entry it was found at (for checkpoint checks: the last entry fed when
    the checkpoint was checked). A smaller rank happened first.
    """
    step = ENTRY_CHECKS.get(divergence.check) or CHECKPOINT_CHECKS.get(divergence.check)
    if divergence.check == "trust_anchor":
        return (-1, 0)
    if step is None:  # witnesses, projection: after the whole history
        return (1 << 62, 0)
    return (position, step)
