"""Recipient node agents in one OS process: ``python -m bench.agents_proc --url URL --root DIR
--ids YA-MOJ,YB-MOJ --operator-key HEX``.

Each id is a real :class:`node_agent.agent.Agent` on its own data folder (made by
``node_agent.identity.init_agent``), SQLite store, NATS connection and durable consumers: it
receives each delivery, verifies and decrypts it, keeps it in its inbox, and sends a signed
receipt back through the intake, exactly as ``node-agent run`` does.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from pathlib import Path

from nats.js.errors import NotFoundError

from bench._child import run_child, say_ready
from hub import logs, subjects
from hub.clock import SystemClock
from hub.crypto.keys import AuthorityKeys
from hub.gateway.connection import connect
from hub.keyfiles import read_private
from node_agent.agent import Agent
from node_agent.config import AgentPaths, AgentSettings
from node_agent.directory import AgentDirectory
from node_agent.disclosure import ContentKeys
from node_agent.store import AgentStore
from node_agent.transport import HubLink
from node_agent.witnessing import open_witness

_READY_TIMEOUT_S = 30.0


async def _wait_consumers(link: HubLink, authority: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + _READY_TIMEOUT_S
    while True:
        try:
            await link.js.consumer_info(subjects.DELIVER_STREAM, f"agent-{authority}")
            return
        except NotFoundError:
            if loop.time() > deadline:
                raise
            await asyncio.sleep(0.05)


async def _serve(args: argparse.Namespace, stop: asyncio.Event) -> None:
    operator = bytes.fromhex(args.operator_key)
    links: list[HubLink] = []
    stores: list[AgentStore] = []
    tasks: list[asyncio.Task[None]] = []
    try:
        for authority in args.ids.split(","):
            paths = AgentPaths(Path(args.root) / authority)
            store = AgentStore(paths.database)
            stores.append(store)
            keys = AuthorityKeys.from_bytes(read_private(paths.keys))
            link = HubLink(await connect(args.url, name=f"bench-{authority}"), authority)
            links.append(link)
            # As deployed: each agent witnesses the hub's log and keeps content keys.
            settings = AgentSettings(
                id=authority, state=authority[:2], name=authority, kinds=["mla"], languages=["en"]
            )
            agent = Agent(
                authority=authority,
                keys=keys,
                store=store,
                inbox_dir=paths.inbox,
                clock=SystemClock(),
                witness=await open_witness(paths, settings, keys, link.nc),
                content_keys=ContentKeys(paths.database),
            )
            directory = AgentDirectory(store, link, operator)
            tasks.append(asyncio.create_task(agent.run(link, directory, stop)))
        for link in links:
            await _wait_consumers(link, link.authority)
        say_ready()
        await stop.wait()
    finally:
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        for link in links:
            with contextlib.suppress(Exception):
                await link.close()
        for store in stores:
            store.close()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.agents_proc")
    parser.add_argument("--url", required=True)
    parser.add_argument("--root", required=True)
    parser.add_argument("--ids", required=True)
    parser.add_argument("--operator-key", required=True)
    parser.add_argument("--profile", type=Path)
    args = parser.parse_args()
    logs.configure("info")
    run_child(lambda stop: _serve(args, stop), args.profile)


if __name__ == "__main__":
    main()
