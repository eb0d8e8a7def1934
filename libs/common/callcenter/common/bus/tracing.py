"""W3C trace context carried in NATS headers."""

from __future__ import annotations

from collections.abc import Mapping

from opentelemetry import context as otel_context
from opentelemetry import propagate


def inject_trace(headers: dict[str, str] | None = None) -> dict[str, str]:
    """Return ``headers`` with ``traceparent``/``tracestate`` of the current span added."""
    carrier: dict[str, str] = dict(headers or {})
    propagate.inject(carrier)
    return carrier


def extract_trace(headers: Mapping[str, str] | None) -> otel_context.Context:
    """The trace context a message carries (empty context when it carries none)."""
    return propagate.extract(dict(headers or {}))
