"""Chat turns through the platform: latency, services CPU per turn and RSS, on both LLM paths.

``python -m bench.conversation_turn [--turns N] [--levels 1,20] [--clients openai,litellm]
[--gateway-loops uvloop,asyncio]``

Every part runs in a process of its own, as deployed: the instant LLM stand-in
(``bench/_chat_llm_stand_in.py``, TCP_NODELAY, real listen backlog), the tools, gateway and
conversation services (``python -m callcenter.<name>``, logging at WARNING), and the callers (this
process). For each LLM path (``llm.models[].client``: ``openai`` is the lean aiohttp client,
``litellm`` the translation layer), each kind of turn (**plain**: one LLM round; **tool**: the
model calls ``check_order_status``, then answers) and each level of S concurrent sessions (each
takes its turns one after another, as a customer does, in conversations of
``TURNS_PER_CONVERSATION`` turns), three runs, interleaved:

* **direct** (the baseline): ``ConversationEngine.turn`` called in this process (session in
  Redis, turn lock, the LLM over HTTP, tools over NATS to the tools process, turn.completed);
* **nats**: the conversation process, called as the gateway calls it (``conversation.turn``);
* **gateway**: a web-chat visitor on the gateway's WebSocket (the whole platform); with
  ``--gateway-loops uvloop,asyncio`` a second gateway process on asyncio's own event loop
  (``EVENT_LOOP=asyncio``) is measured beside it as **gateway-asyncio**.

Beside every latency: services CPU per turn (user+system CPU of the processes on the turn's path,
from ``/proc``: this process for direct, conversation for nats, gateway + conversation for
gateway, plus tools on every path) — CPU is stable on a shared machine, wall time is not — and
the resident memory of each service at rest and its peak under load.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis

from bench._namespace import remove_namespace
from bench._proc import cpu_s, rss_mb
from callcenter.common.bus import Bus
from callcenter.common.clients import ConversationClient
from callcenter.common.config.sections import LLMModelSettings
from callcenter.common.contracts import DoneChunk, TurnRequest
from callcenter.common.db import create_pool, migrate, seed
from callcenter.common.event_loop import ENV_VAR as EVENT_LOOP_ENV
from callcenter.common.logging import configure_logging
from callcenter.conversation.service import build_engine
from tests.support.chat_client import ChatVisitor
from tests.support.environment import TestEnvironment, free_port, unreachable_services
from tests.support.processes import ServiceProcess

RESULTS = Path(__file__).resolve().parent / "results"
REPEATS = 3
#: a customer's conversation: its history (in the prompt and the session) grows with each turn
TURNS_PER_CONVERSATION = 8
QUESTIONS = {
    "plain": "Hello, what are your opening hours?",
    "tool": "Where is my order ORD-1001?",
}
OneTurn = Callable[[str], Awaitable[str]]
Session = Callable[[], Any]  # an async context manager yielding a OneTurn


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


@dataclass
class Row:
    """One path × kind × run × level, merged over its repeats."""

    client: str
    kind: str
    run: str
    sessions: int
    latencies: list[float] = field(default_factory=list)
    wall_s: float = 0.0
    #: CPU seconds per process on the turn's path ("engine": the direct run's own process)
    cpu_by: dict[str, float] = field(default_factory=dict)
    failed: int = 0

    def figures(self) -> dict[str, float]:
        turns = len(self.latencies)
        return {
            "turns": turns,
            "failed": self.failed,
            "p50_ms": statistics.median(self.latencies),
            "p99_ms": percentile(self.latencies, 99),
            "turns_per_s": turns / self.wall_s,
            "cpu_ms_per_turn": sum(self.cpu_by.values()) / max(turns, 1) * 1000,
        } | {f"cpu_ms_{name}": spent / max(turns, 1) * 1000 for name, spent in self.cpu_by.items()}


class Platform:
    """The service processes of one LLM path, and the callers of each run."""

    def __init__(self, *, env: dict[str, str], tag: str, client: str, llm_url: str) -> None:
        self.client = client
        self.llm_models = [
            LLMModelSettings(model="openai/bench", api_base=llm_url, client=client)  # type: ignore[arg-type]
        ]
        models = [m.model_dump(exclude_none=True) for m in self.llm_models]
        self.env = {**env, "CALLCENTER_LLM__MODELS": json.dumps(models)}
        self.tag = tag
        self.procs: dict[str, ServiceProcess] = {}

    async def start(self, shared: dict[str, ServiceProcess]) -> None:
        port = free_port()  # a fresh one per path: the last one may linger in TIME_WAIT
        env = {**self.env, "CALLCENTER_CONVERSATION__HEALTH_PORT": str(port)}
        conversation = ServiceProcess("conversation", env=env, port=port, tag=self.tag)
        self.procs = {**shared, "conversation": conversation.start(wait=False)}
        await asyncio.to_thread(conversation.wait_ready, timeout_s=180)

    async def stop(self) -> None:
        await asyncio.to_thread(self.procs["conversation"].stop)

    def pids(self, names: tuple[str, ...]) -> list[int]:
        pids = []
        for name in names:
            proc = self.procs[name].proc
            assert proc is not None
            pids.append(proc.pid)
        return pids


async def run_level(sessions: int, turns_each: int, kind: str, open_session: Session) -> Row:
    """``sessions`` callers, each taking ``turns_each`` turns in a row."""
    row = Row(client="", kind=kind, run="", sessions=sessions)

    async def caller() -> None:
        left = turns_each
        while left > 0:  # conversations of a realistic length, one after another
            async with open_session() as one_turn:
                for _ in range(min(left, TURNS_PER_CONVERSATION)):
                    left -= 1
                    started = time.perf_counter()
                    try:
                        text = await one_turn(QUESTIONS[kind])
                    except Exception:
                        row.failed += 1
                        continue
                    row.latencies.append((time.perf_counter() - started) * 1000)
                    if not text:
                        row.failed += 1

    started = time.perf_counter()
    await asyncio.gather(*(caller() for _ in range(sessions)))
    row.wall_s = time.perf_counter() - started
    return row


class _Direct:
    def __init__(self, engine: Any) -> None:
        self.engine = engine

    async def __aenter__(self) -> OneTurn:
        call_id = "bench-" + uuid.uuid4().hex[:12]

        async def one_turn(text: str) -> str:
            reply = ""
            request = TurnRequest(call_id=call_id, channel="chat", text=text)
            async for chunk in self.engine.turn(request):
                if isinstance(chunk, DoneChunk):
                    reply = chunk.text
            return reply

        return one_turn

    async def __aexit__(self, *exc: object) -> None:
        return None


class _Nats:
    def __init__(self, bus: Bus) -> None:
        self.client = ConversationClient(bus=bus)

    async def __aenter__(self) -> OneTurn:
        call_id = "bench-" + uuid.uuid4().hex[:12]

        async def one_turn(text: str) -> str:
            request = TurnRequest(call_id=call_id, channel="chat", text=text)
            stream = await self.client.stream_turn(request)
            return (await stream.reply()).text

        return one_turn

    async def __aexit__(self, *exc: object) -> None:
        return None


class _Gateway:
    def __init__(self, url: str) -> None:
        self.visitor = ChatVisitor(url)

    async def __aenter__(self) -> OneTurn:
        await self.visitor.__aenter__()

        async def one_turn(text: str) -> str:
            reply = await self.visitor.say(text)
            if reply.kind != "done":
                raise RuntimeError(reply.text)
            return reply.text

        return one_turn

    async def __aexit__(self, *exc: object) -> None:
        await self.visitor.__aexit__(*exc)


async def measure_path(
    platform: Platform,
    *,
    bus: Bus,
    redis: aioredis.Redis,
    config: Any,
    levels: list[int],
    turns: int,
    memory: dict[str, dict[str, float]],
) -> list[Row]:
    """Every kind × level × run on one LLM path (its conversation process already started)."""
    engine = build_engine(
        config=config.model_copy(
            update={"llm": config.llm.model_copy(update={"models": platform.llm_models})}
        ),
        bus=bus,
        redis=redis,
    )
    runs: dict[str, tuple[Session, tuple[str, ...], bool]] = {
        "direct": (lambda: _Direct(engine), ("tools",), True),
        "nats": (lambda: _Nats(bus), ("conversation", "tools"), False),
    }
    gateways = [name for name in platform.procs if name.startswith("gateway")]
    for gateway in gateways:
        runs[gateway] = (
            lambda url=platform.procs[gateway].url: _Gateway(url),
            (gateway, "conversation", "tools"),
            False,
        )
    services = (*gateways, "conversation", "tools")
    for name in services:
        memory.setdefault(f"{platform.client} {name}", {})["rest"] = rss_mb(
            platform.pids((name,))[0]
        )
    peak = {name: 0.0 for name in services}
    rows: list[Row] = []
    for kind in QUESTIONS:
        for open_session, _, _ in runs.values():  # warm every path (connections, lazy imports)
            await run_level(2, 2, kind, open_session)
        for sessions in levels:
            turns_each = max(2, turns // sessions // REPEATS)
            merged = {
                name: Row(client=platform.client, kind=kind, run=name, sessions=sessions)
                for name in runs
            }
            for _ in range(REPEATS):  # interleaved, so a busy moment hurts every run alike
                for name, (open_session, names, in_process) in runs.items():
                    pids = dict(zip(names, platform.pids(names), strict=True))
                    before = {name: cpu_s(pid) for name, pid in pids.items()}
                    own = time.process_time()
                    part = await run_level(sessions, turns_each, kind, open_session)
                    spent = {name: cpu_s(pid) - before[name] for name, pid in pids.items()}
                    if in_process:
                        spent["engine"] = time.process_time() - own
                    for service in services:
                        peak[service] = max(peak[service], rss_mb(platform.pids((service,))[0]))
                    row = merged[name]
                    row.latencies += part.latencies
                    row.wall_s += part.wall_s
                    for process, seconds in spent.items():
                        row.cpu_by[process] = row.cpu_by.get(process, 0.0) + seconds
                    row.failed += part.failed
            for row in merged.values():
                rows.append(row)
                print_row(row)
    for name in services:
        memory[f"{platform.client} {name}"]["load"] = peak[name]
    for model in engine.models:  # the direct run's LLM connections
        close = getattr(model, "aclose", None)
        if close is not None:
            await close()
    return rows


def print_row(row: Row) -> None:
    f = row.figures()
    print(
        f"{row.client:<7} {row.kind:<5} {row.sessions:>3} sessions  {row.run:<7} "
        f"turns={f['turns']:<4.0f} p50={f['p50_ms']:7.2f} ms  p99={f['p99_ms']:7.2f} ms  "
        f"{f['turns_per_s']:6.1f} turns/s  CPU {f['cpu_ms_per_turn']:5.2f} ms/turn "
        f"({breakdown(f)})" + (f"  FAILED {row.failed}" if row.failed else ""),
        flush=True,
    )


def breakdown(figures: dict[str, float]) -> str:
    """CPU ms per turn of each process, e.g. ``conversation 3.1 + tools 0.4``."""
    return " + ".join(
        f"{key.removeprefix('cpu_ms_')} {value:.2f}"
        for key, value in figures.items()
        if key.startswith("cpu_ms_") and key != "cpu_ms_per_turn"
    )


def start_llm() -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench._chat_llm_stand_in"], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    return proc, proc.stdout.readline().strip()


async def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=300, help="turns per run and level")
    parser.add_argument("--levels", default="1,20", help="concurrent sessions, comma-separated")
    parser.add_argument("--clients", default="openai,litellm", help="LLM paths to measure")
    parser.add_argument(
        "--gateway-loops",
        default="uvloop",
        help="event loops of the gateway, one gateway process each (the first is 'gateway')",
    )
    args = parser.parse_args(argv)
    levels = [int(x) for x in args.levels.split(",") if x.strip()]
    problems = unreachable_services()
    if problems:
        print("\n".join(problems), file=sys.stderr)
        return 2
    configure_logging(service="bench", level="ERROR", fmt="console")
    load_at_start = os.getloadavg()[0]
    env = TestEnvironment(tag="bench" + os.urandom(4).hex())
    service_env = {
        **env.env,
        "CALLCENTER_LOGGING__LEVEL": "WARNING",
        "CALLCENTER_GATEWAY__CHAT_MESSAGES_PER_MINUTE": "0",
        "CALLCENTER_GATEWAY__CHAT_MESSAGES_PER_MINUTE_PER_IP": "0",
        "CALLCENTER_GATEWAY__CHAT_SESSIONS_PER_IP": "0",
    }
    loops = [loop for loop in args.gateway_loops.split(",") if loop]
    config = env.config(CALLCENTER_LOGGING__LEVEL="ERROR")
    db = await create_pool(config.database, attempts=3)
    await migrate(db)
    await seed(db)
    bus = await Bus.connect(config.nats, name="bench")
    redis = aioredis.Redis.from_url(config.redis.url, decode_responses=True)
    llm_proc, llm_url = start_llm()
    shared = {
        "tools": ServiceProcess(
            "tools", env=service_env, port=env.ports["tools"], tag=env.tag
        ).start(wait=False)
    }
    for loop in loops:
        name = "gateway" if loop == loops[0] else f"gateway-{loop}"
        port = env.ports["gateway"] if loop == loops[0] else free_port()
        gateway_env = {
            **service_env,
            EVENT_LOOP_ENV: loop,
            "CALLCENTER_GATEWAY__PORT": str(port),
            "CALLCENTER_GATEWAY__PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
        }
        gateway = ServiceProcess("gateway", env=gateway_env, port=port, tag=env.tag)
        gateway.log_path = gateway.log_path.with_name(f"{name}-{port}.log")
        shared[name] = gateway.start(wait=False)
    rows: list[Row] = []
    memory: dict[str, dict[str, float]] = {}
    try:
        for proc in shared.values():
            await asyncio.to_thread(proc.wait_ready, timeout_s=180)
        for client in args.clients.split(","):
            platform = Platform(env=service_env, tag=env.tag, client=client, llm_url=llm_url)
            await platform.start(shared)
            try:
                rows += await measure_path(
                    platform,
                    bus=bus,
                    redis=redis,
                    config=config,
                    levels=levels,
                    turns=args.turns,
                    memory=memory,
                )
            finally:
                await platform.stop()
    finally:
        for proc in shared.values():
            await asyncio.to_thread(proc.stop)
        llm_proc.terminate()
        llm_proc.wait()
        await redis.aclose()
        await bus.drain()
        await db.close()
        await remove_namespace(config)
    write(rows, memory, turns=args.turns, load=load_at_start)
    return 0


def write(rows: list[Row], memory: dict[str, dict[str, float]], *, turns: int, load: float) -> None:
    by_key = {(r.client, r.kind, r.sessions, r.run): r.figures() for r in rows}
    lines = [
        "## conversation_turn",
        "",
        f"About {turns} turns per run and level ({REPEATS} interleaved repeats), chat channel; "
        "instant OpenAI-compatible LLM stand-in, tools, gateway and conversation each in a process "
        f"of their own; {os.cpu_count()} cores; load average (1 min) at start {load:.1f}. "
        "**CPU ms/turn** is the user+system CPU of the services on the turn's path (see the "
        "bench's docstring) divided by the turns; **overhead** is p50 minus the direct run's p50.",
        "",
        "| LLM path | turn | sessions | run | turns | failed | p50 ms | p99 ms | turns/s "
        "| CPU ms/turn | overhead p50 |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        f = by_key[(row.client, row.kind, row.sessions, row.run)]
        base = by_key[(row.client, row.kind, row.sessions, "direct")]
        overhead = "–" if row.run == "direct" else f"{f['p50_ms'] - base['p50_ms']:+.2f} ms"
        lines.append(
            f"| {row.client} | {row.kind} | {row.sessions} | {row.run} | {f['turns']:.0f} | "
            f"{f['failed']:.0f} | {f['p50_ms']:.2f} | {f['p99_ms']:.2f} | "
            f"{f['turns_per_s']:.1f} | {f['cpu_ms_per_turn']:.2f} ({breakdown(f)}) | {overhead} |"
        )
    lines += ["", "| process | RSS at rest MB | RSS peak under load MB |", "| --- | --- | --- |"]
    for name, figures in memory.items():
        lines.append(f"| {name} | {figures['rest']:.0f} | {figures.get('load', 0):.0f} |")
    text = "\n".join(lines) + "\n"
    print(text)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "conversation_turn.md").write_text(text)
    (RESULTS / "conversation_turn.json").write_text(
        json.dumps(
            {
                "rows": [
                    {"client": r.client, "kind": r.kind, "sessions": r.sessions, "run": r.run}
                    | by_key[(r.client, r.kind, r.sessions, r.run)]
                    for r in rows
                ],
                "rss_mb": memory,
            },
            indent=2,
        )
        + "\n"
    )


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1:])))
