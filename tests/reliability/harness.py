"""Faults under load, Jepsen style: a bounded burst of chats while servers restart and services die.

Used by ``tests/reliability/test_faults.py`` (small and deterministic) and ``bench/faults_chat.py``
(longer, prints figures). Everything runs on a private NATS, Redis and PostgreSQL
(:mod:`tests.support.private_servers`), never the shared servers, with every service a real
process. Visitors are robust clients: a dropped socket is resumed with its token, an error frame
is recorded (the "clear message" an in-flight chat ends with) and the conversation goes on.

After the burst and a drain, every event and effect is accounted for:

* attempted: what a visitor did (conversations opened, turns sent, ends sent);
* acknowledged: what the system confirmed (``done`` for a turn, ``ended`` for an end);
* observed: what is stored (JetStream events, ``calls``, ``turns``, ``summaries``, CRM rows,
  tickets, emails rows and emails the SMTP catcher received);
* lost = acknowledged but not observed; duplicated = observed more than once;
  unexpected = observed without having been attempted.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import nats
import websockets
from websockets.exceptions import WebSocketException

from callcenter.common.config.sections import DatabaseSettings
from callcenter.common.db import create_pool
from callcenter.post_call.tickets.builtin import ESCALATION_HEADING
from tests.fakes.smtp_server import SmtpCatcher
from tests.support.environment import PORT_VARIABLES, TestEnvironment, free_port
from tests.support.private_servers import PrivateStack, prepare_database
from tests.support.processes import ServiceProcess

SERVICES = ("tools", "conversation", "post_call", "gateway")
#: post-call retries in seconds, not minutes, so redeliveries after a fault finish in the run
FAST_ENV = {
    "CALLCENTER_POST_CALL__ACK_WAIT_S": "3",
    "CALLCENTER_POST_CALL__RETRY_DELAYS_S": "[0.3, 0.6, 1.0, 2.0, 3.0]",
    "CALLCENTER_POST_CALL__MAX_DELIVER": "12",
    "CALLCENTER_POST_CALL__SUMMARY_WAIT_DELAY_S": "0.3",
    "CALLCENTER_GATEWAY__TURN_TIMEOUT_S": "10",
    "CALLCENTER_GATEWAY__REAPER_INTERVAL_S": "1",
    "CALLCENTER_GATEWAY__CHAT_IDLE_TIMEOUT_S": "20",  # the reaper retries failed ends soon
    "CALLCENTER_GATEWAY__CHAT_MESSAGES_PER_MINUTE_PER_IP": "0",
    "CALLCENTER_GATEWAY__CHAT_SESSIONS_PER_IP": "0",
    "CALLCENTER_LOGGING__LEVEL": "INFO",
}
#: one conversation: ask, verify (so a follow-up email has an address), leave unhappy
SCRIPT = (
    "Where is my order ORD-1001?",
    "Show my recent orders",
    "ORD-1001 and ZIP 94105",
    "This is still not resolved and I am unhappy about it.",
)


@dataclass
class Visit:
    """What one visitor attempted and what the system acknowledged."""

    call_ids: list[str] = field(default_factory=list)  # more than one: resumed as a new chat
    turns_sent: int = 0
    turns_done: list[tuple[str, int]] = field(default_factory=list)  # (call_id, turn_index)
    errors: list[str] = field(default_factory=list)  # error frames (clear messages) received
    reconnects: int = 0
    end_sent: bool = False
    ended: str | None = None  # the reason in the 'ended' frame
    gave_up: str | None = None  # the client could not finish (a hang or a refusal)
    turn_seconds: list[float] = field(default_factory=list)  # message sent -> done


class World:
    """A private stack, every service, an SMTP catcher; faults on demand."""

    def __init__(self, *, root: Path | None = None, extra_env: dict[str, str] | None = None):
        self.root = root or Path(tempfile.mkdtemp(prefix="cc-faults-"))
        self.stack = PrivateStack(self.root)
        self.namespace = TestEnvironment()
        self.smtp = SmtpCatcher()
        self.extra_env = extra_env or {}
        self.services: dict[str, ServiceProcess] = {}
        self.env: dict[str, str] = {}
        self.db: asyncpg.Pool | None = None
        self.faults: list[tuple[float, str]] = []
        self._t0 = time.monotonic()

    async def start(self) -> World:
        """Start the servers and the services (all at once: imports are slow)."""
        await asyncio.to_thread(self.stack.start)
        self.smtp.start()
        self.env = {
            **self.namespace.env,
            **self.stack.env(),
            **self.smtp.env,
            **FAST_ENV,
            "SESSION_SECRET": uuid.uuid4().hex,  # resume tokens survive a gateway restart
            **self.extra_env,
        }
        schema = self.env["CALLCENTER_DATABASE__SCHEMA_NAME"]
        await prepare_database(self.stack.postgres.url, schema)
        tag = f"{self.namespace.tag}-faults"
        for name in SERVICES:
            port = free_port()
            env = {**self.env, PORT_VARIABLES[name]: str(port)}
            self.services[name] = ServiceProcess(name, env=env, port=port, tag=tag)
            self.services[name].start(wait=False)
        for proc in self.services.values():
            await asyncio.to_thread(proc.wait_ready, timeout_s=180)
        self._t0 = time.monotonic()
        return self

    @property
    def gateway_url(self) -> str:
        return self.services["gateway"].url

    async def database(self) -> asyncpg.Pool:
        """A pool on the private database (opened after the faults, for accounting)."""
        if self.db is None:
            self.db = await create_pool(
                DatabaseSettings(
                    url=self.stack.postgres.url,
                    schema_name=self.env["CALLCENTER_DATABASE__SCHEMA_NAME"],
                ),
                attempts=10,
            )
        return self.db

    def note(self, what: str) -> None:
        self.faults.append((round(time.monotonic() - self._t0, 1), what))

    async def restart_server(self, name: str, *, down_s: float = 2.0, hard: bool = False) -> None:
        """Stop (or crash) a private server, keep it down ``down_s``, start it again."""
        server = self.stack.servers[name]
        self.note(f"{name} {'killed' if hard else 'stopped'}")
        await asyncio.to_thread(server.kill if hard else server.stop)
        await asyncio.sleep(down_s)
        await asyncio.to_thread(server.start)
        self.note(f"{name} back")

    async def kill_service(self, name: str) -> None:
        """SIGKILL a service, then start it again on the same port (as a supervisor would)."""
        proc = self.services[name]
        self.note(f"{name} SIGKILL")
        await asyncio.to_thread(proc.kill)
        await asyncio.to_thread(proc.start, wait=False)
        await asyncio.to_thread(proc.wait_ready, timeout_s=180)
        self.note(f"{name} ready again")

    async def close(self) -> None:
        for proc in reversed(list(self.services.values())):
            await asyncio.to_thread(proc.stop)
        if self.db is not None:
            await self.db.close()
        self.smtp.stop()
        await asyncio.to_thread(self.stack.close)
        shutil.rmtree(self.root, ignore_errors=True)


@contextlib.asynccontextmanager
async def world(**kwargs: Any) -> AsyncIterator[World]:
    """A started :class:`World`, closed afterwards."""
    w = World(**kwargs)
    try:
        yield await w.start()
    finally:
        await w.close()


async def _recv(ws: websockets.ClientConnection, timeout_s: float) -> dict[str, Any]:
    return json.loads(await asyncio.wait_for(ws.recv(), timeout=timeout_s))


async def visit(
    gateway_url: str,
    script: tuple[str, ...] = SCRIPT,
    *,
    deadline_s: float = 120.0,
    turn_timeout_s: float = 30.0,
) -> Visit:
    """One visitor going through ``script`` then ending the chat, riding out faults."""
    url = gateway_url.replace("http://", "ws://") + "/chat/ws"
    record = Visit()
    token: str | None = None
    next_message = 0
    stop_at = time.monotonic() + deadline_s
    while time.monotonic() < stop_at:
        target = url
        if record.call_ids and token:
            target = f"{url}?call_id={record.call_ids[-1]}&resume_token={token}"
        try:
            async with websockets.connect(target, open_timeout=10) as ws:
                hello = await _recv(ws, turn_timeout_s)
                if hello["type"] == "error":  # the conversation could not be resumed
                    record.errors.append(hello["message"])
                    hello = await _recv(ws, turn_timeout_s)
                if not record.call_ids or hello["call_id"] != record.call_ids[-1]:
                    record.call_ids.append(hello["call_id"])
                token = hello["resume_token"]
                while next_message < len(script):
                    record.turns_sent += 1
                    sent_at = time.monotonic()
                    await ws.send(json.dumps({"type": "message", "text": script[next_message]}))
                    while True:
                        frame = await _recv(ws, turn_timeout_s)
                        if frame["type"] == "done":
                            record.turns_done.append((hello["call_id"], int(frame["turn_index"])))
                            record.turn_seconds.append(time.monotonic() - sent_at)
                            break
                        if frame["type"] == "error":
                            record.errors.append(frame["message"])
                            break
                        if frame["type"] == "ended":
                            record.ended = frame["reason"]
                            return record
                        if frame["type"] == "reconnect":
                            raise ConnectionResetError("server asked to reconnect")
                    next_message += 1
                record.end_sent = True
                await ws.send(json.dumps({"type": "end"}))
                while True:
                    frame = await _recv(ws, turn_timeout_s)
                    if frame["type"] == "ended":
                        record.ended = frame["reason"]
                        return record
        except (WebSocketException, OSError, TimeoutError, EOFError) as exc:
            record.reconnects += 1
            record.gave_up = f"{type(exc).__name__}: {exc}"
            await asyncio.sleep(0.5)
    return record


async def burst(
    gateway_url: str,
    *,
    conversations: int,
    concurrency: int,
    until: asyncio.Event | None = None,
    deadline_s: float = 120.0,
) -> list[Visit]:
    """Up to ``conversations`` visitors, ``concurrency`` at a time; with ``until``, new ones
    stop starting once it is set (so the load spans the faults, however long they take)."""
    visits: list[Visit] = []

    async def worker() -> None:
        while len(visits) < conversations and not (until is not None and until.is_set()):
            slot = len(visits)
            visits.append(Visit())  # holds the place (and the count) while the chat runs
            result = await visit(gateway_url, deadline_s=deadline_s)
            if result.ended is not None:
                result.gave_up = None
            visits[slot] = result

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return visits


async def read_events(nats_url: str, stream: str, prefix: str) -> list[tuple[str, str, dict]]:
    """Every event in ``stream``: (subject without ``prefix``, Nats-Msg-Id, body).

    Retries while the server (just restarted) is not answering yet.
    """
    for _ in range(20):
        try:
            nc = await nats.connect(nats_url)
        except Exception:
            await asyncio.sleep(1)
            continue
        try:
            js = nc.jetstream()
            sub = await js.pull_subscribe(f"{prefix}>", durable=None, stream=stream)
            out = []
            while True:
                try:
                    msgs = await sub.fetch(500, timeout=1.5)
                except TimeoutError:  # nats raises its own subclass or the builtin
                    break
                for msg in msgs:
                    subject = msg.subject.removeprefix(prefix)
                    out.append(
                        (subject, (msg.headers or {}).get("Nats-Msg-Id", ""), json.loads(msg.data))
                    )
                    await msg.ack()
            await sub.unsubscribe()
            return out
        except TimeoutError:  # JetStream still recovering its streams
            await asyncio.sleep(1)
        finally:
            await nc.close()
    raise RuntimeError("could not read the event stream")


async def stored_events(world: World) -> list[tuple[str, str, dict[str, Any]]]:
    """Every event of the world's namespace."""
    return await read_events(
        world.stack.nats.url,
        world.env["CALLCENTER_NATS__STREAM"],
        world.env["CALLCENTER_NATS__SUBJECT_PREFIX"],
    )


