"""Post-call throughput: calls per second through every step, with an instant stand-in LLM.

``python -m bench.post_call_throughput [--calls N] [--turns T] [--client openai|litellm]
[--loops uvloop,asyncio] [--processes 1,2] [--compare TREE] [--rounds R] [--no-baseline]``

What it measures, in one isolated namespace on the local NATS and PostgreSQL:

* **baseline** — the six steps called directly in-process, one call after another in order
  (transcript for each turn, summary, crm, email, ticket, metrics), 16 calls at a time: the cost of
  the work itself (PostgreSQL transactions, the LLM round trip, SMTP);
* **pipeline** — the same number of calls published to JetStream (each call's turns, then its
  call.ended; 64 calls at a time) and processed by a real ``python -m callcenter.post_call``
  process running every step as durable consumers; the clock stops when every call has its
  email, ticket, CRM activity and metrics. Once per event loop in ``--loops`` (uvloop, the
  default, and asyncio's own), so the two are compared in the same run, and once per replica
  count in ``--processes`` (``1,2``: two post_call processes sharing the durable consumers);
  ``--compare TREE`` runs another worktree's post_call (through its ``.venv``) first in each of
  ``--rounds``, a same-run A/B of two versions of the code.

The summary reaches the LLM the way ``llm.models[].client`` says (``--client``: ``openai``, the
lean OpenAI-compatible client, by default; ``litellm`` to compare).

The LLM is the OpenAI-compatible stand-in (``tests/fakes/openai_server.py``) answering a valid
structured summary at once; SMTP is the aiosmtpd catcher; each runs in a process of its own, and the
load generator (this process) is apart from the post_call process. Then it accounts for every
call: nothing lost (every effect present), nothing duplicated (one email, ticket and CRM row per
call, each call's Message-ID once at the SMTP server), no dead letters, and how many deliveries were
redeliveries (a nak or retry). Beside each throughput figure it prints the CPU per call: the
post_call process (or, for the baseline, this process) plus the PostgreSQL backends serving its
connections, read from ``/proc``, and the post_call process's resident memory at rest and at its
peak under the load. CPU is stable on a shared machine; wall time is not. Figures are printed and
written to ``bench/results/post_call_throughput.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg

from bench._proc import cpu_s, rss_mb
from callcenter.common.bus import Bus
from callcenter.common.bus.consumer import Delivery
from callcenter.common.config import CallCenterConfig
from callcenter.common.db import create_pool, migrate
from callcenter.common.event_loop import ENV_VAR as EVENT_LOOP_ENV
from callcenter.common.events import CallEnded, Event, TurnCompleted, TurnLatency
from callcenter.common.logging import configure_logging
from callcenter.post_call.steps import STEPS, StepContext
from callcenter.post_call.steps.email import message_id
from callcenter.post_call.steps.summary import summarized_from_row
from callcenter.post_call.telemetry import setup_metrics
from tests.support.environment import (
    PORT_VARIABLES,
    TestEnvironment,
    free_port,
    unreachable_services,
)
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
#: Calls the load generator publishes at a time (each call's events in order).
PUBLISH_CONCURRENCY = 64


#: The SMTP catcher in a process of its own: prints "ready", then on end of input the
#: Message-ID of every message it accepted, one a line.
SMTP_SINK = """
import sys
from tests.fakes.smtp_server import SmtpCatcher
catcher = SmtpCatcher(port=int(sys.argv[1])).start()
print("ready", flush=True)
sys.stdin.read()
catcher.stop()
print("\\n".join(m.message_id for m in catcher.messages), flush=True)
"""


def local_tcp_ports(pid: int) -> set[int]:
    """The local TCP ports of the sockets ``pid`` holds open."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    ports = set()
    for table in ("tcp", "tcp6"):
        with open(f"/proc/{pid}/net/{table}") as f:
            next(f)
            for line in f:
                cols = line.split()
                if cols[9] in inodes:
                    ports.add(int(cols[1].rsplit(":", 1)[1], 16))
    return ports


@dataclass(slots=True, kw_only=True)
class Pipeline:
    """One pipeline run's figures."""

    seconds: float
    publish_s: float
    cpu: tuple[float, float]
    rss: tuple[float, float]
    account: dict[str, Any]
    #: CPU ms per call of the processes around the platform (stand-ins, the load generator)
    others_ms: dict[str, float]


