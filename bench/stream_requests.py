"""Streamed requests over NATS: the requester's CPU per request, shared reply inbox vs. one each.

``python -m bench.stream_requests [--requests N] [--levels 1,20] [--chunks 12]``

The requester side of ``conversation.turn`` is on every chat turn in the gateway (issue #18). A
responder (:class:`StreamingResponder`, in a process of its own) answers each request with
``--chunks`` chunks and an end marker, about a chat turn's worth. This process sends the
requests, at each level of concurrency, two ways, interleaved three times:

* **shared inbox**: :func:`callcenter.common.bus.stream_request`, whose replies come back on the
  connection's one wildcard subscription (``bus/reply_mux.py``);
* **inbox per request** (the baseline, what ``stream_request`` did before): subscribe a fresh
  inbox, publish, read it with ``next_msg``, unsubscribe.

Beside each latency: this process's user+system CPU per request (``time.process_time``), the
figure the change is about; the load average before and after the run goes with the results.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import nats
import uvloop
from nats.aio.client import Client as NatsClient

from callcenter.common.bus.streaming import (
    KIND_HEADER,
    STREAM_ID_HEADER,
    StreamingRequest,
    StreamingResponder,
    stream_request,
)

RESULTS = Path(__file__).resolve().parent / "results"
NATS_URL = os.environ.get("NATS_URL", "nats://127.0.0.1:4222")
REPEATS = 3
CHUNK = b'{"type": "delta", "text": "word "}'
OneRequest = Callable[[NatsClient, str], Awaitable[int]]


async def serve(subject: str, chunks: int) -> None:
    """The responder: ``chunks`` chunks per request, until killed."""
    nc = await nats.connect(NATS_URL)

    async def handler(_request: StreamingRequest):  # noqa: ANN202
        for _ in range(chunks):
            yield CHUNK

    await StreamingResponder(nc=nc, subject=subject, queue="bench", handler=handler).start()
    await nc.flush()
    print("ready", flush=True)
    await asyncio.Event().wait()


async def shared_inbox(nc: NatsClient, subject: str) -> int:
    """One request through the shared reply inbox; the chunks received."""
    stream = await stream_request(nc, subject, b"{}")
    return len([chunk async for chunk in stream])


async def inbox_per_request(nc: NatsClient, subject: str) -> int:
    """One request the way stream_request did before: a subscription of its own."""
    inbox = nc.new_inbox()
    sub = await nc.subscribe(inbox)
    try:
        await nc.publish(subject, b"{}", reply=inbox, headers={STREAM_ID_HEADER: inbox})
        received = 0
        while True:
            msg = await sub.next_msg(timeout=30)
            if (msg.headers or {}).get(KIND_HEADER) == "end":
                return received
            received += 1
    finally:
        await sub.unsubscribe()


async def measure(
    nc: NatsClient, subject: str, one: OneRequest, *, requests: int, level: int, chunks: int
) -> tuple[list[float], float, float]:
    """Latencies (s), CPU seconds and wall seconds of ``requests`` at ``level`` concurrent."""
    latencies: list[float] = []

    async def session(count: int) -> None:
        for _ in range(count):
            started = time.perf_counter()
            assert await one(nc, subject) == chunks
            latencies.append(time.perf_counter() - started)

    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(session(requests // level) for _ in range(level)))
    return latencies, time.process_time() - cpu, time.perf_counter() - wall


async def run(requests: int, levels: list[int], chunks: int) -> str:
    subject = f"bench.stream.{uuid.uuid4().hex[:8]}"
    responder = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.stream_requests",
        "--serve",
        subject,
        "--chunks",
        str(chunks),
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert responder.stdout is not None
        assert (await responder.stdout.readline()).strip() == b"ready"
        nc = await nats.connect(NATS_URL)
        ways: dict[str, OneRequest] = {
            "inbox per request (baseline)": inbox_per_request,
            "shared inbox": shared_inbox,
        }
        for one in ways.values():  # warm up both paths
            await measure(nc, subject, one, requests=200, level=1, chunks=chunks)
        load_before = os.getloadavg()
        rows = []
        for level in levels:
            merged: dict[str, tuple[list[float], float, int]] = {n: ([], 0.0, 0) for n in ways}
            for _ in range(REPEATS):
                for name, one in ways.items():
                    lat, cpu, _ = await measure(
                        nc, subject, one, requests=requests, level=level, chunks=chunks
                    )
                    seen, total_cpu, count = merged[name]
                    merged[name] = (seen + lat, total_cpu + cpu, count + len(lat))
            for name, (lat, cpu, count) in merged.items():
                ordered = sorted(lat)
                rows.append(
                    f"| {level} | {name} | {count} | {statistics.median(ordered) * 1e3:.2f} | "
                    f"{ordered[int(0.99 * (len(ordered) - 1))] * 1e3:.2f} | "
                    f"{cpu / count * 1e6:.0f} |"
                )
        load_after = os.getloadavg()
        await nc.close()
    finally:
        responder.kill()
        await responder.wait()
    return "\n".join(
        [
            "## stream_requests",
            "",
            f"Run {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}: {requests} requests per "
            f"run and level, {REPEATS} interleaved repeats, {chunks} chunks + end per request, "
            "responder in a process of its own, uvloop; load average "
            f"{load_before[0]:.1f} before, {load_after[0]:.1f} after. **CPU µs/request** is this "
            "(requesting) process's user+system CPU divided by the requests.",
            "",
            "| sessions | requester | requests | p50 ms | p99 ms | CPU µs/request |",
            "| --- | --- | --- | --- | --- | --- |",
            *rows,
            "",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000, help="requests per run and level")
    parser.add_argument("--levels", default="1,20", help="concurrent sessions, comma-separated")
    parser.add_argument("--chunks", type=int, default=12, help="chunks per streamed reply")
    parser.add_argument("--serve", metavar="SUBJECT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        uvloop.run(serve(args.serve, args.chunks))
        return
    levels = [int(level) for level in args.levels.split(",")]
    text = uvloop.run(run(args.requests, levels, args.chunks))
    print(text)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "stream_requests.md").write_text(text)


if __name__ == "__main__":
    main()
