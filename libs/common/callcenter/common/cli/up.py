"""``callcenter up``: start every service locally, wait until each is ready, print the URLs.

Used by ``make run``. NATS, Redis and PostgreSQL must already be running at the configured URLs;
when one is not, this says exactly how to start it and exits. Each service's log goes to
``.run/logs/<service>.log``. Ctrl-C (or SIGTERM) stops every service gracefully.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import signal
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from callcenter.common.bus.connection import START_HINT as NATS_HINT
from callcenter.common.config import CallCenterConfig, load_config
from callcenter.common.db.pool import START_HINT as PG_HINT
from callcenter.common.mail_catcher import MailCatcher
from callcenter.common.runtime import REDIS_START_HINT

SERVICES = ["tools", "conversation", "post_call", "voice_pipeline", "gateway"]


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``up`` command."""
    parser = sub.add_parser("up", help="start every service and print the URLs")
    parser.add_argument("--only", nargs="*", choices=SERVICES, help="start only these services")
    parser.add_argument("--log-dir", default=".run/logs")
    parser.add_argument("--ready-timeout", type=float, default=120.0)
    parser.set_defaults(func=_up)


def health_url(config: CallCenterConfig, service: str) -> str:
    """Where a service answers /readyz."""
    host_port = {
        "gateway": (config.gateway.host, config.gateway.port),
        "voice_pipeline": (config.voice_pipeline.host, config.voice_pipeline.port),
        "conversation": (config.conversation.health_host, config.conversation.health_port),
        "tools": (config.tools.health_host, config.tools.health_port),
        "post_call": (config.post_call.health_host, config.post_call.health_port),
    }[service]
    host = "127.0.0.1" if host_port[0] in {"0.0.0.0", "::"} else host_port[0]
    return f"http://{host}:{host_port[1]}"


def local_secrets(config: CallCenterConfig, path: Path) -> tuple[dict[str, str], str]:
    """The environment for local services, with an admin token and session secret filled in.

    A local run without ``ADMIN_TOKEN`` would leave the dashboard locked, and without
    ``SESSION_SECRET`` a chat could not resume across a gateway restart; both are generated once
    and kept in ``.run/local-secrets.env`` so they stay the same across ``make run``s.
    """
    env = os.environ.copy()
    stored: dict[str, str] = {}
    if path.is_file():
        for line in path.read_text().splitlines():
            key, _, value = line.partition("=")
            if key and value:
                stored[key] = value
    wanted = {
        "ADMIN_TOKEN": config.gateway.admin_token,
        "SESSION_SECRET": config.gateway.session_secret,
    }
    for name, configured in wanted.items():
        if configured is not None and configured.get_secret_value():
            stored.pop(name, None)
            continue
        stored.setdefault(name, secrets.token_urlsafe(24))
        env[name] = stored[name]
    path.write_text("".join(f"{key}={value}\n" for key, value in stored.items()))
    path.chmod(0o600)
    token = (
        config.gateway.admin_token.get_secret_value()
        if config.gateway.admin_token
        else env["ADMIN_TOKEN"]
    )
    return env, token


async def _reachable(url: str, default_port: int) -> bool:
    parts = urlsplit(url)
    try:
        _, writer = await asyncio.wait_for(
            asyncio.open_connection(parts.hostname or "127.0.0.1", parts.port or default_port), 2.0
        )
    except (OSError, TimeoutError):
        return False
    writer.close()
    return True


async def check_dependencies(config: CallCenterConfig) -> list[str]:
    """Problems with NATS, Redis or PostgreSQL, each with the command that fixes it."""
    problems = []
    if not await _reachable(config.nats.url, 4222):
        problems.append(f"NATS is not reachable at {config.nats.url}; {NATS_HINT}")
    if not await _reachable(config.redis.url, 6379):
        problems.append(f"Redis is not reachable at {config.redis.url}; {REDIS_START_HINT}")
    if not await _reachable(config.database.url, 5432):
        problems.append(
            f"PostgreSQL is not reachable at {urlsplit(config.database.url).netloc}; {PG_HINT}"
        )
    return problems


LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1", "0.0.0.0"}


async def start_mail_catcher(config: CallCenterConfig) -> tuple[MailCatcher | None, str]:
    """A mail catcher on the SMTP port when SMTP is local and nothing listens there.

    Returns:
        The catcher (None when none was started) and a line saying where mail goes.

    """
    smtp = config.smtp
    where = f"{smtp.host}:{smtp.port}"
    if not smtp.enabled:
        return None, "off (smtp.enabled is false): no email is sent"
    if await _reachable(f"smtp://{where}", smtp.port):
        return None, f"SMTP server at {where}"
    if smtp.host not in LOCAL_HOSTS:
        return None, f"✗ nothing answers at {where}: emails will be retried, then dead-lettered"
    catcher = MailCatcher(config=config)
    try:
        await catcher.start()
    except OSError as exc:  # taken between the check and the bind
        return None, f"✗ could not listen on {where} ({exc}); emails may not be delivered"
    except ModuleNotFoundError:
        return None, (
            f"✗ nothing answers at {where} and aiosmtpd is not installed "
            "(uv sync --all-packages), so emails cannot be delivered"
        )
    return catcher, f"local mail catcher on {where} (read it at /dashboard/mail)"


