"""Twilio's side of a phone call, for tests: places the call and records what the bot says.

The implementation lives in the voice pipeline package (``callcenter simulate-call`` uses it
against a running system); see :mod:`callcenter.voice_pipeline.simulator`. It POSTs the signed
``/twilio/voice`` webhook, opens the media socket with the TwiML ``<Parameter>``s, streams 8 kHz
μ-law speech made with espeak-ng in real time, sends DTMF and ``stop``, and records the bot's
``media``, ``mark`` and ``clear`` messages.
"""

from callcenter.voice_pipeline.simulator import (
    BotAudio,
    TwilioCaller,
    pcm16_to_ulaw,
    speech_ulaw,
    ulaw_to_pcm16,
    wav_to_ulaw,
)

__all__ = [
    "BotAudio",
    "TwilioCaller",
    "pcm16_to_ulaw",
    "speech_ulaw",
    "ulaw_to_pcm16",
    "wav_to_ulaw",
]


def phone_env(
    base: dict[str, str],
    *,
    ports: dict[str, int],
    auth_token: str,
    account_sid: str,
    twilio_api_url: str,
    agent_number: str,
    deepgram: object,
    elevenlabs: object,
) -> dict[str, str]:
    """Environment for gateway, voice_pipeline, conversation and tools wired to the stand-ins.

    ``deepgram`` / ``elevenlabs`` are the running stand-ins (``url`` and ``api_key``).
    """
    return {
        **base,
        "CALLCENTER_GATEWAY__PORT": str(ports["gateway"]),
        "CALLCENTER_GATEWAY__PUBLIC_BASE_URL": f"http://127.0.0.1:{ports['gateway']}",
        "CALLCENTER_VOICE_PIPELINE__PORT": str(ports["voice_pipeline"]),
        "CALLCENTER_VOICE_PIPELINE__PUBLIC_WS_URL": f"ws://127.0.0.1:{ports['voice_pipeline']}/twilio/media",
        "CALLCENTER_CONVERSATION__HEALTH_PORT": str(ports["conversation"]),
        "CALLCENTER_TOOLS__HEALTH_PORT": str(ports["tools"]),
        "TWILIO_AUTH_TOKEN": auth_token,
        "TWILIO_ACCOUNT_SID": account_sid,
        "CALLCENTER_TWILIO__API_BASE_URL": twilio_api_url,
        "CALLCENTER_TWILIO__AGENT_NUMBER": agent_number,
        "DEEPGRAM_API_KEY": deepgram.api_key,  # type: ignore[attr-defined]
        "CALLCENTER_DEEPGRAM__URL": deepgram.url,  # type: ignore[attr-defined]
        "ELEVENLABS_API_KEY": elevenlabs.api_key,  # type: ignore[attr-defined]
        "CALLCENTER_ELEVENLABS__URL": elevenlabs.url,  # type: ignore[attr-defined]
    }
