"""Faults under load (Jepsen style): web chats and call endings while the servers restart and
every service is SIGKILLed once; every event and effect accounted for.

Two runs on private servers (a nats-server, redis-server and PostgreSQL of their own on free
loopback ports, never the shared ones), each with tools, conversation, post_call and gateway as
real processes:

* baseline: the same bounded load for the same length of time, no faults;
* faults: during the load, in turn: NATS restarted, Redis restarted (its keys lost: no
  persistence), PostgreSQL restarted, then tools, conversation, post_call and the gateway each
  SIGKILLed and started again on the same port.

Each visitor goes through a scripted chat (order status, verification, an unhappy ending so every
post-call effect runs) and ends it; a dropped socket is resumed with its token. Figures printed
and written to ``bench/results/faults_chat.md``: conversations and turns per second, turn latency,
error and reconnect counts, and per event and effect attempted / acknowledged / observed / lost /
duplicated / unexpected.

``python -m bench.faults_chat [--conversations N] [--concurrency C] [--gap S]``
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

from tests.reliability.harness import Ledger, Visit, World, account, burst, run_with_faults

RESULTS = Path(__file__).resolve().parent / "results"


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def figures(visits: list[Visit], ledger: Ledger, seconds: float) -> dict[str, Any]:
    turns = [t for v in visits for t in v.turn_seconds]
    return {
        "seconds": round(seconds, 1),
        "conversations": len(visits),
        "completed": ledger.details["completed"],
        "conversations_per_s": round(len(visits) / seconds, 2),
        "turns_done": len(turns),
        "turns_per_s": round(len(turns) / seconds, 2),
        "turn_p50_ms": round(_pct(turns, 0.5) * 1000),
        "turn_p95_ms": round(_pct(turns, 0.95) * 1000),
        "turn_max_ms": round(max(turns, default=0) * 1000),
        "turn_errors": sum(ledger.details["turn_errors"].values()),
        "reconnects": ledger.details["reconnects"],
        "resumed_as_new_chat": ledger.details["resumed_as_new_chat"],
        "dead_letters": ledger.details["dead_letters"],
        "lost": ledger.lost,
        "duplicated": ledger.duplicated,
        "unexpected": ledger.unexpected,
    }


async def baseline(args: argparse.Namespace, seconds: float) -> tuple[dict, Ledger]:
    w = await World().start()
    try:
        stop = asyncio.Event()
        asyncio.get_running_loop().call_later(seconds, stop.set)
        t0 = time.monotonic()
        visits = await burst(
            w.gateway_url,
            conversations=args.conversations,
            concurrency=args.concurrency,
            until=stop,
        )
        took = time.monotonic() - t0
        ledger = await account(w, visits)
        return figures(visits, ledger, took), ledger
    finally:
        await w.close()


async def faulted(args: argparse.Namespace) -> tuple[dict, Ledger, list]:
    w = await World().start()
    try:
        gap = args.gap
        faults = [
            (gap, lambda: w.restart_server("nats", down_s=2.0)),
            (gap, lambda: w.restart_server("redis", down_s=1.0)),
            (gap, lambda: w.restart_server("postgres", down_s=2.0)),
            (gap, lambda: w.kill_service("tools")),
            (gap, lambda: w.kill_service("conversation")),
            (gap, lambda: w.kill_service("post_call")),
            (gap, lambda: w.kill_service("gateway")),
        ]
        visits, took = await run_with_faults(
            w,
            conversations=args.conversations,
            concurrency=args.concurrency,
            faults=faults,
            tail_s=gap,
        )
        ledger = await account(w, visits)
        return figures(visits, ledger, took), ledger, w.faults
    finally:
        await w.close()


def render(args: argparse.Namespace, base: dict, base_ledger: Ledger, fault: dict,
           fault_ledger: Ledger, timeline: list) -> str:  # fmt: skip
    keys = [k for k in base if k != "seconds"]
    lines = [
        "## faults_chat",
        "",
        f"Web chats ({args.concurrency} visitors at a time, at most {args.conversations} "
        "conversations of 4 turns, each ended by the visitor) on private NATS/Redis/PostgreSQL "
        "with tools, conversation, post_call and gateway as real processes, offline engine. "
        "Faults, one after another: NATS restart (down 2 s), Redis restart (down 1 s, keys lost), "
        "PostgreSQL restart (down 2 s), SIGKILL + restart of tools, conversation, post_call, "
        "gateway. The baseline is the same load for the same time, no faults, in the same run.",
        "",
        f"| figure | baseline ({base['seconds']} s) | with faults ({fault['seconds']} s) |",
        "| --- | --- | --- |",
        *[f"| {k} | {base[k]} | {fault[k]} |" for k in keys],
        "",
        "Accounting with faults (lost = acknowledged but not stored; duplicated = stored or sent "
        "more than once):",
        "",
        fault_ledger.table(),
        "",
        "Accounting, baseline:",
        "",
        base_ledger.table(),
        "",
        "Fault timeline (seconds from the start of the load): "
        + "; ".join(f"{t} {what}" for t, what in timeline),
        "",
        "Turn indexes published twice as different events (with faults): "
        + (", ".join(fault_ledger.details["turn_index_reused"]) or "none"),
        "",
        "Error messages visitors saw with faults: "
        + (json.dumps(dict(fault_ledger.details["turn_errors"])) or "none"),
        "",
    ]
    return "\n".join(lines)


async def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.faults_chat")
    parser.add_argument("--conversations", type=int, default=800, help="upper bound")
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--gap", type=float, default=3.0, help="seconds between faults")
    args = parser.parse_args(argv)
    fault, fault_ledger, timeline = await faulted(args)
    print(json.dumps({"faults": fault}, indent=1))
    base, base_ledger = await baseline(args, fault["seconds"])
    print(json.dumps({"baseline": base}, indent=1))
    text = render(args, base, base_ledger, fault, fault_ledger, timeline)
    print(text)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "faults_chat.md").write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1:])))
