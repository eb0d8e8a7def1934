"""conversation.turn overhead: p50/p99 per turn and turns/s at 1, 10 and 100 concurrent sessions.

``python -m bench.conversation_turn [--turns N]``

Two runs of the same engine, in one isolated namespace on the local NATS and Redis, with an
instant OpenAI-compatible stand-in LLM (``tests/fakes/openai_server.py`` in its own process,
reached by litellm over HTTP, answering a short text at once):

* **direct** (the baseline): ``ConversationEngine.turn`` called in-process — session load and
  save in Redis, the turn lock, the litellm round trip, history trimming, turn.completed published
  to JetStream;
* **nats**: the same engine behind ``conversation.turn``, called as the gateway calls it (a
  streamed request over NATS to the service's queue group, chunks back on an inbox).

The difference is what the bus adds to a turn. Each of S concurrent sessions sends its turns one
after another (a caller waits for the reply before speaking again); the total is about ``--turns``
per level. Figures are printed and written to ``bench/results/conversation_turn.md``.
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
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis

from callcenter.common.bus import Bus
from callcenter.common.clients import ConversationClient
from callcenter.common.config import CallCenterConfig
from callcenter.common.config.sections import LLMModelSettings
from callcenter.common.contracts import DoneChunk, TurnRequest
from callcenter.common.logging import configure_logging
from callcenter.conversation.engine import ConversationEngine
from callcenter.conversation.service import ConversationService, build_engine
from tests.support.environment import TestEnvironment, unreachable_services

RESULTS = Path(__file__).resolve().parent / "results"
LEVELS = (1, 10, 100)
REPEATS = 2


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


async def run_level(
    sessions: int, turns_each: int, one_turn: Callable[[str, str], Awaitable[str]]
) -> dict[str, Any]:
    """``sessions`` callers, each taking ``turns_each`` turns in a row; latency per turn."""
    latencies: list[float] = []

    async def caller() -> None:
        call_id = "bench-" + uuid.uuid4().hex[:12]
        for index in range(turns_each):
            started = time.perf_counter()
            text = await one_turn(call_id, f"Question number {index}, please?")
            latencies.append((time.perf_counter() - started) * 1000)
            assert text, "every turn gets an answer"

    started = time.perf_counter()
    await asyncio.gather(*(caller() for _ in range(sessions)))
    wall = time.perf_counter() - started
    return {"latencies": latencies, "wall_s": wall}


def merge(parts: list[dict[str, Any]]) -> dict[str, float]:
    """p50/p99 over every turn of the repeats; turns/s over their summed wall time."""
    latencies = [value for part in parts for value in part["latencies"]]
    wall = sum(part["wall_s"] for part in parts)
    return {
        "turns": len(latencies),
        "p50_ms": statistics.median(latencies),
        "p99_ms": percentile(latencies, 99),
        "turns_per_s": len(latencies) / wall,
    }


def direct(engine: ConversationEngine) -> Callable[[str, str], Awaitable[str]]:
    async def one_turn(call_id: str, text: str) -> str:
        reply = ""
        async for chunk in engine.turn(TurnRequest(call_id=call_id, channel="chat", text=text)):
            if isinstance(chunk, DoneChunk):
                reply = chunk.text
        return reply

    return one_turn


def over_nats(bus: Bus) -> Callable[[str, str], Awaitable[str]]:
    client = ConversationClient(bus=bus)

    async def one_turn(call_id: str, text: str) -> str:
        stream = await client.stream_turn(TurnRequest(call_id=call_id, channel="chat", text=text))
        return (await stream.reply()).text

    return one_turn


def start_llm() -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.fakes.openai_server",
            "--text",
            "Sure, I can help with that.",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    return proc, proc.stdout.readline().strip()


async def main(turns: int) -> int:
    problems = unreachable_services()
    if problems:
        print("\n".join(problems), file=sys.stderr)
        return 2
    env = TestEnvironment()
    config: CallCenterConfig = env.config(CALLCENTER_LOGGING__LEVEL="ERROR")
    configure_logging(service="bench", level="ERROR", fmt="console")
    llm_proc, base_url = start_llm()
    config = config.model_copy(
        update={
            "llm": config.llm.model_copy(
                update={"models": [LLMModelSettings(model="openai/instant", api_base=base_url)]}
            )
        }
    )
    bus = await Bus.connect(config.nats, name="bench")
    redis = aioredis.Redis.from_url(config.redis.url, decode_responses=True)
    engine = build_engine(config=config, bus=bus, redis=redis)
    service = ConversationService(config=config, bus=bus, engine=engine)
    await service.start()
    rows: list[tuple[int, str, dict[str, float]]] = []
    try:
        # warm both paths (connections, litellm's lazy imports) before measuring
        await run_level(2, 2, direct(engine))
        await run_level(2, 2, over_nats(bus))
        for sessions in LEVELS:
            turns_each = max(2, turns // sessions // REPEATS)
            runs = {"direct": direct(engine), "nats": over_nats(bus)}
            measured: dict[str, list[dict[str, float]]] = {name: [] for name in runs}
            for _ in range(REPEATS):  # interleaved, so a busy moment hurts both runs alike
                for name, one_turn in runs.items():
                    measured[name].append(await run_level(sessions, turns_each, one_turn))
            for name, parts in measured.items():
                figures = merge(parts)
                rows.append((sessions, name, figures))
                print(
                    f"{sessions:>3} sessions  {name:<6}  turns={figures['turns']:<4.0f} "
                    f"p50={figures['p50_ms']:7.2f} ms  p99={figures['p99_ms']:7.2f} ms  "
                    f"{figures['turns_per_s']:7.1f} turns/s",
                    flush=True,
                )
    finally:
        await service.stop()
        for stream in (config.nats.stream, config.nats.dead_letter_stream):
            try:
                await bus.js.delete_stream(stream)
            except Exception:
                pass
        await bus.drain()
        async for key in redis.scan_iter(match=f"{config.redis.key_prefix}*"):
            await redis.delete(key)
        await redis.aclose()
        llm_proc.terminate()
        llm_proc.wait()
    write(rows, turns)
    return 0


def write(rows: list[tuple[int, str, dict[str, float]]], turns: int) -> None:
    by_level = {(s, n): f for s, n, f in rows}
    lines = [
        "## conversation_turn",
        "",
        f"About {turns} turns per level on the chat channel; an instant OpenAI-compatible stand-in "
        "LLM in its own process, reached through litellm over HTTP; session in Redis; "
        f"turn.completed to JetStream. {os.cpu_count()} cores. **direct** is the baseline "
        "(the engine called in-process); **nats** is the same engine behind `conversation.turn`.",
        "",
        "| sessions | run | turns | p50 ms | p99 ms | turns/s | nats overhead p50 | throughput vs direct |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    notes = [
        "",
        "Each session takes its turns one after another, so every turn carries the session's "
        "growing history (bounded by `conversation.history_token_budget`); runs alternate "
        f"({REPEATS} of each per level) so a busy moment on the shared machine hurts both alike. "
        "The LLM round trip through litellm (building the request in the openai SDK, HTTP, "
        "parsing the stream) dominates a turn; the bus adds a subscription, a request and one "
        "message per chunk. At 100 sessions the single process (client, service and engine "
        "together, on 2 cores) is CPU-bound, so that level shows how one process queues 100 "
        "turns, not what the bus costs.",
    ]
    for sessions, name, figures in rows:
        base = by_level[(sessions, "direct")]
        overhead = f"{figures['p50_ms'] - base['p50_ms']:+.2f} ms" if name == "nats" else "–"
        ratio = figures["turns_per_s"] / base["turns_per_s"]
        lines.append(
            f"| {sessions} | {name} | {figures['turns']:.0f} | {figures['p50_ms']:.2f} | "
            f"{figures['p99_ms']:.2f} | {figures['turns_per_s']:.1f} | {overhead} | {ratio:.2f} |"
        )
    lines += notes
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "conversation_turn.md").write_text("\n".join(lines) + "\n")
    (RESULTS / "conversation_turn.json").write_text(
        json.dumps([{"sessions": s, "run": n, **f} for s, n, f in rows], indent=2) + "\n"
    )
    print("\n".join(lines))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--turns", type=int, default=400, help="turns per concurrency level")
    sys.exit(asyncio.run(main(parser.parse_args().turns)))
