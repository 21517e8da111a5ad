"""The hub's data folder and its one frozen Settings struct (STYLE rule 14)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import msgspec

from hub.errors import ValidationError
from schemas.codec import decode_json

__all__ = ["HubPaths", "HubSettings", "RunInfo", "load_settings", "nats_url_for", "save_settings"]


class HubSettings(msgspec.Struct, frozen=True, kw_only=True):
    origin: str = "mla-hub.example"  # names the hub (checkpoint origin line)
    nats_url: str = "nats://127.0.0.1:4222"  # used by every command when no --nats is given
    nats_port: int = 4222  # where `hub up` starts the embedded server
    max_submission_bytes: int = 4 * 1024 * 1024
    replicas: int = 1
    sync_always: bool = True
    nats_hosts: tuple[str, ...] = ("127.0.0.1", "::1", "localhost")  # in the TLS certificate
    http_port: int | None = None  # `hub up` serves the read API and dashboard here (0: any)
    http_host: str = "127.0.0.1"  # loopback unless the operator puts a TLS proxy in front


class RunInfo(msgspec.Struct, frozen=True, kw_only=True):
    """Written by a running ``hub up`` so that other commands find its NATS URL."""

    nats_url: str
    pid: int


@dataclass(frozen=True, slots=True)
class HubPaths:
    root: Path

    @property
    def settings(self) -> Path:
        return self.root / "hub.json"

    @property
    def keys_dir(self) -> Path:
        return self.root / "keys"

    @property
    def operator_key(self) -> Path:
        return self.root / "keys" / "operator.key"

    @property
    def log_key(self) -> Path:
        """The checkpoint-signing note key (signed-note signer key string), mode 0600."""
        return self.root / "keys" / "log.key"

    @property
    def tls_dir(self) -> Path:
        return self.root / "nats" / "tls"

    @property
    def hub_ca(self) -> Path:
        """The CA certificate authorities pin (``node-agent init --hub-ca``)."""
        return self.tls_dir / "ca.pem"

    @property
    def security_conf(self) -> Path:
        return self.root / "nats" / "security.conf"

    @property
    def nats(self) -> Path:
        return self.root / "nats"

    @property
    def run_info(self) -> Path:
        return self.root / "run.json"


def load_settings(paths: HubPaths) -> HubSettings:
    if not paths.settings.exists():
        raise ValidationError(
            f"--data: {paths.root} holds no hub; run `hub init --data {paths.root}` first",
            field="data",
        )
    return decode_json(paths.settings.read_bytes(), HubSettings, what="hub.json")


def save_settings(paths: HubPaths, settings: HubSettings) -> None:
    paths.root.mkdir(parents=True, exist_ok=True)
    paths.settings.write_bytes(msgspec.json.format(msgspec.json.encode(settings)) + b"\n")


def nats_url_for(paths: HubPaths, settings: HubSettings, override: str | None) -> str:
    """The NATS URL a command should use: ``--nats``, else the running hub's, else the setting."""
    if override:
        return override
    if paths.run_info.exists():
        return decode_json(paths.run_info.read_bytes(), RunInfo, what="run.json").nats_url
    return settings.nats_url
