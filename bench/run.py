"""One bench run: every phase in order, each on fresh nats-server(s), each bounded.

Order: crypto floor; per durability mode (fsync = the embedded default, then no fsync = the
replicated stand-in) the JetStream floor, ledger appends, ``HubService.process`` and the e2e
run; the R3 loopback cluster; projection rebuild; memory/growth in a child process. A phase
that fails is recorded under ``errors`` with its figures left ``null``; the run goes on.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import Awaitable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

import msgspec

from bench import report
from bench.children import REPO_ROOT, child_env
from bench.e2e import E2EConfig, PhaseResult, run_e2e
from bench.floor_crypto import measure_crypto_floor
from bench.floor_js import measure_js_floor
from bench.floor_pattern import measure_write_pattern
from bench.hub_direct import log_to_file, measure_hub_process, measure_ledger_appends
from bench.projection import measure_projection
from bench.report import HUB_WRITES_PER_REQUEST_RECEIPT, SHARED_WRITES, WRITES, put, ratio
from bench.servers import cluster, single
from bench.world import make_party, seal_request
from hub.clock import SystemClock
from hub.crypto.keys import OperatorKey

__all__ = ["Plan", "run_all"]

T = TypeVar("T")
_CRITICAL_PATH_WRITES = 6  # intake, content, ledger, deliver, receipt intake, receipt ledger

NOTES = (
    "replicated = one nats-server WITHOUT sync_interval: always, a stand-in for an R3 cluster "
    "(durability by quorum, no fsync per ack); the real 3-node loopback cluster is "
    "product.e2e_requests_per_s_cluster_r3, its 3 servers sharing the same cores as hub + agents",
    "e2e: 4 senders -> 4 recipients; a request completes when the recipient's receipt is "
    "appended to the ledger; rate = steady state between the 10th and 90th percentile "
    "completion; latency = receipt entry recorded_at - publish time (same host clock)",
    "e2e saturation: the senders keep a window of requests in flight, 256 by default; the "
    "replicated run keeps 512, as 256 did not saturate it (standalone, 10,000 requests: "
    "1,410 / 1,652 / 1,841-1,873 / 1,728-1,876 / 1,826 per second with 192 / 256 / 384 / 512 / "
    "768 in flight, CPU per request falling as hub batches grow); with fsync 512 gave the "
    "same rate as 256 (894 vs 898) at twice the latency",
    "e2e: the hub runs as hub.runtime runs it: with the fsync server, a batch's ledger "
    "appends travel as one JetStream atomic batch (hub.ledger.batches: one answer and one sync "
    "a batch); without fsync and on the R3 cluster, each append has its own ack",
    "e2e: senders pre-seal (sealing is in the crypto floor) and publish with IntakeClient; no "
    "sender agents run, so their verdicts and receipt deliveries stay queued and the sender's "
    "receipt check is not on the measured path; recipients are real node agents",
    "crypto request+receipt = 1 / (seal + hub verify + open + receipt issue + 2 x receipt "
    "verify (hub, sender)); 2-core ratios divide by twice the one-core figure",
    "projection rebuild and memory: entries cloned from 16 real sealed envelopes with fresh "
    "message and case ids; cloned headers no longer match their signatures (the fold does not "
    "verify; an audit would reject them)",
    "audit verify: a separate, honest archive (bench.audit) with every signature valid, "
    "replayed by hub.audit.runner.verify_archive on every core and on one, in a fresh process as "
    "`hub audit verify` runs (until 2026-11-25 in the bench process, whose ~900 MB the pool's "
    "forked workers inherited: ~8 % slower, 0.69-0.74 of the floor instead of 0.74-0.77)",
    "agents run as deployed: each in its own OS process (until 2026-11-24 the four shared one "
    "process and one event loop, which capped them at one core), each witnesses the hub's log "
    "(proof checks, consistency requests, a cosignature at most once a second) and keeps "
    "content keys",
    "ledger appends: Ledger.append pipelined as a hub batch does it (started in index order, "
    "256 in flight, each with its expected last sequence); until 2026-11-24 the figure was "
    "appends awaited one by one, now product.ledger_appends_sequential_per_s*",
)


@dataclass(frozen=True, slots=True)
class Plan:
    """How much of each phase to run."""

    js_sync: int
    js_pipelined: int
    js_limit_s: float
    crypto_count: int
    crypto_limit_s: float
    ledger_appends: int
    hub_pairs: int
    direct_limit_s: float
    projection: int
    audit: int
    bulk: tuple[int, ...]
    cluster: bool
    e2e: E2EConfig
    e2e_replicated: E2EConfig
    e2e_cluster: E2EConfig | None

    def with_bulk(self, sizes: tuple[int, ...]) -> Plan:
        return replace(self, bulk=tuple(dict.fromkeys(self.bulk + sizes)))

    def without_cluster(self) -> Plan:
        return replace(self, cluster=False)


class _Run:
    def __init__(self, root: Path, mode: str) -> None:
        self.root = root
        self.started = time.perf_counter()
        self.results: dict[str, Any] = {"mode": mode, "machine": report.machine_info()}
        self.results["machine"]["loadavg_at_start"] = os.getloadavg()
        self.results["notes"] = list(NOTES)
        self.results["errors"] = []

    def progress(self, what: str) -> None:
        elapsed = time.perf_counter() - self.started
        print(f"[bench {elapsed:6.1f} s] {what}", file=sys.stderr, flush=True)

    async def phase(self, name: str, work: Awaitable[T]) -> T | None:
        self.progress(name)
        try:
            return await work
        except Exception as e:  # recorded, the run goes on; figures stay null
            self.results["errors"].append(f"{name}: {e.__class__.__name__}: {e}")
            self.progress(f"{name} FAILED: {e!r}")
            return None

    def put(self, path: str, value: Any) -> None:
        put(self.results, path, value)

    def get(self, path: str) -> Any:
        return report.get(self.results, path)


def _e2e_figures(run: _Run, suffix: str, phases: list[PhaseResult] | None) -> None:
    paced = next((p for p in phases or [] if p.name == "paced"), None)
    sat = next((p for p in phases or [] if p.name == "saturated"), None)
    run.put(f"product.e2e_requests_per_s{suffix}", sat.rate_per_s if sat else None)
    run.put(f"product.e2e_latency_ms{suffix}.p50", paced.p50_ms if paced else None)
    run.put(f"product.e2e_latency_ms{suffix}.p99", paced.p99_ms if paced else None)
    run.put(f"product.e2e_latency_ms_saturated{suffix}.p50", sat.p50_ms if sat else None)
    run.put(f"product.e2e_latency_ms_saturated{suffix}.p99", sat.p99_ms if sat else None)
    run.put(f"product.e2e_phases{suffix or '_fsync'}", [asdict(p) for p in phases or []])
    for p in phases or []:
        if p.completed < p.requested or p.rejected:
            run.results["errors"].append(
                f"e2e{suffix or ' fsync'} {p.name}: {p.completed}/{p.requested} completed, "
                f"{p.rejected} rejected (bounded phase ran out of time?)"
            )
    for problem in dict.fromkeys(q for p in phases or [] for q in p.problems):  # once each
        run.results["errors"].append(f"e2e{suffix or ' fsync'}: {problem}")
    if sat is not None and sat.writes_per_request is not None and not suffix:
        run.put("product.js_writes_per_request_receipt_measured", sat.writes_per_request)
        run.put(
            "product.js_writes_by_stream_per_request_receipt",
            {k: v / sat.completed for k, v in sat.stream_writes.items()},
        )


async def _mode(run: _Run, plan: Plan, fsync: bool, payload_size: int) -> None:
    tag, suffix = ("fsync", "") if fsync else ("nofsync", "_replicated")
    async with single(run.root / f"floor-{tag}", fsync=fsync) as nats:
        floor = await run.phase(
            f"floor: JetStream publish ({tag})",
            measure_js_floor(
                nats.urls[0],
                payload_size=payload_size,
                sync_count=plan.js_sync,
                pipelined_count=plan.js_pipelined,
                limit_s=plan.js_limit_s,
            ),
        )
    async with single(run.root / f"pattern-{tag}", fsync=fsync) as nats:
        pattern = await run.phase(
            f"floor: the hub's 4 writes per submission, sequential vs batched ({tag})",
            measure_write_pattern(
                nats.urls[0], payload_size=payload_size, count=plan.js_sync, limit_s=plan.js_limit_s
            ),
        )
    key = "_fsync" if fsync else ""
    run.put(
        f"floor.hub_write_pattern_sequential{key}_per_s",
        pattern.sequential_per_s if pattern else None,
    )
    run.put(
        f"floor.hub_write_pattern_batched{key}_per_s", pattern.batched_per_s if pattern else None
    )
    run.put(f"floor.js_publish_sync{key}_per_s", floor.sync_per_s if floor else None)
    run.put(f"floor.js_publish_sync{key}_latency_ms", floor.sync_latency_ms if floor else None)
    run.put(f"floor.js_publish_pipelined{key}_per_s", floor.pipelined_per_s if floor else None)
    async with single(run.root / f"ledger-{tag}", fsync=fsync) as nats:
        appends = await run.phase(
            f"product: Ledger.append pipelined as in a batch, and one by one ({tag})",
            measure_ledger_appends(nats.urls[0], plan.ledger_appends, plan.direct_limit_s),
        )
    mode = "" if fsync else "_nofsync"
    run.put(f"product.ledger_appends_per_s{mode}", appends.pipelined_per_s if appends else None)
    run.put(
        f"product.ledger_appends_sequential_per_s{mode}",
        appends.sequential_per_s if appends else None,
    )
    async with single(run.root / f"process-{tag}", fsync=fsync) as nats:
        process = await run.phase(
            f"product: HubService.process direct ({tag})",
            measure_hub_process(nats.urls[0], plan.hub_pairs, plan.direct_limit_s),
        )
    run.put(f"product.hub_process_per_s{'' if fsync else '_nofsync'}", process)
    # The hub runs as hub.runtime would with such a server: atomic batches with fsync only.
    config = replace(plan.e2e, atomic_batches=True) if fsync else plan.e2e_replicated
    async with single(run.root / f"e2e-{tag}", fsync=fsync) as nats:
        phases = await run.phase(
            f"product: e2e, hub and agents in their own processes ({tag})",
            run_e2e(run.root / f"e2e-{tag}-data", nats, config),
        )
    _e2e_figures(run, suffix, phases)


async def _cluster(run: _Run, plan: Plan, payload_size: int) -> None:
    async def work() -> None:
        async with cluster(run.root / "cluster") as nats:
            floor = await measure_js_floor(
                nats.urls[0],
                payload_size=payload_size,
                replicas=3,
                sync_count=plan.js_sync,
                pipelined_count=plan.js_pipelined,
                limit_s=plan.js_limit_s,
            )
            run.put("floor.js_publish_sync_r3_per_s", floor.sync_per_s)
            run.put("floor.js_publish_pipelined_r3_per_s", floor.pipelined_per_s)
            assert plan.e2e_cluster is not None
            phases = await run_e2e(run.root / "e2e-r3-data", nats, plan.e2e_cluster)
            _e2e_figures(run, "_cluster_r3", phases)

    await run.phase("R3 cluster on loopback: floor and e2e", work())


async def _child_figures(module: str, n: int) -> dict[str, Any]:
    """``python -m <module> --n N``: a measurement in a fresh process; its JSON figures."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        module,
        "--n",
        str(n),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=REPO_ROOT,
        env=child_env(),
    )
    out, err = await process.communicate()
    if process.returncode != 0:
        tail = err.decode(errors="replace").strip().splitlines()[-3:]
        raise RuntimeError(f"{module} --n {n} exited with {process.returncode}: {tail}")
    figures: dict[str, Any] = msgspec.json.decode(out)
    return figures