async def wait_settled(world: World, call_ids: list[str], *, timeout_s: float = 90.0) -> None:
    """Until every ended call has its summary and every step is done (or time runs out)."""
    assert world.db is not None
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            summaries = await world.db.fetchval(
                "SELECT count(*) FROM summaries WHERE call_id = ANY($1::text[])", call_ids
            )
            steps = await world.db.fetchval(
                "SELECT count(*) FROM post_call_steps WHERE call_id = ANY($1::text[]) "
                "AND step IN ('email', 'ticket', 'crm')",
                call_ids,
            )
        except Exception:
            await asyncio.sleep(1)
            continue
        if summaries >= len(call_ids) and steps >= 3 * len(call_ids):
            await asyncio.sleep(1.0)  # let the last SMTP deliveries land
            return
        await asyncio.sleep(0.5)


@dataclass
class Ledger:
    """Attempted / acknowledged / observed, and what is lost, duplicated or unexpected."""

    rows: dict[str, dict[str, int]]
    details: dict[str, Any]

    @property
    def lost(self) -> int:
        return sum(r["lost"] for r in self.rows.values())

    @property
    def duplicated(self) -> int:
        return sum(r["duplicated"] for r in self.rows.values())

    @property
    def unexpected(self) -> int:
        return sum(r["unexpected"] for r in self.rows.values())

    def table(self) -> str:
        head = "| what | attempted | acknowledged | observed | lost | duplicated | unexpected |"
        lines = [head, "| --- | --- | --- | --- | --- | --- | --- |"]
        for name, r in self.rows.items():
            lines.append(
                f"| {name} | {r['attempted']} | {r['acknowledged']} | {r['observed']} | "
                f"{r['lost']} | {r['duplicated']} | {r['unexpected']} |"
            )
        return "\n".join(lines)


