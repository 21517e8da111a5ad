"""Creating an authority's identity: keys on disk (0600), settings, and its signed card."""

from __future__ import annotations

from datetime import datetime, timedelta

from hub.crypto import cards
from hub.crypto.keys import AuthorityKeys
from hub.errors import ValidationError
from hub.keyfiles import write_private
from node_agent.config import AgentPaths, AgentSettings, save_settings
from node_agent.store import AgentStore
from schemas.codec import decode
from schemas.directory import AuthorityCard, CardFile

__all__ = ["card_file", "init_agent"]


def card_file(
    settings: AgentSettings, keys: AuthorityKeys, *, now: datetime, valid_days: int = 365
) -> CardFile:
    """The self-signed card an operator admits, with a readable copy of what was signed."""
    start = now.replace(microsecond=0)
    card = AuthorityCard(
        id=settings.id,
        state=settings.state,
        name=settings.name,
        kinds=settings.kinds,
        languages=settings.languages,
        requirements=settings.requirements,
        keys=keys.public(),
        valid_from=start - timedelta(minutes=5),  # tolerate small clock differences
        valid_until=start + timedelta(days=valid_days),
    )
    signed = cards.sign_card(card, keys)
    return CardFile(signed=signed, readable=decode(signed.card, AuthorityCard, what="card"))


def init_agent(paths: AgentPaths, settings: AgentSettings, *, now: datetime) -> AuthorityKeys:
    """Create keys, settings and database in a new data folder."""
    if paths.settings.exists():
        raise ValidationError(f"--data: {paths.root} already holds a node agent", field="data")
    if settings.operator_key is not None:
        try:
            valid = len(bytes.fromhex(settings.operator_key)) == 32
        except ValueError:
            valid = False
        if not valid:
            raise ValidationError("--operator-key: must be 64 hex characters", field="operator_key")
    keys = AuthorityKeys.generate("x25519" if settings.suite == "x25519" else "mlkem768x25519")
    card_file(settings, keys, now=now)  # validates every card field before anything is written
    write_private(paths.keys, keys.to_bytes())
    save_settings(paths, settings)
    AgentStore(paths.database).close()
    return keys
