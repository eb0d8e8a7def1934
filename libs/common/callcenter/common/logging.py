"""Structured logging with structlog: JSON lines, call_id and trace ids on every line of a call.

Bind a call with :func:`bind_call` (a context manager over contextvars), and every log line made
in that task, and in tasks it starts, carries ``call_id``. Standard-library loggers of libraries
go through the same processors. PII is redacted from every event.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import structlog

from callcenter.common.pii import redact_value

_SECRET_KEYS = {"password", "token", "api_key", "auth_token", "secret", "authorization"}


def _redact_processor(_: Any, __: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    for key, value in list(event_dict.items()):
        if any(marker in key.lower() for marker in _SECRET_KEYS):
            event_dict[key] = "********"
        else:
            event_dict[key] = redact_value(value)
    return event_dict


def _trace_processor(_: Any, __: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    try:
        from opentelemetry import trace

        ctx = trace.get_current_span().get_span_context()
        if ctx.is_valid:
            event_dict.setdefault("trace_id", format(ctx.trace_id, "032x"))
            event_dict.setdefault("span_id", format(ctx.span_id, "016x"))
    except Exception:  # pragma: no cover - telemetry must never break logging
        pass
    return event_dict


def configure_logging(*, service: str, level: str = "INFO", fmt: str = "json") -> None:
    """Configure structlog and the standard library root logger for one service process."""
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _trace_processor,
        _redact_processor,
    ]
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        # a call below the level stops at the first processor, before timestamps and redaction
        processors=[
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            _redact_processor,  # again: exception text is only rendered here
            renderer,
        ],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    handler.addFilter(_NoFrameTraces())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("httpx", "httpcore", "LiteLLM", "litellm", "asyncio", "websockets"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(service=service)


class _NoFrameTraces(logging.Filter):
    """Drops websocket frame traces (``< TEXT '{…}' [205 bytes]``) at any level.

    uvicorn hands its logger to the websockets protocol, which at DEBUG traces every frame with
    its payload cut short; a card number cut in the middle is beyond any redactor, so customer text
    must never be logged that way.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.msg if isinstance(record.msg, str) else ""
        return not (record.levelno <= logging.DEBUG and message.startswith(("< ", "> ", "= ")))


def get_logger(name: str | None = None) -> structlog.stdlib.BoundLogger:
    """A structured logger."""
    return structlog.stdlib.get_logger(name)


@contextmanager
def bind_call(call_id: str, **extra: Any) -> Iterator[None]:
    """Every log line inside carries ``call_id`` (and any extra keys)."""
    with structlog.contextvars.bound_contextvars(call_id=call_id, **extra):
        yield
