"""Private NATS, Redis and PostgreSQL servers for outage and fault tests.

The shared servers on 4222/6379/5432 serve every other test run and must never be stopped, so
tests that take a dependency down start their own real servers on free loopback ports, in a
temporary directory, and stop, kill and restart those. Point service processes at them through
:meth:`PrivateStack.env` (``NATS_URL``, ``REDIS_URL``, ``DATABASE_URL``).

PostgreSQL refuses to run as root: when the tests run as root, ``initdb``, ``pg_ctl`` and the
server run as the ``postgres`` user (Popen ``user=``) on a directory it owns.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from tests.support.environment import PORT_VARIABLES, free_port
from tests.support.processes import ServiceProcess

NATS_SERVER = shutil.which("nats-server") or "/usr/sbin/nats-server"
REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
PG_BIN = Path(os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin"))


def port_open(port: int) -> bool:
    """Whether something accepts TCP connections on 127.0.0.1:``port``."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        return True
    except OSError:
        return False


def _wait(predicate, *, timeout_s: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise TimeoutError(f"{what} (after {timeout_s}s)")


class PrivateServer:
    """One server process on a private port; subclasses say how to run it."""

    name = "server"

    def __init__(self, *, root: Path) -> None:
        self.port = free_port()
        self.dir = root / self.name
        self.dir.mkdir(parents=True, exist_ok=True)
        self.log_path = root / f"{self.name}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.restarts = 0

    @property
    def url(self) -> str:
        """The URL a client uses."""
        raise NotImplementedError

    def command(self) -> list[str]:
        """The command line that runs the server in the foreground."""
        raise NotImplementedError

    def popen_user(self) -> dict[str, str]:
        """Extra Popen arguments (which user runs it)."""
        return {}

    def ready(self) -> bool:
        """Whether the server answers."""
        return port_open(self.port)

    def start(self, *, timeout_s: float = 30.0) -> PrivateServer:
        """Start it and wait until it answers."""
        if self.proc is not None and self.proc.poll() is None:
            return self
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            self.command(),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=self.dir,
            **self.popen_user(),
        )
        _wait(self._up, timeout_s=timeout_s, what=f"private {self.name} did not start")
        return self

    def _up(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            tail = self.log_path.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"private {self.name} exited with {self.proc.returncode}:\n{tail}")
        return self.ready()

    def stop(self, *, timeout_s: float = 20.0) -> None:
        """Graceful stop (SIGTERM); wait until the port is closed."""
        self._signal(signal.SIGTERM, timeout_s=timeout_s)

    def kill(self) -> None:
        """Hard crash (SIGKILL): no chance to flush or say goodbye."""
        self._signal(signal.SIGKILL, timeout_s=10.0)

    def restart(self, *, down_s: float = 0.0, hard: bool = False) -> None:
        """Stop (or kill), stay down ``down_s`` seconds, start again."""
        self.kill() if hard else self.stop()
        time.sleep(down_s)
        self.start()
        self.restarts += 1

    def _signal(self, sig: signal.Signals, *, timeout_s: float) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        _wait(lambda: not port_open(self.port), timeout_s=10, what=f"{self.name} port stays open")

    @property
    def running(self) -> bool:
        """Whether its process is alive."""
        return self.proc is not None and self.proc.poll() is None


class PrivateNats(PrivateServer):
    """nats-server with JetStream, storing streams on disk (they survive a restart)."""

    name = "nats"

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        return [NATS_SERVER, "-a", "127.0.0.1", "-p", str(self.port), "-js", "-sd", str(self.dir)]


class PrivateRedis(PrivateServer):
    """redis-server without persistence (a restart loses its keys, as an evicted cache would)."""

    name = "redis"

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def command(self) -> list[str]:
        return [
            REDIS_SERVER,
            "--bind", "127.0.0.1",
            "--port", str(self.port),
            "--save", "",
            "--appendonly", "no",
            "--dir", str(self.dir),
        ]  # fmt: skip


def _as_postgres() -> dict[str, str]:
    """Popen arguments that run a command as the postgres user when we are root."""
    if os.geteuid() != 0:
        return {}
    return {"user": "postgres", "group": "postgres"}


