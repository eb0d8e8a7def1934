"""Post-call throughput: calls per second through every step, with an instant stand-in LLM.

``python -m bench.post_call_throughput [--calls N] [--turns T]``

What it measures, in one isolated namespace on the local NATS and PostgreSQL:

* **baseline** — the six steps called directly in-process, one call after another in order
  (transcript for each turn, summary, crm, email, ticket, metrics), 16 calls at a time: the cost of
  the work itself (PostgreSQL transactions, the LLM round trip through litellm, SMTP);
* **pipeline** — the same number of calls published to JetStream (turns, then call.ended) and
  processed by a real ``python -m callcenter.post_call`` process running every step as durable
  consumers; the clock stops when every call has its email, ticket, CRM activity and metrics.

The LLM is the OpenAI-compatible stand-in (``tests/fakes/openai_server.py``) answering a valid
structured summary at once; SMTP is the aiosmtpd catcher. Then it accounts for every call: nothing
lost (every effect present), nothing duplicated (one email, ticket and CRM row per call), no
dead letters. Figures are printed and written to ``bench/results/post_call_throughput.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import asyncpg

from callcenter.common.bus import Bus
from callcenter.common.bus.consumer import Delivery
from callcenter.common.config import CallCenterConfig
from callcenter.common.db import create_pool, migrate
from callcenter.common.events import CallEnded, Event, TurnCompleted, TurnLatency
from callcenter.common.logging import configure_logging
from callcenter.post_call.steps import STEPS, StepContext
from callcenter.post_call.steps.summary import summarized_from_row
from callcenter.post_call.telemetry import setup_metrics
from tests.fakes.openai_server import OpenAIStandIn, Reply
from tests.fakes.smtp_server import SmtpCatcher
from tests.support.environment import TestEnvironment, unreachable_services
from tests.support.processes import ServiceProcess

RESULTS = Path(__file__).resolve().parent / "results"
MODEL = "bench-summariser"
SUMMARY = {
    "summary": "The customer asked to return a damaged jacket; a return was started.",
    "sentiment": "negative",
    "satisfaction": 2,
    "resolved": False,
    "topics": ["return"],
    "follow_up_needed": True,
    "follow_up": "We agreed to start a return for order W1001.",
}
BASELINE_CONCURRENCY = 16


def call_events(call_id: str, customer_id: str, turns: int) -> list[Event]:
    """The turns of one call, then its end."""
    events: list[Event] = [
        TurnCompleted(
            event_id=f"turn-{call_id}-{i}",
            call_id=call_id,
            channel="chat",
            turn_index=i,
            user_text=f"Question {i}: my jacket arrived damaged, card 4111 1111 1111 1111.",
            assistant_text="I'm sorry about that; I have started a return.",
            latency=TurnLatency(first_token_ms=150.0, total_ms=800.0),
            customer_id=customer_id,
        )
        for i in range(turns)
    ]
    events.append(
        CallEnded(
            event_id=f"ended-{call_id}",
            call_id=call_id,
            channel="chat",
            reason="customer_ended",
            duration_s=60.0,
            turn_count=turns,
            customer_id=customer_id,
        )
    )
    return events


def delivery(event: Event) -> Delivery:
    """The delivery a consumer hands a step (for the in-process baseline)."""
    return Delivery(
        subject=event.subject,
        data=event.to_bytes(),
        headers={"Nats-Msg-Id": event.event_id, "Cc-Call-Id": event.call_id},
        attempt=1,
        max_deliver=6,
        stream_sequence=0,
        msg=None,  # type: ignore[arg-type]
    )


async def add_contacts(db: asyncpg.Pool, ids: list[str]) -> None:
    """A CRM contact with an email address for every call's customer."""
    await db.executemany(
        "INSERT INTO crm_contacts (customer_id, name, email) VALUES ($1, 'Bench', $2) "
        "ON CONFLICT DO NOTHING",
        [(f"cust-{i}", f"{i}@bench.example") for i in ids],
    )


