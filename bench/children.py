"""Starting and stopping the bench's child processes (the hub, the agents, the bulk run).

Children run ``python -m bench.<module>`` from the repository root with the same interpreter.
Their stdin stays open while they should run; closing it stops them cleanly. Their stderr (the
structlog JSON logs) goes to a file next to the run's data.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from pathlib import Path

__all__ = ["REPO_ROOT", "Child", "child_env"]

REPO_ROOT = Path(__file__).resolve().parents[1]
_READY_S = 60.0
_STOP_S = 20.0


def child_env() -> dict[str, str]:
    """The environment of a child: ours, with the repository root importable."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    return env


class Child:
    """One ``python -m bench.<module>`` process that prints ``ready`` once it serves."""

    def __init__(self, module: str, args: list[str], log: Path) -> None:
        self.module = module
        self.args = args
        self.log = log
        self.process: asyncio.subprocess.Process | None = None

    async def start(self) -> str:
        """Start and wait for the ``ready`` line; returns what followed ``ready``."""
        with self.log.open("ab") as log:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                self.module,
                *self.args,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=log,
                cwd=REPO_ROOT,
                env=child_env(),
            )
        assert self.process.stdout is not None
        try:
            line = await asyncio.wait_for(self.process.stdout.readline(), _READY_S)
        except TimeoutError:
            line = b""
        text = line.decode(errors="replace").strip()
        if not text.startswith("ready"):
            await self.stop()
            raise RuntimeError(f"bench: {self.module} did not start; see {self.log}\n{self.tail()}")
        return text.removeprefix("ready").strip()

    def tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def problems(self, lines: int = 8) -> list[str]:
        """Why this child may have misbehaved: its exit code if it died, and the last
        warning or error lines of its log (structlog JSON; anything not at info level)."""
        found = []
        if self.process is not None and self.process.returncode is not None:
            found.append(f"{self.module} exited early with code {self.process.returncode}")
        try:
            text = self.log.read_text(errors="replace").splitlines()
        except OSError:
            text = []
        noisy = [line for line in text if '"level": "info"' not in line]
        found.extend(f"{self.module}: {line[:400]}" for line in noisy[-lines:])
        return found

    def errors(self) -> list[str]:
        """Error lines of its log (a transparency alarm at an agent, for one), counted by
        event, with the first of each: a run that logged any is not a clean measurement."""
        try:
            text = self.log.read_text(errors="replace").splitlines()
        except OSError:
            return []
        first: dict[str, str] = {}
        count: dict[str, int] = {}
        for line in text:
            if '"level": "error"' in line:
                event = line.split('"event": "', 1)[-1].split('"', 1)[0]
                first.setdefault(event, line[:300])
                count[event] = count.get(event, 0) + 1
        return [f"{self.module}: {count[e]} x {e}, first: {first[e]}" for e in first]

    @property
    def pid(self) -> int | None:
        return None if self.process is None else self.process.pid

    async def stop(self) -> None:
        """Close stdin (a clean stop: profiles get written), kill only if it hangs."""
        process, self.process = self.process, None
        if process is None or process.returncode is not None:
            return
        if process.stdin is not None:
            process.stdin.close()
        try:
            await asyncio.wait_for(process.wait(), _STOP_S)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
