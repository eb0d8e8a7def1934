"""PocketSphinx as a Pipecat segmented STT service: no key, no download.

The acoustic model, dictionary and language model ship inside the ``pocketsphinx`` wheel. Each
segment the VAD cuts is decoded in a worker thread against the demo grammar (see ``grammar``);
the phone line's 8 kHz audio is resampled to the model's 16 kHz.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from typing import Any

import numpy as np
import soxr
from pipecat.frames.frames import ErrorFrame, Frame, StartFrame, TranscriptionFrame
from pipecat.services.settings import STTSettings
from pipecat.services.stt_service import SegmentedSTTService
from pipecat.utils.time import time_now_iso8601

from callcenter.common.logging import get_logger

from .grammar import demo_grammar, to_text

log = get_logger(__name__)

MODEL_RATE = 16000
SEARCH = "callcenter"


def load_decoder(*, grammar: str | None = None):
    """A PocketSphinx decoder on the wheel's en-US model, listening with ``grammar``.

    Args:
        grammar: JSGF text; the demo grammar when ``None``.
    """
    from pocketsphinx import Decoder

    # lm=None: the wheel's general 27 MB language model is not loaded (the grammar replaces it):
    # a decoder then takes about 40 MB and a quarter second instead of 100 MB and a second.
    decoder = Decoder(samprate=MODEL_RATE, loglevel="FATAL", lm=None)
    decoder.add_jsgf_string(SEARCH, (grammar or demo_grammar()).encode())
    decoder.activate_search(SEARCH)
    return decoder


class PocketsphinxSTTService(SegmentedSTTService):
    """Speech-to-text with CMU PocketSphinx, run in-process on each spoken segment."""

    def __init__(self, *, grammar: str | None = None, **kwargs) -> None:
        """Remember the grammar; the decoder (a quarter second, about 40 MB) loads at start.

        Args:
            grammar: JSGF grammar text; the demo grammar when ``None``.
            **kwargs: Passed to ``SegmentedSTTService`` (``sample_rate`` and so on).
        """
        super().__init__(settings=STTSettings(model="en-us", language="en"), **kwargs)
        self._grammar = grammar
        self._decoder: Any = None
        self._lock = asyncio.Lock()

    async def start(self, frame: StartFrame) -> None:
        """Load the decoder in a worker thread (the event loop carries other calls' audio)."""
        self._decoder = await asyncio.to_thread(load_decoder, grammar=self._grammar)
        await super().start(frame)

    @property
    def wants_wav_segments(self) -> bool:
        """Segments arrive as raw 16-bit PCM."""
        return False

    def can_generate_metrics(self) -> bool:
        """Processing metrics are reported."""
        return True

    def decode(self, pcm: bytes, *, sample_rate: int) -> str:
        """Recognise one segment of 16-bit PCM (blocking); the text a caller means."""
        samples = np.frombuffer(pcm, dtype="<i2")
        if sample_rate != MODEL_RATE:
            samples = soxr.resample(samples, sample_rate, MODEL_RATE)
        audio = np.clip(samples, -32768, 32767).astype("<i2").tobytes()
        if self._decoder is None:
            self._decoder = load_decoder(grammar=self._grammar)
        self._decoder.start_utt()
        self._decoder.process_raw(audio, full_utt=True)
        self._decoder.end_utt()
        hyp = self._decoder.hyp()
        return to_text(hyp.hypstr) if hyp is not None else ""

    async def run_stt(self, audio: bytes) -> AsyncGenerator[Frame, None]:
        """Transcribe one segment; yield its transcript (nothing when nothing was heard)."""
        await self.start_processing_metrics()
        try:
            async with self._lock:
                text = await asyncio.to_thread(self.decode, audio, sample_rate=self.sample_rate)
        except Exception as exc:  # the decoder's errors are plain RuntimeErrors
            log.warning("pocketsphinx_failed", error=str(exc))
            yield ErrorFrame(error=f"pocketsphinx: {exc}")
            return
        finally:
            await self.stop_processing_metrics()
        if text:
            yield TranscriptionFrame(text, self._user_id, time_now_iso8601())
