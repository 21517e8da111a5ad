"""Structured logs: structlog JSON on stderr, configured once by each CLI (STYLE rule 15).

A redaction processor drops any field whose name suggests secret or content material, so
plaintext and private keys cannot reach a log even by mistake.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

__all__ = ["configure", "get_logger", "redact"]

_SECRET_MARKERS = ("private", "secret", "plaintext", "content_key", "password", "token", "body")


def redact(_logger: Any, _method: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Replace the value of any field that might carry a secret or content."""
    for key in list(event):
        if any(marker in key.lower() for marker in _SECRET_MARKERS):
            event[key] = "<redacted>"
    return event


def configure(level: str = "info") -> None:
    """JSON lines on stderr; human output stays on stdout."""
    # asyncio warns "returning true from eof_received() has no effect when using ssl" each time
    # a TLS peer closes; it says nothing an operator can act on.
    logging.getLogger("asyncio").setLevel(logging.ERROR)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            redact,
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping()[level.upper()]
        ),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )


def get_logger(name: str) -> Any:
    return structlog.get_logger(name)
