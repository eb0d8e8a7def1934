"""Caller audio in fewer, larger frames after the VAD.

Twilio sends the caller's audio in 20 ms messages, and pipecat moves each as a frame through every
processor after the transport (a queue hand-off per processor) and sends it to Deepgram as a
WebSocket message of its own (a write system call). Nothing after the VAD needs 20 ms granularity:
Deepgram takes 20-250 ms chunks, Smart Turn buffers what it gets. :class:`AudioChunker` joins the
caller's audio into ``chunk_ms`` frames before the STT, so everything after it handles a few
times fewer frames.

Whatever else passes (the VAD's speech start/stop, DTMF, an interruption, the end) first flushes
the audio joined so far, so the STT and the turn analyzer see the audio before the VAD's stop in
the order they would have; the audio is delayed by at most ``chunk_ms - 20`` ms, well inside the
VAD's stop window that decides when a turn ends.
"""

from __future__ import annotations

from typing import Any

from pipecat.frames.frames import Frame, InputAudioRawFrame
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor


class AudioChunker(FrameProcessor):
    """Joins consecutive caller audio frames into frames of ``chunk_ms``; passes the rest."""

    def __init__(self, *, chunk_ms: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._chunk_ms = chunk_ms
        self._parts: list[bytes] = []
        self._size = 0
        self._first: InputAudioRawFrame | None = None

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        """Join caller audio; flush it before any other frame."""
        await super().process_frame(frame, direction)
        if isinstance(frame, InputAudioRawFrame) and direction == FrameDirection.DOWNSTREAM:
            if self._first is None:
                self._first = frame
            self._parts.append(frame.audio)
            self._size += len(frame.audio)
            bytes_per_ms = frame.sample_rate * frame.num_channels * 2 // 1000
            if self._size >= self._chunk_ms * bytes_per_ms:
                await self._flush()
            return
        if direction == FrameDirection.DOWNSTREAM:
            await self._flush()
        await self.push_frame(frame, direction)

    async def _flush(self) -> None:
        first = self._first
        if first is None:
            return
        audio = self._parts[0] if len(self._parts) == 1 else b"".join(self._parts)
        self._parts = []
        self._size = 0
        self._first = None
        joined = InputAudioRawFrame(
            audio=audio, sample_rate=first.sample_rate, num_channels=first.num_channels
        )
        joined.transport_source = first.transport_source
        joined.pts = first.pts
        await self.push_frame(joined)


class CallerAudioEnd(FrameProcessor):
    """Drops the caller's audio (downstream); passes every other frame."""

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        """Drop caller audio; pass the rest on."""
        await super().process_frame(frame, direction)
        if isinstance(frame, InputAudioRawFrame) and direction == FrameDirection.DOWNSTREAM:
            return
        await self.push_frame(frame, direction)
