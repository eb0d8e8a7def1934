"""What every service process does around its own work.

:class:`ServiceRuntime` configures logging and tracing, connects to the dependencies a service
declares (NATS always; Redis and PostgreSQL on request), serves ``/healthz``, ``/readyz`` and
``/metrics`` (or the service's own ASGI app, with those routes added), and turns SIGTERM/SIGINT
into an orderly shutdown: readiness goes false, the service finishes in-flight work, NATS is
drained, connections are closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections.abc import Awaitable, Callable, Iterator
from types import TracebackType
from typing import Any

import asyncpg
import redis.asyncio as aioredis
import uvicorn
from starlette.applications import Starlette

from callcenter.common.bus import Bus
from callcenter.common.config import CallCenterConfig
from callcenter.common.db import create_pool, ping
from callcenter.common.health import Readiness, health_routes
from callcenter.common.logging import configure_logging, get_logger
from callcenter.common.telemetry import setup_tracing, shutdown_tracing

log = get_logger(__name__)

STOP_STEP_TIMEOUT_S = 10.0  # one shutdown step; Kubernetes' grace period covers them all

REDIS_START_HINT = (
    "start it with: redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save '' "
    "--appendonly no  (or `docker compose up -d redis`)"
)


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: the runtime owns SIGTERM."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    def install_signal_handlers(self) -> None:  # older uvicorn
        return None


async def connect_redis(url: str, *, attempts: int = 30) -> aioredis.Redis:
    """A Redis client, once the server answers.

    Raises:
        ConnectionError: Redis did not answer after ``attempts`` tries.

    """
    client = aioredis.Redis.from_url(url, decode_responses=True, health_check_interval=10)
    last: Exception | None = None
    for attempt in range(1, attempts + 1):
        try:
            await client.ping()
            log.info("redis connected")
            return client
        except Exception as exc:
            last = exc
            log.warning("redis unreachable", attempt=attempt, error=str(exc))
            await asyncio.sleep(1.0)
    raise ConnectionError(f"Redis is not reachable at {url}: {last}; {REDIS_START_HINT}")


class ServiceRuntime:
    """Connections, health endpoints and graceful shutdown for one service process."""

    def __init__(
        self,
        *,
        name: str,
        config: CallCenterConfig,
        host: str,
        port: int,
        needs_redis: bool = False,
        needs_db: bool = False,
        db_connection_class: type[asyncpg.Connection] = asyncpg.Connection,
        app: Starlette | None = None,
        install_signals: bool = True,
        ws_max_size: int = 16 * 1024 * 1024,
        ws_per_message_deflate: bool = True,
        stop_step_timeout_s: float = STOP_STEP_TIMEOUT_S,
    ) -> None:
        self.name = name
        self.config = config
        self.host = host
        self.port = port
        self.needs_redis = needs_redis
        self.needs_db = needs_db
        self._db_connection_class = db_connection_class
        self.app = app if app is not None else Starlette()
        self.readiness = Readiness()
        self.bus: Bus
        self.redis: aioredis.Redis | None = None
        self.db: asyncpg.Pool | None = None
        self._install_signals = install_signals
        self._ws_max_size = ws_max_size
        self._ws_deflate = ws_per_message_deflate
        self._stop_step_timeout_s = stop_step_timeout_s
        self._stop = asyncio.Event()
        self._server: _Server | None = None
        self._server_task: asyncio.Task[None] | None = None
        self._on_stop: list[Callable[[], Awaitable[Any]]] = []

    async def __aenter__(self) -> ServiceRuntime:
        cfg = self.config
        configure_logging(service=self.name, level=cfg.logging.level, fmt=cfg.logging.format)
        setup_tracing(service=self.name, settings=cfg.telemetry)
        self.bus = await Bus.connect(cfg.nats, name=f"callcenter-{self.name}")

        async def nats_ok() -> bool:
            return self.bus.is_connected

        self.readiness.add("nats", nats_ok)
        if self.needs_redis:
            self.redis = await connect_redis(cfg.redis.url)
            redis_client = self.redis

            async def redis_ok() -> bool:
                return bool(await redis_client.ping())

            self.readiness.add("redis", redis_ok)
        if self.needs_db:
            self.db = await create_pool(cfg.database, connection_class=self._db_connection_class)
            pool = self.db

            async def db_ok() -> bool:
                return await ping(pool)

            self.readiness.add("postgres", db_ok)
        for route in health_routes(self.readiness):
            self.app.router.routes.append(route)
        if self._install_signals:
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, self.request_stop)
        return self

    async def start_http(self) -> None:
        """Serve the app (health routes included) on host:port."""
        config = uvicorn.Config(
            self.app,
            host=self.host,
            port=self.port,
            log_config=None,
            access_log=False,
            lifespan="off",
            ws_ping_interval=20,
            ws_ping_timeout=20,
            ws_max_size=self._ws_max_size,
            ws_per_message_deflate=self._ws_deflate,
        )
        self._server = _Server(config)
        self._server_task = asyncio.create_task(self._server.serve())
        while not self._server.started:
            if self._server_task.done():
                self._server_task.result()
                raise RuntimeError(
                    f"{self.name}: HTTP server did not start on {self.host}:{self.port}"
                )
            await asyncio.sleep(0.02)
        log.info("http listening", url=f"http://{self.host}:{self.port}")

    def on_stop(self, callback: Callable[[], Awaitable[Any]]) -> None:
        """Run ``callback`` during shutdown, before NATS is drained (in reverse order of adding)."""
        self._on_stop.append(callback)

    def request_stop(self) -> None:
        """Begin shutdown (what SIGTERM does)."""
        if not self._stop.is_set():
            log.info("shutdown requested")
            self.readiness.draining = True
            self._stop.set()

    async def wait_for_shutdown(self) -> None:
        """Block until shutdown is requested."""
        await self._stop.wait()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.readiness.draining = True
        for callback in reversed(self._on_stop):
            await self._shutdown_step(_step_name(callback), callback())
        if self._server is not None and self._server_task is not None:
            self._server.should_exit = True
            await self._shutdown_step("http server", self._server_task)
        await self._shutdown_step("nats drain", self.bus.drain())
        if self.redis is not None:
            await self._shutdown_step("redis close", self.redis.aclose())
        if self.db is not None:
            # bounded: a connection never released (asyncpg#547) would make close() wait forever;
            # a close cut short terminates the pool's connections instead
            await self._shutdown_step("postgres pool close", self.db.close())
        shutdown_tracing()
        log.info("stopped")

    async def _shutdown_step(
        self, name: str, work: Awaitable[Any], *, timeout_s: float | None = None
    ) -> bool:
        """Run one shutdown step, bounded: a step that hangs is logged by name and left behind.

        Returns:
            whether the step finished in time without an error.

        """
        started = time.monotonic()
        if timeout_s is None:
            timeout_s = self._stop_step_timeout_s
        try:
            await asyncio.wait_for(work, timeout=timeout_s)
        except TimeoutError:
            log.error("shutdown step overran; going on without it", step=name, timeout_s=timeout_s)
            return False
        except Exception:
            log.exception("shutdown step failed", step=name)
            return False
        log.info("shutdown step done", step=name, ms=round((time.monotonic() - started) * 1000))
        return True


def _step_name(callback: Callable[..., Any]) -> str:
    owner = getattr(callback, "__self__", None)
    name = getattr(callback, "__qualname__", repr(callback))
    return f"{type(owner).__name__}.{callback.__name__}" if owner is not None else name
