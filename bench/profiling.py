"""``python -m bench --profile DIR``: where the hub and agents processes spend a saturating run.

Runs the e2e saturation phase (fsync; with ``--profile-nofsync`` the replicated stand-in) with
cProfile enabled in the hub process and in each agent's process, writes ``hub.pstats`` and
``agents-<ID>.pstats`` to DIR, and prints the top entries by own time and by cumulative time.
cProfile slows Python code down (about 1.5-2x), so the rate printed here is lower than the
bench's; the shares are what matter.
"""

from __future__ import annotations

import io
import pstats
from dataclasses import replace
from pathlib import Path

from bench.e2e import E2EConfig, run_e2e
from bench.servers import single

__all__ = ["run_profile", "summarize"]


def summarize(paths: list[Path], top: int = 30) -> str:
    """Top ``top`` functions by own time and by cumulative time, over every file in ``paths``
    (the agents run one process each: their profiles are added up)."""
    out = io.StringIO()
    stats = pstats.Stats(*(str(p) for p in paths), stream=out)
    stats.strip_dirs()
    stats.sort_stats("tottime").print_stats(top)
    stats.sort_stats("cumulative").print_stats(top)
    return out.getvalue()


async def run_profile(root: Path, out_dir: Path, config: E2EConfig, *, fsync: bool = True) -> None:
    out_dir = out_dir.resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    config = replace(config, paced_count=50, profile_dir=out_dir)
    async with single(root / "nats", fsync=fsync) as nats:
        phases = await run_e2e(root / "data", nats, config)
    for phase in phases:
        print(phase)
    for name in ("hub", "agents"):
        text = summarize(sorted(out_dir.glob(f"{name}*.pstats")))
        (out_dir / f"{name}.txt").write_text(text)
        print(f"\n===== {name} process =====\n{text}")
