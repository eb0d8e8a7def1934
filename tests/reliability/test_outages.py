"""Dependency outages: readiness follows NATS, Redis and PostgreSQL; processes ride them out.

Real service processes run against a private nats-server, redis-server and PostgreSQL (see
``tests/support/private_servers.py``). Each server is stopped in turn: every service that uses it
reports not-ready (503, that check false) while it is down, stays alive (same process, /healthz
200, no crash loop), and is ready again once the server is back. A call ended while NATS is down
is published with retries under one ``Nats-Msg-Id`` and stored exactly once.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import httpx
import pytest
import websockets

from tests.reliability.harness import read_events
from tests.support.environment import TestEnvironment
from tests.support.private_servers import PrivateStack, start_service
from tests.support.processes import ServiceProcess

SERVICES = ("tools", "post_call", "conversation", "gateway")
WAIT_S = 45.0


@pytest.fixture(scope="module")
def services(
    stack_env: dict[str, str], test_env: TestEnvironment
) -> Iterator[dict[str, ServiceProcess]]:
    """Every backend service, on the private servers (started together: imports are slow)."""
    started: dict[str, ServiceProcess] = {}
    try:
        for name in SERVICES:
            started[name] = start_service(
                name, env=stack_env, tag=f"{test_env.tag}-outages", wait=False
            )
        for proc in started.values():
            proc.wait_ready(timeout_s=120)
        yield started
    finally:
        for proc in reversed(started.values()):
            proc.stop()


async def _readiness(client: httpx.AsyncClient, proc: ServiceProcess) -> tuple[int, dict]:
    try:
        response = await client.get(f"{proc.url}/readyz", timeout=5.0)
    except httpx.HTTPError as exc:
        return 0, {"error": str(exc)}
    return response.status_code, response.json()


async def _wait_for(
    client: httpx.AsyncClient, procs: list[ServiceProcess], *, status: int, check: str | None
) -> dict[str, tuple[int, dict]]:
    """Poll /readyz of ``procs`` until each answers ``status`` (and ``check`` has that truth)."""
    deadline = asyncio.get_running_loop().time() + WAIT_S
    while True:
        seen = {proc.name: await _readiness(client, proc) for proc in procs}
        done = all(
            code == status and body.get("checks", {}).get(check, status == 200) is (status == 200)
            for code, body in seen.values()
        )
        if done or asyncio.get_running_loop().time() > deadline:
            return seen
        await asyncio.sleep(0.25)


def _pids(services: dict[str, ServiceProcess]) -> dict[str, int]:
    return {name: proc.proc.pid for name, proc in services.items() if proc.proc is not None}


@pytest.mark.parametrize("dependency", ["nats", "redis", "postgres"])
async def test_readiness_follows_a_dependency_outage_without_a_crash_loop(
    dependency: str, services: dict[str, ServiceProcess], stack: PrivateStack
) -> None:
    async with httpx.AsyncClient() as client:
        before = await _wait_for(client, list(services.values()), status=200, check=None)
        assert all(code == 200 for code, _ in before.values()), before
        users = [proc for proc in services.values() if dependency in before[proc.name][1]["checks"]]
        others = [proc for proc in services.values() if proc not in users]
        assert users, f"no service checks {dependency}"
        pids = _pids(services)

        await asyncio.to_thread(stack.servers[dependency].stop)
        try:
            down = await _wait_for(client, users, status=503, check=dependency)
            for name, (code, body) in down.items():
                assert code == 503 and body["checks"][dependency] is False, (name, body)
                assert body["draining"] is False, (name, body)
            for proc in services.values():
                assert proc.proc is not None and proc.proc.poll() is None, proc.log_tail()
                health = await client.get(f"{proc.url}/healthz", timeout=5.0)
                assert health.status_code == 200, proc.name
            for proc in others:  # a service that does not use it stays ready
                code, body = await _readiness(client, proc)
                assert code == 200, (proc.name, body)
        finally:
            await asyncio.to_thread(stack.servers[dependency].start)

        back = await _wait_for(client, list(services.values()), status=200, check=dependency)
        for name, (code, body) in back.items():
            assert code == 200 and all(body["checks"].values()), (name, body)
    assert _pids(services) == pids, "a service restarted (crash loop) during the outage"
    assert all(proc.proc is not None and proc.proc.poll() is None for proc in services.values())


async def test_call_ended_during_a_nats_outage_is_retried_and_stored_once(
    services: dict[str, ServiceProcess], stack: PrivateStack, stack_env: dict[str, str]
) -> None:
    gateway = services["gateway"]
    ws_url = gateway.url.replace("http://", "ws://") + "/chat/ws"
    async with websockets.connect(ws_url) as ws:
        hello = json.loads(await asyncio.wait_for(ws.recv(), timeout=30))
        call_id = hello["call_id"]
        await asyncio.to_thread(stack.nats.stop)
        try:
            await ws.send(json.dumps({"type": "end"}))
            ended = json.loads(await asyncio.wait_for(ws.recv(), timeout=30))
            assert ended == {"type": "ended", "reason": "customer_closed"}
            # Stay down long enough for the publish to time out and be retried at least once.
            deadline = asyncio.get_running_loop().time() + WAIT_S
            while f'"event_id": "ended-{call_id}"' not in _retries(gateway):
                assert asyncio.get_running_loop().time() < deadline, gateway.log_tail()
                await asyncio.sleep(0.2)
        finally:
            await asyncio.to_thread(stack.nats.start)

    stored = await _stored_call_ended(stack, stack_env, call_id)
    assert len(stored) == 1, f"call.ended stored {len(stored)} times"
    assert [msg_id for msg_id, _ in stored] == [f"ended-{call_id}"]
    retries = [
        json.loads(line) for line in _retries(gateway).splitlines() if f"ended-{call_id}" in line
    ]
    assert retries and {line["event_id"] for line in retries} == {f"ended-{call_id}"}


async def _stored_call_ended(
    stack: PrivateStack, stack_env: dict[str, str], call_id: str
) -> list[tuple[str, dict]]:
    """(Nats-Msg-Id, body) of every call.ended stored for ``call_id``, once one is there."""
    prefix = stack_env["CALLCENTER_NATS__SUBJECT_PREFIX"]
    stream = stack_env["CALLCENTER_NATS__STREAM"]
    deadline = asyncio.get_running_loop().time() + WAIT_S
    while True:
        stored = [
            (msg_id, body)
            for subject, msg_id, body in await read_events(stack.nats.url, stream, prefix)
            if subject == "call.ended" and body.get("call_id") == call_id
        ]
        if stored or asyncio.get_running_loop().time() > deadline:
            return stored
        await asyncio.sleep(0.5)


def _retries(proc: ServiceProcess) -> str:
    return "\n".join(
        line for line in proc.log_text().splitlines() if '"retrying event publish"' in line
    )


async def test_call_ended_while_redis_is_down_is_published_once_it_returns(
    services: dict[str, ServiceProcess], stack: PrivateStack, stack_env: dict[str, str]
) -> None:
    """The end's claim and the session index live in Redis; the call's row remembers the end."""
    gateway = services["gateway"]
    ws_url = gateway.url.replace("http://", "ws://") + "/chat/ws"
    async with websockets.connect(ws_url) as ws:
        hello = json.loads(await asyncio.wait_for(ws.recv(), timeout=30))
        call_id = hello["call_id"]
        await asyncio.to_thread(stack.servers["redis"].stop)
        try:
            await ws.send(json.dumps({"type": "end"}))
            ended = json.loads(await asyncio.wait_for(ws.recv(), timeout=30))
            assert ended == {"type": "ended", "reason": "customer_closed"}
            await asyncio.sleep(1.0)
        finally:
            await asyncio.to_thread(stack.servers["redis"].start)

    stored = await _stored_call_ended(stack, stack_env, call_id)
    assert len(stored) == 1, gateway.log_tail()
    assert stored[0][1]["reason"] == "customer_closed"