def _ratios(run: _Run) -> None:
    g = run.get
    e2e, rep = g("product.e2e_requests_per_s"), g("product.e2e_requests_per_s_replicated")
    crypto = g("floor.crypto_request_receipt_per_s_one_core")
    n = g("product.js_writes_per_request_receipt_measured") or len(WRITES) + len(SHARED_WRITES)
    r = {
        "e2e_requests_vs_js_publish_pipelined_fsync": ratio(
            e2e, g("floor.js_publish_pipelined_fsync_per_s")
        ),
        "e2e_writes_vs_js_publish_pipelined_fsync": ratio(
            e2e, g("floor.js_publish_pipelined_fsync_per_s"), 1 / n
        ),
        "e2e_vs_crypto_floor_2_cores": ratio(e2e, crypto, 2),
        "e2e_replicated_vs_js_publish_pipelined": ratio(rep, g("floor.js_publish_pipelined_per_s")),
        "e2e_replicated_writes_vs_js_publish_pipelined": ratio(
            rep, g("floor.js_publish_pipelined_per_s"), 1 / n
        ),
        "e2e_replicated_vs_crypto_floor_2_cores": ratio(rep, crypto, 2),
        "e2e_cluster_r3_vs_js_publish_pipelined_r3": ratio(
            g("product.e2e_requests_per_s_cluster_r3"), g("floor.js_publish_pipelined_r3_per_s")
        ),
        "e2e_latency_p50_vs_fsync_publish_chain": ratio(
            g("product.e2e_latency_ms.p50"),
            g("floor.js_publish_sync_fsync_latency_ms"),
            _CRITICAL_PATH_WRITES,
        ),
        "ledger_appends_vs_js_publish_pipelined_fsync": ratio(
            g("product.ledger_appends_per_s"), g("floor.js_publish_pipelined_fsync_per_s")
        ),
        "ledger_appends_vs_js_publish_sync_fsync": ratio(
            g("product.ledger_appends_sequential_per_s"), g("floor.js_publish_sync_fsync_per_s")
        ),
        "ledger_appends_sequential_nofsync_vs_js_publish_sync": ratio(
            g("product.ledger_appends_sequential_per_s_nofsync"), g("floor.js_publish_sync_per_s")
        ),
        "ledger_appends_nofsync_vs_js_publish_pipelined": ratio(
            g("product.ledger_appends_per_s_nofsync"), g("floor.js_publish_pipelined_per_s")
        ),
        "hub_process_writes_vs_js_publish_sync_fsync": ratio(
            g("product.hub_process_per_s"),
            g("floor.js_publish_sync_fsync_per_s"),
            2 / HUB_WRITES_PER_REQUEST_RECEIPT,
        ),
        "hub_process_nofsync_writes_vs_js_publish_sync": ratio(
            g("product.hub_process_per_s_nofsync"),
            g("floor.js_publish_sync_per_s"),
            2 / HUB_WRITES_PER_REQUEST_RECEIPT,
        ),
        "hub_process_vs_write_pattern_sequential_fsync": ratio(
            g("product.hub_process_per_s"), g("floor.hub_write_pattern_sequential_fsync_per_s")
        ),
        "write_pattern_batched_vs_sequential_fsync": ratio(
            g("floor.hub_write_pattern_batched_fsync_per_s"),
            g("floor.hub_write_pattern_sequential_fsync_per_s"),
        ),
        "write_pattern_batched_vs_sequential_nofsync": ratio(
            g("floor.hub_write_pattern_batched_per_s"),
            g("floor.hub_write_pattern_sequential_per_s"),
        ),
        "projection_rebuild_vs_ledger_entry_decode": ratio(
            g("product.projection_rebuild_entries_per_s"), g("floor.ledger_entry_decode_per_s")
        ),
        "audit_verify_vs_floor": ratio(
            g("product.audit_verify_entries_per_s"), g("floor.ed25519_verify_per_s_all_cores")
        ),
    }
    run.results["ratios"] = r


