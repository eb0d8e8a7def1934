"""Phone calls: platform overhead per turn, greeting latency and calls per core without underrun.

``python -m bench.voice_calls [--levels 1,10,50,100]``

At each level N, N simulated callers (``tests/fakes/twilio_caller.py``: signed webhook, media
stream, espeak-ng speech in real time) call at once, hear the greeting, ask one question and hang
up. Deepgram and ElevenLabs are the local stand-ins, answering at once (instant providers), so
what is measured is the platform. The callers run in ``--caller-processes`` processes of their
own (2), the stand-ins in another, so neither starves the other nor shares a process with what
is measured:

* **overhead** — Deepgram's final transcript leaving the stand-in -> the answer's first audio
  reaching the caller (p50 / p99 over the calls);
* **greeting** — media stream start -> first greeting audio at the caller;
* **underruns** — the caller's playback (real time after a 60 ms jitter buffer) ran dry while the
  bot was talking (a gap the caller hears); "calls per core" is the largest level with none.

Two systems are measured at each level, in the same run:

* **baseline** — a plain Pipecat bot in its own process with the same transport, Silero VAD,
  Smart Turn, Deepgram and ElevenLabs services and stand-ins, answering a fixed sentence from an
  in-process processor: no bus, no gateway, no conversation or tools service;
* **platform** — gateway + voice_pipeline + conversation (offline engine) + tools over NATS,
  Redis and PostgreSQL: the full path of a real call, including a knowledge-base tool call.

Beside every latency the bench prints the CPU each system spent per call-second: process CPU
time (user + system, from /proc) of the voice process (the baseline bot; the platform's
voice_pipeline, and gateway + conversation + tools apart) over the level, divided by the seconds
of call it carried. CPU time is stable on a shared machine where wall time is not.
``--voice-env KEY=VALUE`` (repeatable) starts voice_pipeline with extra settings, to measure one
lever at a time (e.g. ``CALLCENTER_VOICE_PIPELINE__VAD_INLINE=false``).

Figures are printed and written to ``bench/results/voice_calls.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import signal
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
from aiohttp import web
from fastapi import FastAPI, WebSocket

from bench._namespace import remove_namespace
from callcenter.common.bus import Bus
from callcenter.common.db import create_pool, migrate, seed
from callcenter.common.logging import configure_logging
from tests.fakes.deepgram_server import DeepgramFake
from tests.fakes.elevenlabs_server import ElevenLabsFake
from tests.fakes.twilio_caller import TwilioCaller, phone_env, speech_ulaw
from tests.fakes.twilio_rest import TwilioStandIn
from tests.support.environment import TestEnvironment, free_port, unreachable_services
from tests.support.processes import ServiceProcess

RESULTS = Path(__file__).resolve().parent / "results"
QUESTION = "How long does shipping take for my order?"
BASELINE_REPLY = (
    "Standard shipping is free on orders over fifty dollars and takes three to five business days."
)
AUTH_TOKEN = "bench-auth-token"
ACCOUNT_SID = "AC" + "b" * 32


@dataclass
class CallResult:
    """What one simulated caller measured."""

    greeting_ms: float | None = None
    overhead_ms: float | None = None  # the first question's
    #: every question's (final transcript -> first answer audio), in order
    overheads_ms: list[float] = field(default_factory=list)
    underruns: int = 0
    greeting_underruns: int = 0
    stall_s: float = 0.0
    call_s: float = 0.0
    error: str | None = None
    #: the call was not taken (replicas full): "overflow message" (the webhook said so) or
    #: "stream refused" (the replica refused the media socket)
    turned_away: str | None = None


@dataclass
class LevelResult:
    """One level of one system."""

    system: str
    calls: int
    results: list[CallResult] = field(default_factory=list)
    #: CPU seconds spent during the level, by process ("voice" is the process serving calls)
    cpu_s: dict[str, float] = field(default_factory=dict)

    @property
    def call_seconds(self) -> float:
        return sum(r.call_s for r in self.results)

    def cpu_ms_per_call_s(self, process: str = "voice") -> float | None:
        if process not in self.cpu_s or self.call_seconds <= 0:
            return None
        return self.cpu_s[process] * 1000 / self.call_seconds

    def pct(self, attr: str, q: float) -> float | None:
        if attr == "overhead_ms":  # over every question of every call
            values = sorted(v for r in self.results for v in r.overheads_ms)
        else:
            values = sorted(v for r in self.results if (v := getattr(r, attr)) is not None)
        if not values:
            return None
        return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]

    @property
    def underruns(self) -> int:
        return sum(r.underruns for r in self.results)

    @property
    def greeting_underruns(self) -> int:
        return sum(r.greeting_underruns for r in self.results)

    @property
    def failed(self) -> int:
        return sum(
            1 for r in self.results if not r.turned_away and (r.error or r.overhead_ms is None)
        )

    @property
    def turned_away(self) -> int:
        return sum(1 for r in self.results if r.turned_away)


async def one_call(
    caller: TwilioCaller,
    stand_ins: httpx.AsyncClient,
    question: bytes,
    *,
    direct: bool,
    questions: int = 1,
) -> CallResult:
    """Greeting, ``questions`` times a question and its answer, hang up.

    The STT stand-in transcribes every utterance as :data:`QUESTION`.
    """
    result = CallResult()
    try:
        if direct:
            caller.parameters = {"call_id": caller.call_sid}
        else:
            try:
                await caller.dial()
            except RuntimeError as exc:
                if "<Say" in str(exc) and "<Stream" not in str(exc):
                    result.turned_away = "overflow message"
                    return result
                raise
        try:
            await caller.open_stream()
        except Exception as exc:
            if not direct and "403" in str(exc):  # refused before accept (at capacity)
                result.turned_away = "stream refused"
                return result
            raise
        greeting = await caller.wait_for_bot(timeout_s=60, quiet_s=0.6)
        assert caller.connected_at is not None
        result.greeting_ms = (greeting.started - caller.connected_at) * 1000
        result.greeting_underruns = greeting.underruns
        for _ in range(questions):
            asked = time.monotonic()
            await caller.say(ulaw=question)
            answer = await caller.wait_for_bot(after=asked, timeout_s=60, quiet_s=0.6)
            finals = (await stand_ins.get("/bench/finals", params={"tag": caller.call_sid})).json()
            # the final that closed this question (its last, if a pause split it in two)
            closing = [f for f in finals if asked <= f <= answer.started]
            if not closing:
                result.error = "a question was never transcribed (no final from the STT stand-in)"
                break
            result.overheads_ms.append((answer.started - max(closing)) * 1000)
        result.overhead_ms = result.overheads_ms[0] if result.overheads_ms else None
        result.underruns = sum(b.underruns for b in caller.bot)
        result.stall_s = sum(b.stall_s for b in caller.bot)
    except Exception as exc:
        result.error = f"{type(exc).__name__}: {exc}"
    finally:
        if caller.connected_at is not None:
            result.call_s = time.monotonic() - caller.connected_at
        try:
            await caller.hang_up(status_callback=not direct)
        except Exception:
            pass
    return result


async def wait_for_port(port: int, *, timeout_s: float) -> None:
    """Until something accepts connections on 127.0.0.1:``port``."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError as exc:
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing listening on port {port} after {timeout_s} s") from exc
            await asyncio.sleep(0.2)
        else:
            writer.close()
            return


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` so far (Linux /proc)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class CallerShare:
    """What one caller process does in a level: calls ``indexes`` of the level's N."""

    indexes: list[int]
    start_at: float  # time.monotonic() (system-wide) of call 0
    gateway_url: str
    stream_url: str | None  # the baseline bot's media URL (direct), else through the gateway
    stand_ins_url: str
    questions: int = 1


async def _place_calls(share: CallerShare) -> list[dict[str, Any]]:
    question = speech_ulaw(QUESTION)
    direct = share.stream_url is not None

    async def staggered(i: int) -> CallResult:
        await asyncio.sleep(max(0.0, share.start_at + i * 0.02 - time.monotonic()))
        caller = TwilioCaller(
            gateway_url=share.gateway_url, auth_token=AUTH_TOKEN, account_sid=ACCOUNT_SID
        )
        if direct:
            caller.stream_url = share.stream_url
        return await one_call(caller, stand_ins, question, direct=direct, questions=share.questions)

    async with httpx.AsyncClient(base_url=share.stand_ins_url) as stand_ins:
        results = await asyncio.gather(*(staggered(i) for i in share.indexes))
    return [asdict(r) for r in results]


def place_calls(share: CallerShare) -> list[dict[str, Any]]:
    """A caller process's share of a level (runs in a worker process)."""
    configure_logging(service="bench-callers", level="WARNING", fmt="console")
    return asyncio.run(_place_calls(share))


async def run_level(
    system: str,
    n: int,
    callers: ProcessPoolExecutor,
    workers: int,
    share: dict[str, Any],
    pids: dict[str, int],
) -> LevelResult:
    """N calls at once (started 20 ms apart, as calls arrive) from ``workers`` caller processes;
    CPU of ``pids`` over the level."""
    loop = asyncio.get_running_loop()
    start_at = time.monotonic() + 1.0
    shares = [
        CallerShare(indexes=list(range(w, n, workers)), start_at=start_at, **share)
        for w in range(workers)
    ]
    before = {name: cpu_seconds(pid) for name, pid in pids.items()}
    done = await asyncio.gather(
        *(loop.run_in_executor(callers, place_calls, s) for s in shares if s.indexes)
    )
    cpu = {name: cpu_seconds(pid) - before[name] for name, pid in pids.items()}
    results = [CallResult(**r) for part in done for r in part]
    return LevelResult(system=system, calls=n, results=results, cpu_s=cpu)


# ----- the vendors' stand-ins (a process of their own) --------------------------------------


class BenchDeepgram(DeepgramFake):
    """The Deepgram stand-in; also tells the callers when it sent each call's final."""

    def routes(self, app: web.Application) -> None:
        super().routes(app)
        app.router.add_get("/bench/finals", self._finals)

    async def _finals(self, request: web.Request) -> web.Response:
        return web.json_response(self.final_times.get(request.query.get("tag")) or [])


def serve_stand_ins(deepgram_port: int, elevenlabs_port: int) -> None:
    """Deepgram and ElevenLabs stand-ins until SIGTERM; every utterance transcribes as QUESTION."""

    async def serve() -> None:
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        deepgram = BenchDeepgram(port=deepgram_port)
        deepgram.script(None, *([QUESTION] * 100_000))
        async with deepgram, ElevenLabsFake(port=elevenlabs_port, ms_per_char=12.0):
            await stop.wait()

    asyncio.run(serve())


# ----- the baseline bot (its own process) ---------------------------------------------------


def serve_baseline(port: int) -> None:
    """A plain Pipecat Twilio bot: same services and stand-ins, a fixed answer, no bus."""
    import uvicorn
    from pipecat.audio.turn.smart_turn.local_smart_turn_v3 import LocalSmartTurnAnalyzerV3
    from pipecat.audio.vad.silero import SileroVADAnalyzer
    from pipecat.audio.vad.vad_analyzer import VADParams
    from pipecat.frames.frames import (
        Frame,
        InterimTranscriptionFrame,
        LLMFullResponseEndFrame,
        LLMFullResponseStartFrame,
        TextFrame,
        TranscriptionFrame,
        TTSSpeakFrame,
        UserStoppedSpeakingFrame,
    )
    from pipecat.pipeline.pipeline import Pipeline
    from pipecat.pipeline.worker import PipelineParams, PipelineWorker
    from pipecat.processors.audio.vad_processor import VADProcessor
    from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
    from pipecat.serializers.twilio import TwilioFrameSerializer
    from pipecat.services.deepgram.stt import DeepgramSTTService
    from pipecat.services.elevenlabs.tts import ElevenLabsTTSService
    from pipecat.transports.websocket.fastapi import (
        FastAPIWebsocketParams,
        FastAPIWebsocketTransport,
    )
    from pipecat.turns.user_stop import TurnAnalyzerUserTurnStopStrategy
    from pipecat.turns.user_turn_processor import UserTurnProcessor
    from pipecat.turns.user_turn_strategies import UserTurnStrategies
    from pipecat.workers.runner import WorkerRunner

    from callcenter.voice_pipeline.call import read_start

    class FixedReply(FrameProcessor):
        async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
            await super().process_frame(frame, direction)
            if isinstance(frame, (TranscriptionFrame, InterimTranscriptionFrame)):
                return
            await self.push_frame(frame, direction)
            if isinstance(frame, UserStoppedSpeakingFrame):
                await self.push_frame(LLMFullResponseStartFrame())
                await self.push_frame(TextFrame(BASELINE_REPLY))
                await self.push_frame(LLMFullResponseEndFrame())

    app = FastAPI()

    @app.websocket("/twilio/media")
    async def media(websocket: WebSocket) -> None:
        await websocket.accept()
        start = await read_start(websocket)
        serializer = TwilioFrameSerializer(
            stream_sid=start["streamSid"],
            call_sid=start["callSid"],
            params=TwilioFrameSerializer.InputParams(auto_hang_up=False),
        )
        transport = FastAPIWebsocketTransport(
            websocket=websocket,
            params=FastAPIWebsocketParams(
                audio_in_enabled=True,
                audio_out_enabled=True,
                serializer=serializer,
                allowed_origins=[],
            ),
        )
        stt = DeepgramSTTService(
            api_key=os.environ["DEEPGRAM_API_KEY"],
            base_url=os.environ["CALLCENTER_DEEPGRAM__URL"],
            sample_rate=8000,
            tag=start["callSid"],
        )
        tts = ElevenLabsTTSService(
            api_key=os.environ["ELEVENLABS_API_KEY"],
            url=os.environ["CALLCENTER_ELEVENLABS__URL"],
            sample_rate=8000,
            settings=ElevenLabsTTSService.Settings(voice="21m00Tcm4TlvDq8ikWAM"),
        )
        worker = PipelineWorker(
            Pipeline(
                [
                    transport.input(),
                    VADProcessor(vad_analyzer=SileroVADAnalyzer(params=VADParams(stop_secs=0.2))),
                    stt,
                    UserTurnProcessor(
                        user_turn_strategies=UserTurnStrategies(
                            stop=[
                                TurnAnalyzerUserTurnStopStrategy(
                                    turn_analyzer=LocalSmartTurnAnalyzerV3()
                                )
                            ]
                        )
                    ),
                    FixedReply(),
                    tts,
                    transport.output(),
                ]
            ),
            params=PipelineParams(audio_in_sample_rate=8000, audio_out_sample_rate=8000),
            idle_timeout_secs=None,
            enable_rtvi=False,
        )

        @transport.event_handler("on_client_connected")
        async def connected(_t: Any, _w: Any) -> None:
            await worker.queue_frame(
                TTSSpeakFrame("Hi, this is Ava from Acme Outfitters. How can I help you today?")
            )

        @transport.event_handler("on_client_disconnected")
        async def disconnected(_t: Any, _w: Any) -> None:
            await worker.cancel()

        runner = WorkerRunner(handle_sigint=False, check_dangling_tasks=False)
        await runner.add_workers(worker)
        await runner.run()

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", ws_ping_interval=None)


# ----- main ---------------------------------------------------------------------------------


def fmt(value: float | None) -> str:
    return "–" if value is None else f"{value:.0f}"


def fmt1(value: float | None) -> str:
    return "–" if value is None else f"{value:.1f}"


def away(row: LevelResult) -> str:
    """Calls turned away, by how (overflow message / stream refused)."""
    kinds: dict[str, int] = {}
    for r in row.results:
        if r.turned_away:
            kinds[r.turned_away] = kinds.get(r.turned_away, 0) + 1
    return ", ".join(f"{n} {kind}" for kind, n in sorted(kinds.items())) or "0"


async def main(argv: list[str]) -> int:
    """Measure both systems at each level and report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--levels", default=os.environ.get("BENCH_VOICE_LEVELS", "1,10,50,100"))
    parser.add_argument("--voice-env", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--systems", default="baseline,platform")
    parser.add_argument(
        "--caller-processes", type=int, default=2, help="processes placing the calls"
    )
    parser.add_argument(
        "--questions", type=int, default=1, help="questions each caller asks (a longer call)"
    )
    args = parser.parse_args(argv)
    systems = [x for x in args.systems.split(",") if x]
    voice_env = dict(item.split("=", 1) for item in args.voice_env)
    levels = [int(x) for x in args.levels.split(",") if x.strip()]
    problems = unreachable_services()
    if problems:
        print("servers not running:\n  " + "\n  ".join(problems), file=sys.stderr)
        return 2
    configure_logging(service="bench", level="WARNING", fmt="console")
    speech_ulaw(QUESTION)  # espeak-ng is there (the callers speak with it)
    load_at_start = os.getloadavg()[0]
    env = TestEnvironment(tag="bench" + os.urandom(4).hex())
    config = env.config()
    db = await create_pool(config.database, attempts=3)
    await migrate(db)
    await seed(db)
    bus = await Bus.connect(config.nats, name="bench")
    twilio_api = TwilioStandIn(account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN).start()
    rows: list[LevelResult] = []
    procs: list[ServiceProcess] = []
    baseline: asyncio.subprocess.Process | None = None
    stand_in_ports = {"deepgram": free_port(), "elevenlabs": free_port()}
    stand_ins = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.voice_calls",
        "--serve-stand-ins",
        str(stand_in_ports["deepgram"]),
        str(stand_in_ports["elevenlabs"]),
        env=dict(os.environ),
    )
    callers = ProcessPoolExecutor(
        max_workers=args.caller_processes, mp_context=multiprocessing.get_context("spawn")
    )
    deepgram = SimpleNamespace(
        url=f"ws://127.0.0.1:{stand_in_ports['deepgram']}", api_key="dg-test-key"
    )
    elevenlabs = SimpleNamespace(
        url=f"ws://127.0.0.1:{stand_in_ports['elevenlabs']}", api_key="el-test-key"
    )
    try:
        for port in stand_in_ports.values():
            await wait_for_port(port, timeout_s=60)
        ports = {
            name: free_port() for name in ("gateway", "voice_pipeline", "conversation", "tools")
        }
        service_env = phone_env(
            env.env,
            ports=ports,
            auth_token=AUTH_TOKEN,
            account_sid=ACCOUNT_SID,
            twilio_api_url=twilio_api.base_url,
            agent_number="+15550009999",
            deepgram=deepgram,
            elevenlabs=elevenlabs,
        )
        service_env["CALLCENTER_LOGGING__LEVEL"] = "WARNING"
        try:
            procs = [
                ServiceProcess(
                    name,
                    env={**service_env, **(voice_env if name == "voice_pipeline" else {})},
                    port=ports[name],
                    tag=env.tag,
                ).start(wait=False)
                for name in ports
            ]
            for proc in procs:
                await asyncio.to_thread(proc.wait_ready, timeout_s=120)
            base_port = free_port()
            if "baseline" in systems:
                baseline = await asyncio.create_subprocess_exec(
                    sys.executable,
                    "-m",
                    "bench.voice_calls",
                    "--serve-baseline",
                    str(base_port),
                    env={**os.environ, **service_env},
                    stdout=asyncio.subprocess.DEVNULL,
                    stderr=asyncio.subprocess.DEVNULL,
                )
                await wait_for_port(base_port, timeout_s=120)  # pipecat import + uvicorn start
            base_url = f"ws://127.0.0.1:{base_port}/twilio/media"
            common = {
                "questions": args.questions,
                "gateway_url": procs[0].url,
                "stand_ins_url": f"http://127.0.0.1:{stand_in_ports['deepgram']}",
            }

            def pid(proc: ServiceProcess) -> int:
                assert proc.proc is not None
                return proc.proc.pid

            by_name = {proc.name: proc for proc in procs}
            platform_pids = {
                "voice": pid(by_name["voice_pipeline"]),
                **{name: pid(by_name[name]) for name in ("gateway", "conversation", "tools")},
            }
            for n in levels:
                for system, stream_url, pids in (
                    ("baseline", base_url, {"voice": baseline.pid} if baseline else {}),
                    ("platform", None, platform_pids),
                ):
                    if system not in systems:
                        continue
                    print(f"level {n}: {system} …", flush=True)
                    share = {**common, "stream_url": stream_url}
                    row = await run_level(system, n, callers, args.caller_processes, share, pids)
                    rows.append(row)
                    others = sum(v for k, v in row.cpu_s.items() if k != "voice")
                    print(
                        f"  overhead p50 {fmt(row.pct('overhead_ms', 0.5))} ms, p99 "
                        f"{fmt(row.pct('overhead_ms', 0.99))} ms; greeting p50 "
                        f"{fmt(row.pct('greeting_ms', 0.5))} ms; underruns {row.underruns} "
                        f"({row.greeting_underruns} in greetings); "
                        f"failed {row.failed}; turned away {row.turned_away}; CPU {fmt1(row.cpu_ms_per_call_s())} ms per "
                        f"call-second ({row.call_seconds:.0f} call-s; other services "
                        f"{fmt1(others * 1000 / row.call_seconds if row.call_seconds else None)})",
                        flush=True,
                    )
                    errors = {r.error for r in row.results if r.error}
                    if errors:
                        print("  errors:", "; ".join(sorted(errors))[:400], flush=True)
                    await asyncio.sleep(2)
        finally:
            if baseline is not None:
                baseline.terminate()
                await asyncio.wait_for(baseline.wait(), timeout=20)
            for proc in reversed(procs):
                await asyncio.to_thread(proc.stop)
            twilio_api.stop()
            await bus.drain()
            await db.close()
            await remove_namespace(config)
    finally:
        callers.shutdown(cancel_futures=True)
        stand_ins.terminate()
        await asyncio.wait_for(stand_ins.wait(), timeout=20)

    cores = os.cpu_count() or 1
    lines = [
        "## voice_calls",
        "",
        f"Simultaneous simulated phone calls (greeting, {args.questions} question(s) and answer(s), "
        "hang-up) with "
        f"instant Deepgram/ElevenLabs stand-ins, {cores} cores shared by the callers, the stand-ins "
        "and the services. Overhead = Deepgram's final transcript -> first answer audio at the "
        "caller; greeting = stream start -> first greeting audio; underruns = gaps in the caller's "
        "real-time playback (60 ms jitter buffer). Load average (1 min) when it started: "
        f"{load_at_start:.1f} — other work on the machine skews the higher levels. CPU = "
        "process CPU time of the voice process per second of call carried (platform: "
        "voice_pipeline; gateway + conversation + tools in the next column)."
        + (f" voice_pipeline settings: {voice_env}." if voice_env else ""),
        "",
        "| calls | system | CPU ms per call-s | other services CPU ms per call-s | overhead p50 ms | overhead p99 ms | greeting p50 ms | greeting p99 ms | underruns (in greetings) | failed | turned away |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        others = sum(v for k, v in row.cpu_s.items() if k != "voice")
        other_ms = others * 1000 / row.call_seconds if row.call_seconds and others else None
        lines.append(
            f"| {row.calls} | {row.system} | {fmt1(row.cpu_ms_per_call_s())} | {fmt1(other_ms)} | "
            f"{fmt(row.pct('overhead_ms', 0.5))} | "
            f"{fmt(row.pct('overhead_ms', 0.99))} | {fmt(row.pct('greeting_ms', 0.5))} | "
            f"{fmt(row.pct('greeting_ms', 0.99))} | {row.underruns} ({row.greeting_underruns}) | "
            f"{row.failed} | {away(row)} |"
        )
    for system in systems:
        clean = [r.calls for r in rows if r.system == system and r.underruns == 0 and r.failed == 0]
        best = max(clean) if clean else 0
        lines.append("")
        lines.append(
            f"{system}: largest level without underrun or failure: {best} calls "
            f"({best / cores:.1f} per core)."
        )
    text = "\n".join(lines) + "\n"
    print(text)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "voice_calls.md").write_text(text)
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--serve-baseline":
        serve_baseline(int(sys.argv[2]))
        sys.exit(0)
    if len(sys.argv) == 4 and sys.argv[1] == "--serve-stand-ins":
        serve_stand_ins(int(sys.argv[2]), int(sys.argv[3]))
        sys.exit(0)
    sys.exit(asyncio.run(main(sys.argv[1:])))