class PrivatePostgres(PrivateServer):
    """A PostgreSQL 15 cluster of its own (``initdb`` once, then started and stopped freely)."""

    name = "postgres"
    database = "test"

    def __init__(self, *, root: Path) -> None:
        super().__init__(root=root)
        if os.geteuid() == 0:
            owner = pwd.getpwnam("postgres")
            for path in (root, self.dir):
                os.chown(path, owner.pw_uid, owner.pw_gid)
            self.log_path.touch()
            os.chown(self.log_path, owner.pw_uid, owner.pw_gid)
        subprocess.run(
            [str(PG_BIN / "initdb"), "-D", str(self.dir), "-U", "postgres",
             "--auth=trust", "-E", "UTF8", "--no-sync"],
            check=True, capture_output=True, cwd=self.dir, **_as_postgres(),
        )  # fmt: skip
        self._created = False

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{self.database}"

    def command(self) -> list[str]:
        return [
            str(PG_BIN / "postgres"), "-D", str(self.dir),
            "-p", str(self.port), "-k", str(self.dir), "-c", "listen_addresses=127.0.0.1",
            "-c", "fsync=off", "-c", "max_connections=200",
        ]  # fmt: skip

    def popen_user(self) -> dict[str, str]:
        return _as_postgres()

    def ready(self) -> bool:
        result = subprocess.run(
            [str(PG_BIN / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port), "-q"],
            check=False,
        )
        return result.returncode == 0

    def start(self, *, timeout_s: float = 30.0) -> PrivatePostgres:
        super().start(timeout_s=timeout_s)
        if not self._created:
            subprocess.run(
                [str(PG_BIN / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U",
                 "postgres", self.database],
                check=True, capture_output=True,
            )  # fmt: skip
            self._created = True
        return self

    def stop(self, *, timeout_s: float = 20.0) -> None:
        """Fast shutdown (SIGINT): clients are disconnected, the cluster stops cleanly."""
        self._signal(signal.SIGINT, timeout_s=timeout_s)

    def kill(self) -> None:
        """Immediate shutdown (SIGQUIT on the postmaster), like a crash; recovery on next start."""
        self._signal(signal.SIGQUIT, timeout_s=10.0)


class PrivateStack:
    """NATS, Redis and PostgreSQL of one test module, all private."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.nats = PrivateNats(root=root)
        self.redis = PrivateRedis(root=root)
        self.postgres = PrivatePostgres(root=root)

    @property
    def servers(self) -> dict[str, PrivateServer]:
        """The servers by the readiness check name each one feeds."""
        return {"nats": self.nats, "redis": self.redis, "postgres": self.postgres}

    def env(self) -> dict[str, str]:
        """What points a service process (or a config) at these servers."""
        return {
            "NATS_URL": self.nats.url,
            "REDIS_URL": self.redis.url,
            "DATABASE_URL": self.postgres.url,
        }

    def start(self) -> PrivateStack:
        """Start all three."""
        for server in self.servers.values():
            server.start()
        return self

    def close(self) -> None:
        """Stop every private server (never the shared ones)."""
        for server in self.servers.values():
            with contextlib.suppress(Exception):
                server.kill() if server.name != "postgres" else server.stop()


@contextlib.contextmanager
def private_stack() -> Iterator[PrivateStack]:
    """A started :class:`PrivateStack` in a temporary directory, stopped and removed afterwards."""
    root = Path(tempfile.mkdtemp(prefix="cc-private-"))
    stack = PrivateStack(root)
    try:
        yield stack.start()
    finally:
        stack.close()
        shutil.rmtree(root, ignore_errors=True)


def start_service(
    name: str,
    *,
    env: dict[str, str],
    tag: str,
    port: int | None = None,
    wait: bool = True,
) -> ServiceProcess:
    """Start service ``name`` on its own free port with ``env`` (a namespace plus server URLs).

    The caller stops it (``stop()`` or ``kill()``); unlike ``service_factory`` the port is never
    shared with another module's replica.
    """
    port = port or free_port()
    proc = ServiceProcess(name, env={**env, PORT_VARIABLES[name]: str(port)}, port=port, tag=tag)
    return proc.start(wait=wait)


async def prepare_database(url: str, schema: str) -> None:
    """Create, migrate and seed ``schema`` on the database at ``url`` (a private server)."""
    from callcenter.common.config.sections import DatabaseSettings
    from callcenter.common.db import create_pool, migrate, seed

    pool = await create_pool(DatabaseSettings(url=url, schema_name=schema), attempts=5)
    try:
        await migrate(pool)
        await seed(pool)
    finally:
        await pool.close()
