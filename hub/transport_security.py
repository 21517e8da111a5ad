"""The hub's NATS transport security on disk: created by ``hub init``, kept current on admission.

Files (keys 0600): ``keys/nats-ca.key`` and ``keys/nats-hub.seed``; ``nats/tls/ca.pem`` (give it
to the authorities: ``node-agent init --hub-ca``), ``nats/tls/server.pem`` and
``server.key``; ``nats/security.conf`` (included by the embedded server's configuration,
rewritten on every admission, then the server reloads it).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from hub.crypto.tls import make_ca, make_server_cert
from hub.gateway.nats_security import (
    HUB_USER,
    ClientCredentials,
    NatsIdentity,
    TlsFiles,
    reload_server,
    security_config,
    write_security_config,
)
from hub.keyfiles import read_private, write_private
from hub.ledger.projections.directory import Directory
from hub.logs import get_logger
from hub.settings import HubPaths

__all__ = ["create_transport_security", "hub_credentials", "is_secured", "update_security"]

_log = get_logger("hub.transport_security")


def is_secured(paths: HubPaths) -> bool:
    return paths.security_conf.exists()


def create_transport_security(paths: HubPaths, hosts: Sequence[str], *, now: datetime) -> None:
    """CA, server certificate for ``hosts``, the hub's nkey, and a configuration with no
    authority yet (``hub init``)."""
    ca = make_ca(f"mla-hub NATS CA ({paths.root.name})", now=now)
    server = make_server_cert(ca, hosts, now=now)
    write_private(paths.keys_dir / "nats-ca.key", ca.key_pem)
    write_private(paths.keys_dir / "nats-hub.seed", NatsIdentity.generate(HUB_USER).seed)
    paths.tls_dir.mkdir(parents=True, exist_ok=True)
    paths.hub_ca.write_bytes(ca.cert_pem)
    (paths.tls_dir / "server.pem").write_bytes(server.cert_pem)
    write_private(paths.tls_dir / "server.key", server.key_pem)
    write_security_config(paths.security_conf, _render(paths, Directory()))


def _tls(paths: HubPaths) -> TlsFiles:
    return TlsFiles(paths.tls_dir / "server.pem", paths.tls_dir / "server.key")


def _hub_identity(paths: HubPaths) -> NatsIdentity:
    return NatsIdentity.from_seed(HUB_USER, read_private(paths.keys_dir / "nats-hub.seed"))


def _render(paths: HubPaths, directory: Directory) -> str:
    admitted = {
        record.card.id: record.card.keys.nats
        for record in directory.authorities()
        if record.card.keys.nats is not None
    }
    return security_config(_tls(paths), _hub_identity(paths).public, admitted)


def hub_credentials(paths: HubPaths) -> ClientCredentials | None:
    """How the hub's own processes connect (None: a hub made without transport security)."""
    if not is_secured(paths):
        return None
    return ClientCredentials.of(_hub_identity(paths), paths.hub_ca.read_bytes())


def update_security(paths: HubPaths, directory: Directory, server_pid: int | None) -> None:
    """Let exactly the admitted authorities connect: rewrite the configuration and reload."""
    write_security_config(paths.security_conf, _render(paths, directory))
    if server_pid is not None:
        reload_server(server_pid)
    else:
        _log.warning("nats_config_rewritten", path=str(paths.security_conf), reload="manual")
