"""Silence: a reprompt, then goodbye and hang-up; the maximum call length."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from callcenter.common.config.sections import VoicePipelineSettings
from tests.fakes.twilio_caller import TwilioCaller, speech_ulaw
from tests.support.environment import TestEnvironment, free_port
from tests.support.processes import ServiceProcess

from .conftest import EventLog, PhoneSystem


async def _call_quick_voice(phone: PhoneSystem, url: str) -> tuple[TwilioCaller, str, int]:
    """A call whose media stream goes to the quick voice pipeline; (caller, call id, texts so far)."""
    caller = phone.caller()
    await caller.dial()
    await caller.open_stream(url=url)
    return caller, caller.parameters["call_id"], len(phone.elevenlabs.texts)


async def _say_unless_hung_up(caller: TwilioCaller, text: str) -> None:
    """Say ``text``; ``say`` returns when the system hangs up meanwhile (the rest is not sent)."""
    await asyncio.wait_for(caller.say(text), timeout=60)


@pytest.fixture(scope="module")
async def quick_voice(phone: PhoneSystem, test_env: TestEnvironment) -> AsyncIterator[str]:
    """A second voice pipeline whose silence and call-length timers are short."""
    port = free_port()
    url = f"ws://127.0.0.1:{port}/twilio/media"
    env = {
        **phone.env,
        "CALLCENTER_VOICE_PIPELINE__PORT": str(port),
        "CALLCENTER_VOICE_PIPELINE__PUBLIC_WS_URL": url,
        "CALLCENTER_VOICE_PIPELINE__SILENCE_REPROMPT_S": "2",
        "CALLCENTER_VOICE_PIPELINE__SILENCE_HANGUP_S": "5",
        "CALLCENTER_VOICE_PIPELINE__MAX_CALL_S": "12",
    }
    proc = ServiceProcess("voice_pipeline", env=env, port=port, tag=test_env.tag + "-quick")
    await asyncio.to_thread(proc.start)
    yield url
    await asyncio.to_thread(proc.stop)


async def test_silence_reprompts_then_says_goodbye_and_hangs_up(
    phone: PhoneSystem, events: EventLog, quick_voice: str
) -> None:
    defaults = VoicePipelineSettings()
    caller, call_id, texts_before = await _call_quick_voice(phone, quick_voice)
    ended = await events.wait_for("call.ended", call_id, timeout_s=30)
    assert ended[0]["reason"] == "silence"
    spoken = " ".join(phone.elevenlabs.texts[texts_before:])
    assert defaults.reprompt_text in spoken
    assert defaults.goodbye_text.split(",")[0] in spoken
    assert len(caller.bot) >= 3  # greeting, reprompt, goodbye: never dead air
    assert phone.hung_up(caller.call_sid)


async def test_status_callback_and_stream_end_publish_one_call_ended(
    phone: PhoneSystem, events: EventLog
) -> None:
    caller, call_id = await phone.greeted_call()
    response = await caller.status("completed")  # Twilio's callback can beat the stream's end
    assert response.status_code == 204
    ended = await events.wait_for("call.ended", call_id)
    assert ended[0]["reason"] == "completed"
    mark = phone.voice.log_mark()
    await caller.hang_up(status_callback=False)
    # the stream's end reaches the voice pipeline's end of the call, which declines (or, were it
    # broken, publishes) a second call.ended; every event published before that has arrived here
    await phone.voice.wait_for_log(
        "call end already claimed", "call ended", call_id=call_id, since=mark
    )
    await events.settled()
    assert len(events.of("call.ended", call_id)) == 1


async def test_maximum_call_length_ends_the_call_politely(
    phone: PhoneSystem, events: EventLog, quick_voice: str
) -> None:
    defaults = VoicePipelineSettings()
    caller, call_id, texts_before = await _call_quick_voice(phone, quick_voice)
    # the caller keeps talking (nothing the system understands), so silence never ends the call
    for _ in range(8):
        if events.of("call.ended", call_id):
            break
        await _say_unless_hung_up(caller, "la la la la la")
        await asyncio.sleep(1.0)
    ended = await events.wait_for("call.ended", call_id, timeout_s=30)
    assert ended[0]["reason"] == "max_duration"
    assert defaults.max_call_text.split(".")[0] in " ".join(phone.elevenlabs.texts[texts_before:])


async def test_a_caller_cut_off_mid_sentence_stops_talking(
    phone: PhoneSystem, events: EventLog, quick_voice: str
) -> None:
    """The simulator (simulate-call, every voice test) returns from ``say`` when the line closes."""
    caller, call_id, _ = await _call_quick_voice(phone, quick_voice)
    speech = speech_ulaw("la la la, " * 60)  # far longer than the 12 s the call may last
    sent_s = await asyncio.wait_for(caller.say(ulaw=speech), timeout=60)

    assert caller.closed.is_set()
    assert (await events.wait_for("call.ended", call_id, timeout_s=30))[0]["reason"] in (
        "max_duration",
        "caller_hung_up",
    )
    assert 0 < sent_s < len(speech) / 8000  # cut off: the rest was never sent
