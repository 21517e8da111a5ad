"""Pre-send quality control (resolution 7/4 rec. 7, 9, 21): a draft against the recipient's card.

Pure: the card and the draft are arguments. Each unmet requirement is returned by a stable name
(``language:xx``, ``attachment:<role>``, ``field:<name>``, ``kind:<kind>``) with a sentence a
legal officer can act on.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from schemas.directory import AuthorityCard

__all__ = ["Draft", "Unmet", "check_draft"]


@dataclass(frozen=True, slots=True)
class Draft:
    kind: str
    language: str | None
    attachment_roles: Sequence[str]
    fields: Sequence[str]


@dataclass(frozen=True, slots=True)
class Unmet:
    name: str
    explanation: str


def check_draft(draft: Draft, card: AuthorityCard) -> list[Unmet]:
    """Every requirement of ``card`` for ``draft.kind`` that the draft does not meet."""
    unmet: list[Unmet] = []
    if draft.kind not in card.kinds:
        unmet.append(
            Unmet(f"kind:{draft.kind}", f"{card.id} does not handle {draft.kind} requests")
        )
    requirements = next((r for r in card.requirements if r.kind == draft.kind), None)
    languages = (requirements.languages if requirements and requirements.languages else None) or (
        card.languages
    )
    if draft.language is None or draft.language not in languages:
        unmet.append(
            Unmet(
                f"language:{draft.language or 'unset'}",
                f"{card.id} accepts {draft.kind} requests in {', '.join(languages)}; "
                f"this draft is in {draft.language or 'an unstated language'}",
            )
        )
    if requirements is not None:
        for role in requirements.attachments_required:
            if role not in draft.attachment_roles:
                unmet.append(
                    Unmet(f"attachment:{role}", f"attach the {role} (--attach {role}=FILE)")
                )
        for name in requirements.fields_required:
            if name not in draft.fields:
                unmet.append(Unmet(f"field:{name}", f"fill in {name} (--field-file {name}=FILE)"))
    return unmet
