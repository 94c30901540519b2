"""Structured logs (structlog) that never carry a secret, for Awan's own events and every stdlib logger.

One pipeline: structlog events and stdlib records (uvicorn, alembic, sqlalchemy, the cloud SDKs) both pass
through ``structlog.stdlib.ProcessorFormatter``, get the same timestamp, level and logger fields, are
scrubbed of secrets, and are rendered as JSON lines (``AWAN_LOG_FORMAT=json``, the default) or for a
terminal (``console``). The cloud SDKs' per-request HTTP logging (Azure's request/response dumps,
botocore, urllib3, the Kubernetes client) is held at WARNING unless ``AWAN_LOG_SDK_HTTP`` asks for it.

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
from structlog.typing import EventDict, Processor, WrappedLogger

_SECRET_KEYS = re.compile(r"(pass(word)?|secret|token|credential|authorization|api[-_]?key)", re.I)
_secrets: set[str] = set()
MASK = "***"
FORMATS = ("json", "console")

# Loggers that log every HTTP request and response of a cloud SDK (Azure dumps headers and bodies at INFO).
SDK_HTTP_LOGGERS = (
    "azure", "azure.core.pipeline.policies.http_logging_policy", "azure.identity",
    "botocore", "boto3", "urllib3", "google", "google.auth", "kubernetes", "kubernetes.client.rest",
    "httpx", "httpcore", "werkzeug", "moto", "flask",
)
# Our access log replaces uvicorn's; its error logger stays (startup, shutdown, crashes).
_REPLACED = ("uvicorn.access",)


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


def _scrub_processor(_: WrappedLogger, __: str, event: EventDict) -> EventDict:
    scrubbed: EventDict = scrub(event)
    return scrubbed


class _CurrentStderr:
    """Whatever ``sys.stderr`` is when a line is written, not when logging was configured: a stream bound at
    configure time (a test's capture, a CLI runner's buffer) may be closed later, and every log call after
    that would raise "I/O operation on closed file" in whatever code happened to log."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


class _AwanHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Marks the one handler ``configure_logging`` installs, so configuring twice replaces it."""


def _shared() -> list[Processor]:
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.ExtraAdder(),
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]


def configure_logging(level: str = "INFO", json_output: bool = True, *, fmt: str | None = None,
                      sdk_http: bool = False) -> None:
    """``fmt`` (json|console) wins over ``json_output``; ``sdk_http`` lets the SDKs' HTTP logs through."""
    fmt = fmt or ("json" if json_output else "console")
    if fmt not in FORMATS:
        raise ValueError(f"log format: {fmt!r} is not one of {', '.join(FORMATS)}")
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        raise ValueError(f"log level: {level!r} is not one of DEBUG, INFO, WARNING, ERROR")
    renderer: Processor = (structlog.processors.JSONRenderer() if fmt == "json"
                           else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty()))
    structlog.configure(
        processors=[structlog.stdlib.filter_by_level, *_shared(), _scrub_processor,
                    structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        wrapper_class=structlog.stdlib.BoundLogger,
        logger_factory=structlog.stdlib.LoggerFactory(),
        cache_logger_on_first_use=False,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*_shared(), structlog.processors.format_exc_info],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, _scrub_processor, renderer],
    )
    handler = _AwanHandler(_CurrentStderr())
    handler.setFormatter(formatter)
    root = logging.getLogger()
    # ours from an earlier call and basicConfig's plain one go; pytest's capture handlers stay
    root.handlers = [h for h in root.handlers if not isinstance(h, _AwanHandler) and type(h) is not logging.StreamHandler]
    root.addHandler(handler)
    root.setLevel(numeric)
    for name in SDK_HTTP_LOGGERS:
        logging.getLogger(name).setLevel(logging.NOTSET if sdk_http else max(numeric, logging.WARNING))
    for name in ("uvicorn", "uvicorn.error", "alembic", "sqlalchemy"):
        lg = logging.getLogger(name)
        lg.handlers = []          # uvicorn and alembic install their own plain-text handlers
        lg.propagate = True
    # Alembic's migration steps ("Running upgrade 0001 -> 0003") are worth a line; its plugin set-up is not.
    logging.getLogger("alembic").setLevel(max(numeric, logging.WARNING))
    logging.getLogger("alembic.runtime.migration").setLevel(numeric)
    logging.getLogger("sqlalchemy").setLevel(max(numeric, logging.WARNING))
    for name in _REPLACED:
        lg = logging.getLogger(name)
        lg.handlers, lg.propagate, lg.disabled = [], False, True


def get_logger(name: str = "awan") -> Any:
    return structlog.get_logger(name)


_RECORD_ATTRS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}


def _no_record_clash(_: WrappedLogger, __: str, event: EventDict) -> EventDict:
    """stdlib refuses ``extra`` keys that are LogRecord attributes (``name``, ``args``...): rename them."""
    return {(f"{k}_" if k in _RECORD_ATTRS and k != "event" else k): v for k, v in event.items()}


def _until_configured() -> None:
    """Before ``configure_logging`` (a library user, a test, an in-process server) events go to the stdlib
    loggers, never to stdout: structlog's own default prints there, into a CLI's output."""
    structlog.configure(
        processors=[structlog.contextvars.merge_contextvars, _scrub_processor, _no_record_clash,
                    structlog.stdlib.render_to_log_kwargs],
        wrapper_class=structlog.stdlib.BoundLogger,
        logger_factory=structlog.stdlib.LoggerFactory(),
        cache_logger_on_first_use=False,
    )


if not structlog.is_configured():
    _until_configured()


# uvicorn.run(log_config=UVICORN_LOG_CONFIG) keeps uvicorn from replacing these handlers with its own.
UVICORN_LOG_CONFIG: dict[str, Any] = {"version": 1, "disable_existing_loggers": False}
