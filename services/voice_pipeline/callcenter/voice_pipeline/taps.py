"""Taps that tell the turn processor when its answer's audio was made and heard.

pipecat releases each spoken word's ``TTSTextFrame`` from the output transport when the word's
audio is played, so a tap after the output sees what the caller heard; a tap between TTS and the
output sees when synthesised audio arrived. Both pass every frame on unchanged.
"""

from __future__ import annotations

from typing import Any

from pipecat.frames.frames import Frame, TTSAudioRawFrame, TTSTextFrame
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor

from callcenter.voice_pipeline.turn_processor import ConversationTurnProcessor


class SynthesisTap(FrameProcessor):
    """Between TTS and the output: notes the first synthesised audio of each answer."""

    def __init__(self, *, turns: ConversationTurnProcessor, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._turns = turns

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        """Note TTS audio; pass it on."""
        await super().process_frame(frame, direction)
        if isinstance(frame, TTSAudioRawFrame):
            self._turns.tts_audio()
        await self.push_frame(frame, direction)


class HeardTap(FrameProcessor):
    """After the output: notes each word whose audio went to the caller."""

    def __init__(self, *, turns: ConversationTurnProcessor, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._turns = turns

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        """Note spoken words; pass them on."""
        await super().process_frame(frame, direction)
        if isinstance(frame, TTSTextFrame) and direction == FrameDirection.DOWNSTREAM:
            self._turns.word_heard(frame.text)
        await self.push_frame(frame, direction)
