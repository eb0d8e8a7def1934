"""Which speech providers a phone call uses, and what it lacks to work, in plain words.

Used by ``config check`` (a warning), the voice pipeline's ``/readyz`` (not ready, saying why),
``simulate-call`` (fails fast with the same words) and the voice pipeline's provider selection.
``voice_pipeline.stt_provider`` / ``tts_provider`` choose per deployment; ``auto`` takes the cloud
vendor (Deepgram, ElevenLabs) when its key is set and the embedded one (PocketSphinx, espeak-ng)
otherwise, so a keyless ``make run`` still has a phone line.
"""

from __future__ import annotations

import importlib.util
import shutil

from callcenter.common.config.model import CallCenterConfig


def stt_provider(config: CallCenterConfig) -> str:
    """The STT provider in use: the configured one, or for ``auto`` the one the keys allow."""
    chosen = config.voice_pipeline.stt_provider
    if chosen != "auto":
        return chosen
    return "deepgram" if config.deepgram.api_key or config.deepgram.enabled else "pocketsphinx"


def tts_provider(config: CallCenterConfig) -> str:
    """The TTS provider in use: the configured one, or for ``auto`` the one the keys allow."""
    chosen = config.voice_pipeline.tts_provider
    if chosen != "auto":
        return chosen
    el = config.elevenlabs
    return "elevenlabs" if el.api_key or el.enabled else "espeak"


def _missing(secret: object) -> bool:
    return secret is None or not secret.get_secret_value()  # type: ignore[attr-defined]


def voice_gaps(config: CallCenterConfig) -> list[str]:
    """One line per missing piece; empty when a phone call can work."""
    gaps = []
    stt, tts = stt_provider(config), tts_provider(config)
    if stt == "deepgram" and _missing(config.deepgram.api_key):
        gaps.append(
            "speech-to-text: no Deepgram key (set DEEPGRAM_API_KEY, or "
            "voice_pipeline.stt_provider: auto for the embedded one), so callers cannot be heard"
        )
    if stt == "pocketsphinx" and importlib.util.find_spec("pocketsphinx") is None:
        gaps.append("speech-to-text: the pocketsphinx package is not installed (uv sync)")
    if tts == "elevenlabs" and _missing(config.elevenlabs.api_key):
        gaps.append(
            "text-to-speech: no ElevenLabs key (set ELEVENLABS_API_KEY, or "
            "voice_pipeline.tts_provider: auto for the embedded one), so the assistant cannot speak"
        )
    if tts == "espeak" and shutil.which("espeak-ng") is None:
        gaps.append("text-to-speech: espeak-ng is not installed (apt-get install -y espeak-ng)")
    return gaps
