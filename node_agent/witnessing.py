"""Setting up the agent's witness: which log key to trust, and where its state lives."""

from __future__ import annotations

from nats.aio.client import Client as NatsClient
from nats.js.errors import BucketNotFoundError, NotFoundError

from hub import subjects
from hub.clock import SystemClock
from hub.crypto.keys import AuthorityKeys
from hub.errors import HubError
from hub.ledger.transparency import LogVerifier
from hub.logs import get_logger
from node_agent.config import AgentPaths, AgentSettings
from node_agent.witness import Witness, WitnessStore

__all__ = ["open_witness"]

_log = get_logger("node_agent.witnessing")


async def _log_key(paths: AgentPaths, settings: AgentSettings, nc: NatsClient) -> str | None:
    if settings.log_key:
        return settings.log_key
    if paths.learned_log_key.exists():
        return paths.learned_log_key.read_text().strip()
    try:
        kv = await nc.jetstream().key_value(subjects.DIRECTORY_BUCKET)
        learned = ((await kv.get(subjects.LOG_KEY)).value or b"").decode()
    except (BucketNotFoundError, NotFoundError):
        return None
    paths.learned_log_key.write_text(learned + "\n")
    _log.warning("log_key_learned_on_first_use", log_key=learned, pin_with="--log-key")
    return learned


async def open_witness(
    paths: AgentPaths, settings: AgentSettings, keys: AuthorityKeys, nc: NatsClient
) -> Witness | None:
    """The agent's witness, or None while the hub has no log key to learn yet."""
    vkey = await _log_key(paths, settings, nc)
    if vkey is None:
        return None
    try:
        log = LogVerifier(vkey)
    except HubError as e:
        _log.error("log_key_invalid", detail=str(e))
        return None
    clock = SystemClock()
    return Witness(settings.id, keys, log, WitnessStore(paths.database), clock.now, nc)
