"""A local OpenTelemetry collector stand-in: the OTLP/HTTP traces endpoint, keeping what it gets.

    collector = OtlpCollector().start()     # services: OTEL_EXPORTER_OTLP_ENDPOINT=collector.url
    ...
    spans = collector.wait_for_trace(trace_id, services={"callcenter-gateway", ...})
    collector.stop()

It speaks the real wire protocol: ``POST /v1/traces`` with a protobuf ``ExportTraceServiceRequest``
(``application/x-protobuf``, optionally gzip-encoded, as the SDK's OTLPSpanExporter sends it; JSON
protobuf encoding is accepted too), answered with an ``ExportTraceServiceResponse``. The services'
real exporters talk to it, so what it records is what a real collector would receive.
"""

from __future__ import annotations

import gzip
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span as ProtoSpan

from tests.fakes.threaded_http import ThreadedHTTPStandIn


@dataclass(slots=True)
class ReceivedSpan:
    """One span as the collector received it."""

    trace_id: str
    span_id: str
    parent_span_id: str
    name: str
    kind: str
    service: str
    attributes: dict[str, Any] = field(default_factory=dict)
    resource: dict[str, Any] = field(default_factory=dict)
    #: (trace_id, span_id) of each linked span
    links: list[tuple[str, str]] = field(default_factory=list)


def _value(value: AnyValue) -> Any:
    which = value.WhichOneof("value")
    if which == "array_value":
        return [_value(v) for v in value.array_value.values]
    if which == "kvlist_value":
        return {kv.key: _value(kv.value) for kv in value.kvlist_value.values}
    return getattr(value, which) if which else None


def _attributes(items: Iterable[Any]) -> dict[str, Any]:
    return {kv.key: _value(kv.value) for kv in items}


def decode(request: ExportTraceServiceRequest) -> list[ReceivedSpan]:
    """Every span in an export request, with its resource's service.name."""
    spans = []
    for resource_spans in request.resource_spans:
        resource = _attributes(resource_spans.resource.attributes)
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                spans.append(
                    ReceivedSpan(
                        trace_id=span.trace_id.hex(),
                        span_id=span.span_id.hex(),
                        parent_span_id=span.parent_span_id.hex(),
                        name=span.name,
                        kind=ProtoSpan.SpanKind.Name(span.kind),
                        service=str(resource.get("service.name", "")),
                        attributes=_attributes(span.attributes),
                        resource=resource,
                        links=[(link.trace_id.hex(), link.span_id.hex()) for link in span.links],
                    )
                )
    return spans


class OtlpCollector(ThreadedHTTPStandIn):
    """OTLP/HTTP traces receiver on 127.0.0.1; ``url`` is the base endpoint (no /v1/traces)."""

    thread_name = "otlp-collector"

    def __init__(self) -> None:
        super().__init__()
        self.spans: list[ReceivedSpan] = []
        self.requests = 0
        self.content_types: set[str] = set()
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        """What to put in OTEL_EXPORTER_OTLP_ENDPOINT."""
        return self.origin

    def start(self) -> OtlpCollector:
        """Listen on a free port in a background thread."""
        collector = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                if self.path.rstrip("/") != "/v1/traces":
                    self.send_error(404)
                    return
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.headers.get("Content-Encoding", "").lower() == "gzip":
                    body = gzip.decompress(body)
                content_type = (self.headers.get("Content-Type") or "").split(";")[0].strip()
                request = ExportTraceServiceRequest()
                try:
                    if content_type == "application/json":
                        json_format.Parse(body, request)
                    else:
                        request.ParseFromString(body)
                except Exception:
                    self.send_error(400, "not an ExportTraceServiceRequest")
                    return
                collector._record(content_type, decode(request))
                reply = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                return None

        self._serve(Handler)
        return self

    def stop(self) -> None:
        """Stop listening."""
        self._shutdown()

    def _record(self, content_type: str, spans: list[ReceivedSpan]) -> None:
        with self._lock:
            self.requests += 1
            self.content_types.add(content_type)
            self.spans.extend(spans)

    def snapshot(self) -> list[ReceivedSpan]:
        """Every span received so far."""
        with self._lock:
            return list(self.spans)

    def trace(self, trace_id: str) -> list[ReceivedSpan]:
        """The spans of one trace received so far."""
        return [s for s in self.snapshot() if s.trace_id == trace_id]

    def wait_until(
        self, predicate: Callable[[list[ReceivedSpan]], bool], *, timeout_s: float = 20.0
    ) -> list[ReceivedSpan]:
        """Poll until ``predicate(spans)`` holds; return the spans (AssertionError on timeout)."""
        deadline = time.monotonic() + timeout_s
        while True:
            spans = self.snapshot()
            if predicate(spans):
                return spans
            if time.monotonic() > deadline:
                seen = sorted({(s.service, s.name) for s in spans})
                raise AssertionError(f"collector did not get the expected spans; got {seen}")
            time.sleep(0.1)
