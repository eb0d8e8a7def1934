"""A visitor calls from the widget's Call button in real Chromium and hears the answer to a question.

The visitor first verifies in the chat (order number and ZIP), then presses Call: the call is
theirs too (the widget sends the chat's token, the gateway checks it), so the answer names what
is in the order, which only the verified owner hears, and the call is recorded as the customer's.
Chromium's fake microphone plays a WAV made here with espeak-ng ("where is my order, O R D one oh
oh one", said after a pause for the greeting); the voice pipeline runs the embedded speech
providers (PocketSphinx hears it, espeak-ng answers), so no key and no network is involved. The
page counts the bytes of answer audio it received; the call's transcript (customer and assistant
turns), channel web_voice, is on the dashboard.
"""

from __future__ import annotations

import asyncio
import io
import re
import shutil
import subprocess
import wave
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import numpy as np
import pytest
import soxr
from playwright.async_api import Browser, async_playwright, expect

from tests.browser.conftest import ADMIN_TOKEN, CHROMIUM, CHROMIUM_ARGS, GATEWAY_ENV, Stack
from tests.browser.test_widget_and_dashboard import supervisor

pytestmark = [
    pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs espeak-ng"),
    pytest.mark.timeout(300),
]

RATE = 16000
QUESTION = "where is my order, O R D one oh oh one"
GREETING = "Hi, this is Ava from Acme Outfitters. How can I help you today?"
ESPEAK_WPM = "165"  # the espeak TTS service's speaking rate
#: the answer audio the page has received, as the widget counts it
AUDIO_BYTES = (
    "document.querySelector('[data-callcenter-widget]').getAttribute('data-call-audio-bytes')"
)


def espeak_pcm(text: str) -> np.ndarray:
    """``text`` spoken by espeak-ng, as 16 kHz 16-bit samples."""
    out = subprocess.run(
        ["espeak-ng", "-v", "en-us", "-s", ESPEAK_WPM, "--stdout", text],
        capture_output=True,
        check=True,
    ).stdout
    with wave.open(io.BytesIO(out)) as wav:
        rate = wav.getframerate()
        samples = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")
    return soxr.resample(samples, rate, RATE).astype("<i2")


@pytest.fixture(scope="module")
def caller_wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The fake microphone: a pause while the greeting plays, the question, then silence."""
    silence = np.zeros(RATE * 8, dtype="<i2")
    audio = np.concatenate([silence, espeak_pcm(QUESTION), silence, silence])
    path = tmp_path_factory.mktemp("mic") / "caller.wav"
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(RATE)
        wav.writeframes(audio.tobytes())
    return path


@pytest.fixture(scope="module")
def voice(stack: Stack, service_factory) -> str:
    """The voice pipeline on the embedded providers, sharing the gateway's token secret."""
    proc = service_factory(
        "voice_pipeline",
        extra_env={
            **GATEWAY_ENV,
            "CALLCENTER_VOICE_PIPELINE__STT_PROVIDER": "pocketsphinx",
            "CALLCENTER_VOICE_PIPELINE__TTS_PROVIDER": "espeak",
            "CALLCENTER_VOICE_PIPELINE__SILENCE_REPROMPT_S": "60",
            "CALLCENTER_VOICE_PIPELINE__SILENCE_HANGUP_S": "120",
        },
        wait=False,
    )
    proc.wait_ready(timeout_s=90)
    return proc.url


@pytest.fixture(scope="module")
async def mic_browser(caller_wav: Path) -> AsyncIterator[Browser]:
    """Chromium whose microphone is the WAV (played once), with permission already given."""
    args = [
        *CHROMIUM_ARGS,
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-audio-capture={caller_wav}%noloop",
        "--autoplay-policy=no-user-gesture-required",
    ]
    async with async_playwright() as pw:
        instance = await pw.chromium.launch(executable_path=CHROMIUM, args=args)
        yield instance
        await instance.close()


