"""Creating an authority's identity: keys on disk (0600), settings, and its signed card; and
rotating its keys (DESIGN.md section 4: rotation is signed by the old key).

Key files: ``keys/authority.key`` is the current pair; ``node-agent rotate`` moves the pair it
replaces to ``keys/previous/<key id>.key`` (0600, never deleted), so messages sealed to an old
key can still be opened (:func:`load_keyring`).
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta

import msgspec

from hub.crypto import cards
from hub.crypto.keys import AuthorityKeys
from hub.crypto.tls import load_ca
from hub.errors import ValidationError
from hub.gateway.nats_security import ClientCredentials, NatsIdentity
from hub.keyfiles import read_private, write_private
from hub.ledger.transparency import LogVerifier
from node_agent.config import AgentPaths, AgentSettings, save_settings
from node_agent.store import AgentStore
from schemas.codec import decode
from schemas.directory import AuthorityCard, CardFile, ContactPoint

__all__ = [
    "card_file",
    "init_agent",
    "load_keyring",
    "nats_credentials",
    "nats_public",
    "parse_contact",
    "previous_keys",
    "rotate_keys",
]

_AVAILABILITY = ("", "24/7", "office-hours")


def card_file(
    settings: AgentSettings,
    keys: AuthorityKeys,
    *,
    now: datetime,
    valid_days: int = 365,
    nats_public: str | None = None,
    previous: AuthorityKeys | None = None,
) -> CardFile:
    """The self-signed card an operator admits, with a readable copy of what was signed.

    With ``previous`` (the pair ``keys`` replaces), the card names it as ``previous_key_id``
    and carries its rotation signature.
    """
    start = now.replace(microsecond=0)
    card = AuthorityCard(
        id=settings.id,
        state=settings.state,
        name=settings.name,
        kinds=settings.kinds,
        languages=settings.languages,
        requirements=settings.requirements,
        contacts=settings.contacts,
        keys=msgspec.structs.replace(keys.public(), nats=nats_public),
        valid_from=start - timedelta(minutes=5),  # tolerate small clock differences
        valid_until=start + timedelta(days=valid_days),
        previous_key_id=None if previous is None else previous.key_id,
    )
    signed = cards.sign_card(card, keys)
    if previous is not None:
        signed = cards.sign_rotation(signed, previous)
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
    if settings.log_key is not None:
        LogVerifier(settings.log_key)  # a malformed key is refused before anything is written
    if hub_ca is not None:
        load_ca(hub_ca)  # refuse a file that is not a certificate before writing anything else
        paths.hub_ca.write_bytes(hub_ca)
    save_settings(paths, settings)
    AgentStore(paths.database).close()
    return keys


def parse_contact(text: str) -> ContactPoint:
    """``NAME|email|phone|availability`` (``node-agent init --contact``): only NAME is
    required; availability is ``24/7`` (reachable for urgent requests) or ``office-hours``."""
    parts = [part.strip() for part in text.split("|")]
    if len(parts) > 4 or not parts[0]:
        raise ValidationError(
            f"--contact: {text!r} is not NAME|email|phone|24/7 (only NAME is required)",
            field="contact",
        )
    name, email, phone, hours = (*parts, "", "", "")[:4]
    if email and ("@" not in email or any(c.isspace() for c in email)):
        raise ValidationError(f"--contact: {email!r} is not an email address", field="contact")
    if hours not in _AVAILABILITY:
        raise ValidationError(
            f"--contact: availability {hours!r} must be 24/7 or office-hours", field="contact"
        )
    if len(name) > 200:
        raise ValidationError("--contact: the name is longer than 200 characters", field="contact")
    return ContactPoint(
        name=name, email=email or None, phone=phone or None, available_24_7=hours == "24/7"
    )


def rotate_keys(
    paths: AgentPaths, settings: AgentSettings, *, now: datetime, valid_days: int = 365
) -> tuple[AuthorityKeys, CardFile]:
    """New keys for this authority, and their card signed by the keys they replace.

    Crash-safe order: the new card is made (and checked) first; the old pair is kept in
    ``keys/previous/<key id>.key``; the new pair is written beside ``keys/authority.key`` and
    renamed over it. From then on the agent signs with the new keys: the hub accepts them once
    the operator admits the printed card (``hub admit``).
    """
    old = AuthorityKeys.from_bytes(read_private(paths.keys))
    new = AuthorityKeys.generate(old.suite)
    made = card_file(
        settings,
        new,
        now=now,
        valid_days=valid_days,
        nats_public=nats_public(paths, settings.id),
        previous=old,
    )
    kept = paths.previous_keys / f"{old.key_id}.key"
    if not kept.exists():  # present after a crashed earlier run: it holds the same pair
        write_private(kept, old.to_bytes())
    staged = paths.keys.with_name(paths.keys.name + ".new")
    staged.unlink(missing_ok=True)
    write_private(staged, new.to_bytes())
    os.replace(staged, paths.keys)
    return new, made


def previous_keys(paths: AgentPaths) -> list[AuthorityKeys]:
    """The pairs ``node-agent rotate`` replaced (to open messages sealed before a rotation)."""
    if not paths.previous_keys.is_dir():
        return []
    return [
        AuthorityKeys.from_bytes(read_private(path))
        for path in sorted(paths.previous_keys.glob("*.key"))
    ]


def load_keyring(paths: AgentPaths) -> list[AuthorityKeys]:
    """Every private key pair of this authority: the current one first, then the replaced."""
    return [AuthorityKeys.from_bytes(read_private(paths.keys)), *previous_keys(paths)]


def nats_public(paths: AgentPaths, authority: str) -> str:
    """This authority's NATS user public key, for its card."""
    return NatsIdentity.from_seed(authority, read_private(paths.nats_seed)).public


def nats_credentials(paths: AgentPaths, authority: str) -> ClientCredentials | None:
    """TLS + nkey credentials when the hub's CA was pinned at init, else None (plain NATS)."""
    if not paths.hub_ca.exists():
        return None
    identity = NatsIdentity.from_seed(authority, read_private(paths.nats_seed))
    return ClientCredentials.of(identity, paths.hub_ca.read_bytes())
