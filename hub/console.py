"""Shared console plumbing for the ``hub`` and ``node-agent`` commands.

Human output goes to stdout, logs to stderr; ``--json`` prints only JSON. Typed errors become
one clear line on stderr and a stable exit code: 2 bad input, 1 verification or conflict,
3 unavailable (try again later).
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

import msgspec

from hub.errors import HubError, UnavailableError, ValidationError

__all__ = ["EXIT_REFUSED", "EXIT_UNAVAILABLE", "EXIT_USAGE", "print_json", "run_command", "table"]

EXIT_REFUSED = 1
EXIT_USAGE = 2
EXIT_UNAVAILABLE = 3


def print_json(value: object) -> None:
    sys.stdout.write(msgspec.json.format(msgspec.json.encode(value)).decode() + "\n")
    sys.stdout.flush()


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A plain text table with aligned columns."""
    cells = [[str(h) for h in headers], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(line.rstrip() for line in lines)


def run_command(main: Callable[[], Coroutine[Any, Any, int]]) -> int:
    """Run an async command; map typed errors to one line and an exit code."""
    try:
        return asyncio.run(main())
    except KeyboardInterrupt:
        return 130
    except UnavailableError as e:
        sys.stderr.write(f"unavailable: {e}\n")
        return EXIT_UNAVAILABLE
    except ValidationError as e:
        sys.stderr.write(f"error: {e}\n")
        return EXIT_USAGE
    except HubError as e:
        sys.stderr.write(f"refused ({e.code}): {e}\n")
        return EXIT_REFUSED