async def run_baseline(
    config: CallCenterConfig, db: asyncpg.Pool, bus: Bus, ids: list[str], turns: int
) -> float:
    """Seconds to run every step in-process for ``ids``."""
    ctx = StepContext(
        config=config,
        db=db,
        bus=bus,
        metrics=setup_metrics(service="bench", settings=config.telemetry),
    )
    steps = {name: cls(ctx=ctx) for name, cls in STEPS.items()}
    for step in steps.values():
        await step.start()
    slots = asyncio.Semaphore(BASELINE_CONCURRENCY)

    async def one(call_id: str) -> None:
        async with slots:
            *turn_events, ended = call_events(call_id, f"cust-{call_id}", turns)
            for event in turn_events:
                await steps["transcript"].handle(delivery(event))
                await steps["metrics"].handle(delivery(event))
            await steps["summary"].handle(delivery(ended))
            await steps["metrics"].handle(delivery(ended))
            row = await db.fetchrow("SELECT * FROM summaries WHERE call_id = $1", call_id)
            summarized = summarized_from_row(row)
            for name in ("crm", "email", "ticket", "metrics"):
                await steps[name].handle(delivery(summarized))

    started = time.monotonic()
    await asyncio.gather(*(one(call_id) for call_id in ids))
    elapsed = time.monotonic() - started
    for step in steps.values():
        await step.close()
    return elapsed


async def complete(db: asyncpg.Pool, ids: list[str]) -> int:
    """How many of ``ids`` have every step's effect."""
    return int(
        await db.fetchval(
            """
            SELECT count(*) FROM unnest($1::text[]) AS c(call_id)
            WHERE EXISTS (SELECT 1 FROM emails e WHERE e.call_id = c.call_id)
              AND EXISTS (SELECT 1 FROM tickets t WHERE t.call_id = c.call_id)
              AND EXISTS (SELECT 1 FROM crm_activities a WHERE a.call_id = c.call_id)
              AND EXISTS (SELECT 1 FROM post_call_steps s
                          WHERE s.call_id = c.call_id AND s.step = 'metrics' AND s.events >= $2)
            """,
            ids,
            2,
        )
    )


async def account(db: asyncpg.Pool, ids: list[str], turns: int) -> dict[str, Any]:
    """Every effect per call: expected once each."""
    counts = {}
    for table in ("summaries", "crm_activities", "emails", "tickets"):
        counts[table] = await db.fetchval(
            f"SELECT count(*) FROM {table} WHERE call_id = ANY($1::text[])", ids
        )
    counts["turns"] = await db.fetchval(
        "SELECT count(*) FROM turns WHERE call_id = ANY($1::text[])", ids
    )
    counts["metrics_events"] = await db.fetchval(
        "SELECT count(*) FROM processed_events WHERE step = 'metrics' AND call_id = ANY($1::text[])",
        ids,
    )
    counts["dead_letters"] = await db.fetchval(
        "SELECT count(*) FROM dead_letters WHERE call_id = ANY($1::text[])", ids
    )
    n = len(ids)
    expected = {
        "summaries": n,
        "crm_activities": n,
        "emails": n,
        "tickets": n,
        "turns": n * turns,
        "metrics_events": n * (turns + 2),
        "dead_letters": 0,
    }
    problems = {k: (counts[k], v) for k, v in expected.items() if counts[k] != v}
    return {"counts": counts, "problems": problems}


async def run_pipeline(
    env: TestEnvironment,
    extra_env: dict[str, str],
    db: asyncpg.Pool,
    bus: Bus,
    ids: list[str],
    turns: int,
    timeout_s: float,
) -> tuple[float, float]:
    """Seconds from the first publish until every call has every effect, and the publish time."""
    proc = ServiceProcess(
        "post_call", env={**env.env, **extra_env}, port=env.ports["post_call"], tag=env.tag
    )
    proc.start()
    try:
        started = time.monotonic()
        for call_id in ids:
            for event in call_events(call_id, f"cust-{call_id}", turns):
                await bus.publish(event)
        published = time.monotonic() - started
        deadline = started + timeout_s
        while await complete(db, ids) < len(ids):
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"pipeline incomplete after {timeout_s}s: {await complete(db, ids)}/{len(ids)}"
                    f"\n{proc.log_tail()}"
                )
            await asyncio.sleep(0.05)
        return time.monotonic() - started, published
    finally:
        proc.stop()


