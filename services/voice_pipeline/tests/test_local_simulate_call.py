"""``callcenter simulate-call`` on the embedded speech providers: no keys, no network.

The caller's words are spoken by espeak-ng and sent as 8 kHz μ-law; the voice pipeline hears them
with PocketSphinx and answers with espeak-ng. No Deepgram or ElevenLabs key (or stand-in) is
configured, so ``auto`` picks the local providers, as on a fresh ``make run``.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
from collections.abc import AsyncIterator
from typing import Any

import pytest

from callcenter.common.bus import Bus
from tests.fakes.twilio_caller import phone_env
from tests.fakes.twilio_rest import TwilioStandIn
from tests.support.environment import TestEnvironment, free_port

from .conftest import ACCOUNT_SID, AGENT_NUMBER, AUTH_TOKEN, _start

CUSTOMER_PHONE = "+15555550101"  # CUS-0001, who owns ORD-1001 (caller ID verifies on voice)
VENDOR_VARS = (
    "DEEPGRAM_API_KEY",
    "CALLCENTER_DEEPGRAM__URL",
    "ELEVENLABS_API_KEY",
    "CALLCENTER_ELEVENLABS__URL",
)

pytestmark = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs espeak-ng")


@pytest.fixture(scope="module")
async def local_phone(
    test_env: TestEnvironment, db_pool: Any, bus: Bus, twilio_api: TwilioStandIn
) -> AsyncIterator[dict[str, str]]:
    ports = {name: free_port() for name in ("gateway", "voice_pipeline", "conversation", "tools")}
    env = phone_env(
        test_env.env,
        ports=ports,
        auth_token=AUTH_TOKEN,
        account_sid=ACCOUNT_SID,
        twilio_api_url=twilio_api.base_url,
        agent_number=AGENT_NUMBER,
        deepgram=_NoVendor(),
        elevenlabs=_NoVendor(),
    )
    for name in VENDOR_VARS:
        env.pop(name, None)
    env = {k: v for k, v in env.items() if not k.startswith(("OPENAI", "CALLCENTER_LLM__"))}
    env["CALLCENTER_VOICE_PIPELINE__SILENCE_REPROMPT_S"] = "60"
    env["CALLCENTER_VOICE_PIPELINE__SILENCE_HANGUP_S"] = "120"
    procs = {name: _start(name, env, ports[name], test_env.tag) for name in ports}
    try:
        for proc in procs.values():
            await asyncio.to_thread(proc.wait_ready, timeout_s=90)
        yield {**env, "GATEWAY_URL": procs["gateway"].url}
    finally:
        for proc in reversed(list(procs.values())):
            await asyncio.to_thread(proc.stop)


class _NoVendor:
    api_key = ""
    url = ""


async def test_simulate_call_with_no_keys_answers_from_the_database(
    local_phone: dict[str, str], db_pool: Any
) -> None:
    status = await db_pool.fetchval("SELECT status FROM orders WHERE order_id = 'ORD-1001'")
    env = {k: v for k, v in os.environ.items() if k not in VENDOR_VARS}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "callcenter.common.cli",
        "simulate-call",
        "--say",
        "where is my order, O R D one oh oh one",
        "--gateway",
        local_phone["GATEWAY_URL"],
        "--from-number",
        CUSTOMER_PHONE,
        "--timeout",
        "60",
        env={**env, **local_phone, "CALLCENTER_LOGGING__LEVEL": "WARNING"},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), timeout=240)
    text = out.decode()
    print(text)
    assert proc.returncode == 0, text
    assert "bot   greeting" in text
    answer = next(
        line for line in text.splitlines() if line.startswith("  bot   ") and "greeting" not in line
    )
    assert "ORD-1001" in answer and status in answer.lower(), text  # the order's real status
    assert "call ended:" in text
