"""Prometheus metrics of the tools service (served on ``/metrics`` by the runtime)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

TOOL_CALLS = Counter(
    "callcenter_tool_calls_total",
    "Tool calls answered, by tool and outcome (ok or the error code).",
    ["tool", "outcome"],
)
TOOL_SECONDS = Histogram(
    "callcenter_tool_call_seconds",
    "Time to answer a tool call, by tool.",
    ["tool"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
