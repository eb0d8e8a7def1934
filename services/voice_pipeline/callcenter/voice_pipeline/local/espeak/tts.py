"""eSpeak NG as a Pipecat TTS service: no key, no download.

Each sentence is spoken by the ``espeak-ng`` program (``apt-get install -y espeak-ng``; ``make
install`` does it) writing a WAV to its stdout; the audio is streamed out as it is produced and
resampled to the pipeline's rate. The process is killed when the answer is cut (barge-in).
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncGenerator, AsyncIterator

from pipecat.frames.frames import ErrorFrame, Frame
from pipecat.services.settings import TTSSettings
from pipecat.services.tts_service import TTSService

from callcenter.common.logging import get_logger

log = get_logger(__name__)

CHUNK_BYTES = 4096


def espeak_executable() -> str:
    """The path of ``espeak-ng``.

    Raises:
        RuntimeError: it is not installed (with the command that installs it).
    """
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise RuntimeError(
            "tts_provider espeak needs the espeak-ng program: apt-get install -y espeak-ng "
            "(or run `make install`), or set voice_pipeline.tts_provider to elevenlabs"
        )
    return exe


class EspeakTTSService(TTSService):
    """Text-to-speech with the eSpeak NG program, one process per sentence."""

    def __init__(self, *, voice: str = "en-us", words_per_minute: int = 165, **kwargs) -> None:
        """Find the program (fails at once, with the fix, when it is missing).

        Args:
            voice: An espeak-ng voice name (``espeak-ng --voices``).
            words_per_minute: Speaking rate.
            **kwargs: Passed to ``TTSService`` (``sample_rate`` and so on).
        """
        super().__init__(
            push_start_frame=True,
            push_stop_frames=True,
            settings=TTSSettings(model="espeak-ng", voice=voice, language="en"),
            **kwargs,
        )
        self._exe = espeak_executable()
        self._voice = voice
        self._wpm = words_per_minute

    def can_generate_metrics(self) -> bool:
        """Time-to-first-byte and usage metrics are reported."""
        return True

    async def run_tts(self, text: str, context_id: str) -> AsyncGenerator[Frame, None]:
        """Speak ``text``; yield its audio frames as espeak-ng produces them."""
        proc = await asyncio.create_subprocess_exec(
            self._exe,
            "-v",
            self._voice,
            "-s",
            str(self._wpm),
            "--stdout",
            "--",
            text,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
        )
        assert proc.stdout is not None
        stdout = proc.stdout

        async def chunks() -> AsyncIterator[bytes]:
            while chunk := await stdout.read(CHUNK_BYTES):
                yield chunk

        try:
            await self.start_tts_usage_metrics(text)
            async for frame in self._stream_audio_frames_from_iterator(
                chunks(), strip_wav_header=True, context_id=context_id
            ):
                await self.stop_ttfb_metrics()
                yield frame
            if await proc.wait() != 0:
                log.warning("espeak_failed", returncode=proc.returncode)
                yield ErrorFrame(error=f"espeak-ng exited with {proc.returncode}")
        finally:
            await self.stop_ttfb_metrics()
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
