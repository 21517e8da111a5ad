"""What every node-agent command shares: argument types and an open session on the agent."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

from hub.clock import SystemClock
from hub.crypto.keys import AuthorityKeys
from hub.errors import UnavailableError
from hub.gateway.connection import connect
from hub.keyfiles import read_private
from node_agent.agent import Agent
from node_agent.config import AgentPaths, AgentSettings, load_settings
from node_agent.directory import AgentDirectory
from node_agent.disclosure import ContentKeys
from node_agent.identity import nats_credentials, previous_keys
from node_agent.store import AgentStore
from node_agent.transport import HubLink
from node_agent.witness import Witness
from node_agent.witnessing import open_witness
from schemas.common import AUTHORITY_ID_PATTERN, is_authority_id

__all__ = ["Session", "authority_id", "csv_list", "iso_datetime", "session"]

_SETTLE_S = 5.0


def authority_id(value: str) -> str:
    """argparse type: an authority id, or a clear message naming the rule."""
    if not is_authority_id(value):
        raise argparse.ArgumentTypeError(
            f"{value!r} is not an authority id (expected {AUTHORITY_ID_PATTERN}, e.g. XA-MOJ)"
        )
    return value


def csv_list(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


@dataclass
class Session:
    settings: AgentSettings
    agent: Agent
    store: AgentStore
    link: HubLink | None
    directory: AgentDirectory


@asynccontextmanager
async def session(args: argparse.Namespace, *, need_hub: bool) -> AsyncIterator[Session]:
    """Open the agent's folder and, if reachable (or required), the hub."""
    paths = AgentPaths(args.data)
    settings = load_settings(paths)
    keys = AuthorityKeys.from_bytes(read_private(paths.keys))
    store = AgentStore(paths.database)
    link: HubLink | None = None
    closers: list[Callable[[], None]] = []
    witness: Witness | None = None
    try:
        url = getattr(args, "hub", None) or settings.hub
        try:
            nc = await connect(
                url,
                name=f"node-agent-{settings.id}",
                credentials=nats_credentials(paths, settings.id),
            )
            link = HubLink(nc, settings.id)
        except UnavailableError:
            if need_hub:
                raise
        operator = bytes.fromhex(settings.operator_key) if settings.operator_key else None
        if link is not None:
            witness = await open_witness(paths, settings, keys, link.nc)
        content_keys = ContentKeys(paths.database)
        closers.append(content_keys.close)
        if witness is not None:
            closers.append(witness.store.close)
        agent = Agent(
            authority=settings.id,
            keys=keys,
            store=store,
            inbox_dir=paths.inbox,
            clock=SystemClock(),
            previous_keys=previous_keys(paths),
            witness=witness,
            content_keys=content_keys,
        )
        directory = AgentDirectory(store, link, operator, paths.directory_snapshot)
        yield Session(settings, agent, store, link, directory)
    finally:
        if witness is not None:  # what this command was shown is checked before it exits
            with contextlib.suppress(Exception):
                await asyncio.wait_for(witness.settle(), _SETTLE_S)
            await witness.stop()
        if link is not None:
            await link.close()
        for close in closers:
            close()
        store.close()


def iso_datetime(value: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"{value!r} is not an ISO 8601 date or time") from e
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
