"""End-to-end: sealed requests from several senders to several recipients, until the receipt
is recorded in the ledger.

The hub runs in its own OS process (:mod:`bench.hub_proc`) and each recipient's node agent in
its own (:mod:`bench.agents_proc`), as a deployment spreads them. This process pre-seals the
envelopes (the sender's cost, measured by the crypto floor), publishes them through
:class:`hub.gateway.intake_client.IntakeClient` as their senders, and watches the LEDGER stream:
a request is complete when its recipient's ``ReceiptRecorded`` entry is appended. Latency is
that entry's ``recorded_at`` (the hub's clock, same host) minus the time of the publish.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js import api as js_api

from bench.children import Child
from bench.servers import Nats
from bench.world import Party, admit_all, make_party, seal_request
from hub import subjects
from hub.clock import SystemClock
from hub.crypto.keys import OperatorKey
from hub.gateway.connection import close, connect
from hub.gateway.intake_client import IntakeClient
from schemas.codec import decode
from schemas.envelope import Header
from schemas.ledger import EnvelopeRecorded, LedgerEntry, ReceiptRecorded, SubmissionRejected
from schemas.receipt import ReceiptBody

__all__ = ["E2EConfig", "PhaseResult", "WRITE_STREAMS", "run_e2e"]

SENDERS = ("XA-MOJ", "XB-MOJ", "XC-MOJ", "XD-MOJ")
RECIPIENTS = ("YA-MOJ", "YB-MOJ", "YC-MOJ", "YD-MOJ")
WRITE_STREAMS = ("SUBMIT", "KV_CONTENT", "LEDGER", "DELIVER", "VERDICT")


@dataclass(frozen=True, slots=True)
class E2EConfig:
    """One e2e run: its load phases, all bounded by count and by time."""

    paced_rate: float = 100.0
    paced_count: int = 1500
    saturated_count: int = 6000
    window: int = 256
    phase_limit_s: float = 60.0
    warmup: int = 40
    replicas: int = 1
    profile_dir: Path | None = None
    atomic_batches: bool = False  # the hub's setting (as hub.runtime sets it with fsync)


@dataclass(frozen=True, slots=True)
class PhaseResult:
    """Requests completed (receipt recorded) in one phase, their rate and latency."""

    name: str
    requested: int
    completed: int
    rejected: int
    rate_per_s: float
    p50_ms: float | None
    p99_ms: float | None
    recorded_p50_ms: float | None  # submit -> envelope recorded (hub only)
    writes_per_request: float | None = None
    stream_writes: dict[str, int] = field(default_factory=dict)
    cpu_cores: dict[str, float] = field(default_factory=dict)  # busy cores per process
    problems: list[str] = field(default_factory=list)  # child exits and log warnings, if any


def _cpu_seconds(pid: int) -> float:
    """utime + stime of ``pid`` from /proc (0 where unavailable)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _cpu_snapshot(pids: dict[str, list[int]]) -> dict[str, float]:
    return {name: sum(_cpu_seconds(p) for p in group) for name, group in pids.items()}


