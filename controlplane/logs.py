"""Structured logs (structlog, JSON lines) that never carry a secret.

Every configured credential and API token is registered with ``redact``; a processor replaces any
occurrence in any event field, and keys that name secrets are masked whatever their value.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterable
from typing import Any

import structlog
from structlog.typing import EventDict, WrappedLogger

_SECRET_KEYS = re.compile(r"(pass(word)?|secret|token|credential|authorization|api[-_]?key)", re.I)
_secrets: set[str] = set()
MASK = "***"


def redact(values: Iterable[str]) -> None:
    """Register values that must never be written (ignores short ones that would mask ordinary words)."""
    _secrets.update(v for v in values if v and len(v) >= 6)


def scrub(value: Any) -> Any:
    if isinstance(value, str):
        for s in _secrets:
            if s in value:
                value = value.replace(s, MASK)
        return value
    if isinstance(value, dict):
        return {k: (MASK if isinstance(k, str) and _SECRET_KEYS.search(k) and v else scrub(v))
                for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(scrub(v) for v in value)
    return value


def _processor(_: WrappedLogger, __: str, event: EventDict) -> EventDict:
    return scrub(event)


class _ScrubFilter(logging.Filter):
    """For stdlib loggers (uvicorn, sqlalchemy, botocore) that bypass structlog."""

    def filter(self, record: logging.LogRecord) -> bool:
        if _secrets:
            record.msg = scrub(record.getMessage())
            record.args = None
        return True


class _CurrentStderr:
    """Whatever ``sys.stderr`` is when a line is written, not when logging was configured: a stream bound at
    configure time (a test's capture, a CLI runner's buffer) may be closed later, and every log call after
    that would raise "I/O operation on closed file" in whatever code happened to log."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def configure_logging(level: str = "INFO", json_output: bool = True) -> None:
    renderer: Any = structlog.processors.JSONRenderer() if json_output else structlog.dev.ConsoleRenderer()
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            _processor,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(_CurrentStderr()),  # type: ignore[arg-type]
        cache_logger_on_first_use=False,
    )
    root = logging.getLogger()
    if not any(isinstance(f, _ScrubFilter) for f in root.filters):
        handler = logging.StreamHandler(_CurrentStderr())  # type: ignore[arg-type]
        handler.addFilter(_ScrubFilter())
        root.handlers = [handler]
        root.setLevel(level.upper())


def get_logger(name: str = "awan") -> Any:
    return structlog.get_logger(name)
