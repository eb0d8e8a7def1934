"""A replica's call capacity from its CPU figures, admission against it, the gateway's overflow."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import httpx
from prometheus_client import REGISTRY
from pydantic import SecretStr
from twilio.request_validator import RequestValidator

from callcenter.common.bus import Bus
from callcenter.common.config import CallCenterConfig
from callcenter.common.config.sections import VoicePipelineSettings
from callcenter.common.health import Readiness
from callcenter.common.voice_load import KEY, forget_voice_replica, report_voice_load
from callcenter.voice_pipeline.capacity import (
    CallAdmission,
    available_cores,
    call_capacity,
    cgroup_cpu_limit,
)


def test_capacity_follows_the_cpu_limit_and_the_measured_cost() -> None:
    settings = VoicePipelineSettings(cpu_ms_per_call_second=15.0, cpu_headroom=0.75)
    assert call_capacity(settings, cores=2) == 100  # 2 cores * 750 ms / 15 ms
    limited = settings.model_copy(update={"cpu_limit_cores": 0.5})
    assert call_capacity(limited, cores=2) == 25  # the container's limit, not the host's cores
    assert call_capacity(settings.model_copy(update={"max_calls": 7}), cores=2) == 7
    costly = VoicePipelineSettings(cpu_ms_per_call_second=900.0, cpu_limit_cores=0.5)
    assert call_capacity(costly) == 1  # never zero


def test_the_containers_cpu_limit_is_read_from_its_cgroup(tmp_path: Path) -> None:
    (tmp_path / "cpu.max").write_text("150000 100000\n")  # limits.cpu: 1500m
    assert cgroup_cpu_limit(tmp_path) == 1.5
    (tmp_path / "cpu.max").write_text("max 100000\n")  # no limit
    assert cgroup_cpu_limit(tmp_path) is None
    (tmp_path / "cpu.max").unlink()
    (tmp_path / "cpu").mkdir()
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text("50000\n")  # cgroup v1, 500m
    (tmp_path / "cpu" / "cpu.cfs_period_us").write_text("100000\n")
    assert cgroup_cpu_limit(tmp_path) == 0.5
    assert 0 < available_cores() <= (os.cpu_count() or 1)


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


async def test_the_gateway_turns_a_call_away_politely_when_every_replica_is_full(
    config: CallCenterConfig, db_pool: Any, bus: Bus, redis_client: Any
) -> None:
    from callcenter.gateway.app import create_app
    from callcenter.gateway.deps import GatewayDeps

    token = "overflow-test-token"
    cfg = config.model_copy(
        update={"twilio": config.twilio.model_copy(update={"auth_token": SecretStr(token)})}
    )
    prefix = cfg.redis.key_prefix
    deps = GatewayDeps(config=cfg, bus=bus, redis=redis_client, db=db_pool, readiness=Readiness())
    url = cfg.gateway.public_base_url.rstrip("/") + "/twilio/voice"

    async def incoming(call_sid: str) -> str:
        form = {"CallSid": call_sid, "From": "+15550001111", "To": "+15550002222"}
        signature = RequestValidator(token).compute_signature(url, form)
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=create_app(deps)), base_url="http://gateway"
        ) as client:
            response = await client.post(
                "/twilio/voice", data=form, headers={"X-Twilio-Signature": signature}
            )
        assert response.status_code == 200, response.text
        return response.text

    await redis_client.delete(prefix + KEY)
    try:
        await report_voice_load(redis_client, key_prefix=prefix, replica="a", active=3, capacity=3)
        await report_voice_load(redis_client, key_prefix=prefix, replica="b", active=2, capacity=3)
        assert "<Stream" in await incoming("CA" + "1" * 32)  # replica b has room
        await report_voice_load(redis_client, key_prefix=prefix, replica="b", active=3, capacity=3)
        turned_away = await incoming("CA" + "2" * 32)
        assert "<Stream" not in turned_away
        assert "all our lines are busy" in turned_away and "<Hangup" in turned_away
        await forget_voice_replica(redis_client, key_prefix=prefix, replica="b")
        await forget_voice_replica(redis_client, key_prefix=prefix, replica="a")
        assert "<Stream" in await incoming("CA" + "3" * 32)  # nobody reports: try the call
    finally:
        await redis_client.delete(prefix + KEY)
