"""A replica's call capacity from its CPU figures, and admission against it."""

from __future__ import annotations

from prometheus_client import REGISTRY

from callcenter.common.config.sections import VoicePipelineSettings
from callcenter.voice_pipeline.capacity import CallAdmission, call_capacity


def test_capacity_follows_the_cpu_limit_and_the_measured_cost() -> None:
    settings = VoicePipelineSettings(cpu_ms_per_call_second=15.0, cpu_headroom=0.75)
    assert call_capacity(settings, cores=2) == 100  # 2 cores * 750 ms / 15 ms
    limited = settings.model_copy(update={"cpu_limit_cores": 0.5})
    assert call_capacity(limited, cores=2) == 25  # the container's limit, not the host's cores
    assert call_capacity(settings.model_copy(update={"max_calls": 7}), cores=2) == 7
    costly = VoicePipelineSettings(cpu_ms_per_call_second=900.0, cpu_limit_cores=0.5)
    assert call_capacity(costly) == 1  # never zero


def test_admission_refuses_beyond_capacity_and_exports_the_load() -> None:
    def sample(name: str) -> float | None:
        return REGISTRY.get_sample_value(name)

    refused_before = sample("voice_refused_calls_total") or 0.0
    admission = CallAdmission(capacity=2)
    assert sample("voice_call_capacity") == 2
    assert admission.try_admit() and admission.try_admit()
    assert admission.full and sample("voice_load") == 1.0
    assert not admission.try_admit()
    assert sample("voice_refused_calls_total") == refused_before + 1
    admission.release()
    assert not admission.full and sample("voice_load") == 0.5
    assert admission.try_admit()
