"""CPU per caller-audio frame through pass-through processors: queued vs direct mode.

``python -m bench.voice_frame_hops [--frames 20000] [--hops 4]``

A pipeline of ``--hops`` processors that pass every frame on (as the call's watchdog, taps and
chunker do) carries ``--frames`` 20 ms audio frames, in one process, once per configuration:

* pipecat's defaults: a queue and a task per processor, the worker's TurnTrackingObserver;
* no turn-tracking observer (``pipeline_turn_tracking: false``);
* and the processors in direct mode as well (``direct_mode_processors: true``).

Printed: process CPU µs per frame per hop (user + system, ``time.process_time``), the
configurations interleaved over ``--repeats`` rounds so that load on the machine falls on each.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

from pipecat.frames.frames import EndFrame, Frame, InputAudioRawFrame
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineParams, PipelineWorker
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.workers.runner import WorkerRunner

CONFIGS = {
    "pipecat defaults (queued, turn tracking)": (False, True),
    "no turn-tracking observer": (False, False),
    "no observer + direct mode": (True, False),
}


class PassThrough(FrameProcessor):
    """Passes every frame on."""

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        """Pass it on."""
        await super().process_frame(frame, direction)
        await self.push_frame(frame, direction)


async def one_run(*, frames: int, hops: int, direct: bool, turn_tracking: bool) -> float:
    """CPU µs per frame per hop for one configuration."""
    pipeline = Pipeline([PassThrough(enable_direct_mode=direct) for _ in range(hops)])
    worker = PipelineWorker(
        pipeline,
        params=PipelineParams(audio_in_sample_rate=8000, enable_metrics=False),
        idle_timeout_secs=None,
        enable_rtvi=False,
        enable_turn_tracking=turn_tracking,
        check_dangling_tasks=False,
    )
    audio = b"\x00\x01" * 160

    async def feed() -> None:
        for i in range(frames):
            await worker.queue_frame(
                InputAudioRawFrame(audio=audio, sample_rate=8000, num_channels=1)
            )
            if i % 50 == 0:
                await asyncio.sleep(0)  # let the pipeline drain, as real time would
        await worker.queue_frame(EndFrame())

    runner = WorkerRunner(handle_sigint=False, check_dangling_tasks=False)
    await runner.add_workers(worker)
    start = time.process_time()
    await asyncio.gather(runner.run(), feed())
    return (time.process_time() - start) * 1e6 / frames / hops


async def main() -> None:
    """Measure each configuration ``--repeats`` times, interleaved; print medians."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=20000)
    parser.add_argument("--hops", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    results: dict[str, list[float]] = {name: [] for name in CONFIGS}
    for _ in range(args.repeats):
        for name, (direct, tracking) in CONFIGS.items():
            results[name].append(
                await one_run(
                    frames=args.frames, hops=args.hops, direct=direct, turn_tracking=tracking
                )
            )
    print(f"{args.frames} frames × {args.hops} pass-through processors, {args.repeats} rounds")
    print("| configuration | CPU µs per frame per hop (median) | runs |")
    print("| --- | --- | --- |")
    for name, values in results.items():
        runs = ", ".join(f"{v:.1f}" for v in values)
        print(f"| {name} | {statistics.median(values):.1f} | {runs} |")


if __name__ == "__main__":
    asyncio.run(main())
