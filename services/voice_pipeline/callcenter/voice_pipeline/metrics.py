"""Prometheus metrics of the voice pipeline (served on /metrics)."""

from prometheus_client import Counter, Gauge, Histogram

_BUCKETS = (25, 50, 100, 200, 300, 500, 750, 1000, 1500, 2000, 3000, 5000, 10000)

TURN_STAGE_MS = Histogram(
    "voice_turn_stage_ms",
    "Per-turn latency from the caller stopping to each stage (stt_final, first_token, "
    "first_audio, first_audio_sent) and final transcript -> first audio sent",
    ["stage"],
    buckets=_BUCKETS,
)
GREETING_MS = Histogram(
    "voice_greeting_first_audio_ms",
    "Media stream start -> first greeting audio sent to Twilio",
    buckets=_BUCKETS,
)
ACTIVE_CALLS = Gauge("voice_active_calls", "Calls with a running pipeline in this process")
CALL_CAPACITY = Gauge(
    "voice_call_capacity", "Concurrent calls this replica carries in real time (from its CPU)"
)
LOAD = Gauge(
    "voice_load", "Calls in progress / capacity (HPA target; at 1.0 new streams are refused)"
)
REFUSED_CALLS = Counter("voice_refused_calls_total", "Media streams refused: replica at capacity")
