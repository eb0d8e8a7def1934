"""What `make run` does after migrate and seed: `callcenter up` starts everything and prints URLs."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys

import asyncpg
import httpx
import websockets

from tests.support.environment import TestEnvironment

SERVICES = ["tools", "conversation", "post_call", "voice_pipeline", "gateway"]


def test_up_refuses_with_the_command_that_starts_a_missing_server(
    test_env: TestEnvironment,
) -> None:
    env = {
        **os.environ,
        **test_env.env,
        "NATS_URL": "nats://127.0.0.1:1",
        "REDIS_URL": "redis://127.0.0.1:2/0",
    }
    result = subprocess.run(
        [sys.executable, "-m", "callcenter.common.cli", "up"],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 1
    assert "NATS is not reachable at nats://127.0.0.1:1" in result.stderr
    assert "nats-server" in result.stderr and "redis-server" in result.stderr
    assert "PostgreSQL" not in result.stderr  # only what is actually missing


async def test_up_starts_every_service_prints_urls_and_stops_on_ctrl_c(
    test_env: TestEnvironment, db_pool: asyncpg.Pool, tmp_path
) -> None:
    env = {**os.environ, **test_env.env}
    log_dir = tmp_path / "run" / "logs"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "callcenter.common.cli", "up", "--log-dir", str(log_dir),
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    lines: list[str] = []
    try:
        async with asyncio.timeout(240):
            while raw := await proc.stdout.readline():
                lines.append(raw.decode().rstrip())
                if "Terminal chat" in lines[-1]:
                    break
        output = "\n".join(lines)
        for service in SERVICES:
            assert any(row.startswith(f"✓ {service}") for row in lines), output
        gateway = f"http://127.0.0.1:{test_env.ports['gateway']}"
        assert f"Web chat:    {gateway}/" in output
        token = output.split("(admin token: ", 1)[1].split(")", 1)[0]
        async with httpx.AsyncClient() as client:
            assert (await client.get(f"{gateway}/api/calls")).status_code == 401
            calls = await client.get(
                f"{gateway}/api/calls", headers={"Authorization": f"Bearer {token}"}
            )
            assert calls.status_code == 200, calls.text
        async with websockets.connect(gateway.replace("http", "ws") + "/chat/ws") as ws:
            assert json.loads(await ws.recv())["type"] == "session"
            await ws.send(json.dumps({"type": "message", "text": "Where is my order ORD-1001?"}))
            while (msg := json.loads(await ws.recv()))["type"] != "done":
                assert msg["type"] != "error", msg
            assert "ORD-1001" in msg["text"]
        # the widget's Call button: a browser call, heard with no keys
        async with httpx.AsyncClient() as client:
            grant = (await client.post(f"{gateway}/web-voice/calls")).json()
        async with websockets.connect(grant["url"]) as ws:
            await ws.send(json.dumps({"type": "start", "token": grant["token"]}))
            assert json.loads(await ws.recv())["type"] == "started"
            assert isinstance(await asyncio.wait_for(ws.recv(), timeout=60), bytes)  # greeting
            await ws.send(json.dumps({"type": "hangup"}))
    finally:
        proc.send_signal(signal.SIGINT)
        code = await asyncio.wait_for(proc.wait(), timeout=60)
    assert code == 0
    for service in SERVICES:
        log = (log_dir / f"{service}.log").read_text()
        assert '"event": "stopped"' in log, f"{service} did not stop gracefully:\n{log[-2000:]}"
