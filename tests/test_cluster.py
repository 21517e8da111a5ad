"""The hub on a real 3-node NATS cluster (deploy/nats/node*.conf), streams at R3:
requests go through, and keep going through when one node is down."""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import nats
import nats.errors
import pytest
from nats.js import api as js_api

from hub.gateway.nats_server import find_nats_server
from hub.ledger.store import StreamLayout
from tests.harness import HubHarness, eventually

pytestmark = pytest.mark.nats

DEPLOY = Path(__file__).resolve().parents[1] / "deploy" / "nats"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _config(node: int, tmp: Path, ports: dict[int, int]) -> Path:
    """deploy/nats/node<N>.conf with its loopback ports moved to free ones and its store in tmp."""
    text = (DEPLOY / f"node{node}.conf").read_text()
    text = re.sub(r"127\.0\.0\.1:(\d+)", lambda m: f"127.0.0.1:{ports[int(m.group(1))]}", text)
    text = text.replace(f'"./data/n{node}"', f'"{tmp / f"n{node}"}"')
    path = tmp / f"node{node}.conf"
    path.write_text(text)
    return path


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[tuple[list[str], list[subprocess.Popen[bytes]]]]:
    ports = {p: _free_port() for p in (4222, 4223, 4224, 6222, 6223, 6224)}
    procs = [
        subprocess.Popen(  # noqa: ASYNC220 - started once, before any awaiting
            [str(find_nats_server()), "-c", str(_config(n, tmp_path, ports))],
            stdout=subprocess.DEVNULL,
            stderr=(tmp_path / f"n{n}.log").open("wb"),
        )
        for n in (1, 2, 3)
    ]
    urls = [f"nats://127.0.0.1:{ports[p]}" for p in (4222, 4223, 4224)]
    try:
        await _ready(urls[0])
        yield urls, procs
    finally:
        for proc in procs:
            with contextlib.suppress(ProcessLookupError):
                proc.terminate()
        for proc in procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=10)


async def _ready(url: str) -> None:
    """Until an R3 stream can be created: routes up and a JetStream meta leader elected."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30
    while True:
        try:
            nc = await nats.connect(url, connect_timeout=2, max_reconnect_attempts=1)
            try:
                js = nc.jetstream(timeout=3)
                await js.add_stream(
                    js_api.StreamConfig(name="READY", subjects=["ready"], num_replicas=3)
                )
                await js.delete_stream("READY")
                return
            finally:
                await nc.close()
        except (nats.errors.Error, TimeoutError, OSError):
            if loop.time() > deadline:
                raise
            await asyncio.sleep(0.25)


async def test_hub_on_an_r3_cluster_survives_a_node(
    tmp_path: Path, cluster: tuple[list[str], list[subprocess.Popen[bytes]]]
) -> None:
    urls, procs = cluster
    hub = HubHarness(tmp_path / "hub", external_url=",".join(urls), layout=StreamLayout(replicas=3))
    await hub.start()
    try:
        assert hub.nc is not None
        info = await hub.nc.jetstream().stream_info("LEDGER")
        assert info.config.num_replicas == 3
        a = await hub.authority("XA-MOJ")
        b = await hub.authority("XB-MOJ")
        await b.start()
        first, status = await a.send_request("XB-MOJ", "before a node goes")
        assert status == "accepted"

        procs[2].terminate()  # one of three nodes down: a quorum of two remains
        procs[2].wait(timeout=10)
        second, status = await a.send_request("XB-MOJ", "with a node down", wait=20)
        assert status == "accepted"
        await eventually(
            lambda: b.store.inbox_get(second) is not None, "delivery with a node down", 20
        )
        entries = await hub.entries()
        assert [e.index for e in entries] == list(range(len(entries)))
        assert hub.service is not None
        assert hub.service.state.messages.messages[first].ledger_index == 2
    finally:
        await hub.close()
