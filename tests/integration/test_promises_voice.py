"""Voice without speech providers says so: config check, /readyz, simulate-call (issue 15)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Callable

import httpx

from tests.support.environment import TestEnvironment
from tests.support.processes import ServiceProcess

KEYS = ("DEEPGRAM_API_KEY", "ELEVENLABS_API_KEY", "CALLCENTER_DEEPGRAM__API_KEY",
        "CALLCENTER_ELEVENLABS__API_KEY")  # fmt: skip


#: The cloud vendors chosen explicitly: with ``auto`` and no keys the embedded speech runs.
CLOUD = {
    "CALLCENTER_VOICE_PIPELINE__STT_PROVIDER": "deepgram",
    "CALLCENTER_VOICE_PIPELINE__TTS_PROVIDER": "elevenlabs",
}


def keyless(env: dict[str, str]) -> dict[str, str]:
    return {**{k: v for k, v in env.items() if k not in KEYS}, **CLOUD}


def test_config_check_warns_that_voice_cannot_work(test_env: TestEnvironment) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "callcenter.common.cli", "config", "check"],
        env=keyless({**os.environ, **test_env.env}),
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "warning: voice calls cannot work: speech-to-text" in result.stderr
    assert "DEEPGRAM_API_KEY" in result.stderr and "ELEVENLABS_API_KEY" in result.stderr
    with_keys = subprocess.run(
        [sys.executable, "-m", "callcenter.common.cli", "config", "check"],
        env={**keyless({**os.environ, **test_env.env}), "DEEPGRAM_API_KEY": "k",
             "ELEVENLABS_API_KEY": "k"},
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert with_keys.returncode == 0 and "voice calls cannot work" not in with_keys.stderr
    embedded = subprocess.run(
        [sys.executable, "-m", "callcenter.common.cli", "config", "check"],
        env={k: v for k, v in keyless({**os.environ, **test_env.env}).items() if k not in CLOUD},
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert embedded.returncode == 0 and "voice calls cannot work" not in embedded.stderr


async def test_voice_readyz_says_what_it_lacks_and_simulate_call_fails_fast(
    test_env: TestEnvironment, service_factory: Callable[..., ServiceProcess]
) -> None:
    gateway = service_factory("gateway")
    env = keyless(test_env.env)
    voice = ServiceProcess(
        "voice_pipeline", env=env, port=test_env.ports["voice_pipeline"], tag=test_env.tag
    ).start(wait=False)
    try:
        body = await _readyz_once_up(voice.url)
        assert body["status"] == "not ready"
        assert body["checks"]["speech_providers"] is False
        assert body["checks"]["nats"] is True  # only the providers are missing
        assert "DEEPGRAM_API_KEY" in body["lacks"]["speech_providers"]
        assert "ELEVENLABS_API_KEY" in body["lacks"]["speech_providers"]

        result = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "callcenter.common.cli", "simulate-call", "--dtmf", "1#",
             "--auth-token", "tok", "--gateway", gateway.url, "--timeout", "30"],
            env={**os.environ, **env}, capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert result.returncode == 2, (result.stdout, result.stderr)
        assert "cannot place the call: voice calls cannot work: speech-to-text" in result.stdout
        assert "Traceback" not in result.stderr
    finally:
        voice.stop()


async def _readyz_once_up(url: str) -> dict:
    deadline = time.monotonic() + 90
    async with httpx.AsyncClient(timeout=3) as client:
        while time.monotonic() < deadline:
            try:
                reply = await client.get(f"{url}/readyz")
                body = reply.json()
                if body.get("checks", {}).get("nats"):
                    assert reply.status_code == 503
                    return body
            except (httpx.HTTPError, ValueError):
                pass
            await asyncio.sleep(0.3)
    raise AssertionError("the voice pipeline never answered /readyz")
