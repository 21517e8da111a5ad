"""The node agent's data folder: settings, keys, card, database (one frozen Settings struct)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import msgspec

from node_agent.errors import NotInitialized
from schemas.codec import decode_json
from schemas.common import AuthorityId, Kind
from schemas.directory import ContactPoint, KindRequirements

__all__ = ["AgentPaths", "AgentSettings", "load_settings", "save_settings"]

DEFAULT_HUB = "nats://127.0.0.1:4222"


class AgentSettings(msgspec.Struct, frozen=True, kw_only=True):
    id: AuthorityId
    state: str
    name: str
    kinds: list[Kind]
    languages: list[str]
    hub: str = DEFAULT_HUB
    suite: str = "mlkem768x25519"
    operator_key: str | None = None  # hex Ed25519 public key of the hub operator, pinned
    requirements: list[KindRequirements] = []  # published on the card (rec. 7, 9, 21)
    contacts: list[ContactPoint] = []  # published on the card (24/7 ones for urgent requests)
    log_key: str | None = None  # the hub's checkpoint verifier key (signed-note vkey), pinned


@dataclass(frozen=True, slots=True)
class AgentPaths:
    root: Path

    @property
    def settings(self) -> Path:
        return self.root / "agent.json"

    @property
    def keys(self) -> Path:
        return self.root / "keys" / "authority.key"

    @property
    def previous_keys(self) -> Path:
        """Keys replaced by ``node-agent rotate``: ``<key id>.key``, kept to open old mail."""
        return self.root / "keys" / "previous"

    @property
    def directory_snapshot(self) -> Path:
        """The last operator-signed directory snapshot fetched (re-verified on every load)."""
        return self.root / "directory-snapshot.bin"

    @property
    def database(self) -> Path:
        return self.root / "agent.sqlite"

    @property
    def inbox(self) -> Path:
        return self.root / "inbox"

    @property
    def nats_seed(self) -> Path:
        return self.root / "keys" / "nats.seed"

    @property
    def hub_ca(self) -> Path:
        """The hub's TLS CA certificate, pinned at init (``--hub-ca``)."""
        return self.root / "hub-ca.pem"

    @property
    def learned_log_key(self) -> Path:
        """The hub's log key learned on first contact, when none was pinned at init."""
        return self.root / "hub-log.vkey"


def load_settings(paths: AgentPaths) -> AgentSettings:
    if not paths.settings.exists():
        raise NotInitialized(
            f"--data: {paths.root} holds no node agent; run `node-agent init --data {paths.root}`"
        )
    return decode_json(paths.settings.read_bytes(), AgentSettings, what="agent.json")


def save_settings(paths: AgentPaths, settings: AgentSettings) -> None:
    paths.root.mkdir(parents=True, exist_ok=True)
    paths.settings.write_bytes(msgspec.json.format(msgspec.json.encode(settings)) + b"\n")