async def call_detail(stack: Stack, call_id: str) -> dict:
    async with httpx.AsyncClient(
        base_url=stack.base, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
    ) as api:
        response = await api.get(f"/api/calls/{call_id}")
    response.raise_for_status()
    return response.json()


async def answered_turn(stack: Stack, call_id: str) -> dict:
    """The stored turn in which the caller asked about ORD-1001 and the assistant answered."""
    async with asyncio.timeout(120):
        while True:
            for turn in (await call_detail(stack, call_id))["transcript"]:
                if "1001" in turn["user_text"] and "ORD-1001" in turn["assistant_text"]:
                    return turn
            await asyncio.sleep(0.5)


async def test_a_browser_call_asks_about_an_order_and_hears_the_answer(
    mic_browser: Browser, browser: Browser, stack: Stack, voice: str, db_pool, shot
) -> None:
    status, customer_id, zip_code = await db_pool.fetchrow(
        "SELECT o.status, c.customer_id, c.zip FROM orders o JOIN customers c USING (customer_id) "
        "WHERE o.order_id = 'ORD-1001'"
    )
    context = await mic_browser.new_context(viewport={"width": 1280, "height": 800})
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        await page.goto(stack.host_url)  # a third-party site embedding the widget
        await page.get_by_role("button", name="Chat with Ava").click()
        chat = page.get_by_role("dialog", name="Chat with Ava")
        box = chat.get_by_label("Your message")
        await box.fill(f"Please verify me: ORD-1001 and ZIP {zip_code}")
        await box.press("Enter")
        await expect(chat.locator(".msg.bot").nth(1)).to_contain_text(
            "you're verified", timeout=30_000
        )
        await chat.get_by_role("button", name=re.compile("^Call us")).click()
        widget = page.locator("[data-callcenter-widget]")
        await expect(widget).to_have_attribute("data-call-state", "live", timeout=30_000)
        await expect(chat.get_by_role("button", name="Hang up the call")).to_be_visible()
        call_id = await widget.get_attribute("data-call-id")
        assert call_id

        turn = await answered_turn(stack, call_id)
        assert status in turn["assistant_text"].lower()  # the order's real status
        assert "It contains" in turn["assistant_text"]  # its items: the caller is verified
        # The page received (at least most of) the greeting and the spoken answer as audio.
        expected = 2 * (len(espeak_pcm(GREETING)) + len(espeak_pcm(turn["assistant_text"])) // 2)
        await page.wait_for_function(
            f"Number({AUDIO_BYTES}) >= {expected}", timeout=90_000, polling=200
        )
        await shot(page, "web-voice-call")

        await chat.get_by_role("button", name="Hang up the call").click()
        await expect(chat.get_by_text("Call ended.")).to_be_visible()
        await expect(widget).to_have_attribute("data-call-state", "ended")
        assert not errors, errors
    finally:
        await context.close()

    # The supervisor finds the call as a browser call, with both sides of the conversation.
    dash_ctx, dash = await supervisor(browser, stack)
    try:
        await dash.goto(f"{stack.base}/dashboard/calls/{call_id}")
        await expect(dash.locator("#facts")).to_contain_text("web_voice")
        transcript = dash.locator("#transcript")
        await expect(transcript.locator(".turn .u").first).to_contain_text("1001")
        await expect(transcript.locator(".turn .a", has_text="ORD-1001").first).to_be_visible()
        await dash.get_by_role("link", name="Calls").click()
        await dash.get_by_label("Channel").select_option("web_voice")
        await dash.get_by_role("button", name="Apply").click()
        await expect(dash.locator(f'#calls tr[data-call-id="{call_id}"]')).to_be_visible()
        await shot(dash, "web-voice-call-detail")
    finally:
        await dash_ctx.close()
    detail = await call_detail(stack, call_id)
    assert detail["call"]["channel"] == "web_voice" and detail["call"]["from_number"] is None
    assert (
        await db_pool.fetchval(
            "SELECT customer_id FROM turns WHERE call_id = $1 AND assistant_text LIKE '%ORD-1001%'",
            call_id,
        )
        == customer_id
    )