#: Readiness checks a local run may fail and still be useful (said, not fatal).
OPTIONAL_CHECKS = {"speech_providers"}


async def _wait_ready(
    url: str, proc: asyncio.subprocess.Process, timeout: float
) -> tuple[bool, dict[str, str]]:
    """Whether the service became ready, and what it says it lacks (optional checks only)."""
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(timeout=2.0) as client:
        while time.monotonic() < deadline:
            if proc.returncode is not None:
                return False, {}
            try:
                reply = await client.get(f"{url}/readyz")
                if reply.status_code == 200:
                    return True, {}
                body = reply.json()
                failing = {name for name, ok in body.get("checks", {}).items() if not ok}
                if failing and failing <= OPTIONAL_CHECKS and not body.get("draining"):
                    return True, dict(body.get("lacks") or {})
            except (httpx.HTTPError, ValueError):
                pass
            await asyncio.sleep(0.3)
    return False, {}


async def _supervise(args: argparse.Namespace) -> int:
    config = load_config()
    problems = await check_dependencies(config)
    if problems:
        for problem in problems:
            print(f"✗ {problem}", file=sys.stderr)
        return 1
    log_dir = Path(args.log_dir)
    log_dir.mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240 - once, at start-up
    child_env, admin_token = local_secrets(config, log_dir.parent / "local-secrets.env")
    wanted = args.only or SERVICES
    catcher, mail_line = await start_mail_catcher(config)
    procs: dict[str, asyncio.subprocess.Process] = {}
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)

    async def start(service: str) -> asyncio.subprocess.Process:
        log_file = (log_dir / f"{service}.log").open("ab")
        return await asyncio.create_subprocess_exec(
            sys.executable, "-m", f"callcenter.{service}",
            stdout=log_file, stderr=log_file, env=child_env,
        )  # fmt: skip

    for service in wanted:
        procs[service] = await start(service)
        ok, lacks = await _wait_ready(
            health_url(config, service), procs[service], args.ready_timeout
        )
        mark = "✓" if ok else "✗"
        print(
            f"{mark} {service:<15} {health_url(config, service)}  (log: {log_dir / (service + '.log')})"
        )
        for note in lacks.values():
            print(f"  ! {service} runs, but voice calls cannot work: {note}")
        if not ok:
            print(f"  {service} did not become ready; see its log", file=sys.stderr)
            for proc in procs.values():
                if proc.returncode is None:
                    proc.send_signal(signal.SIGTERM)
            await asyncio.gather(*(p.wait() for p in procs.values()))
            if catcher is not None:
                await catcher.stop()
            return 1
    base = config.gateway.public_base_url.rstrip("/")
    print()
    print(f"  Web chat:    {base}/")
    print(f"  Dashboard:   {base}/dashboard   (admin token: {admin_token})")
    print(
        f"  REST API:    {base}/api/calls   (Authorization: Bearer <admin token>; OpenAPI: {base}/docs)"
    )
    print(f"  Twilio voice webhook: {base}/twilio/voice   SMS webhook: {base}/twilio/sms")
    print(f"  Media stream: {config.voice_pipeline.public_ws_url}")
    print(f"  Mail:        {mail_line}")
    print("  Terminal chat: uv run callcenter chat        Stop: Ctrl-C")
    restarts: dict[str, int] = dict.fromkeys(procs, 0)
    while not stop.is_set():
        try:
            await asyncio.wait_for(stop.wait(), timeout=1.0)
        except TimeoutError:
            pass
        for service, proc in list(procs.items()):
            if proc.returncode is not None and not stop.is_set():
                restarts[service] += 1
                print(
                    f"! {service} exited with {proc.returncode}; restart {restarts[service]}",
                    file=sys.stderr,
                )
                if restarts[service] > 5:
                    print(f"! {service} keeps failing; stopping", file=sys.stderr)
                    stop.set()
                    break
                await asyncio.sleep(min(2 ** restarts[service], 30))
                procs[service] = await start(service)
    print("stopping…")
    for proc in procs.values():
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
    await asyncio.gather(*(p.wait() for p in procs.values()))
    if catcher is not None:
        await catcher.stop()
    return 0


def _up(args: argparse.Namespace) -> int:
    return asyncio.run(_supervise(args))
