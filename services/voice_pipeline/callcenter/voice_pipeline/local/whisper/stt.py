"""Pipecat's Whisper service on any call's audio rate.

Pipecat's ``WhisperSTTService`` hands each segment's raw PCM to faster-whisper, which reads
samples as 16 kHz; a phone call's pipeline runs at 8 kHz, so its segments are resampled to 16 kHz
first (a browser call is already at 16 kHz and passes as is). Importing this module needs the
``whisper`` extra of pipecat (faster-whisper).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator

import numpy as np
import soxr
from pipecat.frames.frames import Frame
from pipecat.services.whisper.stt import WhisperSTTService

#: the rate faster-whisper assumes for raw samples
WHISPER_RATE = 16000


class AnyRateWhisperSTTService(WhisperSTTService):
    """``WhisperSTTService`` whose segments are resampled to 16 kHz before transcription."""

    async def run_stt(self, audio: bytes) -> AsyncGenerator[Frame, None]:
        """Transcribe one segment of 16-bit PCM at the pipeline's rate."""
        if self.sample_rate and self.sample_rate != WHISPER_RATE:
            samples = np.frombuffer(audio, dtype="<i2")
            audio = soxr.resample(samples, self.sample_rate, WHISPER_RATE).astype("<i2").tobytes()
        async for frame in super().run_stt(audio):
            yield frame