@dataclass(slots=True)
class CpuMeter:
    """CPU of one process and of the PostgreSQL backends serving its connections."""

    pid: int
    db: asyncpg.Pool
    process_s: float = 0.0
    backends_s: float = 0.0

    async def backend_pids(self) -> list[int]:
        ports = local_tcp_ports(self.pid)
        rows = await self.db.fetch(
            "SELECT pid FROM pg_stat_activity WHERE client_port = ANY($1::int[])", list(ports)
        )
        return [r["pid"] for r in rows]

    async def sample(self) -> tuple[float, float]:
        backends = 0.0
        for pid in await self.backend_pids():
            try:
                backends += cpu_s(pid)
            except OSError:
                pass
        return cpu_s(self.pid), backends

    async def start(self) -> None:
        self.process_s, self.backends_s = await self.sample()

    async def used(self) -> tuple[float, float]:
        """CPU seconds since :meth:`start`: (process, PostgreSQL backends)."""
        process, backends = await self.sample()
        return process - self.process_s, backends - self.backends_s


def start_llm() -> tuple[subprocess.Popen[str], str]:
    """The instant LLM stand-in in its own process, and its base URL."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.fakes.openai_server", "--text", json.dumps(SUMMARY)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    return proc, proc.stdout.readline().strip()


def start_smtp(port: int) -> subprocess.Popen[str]:
    """The SMTP catcher in its own process."""
    proc = subprocess.Popen(
        [sys.executable, "-c", SMTP_SINK, str(port)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    return proc


def stop_smtp(proc: subprocess.Popen[str]) -> Counter[str]:
    """Stop the catcher; how many messages it accepted per Message-ID."""
    out, _ = proc.communicate(timeout=60)
    return Counter(line for line in out.splitlines() if line)


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
) -> tuple[float, tuple[float, float]]:
    """Seconds to run every step in-process for ``ids``, and the CPU (this process, backends)."""
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

    try:
        meter = CpuMeter(pid=os.getpid(), db=db)
        await meter.start()
        started = time.monotonic()
        await asyncio.gather(*(one(call_id) for call_id in ids))
        elapsed = time.monotonic() - started
        cpu = await meter.used()
    finally:
        for step in steps.values():
            await step.close()
    return elapsed, cpu


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


@dataclass(slots=True, frozen=True, kw_only=True)
class Run:
    """One pipeline run: whose code (which interpreter), which event loop, how many replicas."""

    label: str
    python: str
    loop: str
    processes: int


async def run_pipeline(
    env: TestEnvironment,
    extra_env: dict[str, str],
    run: Run,
    db: asyncpg.Pool,
    bus: Bus,
    ids: list[str],
    turns: int,
    timeout_s: float,
) -> tuple[float, float, tuple[float, float], tuple[float, float]]:
    """Seconds until every call has every effect, the publish time, the CPU used, the RSS.

    The CPU is the post_call processes' and their PostgreSQL backends' (seconds, summed); the RSS
    (MB, summed over the processes) is at rest (ready, before the load) and the peak under it.
    """
    ports = [env.ports["post_call"]] + [free_port() for _ in range(run.processes - 1)]
    procs = [
        ServiceProcess(
            "post_call",
            env={
                **env.env,
                **extra_env,
                EVENT_LOOP_ENV: run.loop,
                PORT_VARIABLES["post_call"]: str(port),
            },
            port=port,
            tag=env.tag,
            python=run.python,
            log_name=f"post_call-{i}",
        )
        for i, port in enumerate(ports)
    ]
    for proc in procs:
        proc.start()
    try:
        pids = [proc.proc.pid for proc in procs if proc.proc is not None]
        meters = [CpuMeter(pid=pid, db=db) for pid in pids]
        at_rest = peak = sum(rss_mb(pid) for pid in pids)
        for meter in meters:
            await meter.start()
        started = time.monotonic()
        slots = asyncio.Semaphore(PUBLISH_CONCURRENCY)

        async def publish_call(call_id: str) -> None:
            async with slots:
                for event in call_events(call_id, f"cust-{call_id}", turns):
                    await bus.publish(event)

        await asyncio.gather(*(publish_call(call_id) for call_id in ids))
        published = time.monotonic() - started
        deadline = started + timeout_s
        while await complete(db, ids) < len(ids):
            peak = max(peak, sum(rss_mb(pid) for pid in pids))
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"pipeline incomplete after {timeout_s}s: {await complete(db, ids)}/{len(ids)}"
                    f"\n{procs[0].log_tail()}"
                )
            await asyncio.sleep(0.05)
        elapsed = time.monotonic() - started
        used = [await meter.used() for meter in meters]
        cpu = (sum(u[0] for u in used), sum(u[1] for u in used))
        return elapsed, published, cpu, (at_rest, max(peak, sum(rss_mb(pid) for pid in pids)))
    finally:
        for proc in procs:
            proc.stop()


async def redeliveries(bus: Bus, stream: str) -> dict[str, int]:
    """Deliveries beyond one per message, per durable consumer (naks, retries, timeouts)."""
    info = await bus.js.stream_info(stream, subjects_filter=">")
    per_subject = info.state.subjects or {}
    extra = {}
    for consumer in await bus.js.consumers_info(stream):
        wanted = consumer.config.filter_subject or ">"
        messages = sum(c for subject, c in per_subject.items() if subject == wanted)
        delivered = consumer.delivered.consumer_seq if consumer.delivered else 0
        extra[consumer.name] = delivered - messages
    return extra


def plan_runs(args: argparse.Namespace) -> list[Run]:
    """The pipeline runs, in order: per round, the ``--compare`` tree, then this tree's runs."""
    ours = [
        Run(
            label=f"this tree, {n} process{'es' if n > 1 else ''} ({loop})",
            python=sys.executable,
            loop=loop,
            processes=n,
        )
        for loop in args.loops.split(",")
        if loop
        for n in (int(p) for p in args.processes.split(","))
    ]
    runs = []
    for _ in range(args.rounds):
        if args.compare:
            tree = Path(args.compare).resolve()
            runs.append(
                Run(
                    label=f"{tree.name} (compared), 1 process ({ours[0].loop})",
                    python=str(tree / ".venv" / "bin" / "python"),
                    loop=ours[0].loop,
                    processes=1,
                )
            )
        runs.extend(ours)
    return runs