def _row(
    attempted: int, acknowledged: set[Any], observed: list[Any], known: set[Any]
) -> dict[str, int]:
    counts = Counter(observed)
    return {
        "attempted": attempted,
        "acknowledged": len(acknowledged),
        "observed": len(counts),
        "lost": len(acknowledged - set(counts)),
        "duplicated": sum(n - 1 for n in counts.values() if n > 1),
        "unexpected": len([key for key in counts if key not in known]),
    }


async def account(world: World, visits: list[Visit]) -> Ledger:
    """Compare what visitors saw with what the system stored and sent."""
    await world.database()
    call_ids = sorted({cid for v in visits for cid in v.call_ids})
    ended_ack = {v.call_ids[-1] for v in visits if v.ended is not None and v.call_ids}
    turns_ack = {t for v in visits for t in v.turns_done}
    await wait_settled(world, sorted(ended_ack))
    events = await stored_events(world)
    by_subject: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for subject, msg_id, body in events:
        by_subject.setdefault(subject, []).append((msg_id, body))
    known = set(call_ids)
    rows: dict[str, dict[str, int]] = {}
    rows["call.started"] = _row(
        len(call_ids), set(call_ids),
        [b["call_id"] for _, b in by_subject.get("call.started", [])], known,
    )  # fmt: skip
    rows["turn.completed"] = _row(
        sum(v.turns_sent for v in visits), turns_ack,
        [(b["call_id"], b["turn_index"]) for _, b in by_subject.get("turn.completed", [])],
        {(c, i) for c in known for i in range(64)},
    )  # fmt: skip
    rows["call.ended"] = _row(
        sum(1 for v in visits if v.end_sent), ended_ack,
        [b["call_id"] for _, b in by_subject.get("call.ended", [])], known,
    )  # fmt: skip
    rows["call.summarized"] = _row(
        len(ended_ack), ended_ack,
        [b["call_id"] for _, b in by_subject.get("call.summarized", [])], known,
    )  # fmt: skip

    async def column(query: str) -> list[Any]:
        assert world.db is not None
        for attempt in range(10):  # the pool may still hold connections from before a restart
            try:
                return [r[0] for r in await world.db.fetch(query, call_ids)]
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                if attempt == 9:
                    raise
                await asyncio.sleep(1.0)
        return []

    transcript = await column(
        "SELECT call_id || ':' || turn_index FROM turns WHERE call_id = ANY($1::text[])"
    )
    rows["transcript turns"] = _row(
        len(turns_ack), {f"{c}:{i}" for c, i in turns_ack}, transcript,
        {f"{c}:{i}" for c in known for i in range(64)},
    )  # fmt: skip
    summaries = await column("SELECT call_id FROM summaries WHERE call_id = ANY($1::text[])")
    rows["summaries"] = _row(len(ended_ack), ended_ack, summaries, known)
    crm_done = set(
        await column(
            "SELECT call_id FROM post_call_steps WHERE call_id = ANY($1::text[]) "
            "AND step = 'crm' AND status = 'done'"
        )
    )
    crm = await column("SELECT call_id FROM crm_activities WHERE call_id = ANY($1::text[])")
    follow_ups = set(
        await column(
            "SELECT s.call_id FROM summaries s WHERE s.call_id = ANY($1::text[]) "
            "AND s.follow_up_needed AND s.customer_id IS NOT NULL"
        )
    )
    emails = await column("SELECT call_id FROM emails WHERE call_id = ANY($1::text[])")
    delivered = [
        str(m.message.get("Message-ID", "")).removeprefix("<follow-up-").split("@")[0]
        for m in world.smtp.messages
    ]
    # post-call's ticket per unhappy call: its own row, or its findings added to the ticket the
    # conversation already had (the create_ticket tool's), once each (every copy is listed)
    tickets = await column(
        "SELECT call_id FROM tickets WHERE call_id = ANY($1::text[]) AND source = 'post_call' "
        "UNION ALL SELECT call_id FROM tickets, generate_series(1, "
        f"(length(body) - length(replace(body, '{ESCALATION_HEADING}', ''))) "
        f"/ length('{ESCALATION_HEADING}')) "
        "WHERE call_id = ANY($1::text[]) AND source <> 'post_call'"
    )
    wanted_tickets = set(
        await column(
            "SELECT call_id FROM post_call_steps WHERE call_id = ANY($1::text[]) "
            "AND step = 'ticket' AND status = 'done'"
        )
    )
    rows["CRM rows"] = _row(len(ended_ack), crm_done, crm, known)
    rows["email rows"] = _row(len(follow_ups), follow_ups, emails, known)
    rows["emails delivered (SMTP)"] = _row(len(follow_ups), follow_ups, delivered, known)
    rows["tickets"] = _row(len(wanted_tickets), wanted_tickets, tickets, known)
    dead = len(await column("SELECT id FROM dead_letters WHERE call_id = ANY($1::text[])"))
    # follow-ups whose delivery the email step could not confirm (it stopped between the SMTP
    # send and its record): dead-lettered for a person, never sent a second time
    uncertain_emails = set(
        await column(
            "SELECT call_id FROM dead_letters WHERE call_id = ANY($1::text[]) "
            "AND consumer LIKE '%email' AND reason LIKE '%may already have been delivered%'"
        )
    )
    ids_by_turn: dict[tuple[str, int], set[str]] = {}
    for msg_id, body in by_subject.get("turn.completed", []):
        ids_by_turn.setdefault((body["call_id"], body["turn_index"]), set()).add(msg_id)
    details = {
        # the same turn index of a call published as different events (not a retried publish)
        "turn_index_reused": sorted(
            f"{cid}:{idx} x{len(ids)}" for (cid, idx), ids in ids_by_turn.items() if len(ids) > 1
        ),
        "conversations": len(visits),
        "completed": sum(1 for v in visits if v.ended is not None),
        "gave_up": [v.gave_up for v in visits if v.ended is None],
        "turns_sent": sum(v.turns_sent for v in visits),
        "turns_done": len(turns_ack),
        "turn_errors": Counter(e for v in visits for e in v.errors),
        "reconnects": sum(v.reconnects for v in visits),
        "resumed_as_new_chat": sum(max(len(v.call_ids) - 1, 0) for v in visits),
        "dead_letters": int(dead),
        "emails_not_delivered": sorted(follow_ups - set(delivered)),
        "uncertain_emails": sorted(uncertain_emails),
        "faults": world.faults,
    }
    return Ledger(rows=rows, details=details)


