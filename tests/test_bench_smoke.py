"""``make bench`` stays runnable: a tiny run writes results.json with every stable key.

The figures of a tiny run are noise; this checks the plumbing (servers, hub and agents
processes, every phase, the report), never performance (DESIGN.md section 8).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench.children import REPO_ROOT, child_env
from bench.report import SHARED_WRITES, WRITES

STABLE_KEYS = (
    "floor.js_publish_sync_per_s",
    "floor.js_publish_pipelined_per_s",
    "floor.js_publish_pipelined_fsync_per_s",
    "floor.js_publish_sync_fsync_per_s",
    "floor.crypto_request_receipt_per_s_one_core",
    "product.e2e_requests_per_s",
    "product.e2e_requests_per_s_replicated",
    "product.e2e_latency_ms.p50",
    "product.e2e_latency_ms.p99",
    "product.ledger_appends_per_s",
    "product.projection_rebuild_entries_per_s",
    "product.audit_verify_entries_per_s",
)
RATIOS = (
    "ratios.e2e_requests_vs_js_publish_pipelined_fsync",
    "ratios.e2e_replicated_vs_js_publish_pipelined",
    "ratios.e2e_replicated_vs_crypto_floor_2_cores",
    "ratios.ledger_appends_vs_js_publish_pipelined_fsync",
    "ratios.projection_rebuild_vs_ledger_entry_decode",
    "ratios.audit_verify_vs_floor",
)


def _get(results: dict[str, object], path: str) -> object:
    node: object = results
    for key in path.split("."):
        assert isinstance(node, dict) and key in node, f"results.json lacks {path}"
        node = node[key]
    return node


@pytest.mark.nats
@pytest.mark.timeout(60)
def test_tiny_bench_writes_every_stable_key(tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    run = subprocess.run(
        [sys.executable, "-m", "bench", "--tiny", "--out", str(out)],
        cwd=REPO_ROOT,
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=55,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    results = json.loads(out.read_text())
    assert results["errors"] == []
    for path in STABLE_KEYS + RATIOS:
        value = _get(results, path)
        assert isinstance(value, int | float) and value > 0, f"{path} = {value!r}"
    # the bench's reading of hub/gateway/service.py must match what the streams recorded
    # (plus what a hub batch sends one addressee together: deliveries, verdicts)
    measured = _get(results, "product.js_writes_per_request_receipt_measured")
    assert len(WRITES) < measured <= len(WRITES) + len(SHARED_WRITES)
    machine = results["machine"]
    assert machine["cores"] and machine["nats_server"] and machine["packages"]["nats-py"]
    assert "TARGETS" in run.stdout
    memory = results["product"]["memory"]["entries_2000"]
    assert f"{memory['entries']:>9,} entries: state +" in run.stdout  # the memory table