async def run_all(root: Path, plan: Plan, mode: str) -> dict[str, Any]:
    """Every phase of ``plan``; returns the results object (see :mod:`bench.report`)."""
    run = _Run(root, mode)
    log_to_file(root / "hub-in-process.log")
    operator = OperatorKey.generate()
    a, b = make_party("XA-MOJ", operator), make_party("XB-MOJ", operator)
    payload_size = len(seal_request(a, b, SystemClock().now())[1])
    run.put("floor.envelope_bytes", payload_size)
    run.progress("floor: crypto, one core")
    crypto = measure_crypto_floor(plan.crypto_count, plan.crypto_limit_s)
    run.put(
        "floor.crypto_ops_per_s_one_core",
        {
            "seal": crypto.seal,
            "hub_verify": crypto.hub_verify,
            "open": crypto.open,
            "receipt_issue": crypto.receipt_issue,
            "receipt_verify": crypto.receipt_verify,
        },
    )
    run.put("floor.crypto_request_receipt_per_s_one_core", crypto.combined)
    run.put("floor.crypto_hub_and_recipient_per_s_one_core", crypto.hub_and_recipient)
    for fsync in (True, False):
        await _mode(run, plan, fsync, payload_size)
    if plan.cluster and plan.e2e_cluster is not None:
        await _cluster(run, plan, payload_size)
    else:
        run.put("product.e2e_requests_per_s_cluster_r3", None)
        run.results["notes"].append("R3 cluster not run in this mode (full run only)")
    run.progress(f"product: projection rebuild of {plan.projection:,} entries")
    projection = measure_projection(plan.projection)
    run.put("floor.ledger_entry_decode_per_s", projection.decode_per_s)
    run.put("product.projection_rebuild_entries_per_s", projection.rebuild_per_s)
    audit = await run.phase(
        f"product: audit verify of a valid {plan.audit:,}-entry archive (own process)",
        _child_figures("bench.audit", plan.audit),
    )
    if audit is not None:
        run.put("product.audit_verify_entries_per_s", audit["entries_per_s"])
        rate = audit["entries_per_s"]
        run.put("product.audit_seconds_per_million_entries", 1e6 / rate if rate else None)
        run.put("product.audit_verify_entries_per_s_one_worker", audit["entries_per_s_one_worker"])
        run.put("product.audit_verify_workers", audit["workers"])
        one_core = audit["ed25519_verify_per_s_one_core"]
        run.put("floor.ed25519_verify_per_s_one_core", one_core)
        run.put("floor.ed25519_verify_per_s_all_cores", one_core * audit["workers"])
    run.put("product.js_writes_per_request_receipt", len(WRITES))
    run.put("product.js_writes_shared_by_a_batch_per_recipient", len(SHARED_WRITES))
    run.put("product.js_writes_awaited_in_sequence_by_hub", HUB_WRITES_PER_REQUEST_RECEIPT)
    for n in plan.bulk:
        figures = await run.phase(
            f"memory: {n:,} entries in HubState + MerkleTree", _child_figures("bench.memory", n)
        )
        run.put(f"product.memory.entries_{n}", figures)
    _ratios(run)
    run.results["machine"]["loadavg_at_end"] = os.getloadavg()
    return run.results