def _percentile(values: Sequence[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


class _Tracker:
    """Follows the LEDGER stream and resolves each request when its receipt is recorded."""

    def __init__(self) -> None:
        self.submitted: dict[str, float] = {}
        self.recorded: dict[str, float] = {}
        self.receipted: dict[str, float] = {}
        self.waiters: dict[str, asyncio.Future[None]] = {}
        self.rejected = 0

    async def on_msg(self, msg: Msg) -> None:
        entry = decode(msg.data, LedgerEntry, what="ledger entry")
        at = entry.recorded_at.timestamp()
        event = entry.event
        if isinstance(event, EnvelopeRecorded):
            self.recorded[decode(event.header, Header, what="header").message_id] = at
        elif isinstance(event, ReceiptRecorded):
            message_id = decode(event.body, ReceiptBody, what="receipt").message_id
            self.receipted[message_id] = at
            waiter = self.waiters.pop(message_id, None)
            if waiter is not None and not waiter.done():
                waiter.set_result(None)
        elif isinstance(event, SubmissionRejected):
            self.rejected += 1

    async def one(self, client: IntakeClient, message_id: str, payload: bytes, end: float) -> None:
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[None] = loop.create_future()
        self.waiters[message_id] = waiter
        self.submitted[message_id] = time.time()
        await client.publish(message_id, payload)
        # A timer, not wait_for's task and timer per request: the driver shares the cores.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout_at(end):
                await waiter

    def result(self, name: str, ids: list[str], rejected_before: int) -> PhaseResult:
        done = [m for m in ids if m in self.receipted]
        latencies = [(self.receipted[m] - self.submitted[m]) * 1000 for m in done]
        recorded = [
            (self.recorded[m] - self.submitted[m]) * 1000 for m in done if m in self.recorded
        ]
        times = sorted(self.receipted[m] for m in done)
        rate = 0.0
        if len(times) >= 20:  # steady state: from the 10th to the 90th percentile completion
            lo, hi = len(times) // 10, (len(times) * 9) // 10
            if times[hi] > times[lo]:
                rate = (hi - lo) / (times[hi] - times[lo])
        elif times:
            first = min(self.submitted[m] for m in ids)
            rate = len(times) / max(times[-1] - first, 1e-9)
        return PhaseResult(
            name=name,
            requested=len(ids),
            completed=len(done),
            rejected=self.rejected - rejected_before,
            rate_per_s=rate,
            p50_ms=_percentile(latencies, 0.50),
            p99_ms=_percentile(latencies, 0.99),
            recorded_p50_ms=_percentile(recorded, 0.50),
        )


def _sealed(senders: list[Party], recipients: list[Party], n: int) -> list[tuple[int, str, bytes]]:
    now = SystemClock().now()
    out = []
    for k in range(n):
        s = k % len(senders)
        r = (k // len(senders) + s) % len(recipients)
        out.append((s, *seal_request(senders[s], recipients[r], now)))
    return out


async def _paced(
    tracker: _Tracker,
    clients: list[IntakeClient],
    items: list[tuple[int, str, bytes]],
    rate: float,
    limit_s: float,
) -> list[str]:
    loop = asyncio.get_running_loop()
    start = loop.time()
    end = start + limit_s
    tasks: list[asyncio.Task[None]] = []
    sent: list[str] = []
    for k, (s, message_id, payload) in enumerate(items):
        delay = start + k / rate - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        if loop.time() >= end:
            break
        sent.append(message_id)
        tasks.append(asyncio.create_task(tracker.one(clients[s], message_id, payload, end)))
    await asyncio.gather(*tasks)
    return sent


async def _saturated(
    tracker: _Tracker,
    clients: list[IntakeClient],
    items: list[tuple[int, str, bytes]],
    window: int,
    limit_s: float,
) -> list[str]:
    loop = asyncio.get_running_loop()
    end = loop.time() + limit_s
    queue: Iterator[tuple[int, str, bytes]] = iter(items)
    sent: list[str] = []

    async def worker() -> None:
        for s, message_id, payload in queue:
            if loop.time() >= end:
                return
            sent.append(message_id)
            await tracker.one(clients[s], message_id, payload, end)

    await asyncio.gather(*(worker() for _ in range(window)))
    return sent


async def _stream_counts(js: JetStreamContext) -> dict[str, int]:
    counts = {}
    for name in WRITE_STREAMS:
        info = await js.stream_info(name)
        counts[name] = int(info.state.messages)
    return counts


def _children(
    root: Path, nats: Nats, config: E2EConfig, operator: OperatorKey
) -> tuple[Child, list[Child]]:
    urls = nats.urls
    profile = config.profile_dir
    key = operator.public.hex()
    hub = Child(
        "bench.hub_proc",
        ["--url", urls[0], "--operator-key", key, "--replicas", str(config.replicas)]
        + (["--atomic-batches"] if config.atomic_batches else [])
        + (["--profile", str(profile / "hub.pstats")] if profile else []),
        root / "hub.log",
    )
    # One OS process per recipient, as deployed (each authority runs its own node agent): in
    # one process, the four shared one event loop and one core, which no deployment does.
    agents = [
        Child(
            "bench.agents_proc",
            ["--url", urls[(1 + k) % len(urls)], "--root", str(root / "agents")]
            + ["--ids", authority, "--operator-key", key]
            + (["--profile", str(profile / f"agents-{authority}.pstats")] if profile else []),
            root / f"agents-{authority}.log",
        )
        for k, authority in enumerate(RECIPIENTS)
    ]
    return hub, agents


async def _saturation(
    tracker: _Tracker,
    clients: list[IntakeClient],
    items: list[tuple[int, str, bytes]],
    config: E2EConfig,
    js: JetStreamContext,
    pids: dict[str, list[int]],
) -> PhaseResult:
    """The saturating phase, with the JetStream writes and CPU it cost."""
    counts = await _stream_counts(js)
    before = tracker.rejected
    cpu_before, wall = _cpu_snapshot(pids), time.perf_counter()
    ids = await _saturated(tracker, clients, items, config.window, config.phase_limit_s)
    wall = time.perf_counter() - wall
    cpu = {k: max(0.0, v - cpu_before[k]) / wall for k, v in _cpu_snapshot(pids).items()}
    await asyncio.sleep(1.0)  # let the receipts' verdicts land before counting writes
    after = await _stream_counts(js)
    result = tracker.result("saturated", ids, before)
    writes = {k: after[k] - counts[k] for k in WRITE_STREAMS}
    per = sum(writes.values()) / result.completed if result.completed else None
    return replace(result, writes_per_request=per, stream_writes=writes, cpu_cores=cpu)


async def run_e2e(root: Path, nats: Nats, config: E2EConfig) -> list[PhaseResult]:
    """Start hub and agents as children, admit 4 senders + 4 recipients, run the phases."""
    # This process (the driver) carries the heap of the bench's earlier phases: frozen, the
    # collector does not walk it again and again while the driver keeps the load going.
    gc.collect()
    gc.freeze()
    operator = OperatorKey.generate()
    senders = [make_party(a, operator) for a in SENDERS]
    recipients = [make_party(a, operator, root / "agents" / a) for a in RECIPIENTS]
    driver_url = nats.urls[2 % len(nats.urls)]
    hub, agents = _children(root, nats, config, operator)
    clients: list[IntakeClient] = []
    watcher_nc = await connect(driver_url, name="bench-watcher")
    try:
        await hub.start()
        await admit_all(nats.urls[0], senders + recipients, operator)
        await asyncio.gather(*(agent.start() for agent in agents))
        clients = [
            IntakeClient(await connect(driver_url, name=f"bench-{p.id}"), p.id) for p in senders
        ]
        js = watcher_nc.jetstream(timeout=10)
        tracker = _Tracker()
        sub = await js.subscribe(
            subjects.LEDGER_SUBJECT,
            cb=tracker.on_msg,
            ordered_consumer=True,
            deliver_policy=js_api.DeliverPolicy.NEW,
        )
        try:
            warm = _sealed(senders, recipients, config.warmup)
            await _saturated(tracker, clients, warm, 16, config.phase_limit_s)
            before = tracker.rejected
            paced = _sealed(senders, recipients, config.paced_count)
            ids = await _paced(tracker, clients, paced, config.paced_rate, config.phase_limit_s)
            results = [tracker.result("paced", ids, before)]
            await asyncio.sleep(0.5)
            pids = {
                "hub": [hub.pid or 0],
                "agents": [agent.pid or 0 for agent in agents],
                "nats_server": nats.pids,
                "driver": [os.getpid()],
            }
            items = _sealed(senders, recipients, config.saturated_count)
            results.append(await _saturation(tracker, clients, items, config, js, pids))
        finally:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()
        errors = hub.errors() + [e for agent in agents for e in agent.errors()]
        if errors or any(p.completed < p.requested or p.rejected for p in results):
            problems = hub.problems() + [p for agent in agents for p in agent.problems()]
            results = [replace(p, problems=errors + problems) for p in results]
        return results
    finally:
        for client in clients:
            await client.close()
        await close(watcher_nc)
        await asyncio.gather(*(agent.stop() for agent in agents))
        await hub.stop()