async def run_with_faults(
    world: World,
    *,
    conversations: int,
    concurrency: int,
    faults: list[tuple[float, Callable[[], Awaitable[None]]]],
    tail_s: float = 2.0,
) -> tuple[list[Visit], float]:
    """Chats keep starting until every fault is over (plus ``tail_s``), at most
    ``conversations``; fault ``i`` starts ``at`` seconds after fault ``i-1`` finished."""
    done = asyncio.Event()

    async def schedule() -> None:
        try:
            for at, fault in faults:
                await asyncio.sleep(at)
                await fault()
            await asyncio.sleep(tail_s)
        finally:
            done.set()

    t0 = time.monotonic()
    injector = asyncio.create_task(schedule())
    try:
        visits = await burst(
            world.gateway_url, conversations=conversations, concurrency=concurrency, until=done
        )
    finally:
        await injector  # every fault finishes (servers back, services ready) before accounting
    return visits, time.monotonic() - t0


def summary(ledger: Ledger) -> dict[str, Any]:
    """JSON-able figures."""
    return {"rows": ledger.rows, **{k: v for k, v in ledger.details.items()}}


__all__ = [
    "SCRIPT",
    "Ledger",
    "Visit",
    "World",
    "account",
    "asdict",
    "burst",
    "run_with_faults",
    "summary",
    "visit",
    "world",
]
