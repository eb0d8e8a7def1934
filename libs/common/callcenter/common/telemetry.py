"""OpenTelemetry tracing: a tracer provider per process, exported over OTLP/HTTP when configured."""

from __future__ import annotations

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

from callcenter.common.config.sections import TelemetrySettings

_provider: TracerProvider | None = None


def setup_tracing(
    *,
    service: str,
    settings: TelemetrySettings,
    extra_processors: list[SpanProcessor] | None = None,
) -> TracerProvider:
    """Install the global tracer provider for this process (once; later calls add processors)."""
    global _provider
    if _provider is None:
        _provider = TracerProvider(
            resource=Resource.create(
                {"service.name": f"callcenter-{service}", "service.namespace": "callcenter"}
            ),
            sampler=ParentBased(TraceIdRatioBased(settings.sample_ratio)),
        )
        if settings.otlp_endpoint:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            endpoint = settings.otlp_endpoint.rstrip("/") + "/v1/traces"
            _provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
        trace.set_tracer_provider(_provider)
    for processor in extra_processors or []:
        _provider.add_span_processor(processor)
    return _provider


def shutdown_tracing() -> None:
    """Flush spans on exit."""
    if _provider is not None:
        _provider.shutdown()
