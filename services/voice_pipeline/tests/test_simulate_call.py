"""``callcenter simulate-call`` against a running system."""

from __future__ import annotations

import asyncio
import os
import sys

from .conftest import PhoneSystem

QUESTION = "How long does shipping take for my order?"


async def test_simulate_call_prints_the_transcript_and_latencies(phone: PhoneSystem) -> None:
    phone.deepgram.script(None, QUESTION)  # the command makes up its own CallSid
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "callcenter.common.cli",
        "simulate-call",
        "--say",
        QUESTION,
        "--gateway",
        phone.gateway.url,
        env={**os.environ, **phone.env, "CALLCENTER_LOGGING__LEVEL": "WARNING"},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), timeout=90)
    text = out.decode()
    assert proc.returncode == 0, text
    assert "bot   greeting" in text
    assert f"you   {QUESTION}" in text
    assert "felt " in text and "first_token_ms=" in text
    assert "call ended:" in text
