"""Admin auth on the dashboard and the REST API, the live event hub and the plot aggregates.

The gateway app runs in-process (httpx's ASGI transport) on this session's real NATS, Redis and
PostgreSQL; only the admin token differs between the apps built here.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import asyncpg
import httpx
import pytest
import redis.asyncio as aioredis
from pydantic import SecretStr

from callcenter.common.bus import Bus
from callcenter.common.config import CallCenterConfig
from callcenter.common.events import CallEnded, TurnCompleted
from callcenter.common.health import Readiness
from callcenter.gateway import auth
from callcenter.gateway.app import create_app
from callcenter.gateway.deps import GatewayDeps
from callcenter.gateway.live import LiveHub, sse_stream
from callcenter.gateway.routes import dashboard
from tests.support.environment import free_port
from tests.support.processes import ServiceProcess

TOKEN = "admin-" + uuid.uuid4().hex


def make_deps(config, bus, redis_client, db_pool, *, token: str | None) -> GatewayDeps:
    gateway = config.gateway.model_copy(
        update={"admin_token": SecretStr(token) if token is not None else None}
    )
    return GatewayDeps(
        config=config.model_copy(update={"gateway": gateway}),
        bus=bus,
        redis=redis_client,
        db=db_pool,
        readiness=Readiness(),
    )


@pytest.fixture
async def client(
    config: CallCenterConfig,
    bus: Bus,
    redis_client: aioredis.Redis,
    db_pool: asyncpg.Pool,
) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(make_deps(config, bus, redis_client, db_pool, token=TOKEN))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://gateway.test"
    ) as http:
        yield http


DASHBOARD_PATHS = [
    "/api/live",
    "/api/stats/volume",
    "/api/stats/latency",
    "/api/stats/satisfaction",
    "/api/stats/tools",
]
# The REST API (routes/api.py) is mounted with the same dependency.
REST_PATHS = ["/api/calls", "/api/calls/some-call", "/api/tickets", "/api/dead-letters"]


async def test_every_api_route_needs_the_admin_token(client: httpx.AsyncClient) -> None:
    admin = {"Authorization": f"Bearer {TOKEN}"}
    for path in DASHBOARD_PATHS + REST_PATHS:
        authorised = await client.get(path, headers=admin)
        if path in REST_PATHS and authorised.status_code == 404 and "detail" in authorised.json():
            if authorised.json()["detail"] == "Not Found":
                continue  # that REST route is not written yet
        assert authorised.status_code != 401, path
        anonymous = await client.get(path)
        assert anonymous.status_code == 401, path
        assert anonymous.headers["www-authenticate"].startswith("Bearer")
        wrong = await client.get(path, headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401, path
        scheme_only = await client.get(path, headers={"Authorization": TOKEN})
        assert scheme_only.status_code == 401, path
    ok = await client.get("/api/stats/volume", headers=admin)
    assert ok.status_code == 200
    assert set(ok.json()["series"]) == {"voice", "sms", "chat", "web_voice"}


async def test_no_configured_token_locks_everything(
    config: CallCenterConfig, bus: Bus, redis_client: aioredis.Redis, db_pool: asyncpg.Pool
) -> None:
    app = create_app(make_deps(config, bus, redis_client, db_pool, token=None))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://gateway.test"
    ) as http:
        for headers in ({}, {"Authorization": "Bearer "}, {"Authorization": "Bearer None"}):
            reply = await http.get("/api/live", headers=headers)
            assert reply.status_code == 401
            assert "ADMIN_TOKEN" in reply.json()["detail"]
        login = await http.post("/dashboard/login", data={"token": ""})
        assert login.status_code == 401
        assert "cc_admin" not in login.headers.get("set-cookie", "")


async def test_login_form_sets_an_httponly_cookie(client: httpx.AsyncClient) -> None:
    page = await client.get("/dashboard")
    assert page.status_code == 303
    assert page.headers["location"].startswith("/dashboard/login")

    form = await client.get("/dashboard/login?next=/dashboard/calls")
    assert form.status_code == 200 and 'name="token"' in form.text
    assert 'value="/dashboard/calls"' in form.text

    refused = await client.post("/dashboard/login", data={"token": "guess", "next": "/dashboard"})
    assert refused.status_code == 401
    assert "cc_admin" not in client.cookies

    # An off-site "next" is not followed (no open redirect).
    accepted = await client.post(
        "/dashboard/login", data={"token": TOKEN, "next": "//evil.example/x"}
    )
    assert accepted.status_code == 303
    assert accepted.headers["location"] == "/dashboard"
    cookie = accepted.headers["set-cookie"]
    assert "cc_admin=" in cookie and "HttpOnly" in cookie and "samesite=lax" in cookie.lower()
    assert TOKEN not in cookie

    assert (await client.get("/dashboard")).status_code == 200
    assert (await client.get("/dashboard/calls/some-call")).status_code == 200
    assert (await client.get("/api/live")).status_code == 200

    out = await client.post("/dashboard/logout")
    assert out.status_code == 303
    client.cookies.clear()
    assert (await client.get("/api/live")).status_code == 401


async def test_guessing_the_token_is_throttled(
    config: CallCenterConfig, bus: Bus, redis_client: aioredis.Redis, db_pool: asyncpg.Pool
) -> None:
    app = create_app(make_deps(config, bus, redis_client, db_pool, token=TOKEN))
    transport = httpx.ASGITransport(app=app, client=("203.0.113.9", 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway.test") as http:
        for attempt in range(dashboard.LOGIN_MAX_FAILURES):
            reply = await http.post("/dashboard/login", data={"token": f"guess-{attempt}"})
            assert reply.status_code == 401
        # Locked out for a while: even the right token is refused, so guessing learns nothing.
        locked = await http.post("/dashboard/login", data={"token": TOKEN})
        assert locked.status_code == 429
        assert "cc_admin" not in locked.headers.get("set-cookie", "")
        # The bearer token (scripts) is not affected.
        bearer = await http.get("/api/live", headers={"Authorization": f"Bearer {TOKEN}"})
        assert bearer.status_code == 200
    # Another address can still log in.
    other = httpx.ASGITransport(app=app, client=("203.0.113.10", 40000))
    async with httpx.AsyncClient(transport=other, base_url="http://gateway.test") as http:
        assert (await http.post("/dashboard/login", data={"token": TOKEN})).status_code == 303


async def test_forged_or_expired_cookies_are_refused(client: httpx.AsyncClient) -> None:
    expired = auth.cookie_value(TOKEN.encode(), now=time.time() - auth.COOKIE_TTL_S - 5)
    other_key = auth.cookie_value(b"another-token")
    future = str(int(time.time()) + 10**6)
    for value in (expired, other_key, f"{future}.deadbeef", "garbage", ""):
        client.cookies.set(auth.COOKIE_NAME, value)
        assert (await client.get("/api/live")).status_code == 401, value
    client.cookies.set(auth.COOKIE_NAME, auth.cookie_value(TOKEN.encode()))
    assert (await client.get("/api/live")).status_code == 200


async def test_live_hub_fans_bus_events_out(bus: Bus) -> None:
    hub = LiveHub(bus=bus)
    await hub.start()
    try:
        stream = sse_stream(hub, keepalive_s=5)
        hello = await anext(stream)
        assert "event: hello" in hello
        call_id = uuid.uuid4().hex
        await bus.publish(
            TurnCompleted(
                call_id=call_id,
                channel="chat",
                turn_index=0,
                user_text="Where is ORD-1001?",
                assistant_text="It shipped.",
            )
        )
        await bus.publish(
            CallEnded(call_id=call_id, channel="chat", reason="done", duration_s=3, turn_count=1)
        )
        seen = []
        while len(seen) < 2:
            chunk = await asyncio.wait_for(anext(stream), timeout=5)
            kind = chunk.split("\n", 1)[0].removeprefix("event: ")
            data = json.loads(chunk.split("data: ", 1)[1])
            if data.get("call_id") == call_id:
                seen.append((kind, data))
        assert [kind for kind, _ in seen] == ["turn.completed", "call.ended"]
        assert seen[0][1]["assistant_text"] == "It shipped."
        await hub.stop()
        assert "event: shutdown" in await asyncio.wait_for(anext(stream), timeout=5)
    finally:
        await hub.stop()


async def test_a_slow_client_is_told_to_resync(bus: Bus) -> None:
    hub = LiveHub(bus=bus, max_queue=3)
    with hub.subscribe() as client:
        for i in range(10):
            hub.publish_local(live_message(i))
        first = await client.next(timeout_s=1)
        assert first is not None and first.kind == "resync"
    assert hub.client_count == 0


def live_message(i: int):
    from callcenter.gateway.live import LiveMessage

    return LiveMessage(kind="turn.completed", data={"turn_index": i})


async def test_stats_count_what_the_tables_hold(
    client: httpx.AsyncClient, db_pool: asyncpg.Pool
) -> None:
    headers = {"Authorization": f"Bearer {TOKEN}"}

    async def stats() -> dict:
        names = ("volume", "latency", "satisfaction", "tools")
        replies = [await client.get(f"/api/stats/{n}?hours=1", headers=headers) for n in names]
        assert all(r.status_code == 200 for r in replies)
        return dict(zip(names, (r.json() for r in replies), strict=True))

    before = await stats()
    call_id = "stats-" + uuid.uuid4().hex
    now = datetime.now(UTC)
    await db_pool.execute(
        "INSERT INTO calls (call_id, channel, started_at) VALUES ($1, 'sms', $2)", call_id, now
    )
    tool_calls = [
        {"id": "a", "name": "check_order_status", "success": True},
        {"id": "b", "name": "check_order_status", "success": False, "error": "not_found"},
    ]
    for index, total in enumerate((400.0, 800.0)):
        await db_pool.execute(
            """
            INSERT INTO turns (call_id, turn_index, channel, user_text, assistant_text,
                               tool_calls, latency, event_id, occurred_at)
            VALUES ($1, $2, 'sms', 'q', 'a', $3, $4, $5, $6)
            """,
            call_id,
            index,
            tool_calls if index == 0 else [],
            {"first_token_ms": 100.0 * (index + 1), "tool_ms": 50.0, "total_ms": total},
            uuid.uuid4().hex,
            now,
        )
    await db_pool.execute(
        """
        INSERT INTO summaries (call_id, channel, summary, sentiment, satisfaction, resolved,
                               follow_up_needed, engine, turns_expected, turns_stored, event_id)
        VALUES ($1, 'sms', 'Asked about an order.', 'negative', 2, false, true, 'offline', 2, 2, $2)
        """,
        call_id,
        uuid.uuid4().hex,
    )
    after = await stats()

    assert after["volume"]["totals"]["sms"] == before["volume"]["totals"]["sms"] + 1
    assert sum(after["volume"]["series"]["sms"]) == after["volume"]["totals"]["sms"]
    assert after["satisfaction"]["scores"]["2"] == before["satisfaction"]["scores"]["2"] + 1
    assert after["satisfaction"]["sentiment"]["negative"] >= 1
    assert after["tools"]["calls"] == before["tools"]["calls"] + 2
    assert after["tools"]["errors"] == before["tools"]["errors"] + 1
    stages = {s["stage"]: s for s in after["latency"]["stages"]}
    assert {"first_token_ms", "total_ms", "tool_ms"} <= set(stages)
    # tool_ms counts only turns that called a tool.
    before_tool = {s["stage"]: s for s in before["latency"]["stages"]}.get("tool_ms", {})
    assert stages["tool_ms"]["count"] == before_tool.get("count", 0) + 1
    assert stages["total_ms"]["p50"] <= stages["total_ms"]["p90"] <= stages["total_ms"]["p99"]

    live = (await client.get("/api/live", headers=headers)).json()
    mine = [c for c in live["calls"] if c["call_id"] == call_id]
    assert mine and [t["turn_index"] for t in mine[0]["turns"]] == [0, 1]
    assert mine[0]["summary"]["satisfaction"] == 2


async def test_a_gateway_process_streams_events_and_ends_streams_on_sigterm(
    test_env, bus: Bus, db_pool: asyncpg.Pool
) -> None:
    port = free_port()
    env = {**test_env.env, "ADMIN_TOKEN": TOKEN, "CALLCENTER_GATEWAY__PORT": str(port)}
    gateway = ServiceProcess("gateway", env=env, port=port, tag=test_env.tag)
    await asyncio.to_thread(gateway.start)
    try:
        headers = {"Authorization": f"Bearer {TOKEN}"}
        async with (
            httpx.AsyncClient(base_url=gateway.url, timeout=10) as http,
            http.stream("GET", "/api/live/events", headers=headers) as stream,
        ):
            assert stream.status_code == 200
            assert stream.headers["content-type"].startswith("text/event-stream")
            lines = stream.aiter_lines()

            async def next_event() -> tuple[str, dict]:
                kind = ""
                while True:
                    line = await asyncio.wait_for(anext(lines), timeout=10)
                    if line.startswith("event: "):
                        kind = line.removeprefix("event: ")
                    elif line.startswith("data: "):
                        return kind, json.loads(line.removeprefix("data: "))

            assert (await next_event())[0] == "hello"
            call_id = uuid.uuid4().hex
            await bus.publish(
                CallEnded(call_id=call_id, channel="sms", reason="done", duration_s=1, turn_count=0)
            )
            while True:
                kind, data = await next_event()
                if data.get("call_id") == call_id:
                    break
            assert kind == "call.ended" and data["reason"] == "done"

            # SIGTERM: open dashboards are told (and reconnect elsewhere); the process exits.
            stopping = asyncio.create_task(asyncio.to_thread(gateway.stop))
            while kind != "shutdown":
                kind, _ = await next_event()
            assert await stopping == 0
    finally:
        await asyncio.to_thread(gateway.stop)
