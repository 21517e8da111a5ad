"""Creating an authority's identity: keys on disk (0600), settings, and its signed card."""

from __future__ import annotations

from datetime import datetime, timedelta

import msgspec

from hub.crypto import cards
from hub.crypto.keys import AuthorityKeys
from hub.crypto.tls import load_ca
from hub.errors import ValidationError
from hub.gateway.nats_security import ClientCredentials, NatsIdentity
from hub.keyfiles import read_private, write_private
from node_agent.config import AgentPaths, AgentSettings, save_settings
from node_agent.store import AgentStore
from schemas.codec import decode
from schemas.directory import AuthorityCard, CardFile

__all__ = ["card_file", "init_agent", "nats_credentials", "nats_public"]


def card_file(
    settings: AgentSettings,
    keys: AuthorityKeys,
    *,
    now: datetime,
    valid_days: int = 365,
    nats_public: str | None = None,
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
        keys=msgspec.structs.replace(keys.public(), nats=nats_public),
        valid_from=start - timedelta(minutes=5),  # tolerate small clock differences
        valid_until=start + timedelta(days=valid_days),
    )
    signed = cards.sign_card(card, keys)
    return CardFile(signed=signed, readable=decode(signed.card, AuthorityCard, what="card"))


def init_agent(
    paths: AgentPaths, settings: AgentSettings, *, now: datetime, hub_ca: bytes | None = None
) -> AuthorityKeys:
    """Create keys (signing, encryption, NATS nkey), settings and database in a new folder.

    ``hub_ca`` is the hub's TLS CA certificate (PEM); with it the agent connects over TLS with
    its nkey, as a hub made by ``hub init`` requires.
    """
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
    write_private(paths.nats_seed, NatsIdentity.generate(settings.id).seed)
    if hub_ca is not None:
        load_ca(hub_ca)  # refuse a file that is not a certificate before writing anything else
        paths.hub_ca.write_bytes(hub_ca)
    save_settings(paths, settings)
    AgentStore(paths.database).close()
    return keys


def nats_public(paths: AgentPaths, authority: str) -> str:
    """This authority's NATS user public key, for its card."""
    return NatsIdentity.from_seed(authority, read_private(paths.nats_seed)).public


def nats_credentials(paths: AgentPaths, authority: str) -> ClientCredentials | None:
    """TLS + nkey credentials when the hub's CA was pinned at init, else None (plain NATS)."""
    if not paths.hub_ca.exists():
        return None
    identity = NatsIdentity.from_seed(authority, read_private(paths.nats_seed))
    return ClientCredentials.of(identity, paths.hub_ca.read_bytes())
