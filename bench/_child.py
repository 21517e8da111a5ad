"""What the bench's child processes share: stop on stdin EOF or a signal, optional cProfile.

The parent keeps the child's stdin open while it should run; closing it (or the parent dying)
stops the child cleanly, so a profile is always written. A child prints ``ready`` on stdout
once it serves.
"""

from __future__ import annotations

import asyncio
import contextlib
import cProfile
import os
import signal
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

__all__ = ["run_child", "say_ready"]


def _stop_on_stdin_eof(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    fd = sys.stdin.fileno()

    def readable() -> None:
        try:
            data = os.read(fd, 4096)
        except OSError:
            data = b""
        if not data:
            loop.remove_reader(fd)
            stop.set()

    loop.add_reader(fd, readable)
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)


def say_ready(detail: str = "") -> None:
    print(f"ready {detail}".strip(), flush=True)


def run_child(main: Callable[[asyncio.Event], Awaitable[None]], profile: Path | None) -> None:
    """Run ``main(stop)`` in a fresh event loop, under cProfile when ``profile`` is given."""

    async def wrapped() -> None:
        stop = asyncio.Event()
        _stop_on_stdin_eof(stop)
        await main(stop)

    profiler = cProfile.Profile() if profile is not None else None
    if profiler is not None:
        profiler.enable()
    try:
        asyncio.run(wrapped())
    finally:
        if profiler is not None and profile is not None:
            profiler.disable()
            profiler.dump_stats(str(profile))