async def main(argv: list[str]) -> int:
    """Run both measurements and report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=int(os.environ.get("BENCH_CALLS", "600")))
    parser.add_argument("--turns", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=300.0)
    parser.add_argument(
        "--loops",
        default="uvloop,asyncio",
        help="event loops of the post_call process to measure, one pipeline run each",
    )
    parser.add_argument(
        "--processes",
        default="1",
        help="post_call replicas per run, comma-separated (e.g. 1,2: one run with each)",
    )
    parser.add_argument(
        "--compare",
        metavar="TREE",
        help="another worktree (with its .venv) whose post_call runs first in each round, "
        "on the first of --loops: a same-run A/B against that code",
    )
    parser.add_argument("--rounds", type=int, default=1, help="repeat the runs (A/B alternating)")
    parser.add_argument(
        "--no-baseline",
        action="store_true",
        help="skip the in-process baseline (relative to 1st run)",
    )
    parser.add_argument(
        "--client",
        choices=["openai", "litellm"],
        default="openai",
        help="how the summary reaches the LLM (llm.models[].client)",
    )
    args = parser.parse_args(argv)
    problems = unreachable_services()
    if problems:
        print("servers not running:\n  " + "\n  ".join(problems), file=sys.stderr)
        return 2

    llm, llm_url = start_llm()
    smtp_port = free_port()
    smtp = start_smtp(smtp_port)
    models = [
        {
            "model": f"openai/{MODEL}",
            "api_key": "sk-bench",
            "api_base": llm_url,
            "client": args.client,
        }
    ]
    extra_env = {
        "CALLCENTER_SMTP__HOST": "127.0.0.1",
        "CALLCENTER_SMTP__PORT": str(smtp_port),
        "CALLCENTER_LLM__MODELS": json.dumps(models),
        "CALLCENTER_LOGGING__LEVEL": "WARNING",
    }
    env = TestEnvironment(tag="bench" + os.urandom(4).hex())
    env.extra_env.update(extra_env)
    config = env.config()
    configure_logging(service="bench", level="WARNING", fmt="console")
    db = await create_pool(config.database, attempts=3)
    bus = await Bus.connect(config.nats, name="bench")
    runs = plan_runs(args)
    ids_of = [[f"pipe-{r}-{i:05d}" for i in range(args.calls)] for r in range(len(runs))]
    baseline_ids = [] if args.no_baseline else [f"base-{i:05d}" for i in range(args.calls)]
    baseline: tuple[float, tuple[float, float]] | None = None
    baseline_account: dict[str, Any] = {"counts": {}, "problems": {}}
    try:
        await migrate(db)
        await add_contacts(db, [i for ids in ids_of for i in ids] + baseline_ids)

        pipelines: list[Pipeline] = []
        others = {"LLM stand-in": llm.pid, "SMTP stand-in": smtp.pid, "load generator": os.getpid()}
        for run, ids in zip(runs, ids_of, strict=True):
            before = {name: cpu_s(pid) for name, pid in others.items()}
            seconds, publish_s, cpu, rss = await run_pipeline(
                env, extra_env, run, db, bus, ids, args.turns, args.timeout
            )
            pipelines.append(
                Pipeline(
                    seconds=seconds,
                    publish_s=publish_s,
                    cpu=cpu,
                    rss=rss,
                    account=await account(db, ids, args.turns),
                    others_ms={
                        name: 1000.0 * (cpu_s(pid) - before[name]) / args.calls
                        for name, pid in others.items()
                    },
                )
            )
        retried = await redeliveries(bus, config.nats.stream)
        if baseline_ids:
            baseline = await run_baseline(config, db, bus, baseline_ids, args.turns)
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
        llm.terminate()
        llm.wait(timeout=30)
        mails_at_server = stop_smtp(smtp)

    n = args.calls
    lost = {
        f"{run.label}: {what}": problem
        for run, pipeline in zip(runs, pipelines, strict=True)
        for what, problem in pipeline.account["problems"].items()
    }
    # every call's follow-up (fixed Message-ID per call) exactly once at the server, nothing else
    expected_ids = {
        message_id(call_id, config.smtp.from_address)
        for call_id in [i for ids in ids_of for i in ids] + baseline_ids
    }
    unexpected = sorted(set(mails_at_server) - expected_ids)
    missing = sorted(expected_ids - set(mails_at_server))
    repeated = sorted(mid for mid, count in mails_at_server.items() if count > 1)
    if unexpected or missing or repeated:
        lost["smtp_messages"] = {
            "missing": missing[:5] + (["..."] if len(missing) > 5 else []),
            "repeated": repeated[:5],
            "unexpected": unexpected[:5],
        }
    reference = n / baseline[0] if baseline else n / pipelines[0].seconds

    def cpu_cells(cpu: tuple[float, float]) -> str:
        process_ms, backends_ms = (1000.0 * c / n for c in cpu)
        return f"{process_ms:.1f} | {backends_ms:.1f} | {process_ms + backends_ms:.1f}"

    # below zero: a consumer outside the completion check (voice_timings, notify...) had not
    # been handed every message yet when the last run stopped; not a redelivery
    behind = {k: -v for k, v in retried.items() if v < 0}
    retried = {k: v for k, v in retried.items() if v > 0}
    retries = sum(retried.values())
    summary_retries = sum(v for k, v in retried.items() if "summary" in k)
    rows = []
    if baseline:
        rows.append(
            f"| baseline: steps called in-process, {BASELINE_CONCURRENCY} calls at a time "
            f"| {baseline[0]:.2f} | {n / baseline[0]:.1f} | 1.00 | {cpu_cells(baseline[1])} |"
        )
    rows += [
        f"| pipeline: JetStream + post_call, {run.label} | {p.seconds:.2f} | "
        f"{n / p.seconds:.1f} | {n / p.seconds / reference:.2f} | {cpu_cells(p.cpu)} |"
        for run, p in zip(runs, pipelines, strict=True)
    ]
    lines = [
        "## post_call_throughput",
        "",
        f"{n} calls of {args.turns} turns each, every step (transcript, summary through the "
        f"{args.client} client to an instant OpenAI-compatible stand-in, crm, email over SMTP, "
        f"ticket, metrics). {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the "
        "end. Command: `python -m bench.post_call_throughput " + " ".join(argv) + "`.",
        "",
        "| run | seconds | calls/s | relative | CPU ms/call: process | PostgreSQL | total |",
        "| --- | --- | --- | --- | --- | --- | --- |",
        *rows,
        "",
        "CPU per call: user + system time of the process (post_call, all replicas; for the "
        "baseline, the bench process itself, which also runs the steps' clients) and of the "
        "PostgreSQL backends serving its connections, over the run, divided by the calls. The LLM "
        "and SMTP stand-ins run in processes of their own and are not counted.",
        f"Redeliveries in the pipelines (deliveries beyond one per message): {retries} "
        f"({summary_retries} of them call.ended at the summary step)"
        + (f"; per consumer: {json.dumps(retried)}." if retries else ".")
        + (
            f" Not yet delivered when the last run stopped (consumers the clock does not wait "
            f"for): {json.dumps(behind)}."
            if behind
            else ""
        ),
        f"Messages at the SMTP server: {sum(mails_at_server.values())} (expected "
        f"{len(expected_ids)}: every call's follow-up once, told apart by its Message-ID).",
        *(
            f"{run.label}: post_call RSS {p.rss[0]:.0f} MB at rest, {p.rss[1]:.0f} MB peak "
            f"under the load; publishing the {n * (args.turns + 1)} events took "
            f"{p.publish_s:.2f} s of its time; CPU ms per call outside the platform (not counted "
            "above): "
            + ", ".join(f"{name} {ms:.1f}" for name, ms in p.others_ms.items())
            + f"; accounting {json.dumps(p.account['counts'])}."
            for run, p in zip(runs, pipelines, strict=True)
        ),
        "Pipelines: " + ("nothing lost or duplicated." if not lost else f"PROBLEMS {lost}"),
        *(
            [f"Accounting (baseline): {json.dumps(baseline_account['counts'])}."]
            if baseline
            else []
        ),
        "",
    ]
    text = "\n".join(lines)
    print(text)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "post_call_throughput.md").write_text(text)
    return 0 if not lost and not baseline_account["problems"] else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1:])))