async def main(argv: list[str]) -> int:
    """Run both measurements and report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=int(os.environ.get("BENCH_CALLS", "200")))
    parser.add_argument("--turns", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=300.0)
    args = parser.parse_args(argv)
    problems = unreachable_services()
    if problems:
        print("servers not running:\n  " + "\n  ".join(problems), file=sys.stderr)
        return 2

    llm = OpenAIStandIn().start()
    llm.default = Reply(text=json.dumps(SUMMARY))
    smtp = SmtpCatcher().start()
    models = [{"model": f"openai/{MODEL}", "api_key": "sk-bench", "api_base": llm.base_url}]
    extra_env = {
        **smtp.env,
        "CALLCENTER_LLM__MODELS": json.dumps(models),
        "CALLCENTER_LOGGING__LEVEL": "WARNING",
    }
    env = TestEnvironment(tag="bench" + os.urandom(4).hex())
    env.extra_env.update(extra_env)
    config = env.config()
    configure_logging(service="bench", level="WARNING", fmt="console")
    db = await create_pool(config.database, attempts=3)
    bus = await Bus.connect(config.nats, name="bench")
    try:
        await migrate(db)
        pipeline_ids = [f"pipe-{i:05d}" for i in range(args.calls)]
        baseline_ids = [f"base-{i:05d}" for i in range(args.calls)]
        await add_contacts(db, pipeline_ids + baseline_ids)

        pipeline_s, publish_s = await run_pipeline(
            env, extra_env, db, bus, pipeline_ids, args.turns, args.timeout
        )
        pipeline_account = await account(db, pipeline_ids, args.turns)
        baseline_s = await run_baseline(config, db, bus, baseline_ids, args.turns)
        baseline_account = await account(db, baseline_ids, args.turns)
    finally:
        await bus.drain()
        async with db.acquire() as conn:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{config.database.schema_name}" CASCADE')
        await db.close()
        cleanup = await Bus.connect(config.nats, name="bench-cleanup", ensure=False)
        for stream in (config.nats.stream, config.nats.dead_letter_stream):
            try:
                await cleanup.js.delete_stream(stream)
            except Exception:
                pass
        await cleanup.drain()
        llm.stop()
        smtp.stop()

    n = args.calls
    pipeline_rate, baseline_rate = n / pipeline_s, n / baseline_s
    lost = pipeline_account["problems"]
    lines = [
        "## post_call_throughput",
        "",
        f"{n} calls of {args.turns} turns each, every step (transcript, summary through litellm "
        "to an instant OpenAI-compatible stand-in, crm, email over SMTP, ticket, metrics). "
        f"{os.cpu_count()} cores.",
        "",
        "| run | seconds | calls/s | relative |",
        "| --- | --- | --- | --- |",
        f"| baseline: steps called in-process, {BASELINE_CONCURRENCY} calls at a time "
        f"| {baseline_s:.2f} | {baseline_rate:.1f} | 1.00 |",
        f"| pipeline: JetStream + one post_call process, all steps as durable consumers "
        f"| {pipeline_s:.2f} | {pipeline_rate:.1f} | {pipeline_rate / baseline_rate:.2f} |",
        "",
        f"Publishing the {n * (args.turns + 1)} events took {publish_s:.2f} s of the pipeline time.",
        f"Accounting (pipeline): {json.dumps(pipeline_account['counts'])} — "
        + ("nothing lost or duplicated." if not lost else f"PROBLEMS {lost}"),
        f"Accounting (baseline): {json.dumps(baseline_account['counts'])}.",
        "",
    ]
    text = "\n".join(lines)
    print(text)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "post_call_throughput.md").write_text(text)
    return 0 if not lost and not baseline_account["problems"] else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1:])))
