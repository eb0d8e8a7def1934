"""OpenTelemetry metrics of the post-call service: Prometheus on /metrics, OTLP when configured.

The Prometheus reader writes into prometheus_client's default registry, which the runtime already
serves at ``/metrics``; a periodic OTLP/HTTP exporter is added when ``telemetry.otlp_endpoint`` is set.
"""

from __future__ import annotations

from opentelemetry.metrics import Meter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricReader, PeriodicExportingMetricReader
from opentelemetry.sdk.metrics.view import ExplicitBucketHistogramAggregation, View
from opentelemetry.sdk.resources import Resource

from callcenter.common.config.sections import TelemetrySettings

_provider: MeterProvider | None = None

LATENCY_BUCKETS_MS = [5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000]

VIEWS = [
    View(
        instrument_name="callcenter.call.duration",
        aggregation=ExplicitBucketHistogramAggregation([5, 15, 30, 60, 120, 300, 600, 1200, 3600]),
    ),
    View(
        instrument_name="callcenter.call.turns",
        aggregation=ExplicitBucketHistogramAggregation([1, 2, 3, 5, 8, 13, 21, 34]),
    ),
    View(
        instrument_name="callcenter.call.satisfaction",
        aggregation=ExplicitBucketHistogramAggregation([1, 2, 3, 4, 5]),
    ),
    View(
        instrument_name="callcenter.turn.stage.latency",
        aggregation=ExplicitBucketHistogramAggregation(LATENCY_BUCKETS_MS),
    ),
    View(
        instrument_name="callcenter.handoff.queue_wait",
        aggregation=ExplicitBucketHistogramAggregation([5, 15, 30, 60, 120, 300, 600, 1800]),
    ),
    View(
        instrument_name="callcenter.post_call.step.latency",
        aggregation=ExplicitBucketHistogramAggregation(LATENCY_BUCKETS_MS),
    ),
]


class PostCallMetrics:
    """The instruments the post-call steps record."""

    def __init__(self, *, meter: Meter) -> None:
        self.calls_ended = meter.create_counter(
            "callcenter.calls.ended", unit="1", description="Calls ended, by channel and end reason"
        )
        self.calls = meter.create_counter(
            "callcenter.calls",
            unit="1",
            description="Summarised calls, by channel and outcome (resolved or unresolved)",
        )
        self.duration = meter.create_histogram(
            "callcenter.call.duration", unit="s", description="Call duration"
        )
        self.turns = meter.create_histogram(
            "callcenter.call.turns", unit="1", description="Turns per call"
        )
        self.satisfaction = meter.create_histogram(
            "callcenter.call.satisfaction", unit="1", description="Satisfaction score 1-5"
        )
        self.stage_latency = meter.create_histogram(
            "callcenter.turn.stage.latency",
            unit="ms",
            description="Per-stage turn latency (first token, tools, total, STT, first audio)",
        )
        # the agent inbox: hand-off rate = handoffs / calls ended; how long customers queue
        self.handoffs = meter.create_counter(
            "callcenter.handoffs",
            unit="1",
            description="Conversations handed to a person, by channel and trigger",
        )
        self.queue_wait = meter.create_histogram(
            "callcenter.handoff.queue_wait",
            unit="s",
            description="How long a customer waited for an agent to take the conversation",
        )
        self.tool_calls = meter.create_counter(
            "callcenter.tool.calls", unit="1", description="Tool calls, by tool and success"
        )
        self.tool_errors = meter.create_counter(
            "callcenter.tool.errors", unit="1", description="Failed tool calls, by tool and error"
        )
        self.step_latency = meter.create_histogram(
            "callcenter.post_call.step.latency",
            unit="ms",
            description="Time from an event's occurrence to a post-call step's effect",
        )
        self.dead_letters = meter.create_counter(
            "callcenter.post_call.dead_letters", unit="1", description="Dead-lettered messages"
        )


def setup_metrics(*, service: str, settings: TelemetrySettings) -> PostCallMetrics:
    """The process's meter provider (created once) and the post-call instruments on it."""
    global _provider
    if _provider is None:
        from opentelemetry.exporter.prometheus import PrometheusMetricReader

        readers: list[MetricReader] = [PrometheusMetricReader()]
        if settings.otlp_endpoint:
            from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter

            endpoint = settings.otlp_endpoint.rstrip("/") + "/v1/metrics"
            readers.append(PeriodicExportingMetricReader(OTLPMetricExporter(endpoint=endpoint)))
        _provider = MeterProvider(
            metric_readers=readers,
            resource=Resource.create(
                {"service.name": f"callcenter-{service}", "service.namespace": "callcenter"}
            ),
            views=VIEWS,
        )
    return PostCallMetrics(meter=_provider.get_meter("callcenter.post_call"))


def shutdown_metrics() -> None:
    """Flush (OTLP) and stop the readers."""
    global _provider
    if _provider is not None:
        _provider.shutdown()
        _provider = None
