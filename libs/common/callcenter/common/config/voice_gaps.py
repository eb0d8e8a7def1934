"""What a phone call needs that the configuration lacks (speech providers), in plain words.

Used by ``config check`` (a warning), the voice pipeline's ``/readyz`` (not ready, saying why)
and ``simulate-call`` (fails fast with the same words). A voice call needs speech-to-text and
text-to-speech: Deepgram and ElevenLabs, each with its key (``url`` points at a compatible server).
"""

from __future__ import annotations

from callcenter.common.config.model import CallCenterConfig


def voice_gaps(config: CallCenterConfig) -> list[str]:
    """One line per missing piece; empty when a phone call can work."""
    gaps = []
    if config.deepgram.api_key is None or not config.deepgram.api_key.get_secret_value():
        gaps.append(
            "speech-to-text: no Deepgram key (set DEEPGRAM_API_KEY), so callers cannot be heard"
        )
    if config.elevenlabs.api_key is None or not config.elevenlabs.api_key.get_secret_value():
        gaps.append(
            "text-to-speech: no ElevenLabs key (set ELEVENLABS_API_KEY), so the assistant "
            "cannot speak"
        )
    return gaps
