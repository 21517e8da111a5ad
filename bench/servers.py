"""The nats-servers a bench phase runs on: one embedded node (fsync or not), or a 3-node cluster.

Everything listens on 127.0.0.1 only. The single node is exactly the hub's embedded server
(:class:`hub.gateway.nats_server.EmbeddedNats`); ``fsync=True`` is the product default
(``sync_interval: always``). The cluster is three such servers joined by routes on loopback,
without ``sync_interval: always`` (an R3 cluster relies on quorum replication for durability).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import nats
import nats.errors
from nats.js import api as js_api
from nats.js.errors import APIError, ServiceUnavailableError

from hub.gateway.nats_server import EmbeddedNats, NatsServerOptions, find_nats_server

__all__ = ["Nats", "cluster", "nats_server_version", "single"]

_CLUSTER_READY_S = 30.0


@dataclass(frozen=True, slots=True)
class Nats:
    """Running servers: client URLs and process ids (for CPU accounting)."""

    urls: list[str]
    pids: list[int]


def nats_server_version() -> str:
    """``nats-server --version`` of the binary the hub would start."""
    try:
        out = subprocess.run(
            [str(find_nats_server()), "--version"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError) as e:
        return f"unknown ({e.__class__.__name__})"
    return out.stdout.strip().removeprefix("nats-server: ")


@asynccontextmanager
async def single(root: Path, *, fsync: bool) -> AsyncIterator[Nats]:
    """One embedded nats-server in ``root``."""
    server = EmbeddedNats(NatsServerOptions(store_dir=root, sync_always=fsync))
    url = await server.start()
    try:
        yield Nats([url], [server.pid or 0])
    finally:
        await server.stop()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _cluster_config(name: str, port: int, routes: list[int]) -> str:
    route_list = ", ".join(f'"nats-route://127.0.0.1:{p}"' for p in routes)
    return (
        f'server_name: "{name}"\n'
        "cluster {\n"
        '  name: "bench"\n'
        f'  listen: "127.0.0.1:{port}"\n'
        f"  routes: [{route_list}]\n"
        "}\n"
    )


@asynccontextmanager
async def cluster(root: Path, size: int = 3) -> AsyncIterator[Nats]:
    """``size`` nats-servers routed together on loopback, once an R``size`` stream can be
    created (JetStream meta leader elected)."""
    ports = [_free_port() for _ in range(size)]
    servers = [
        EmbeddedNats(
            NatsServerOptions(
                store_dir=root / f"n{i}",
                sync_always=False,
                extra_config=_cluster_config(f"n{i}", ports[i], ports[:i] + ports[i + 1 :]),
            )
        )
        for i in range(size)
    ]
    try:
        urls = list(await asyncio.gather(*(s.start() for s in servers)))
        await _wait_cluster_ready(urls[0], size)
        yield Nats(urls, [s.pid or 0 for s in servers])
    finally:
        await asyncio.gather(*(s.stop() for s in servers), return_exceptions=True)


async def _wait_cluster_ready(url: str, replicas: int) -> None:
    nc = await nats.connect(url, connect_timeout=3)
    try:
        js = nc.jetstream(timeout=5)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + _CLUSTER_READY_S
        config = js_api.StreamConfig(
            name="BENCH_READY",
            subjects=["bench.ready"],
            storage=js_api.StorageType.MEMORY,
            num_replicas=replicas,
        )
        while True:
            try:
                await js.add_stream(config)
                await js.publish("bench.ready", b"ok")
                await js.delete_stream("BENCH_READY")
                return
            except (ServiceUnavailableError, APIError, nats.errors.Error, TimeoutError):
                if loop.time() > deadline:
                    raise
                await asyncio.sleep(0.25)
    finally:
        with contextlib.suppress(Exception):
            await nc.close()
