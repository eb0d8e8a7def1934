"""An isolated namespace on the shared NATS, Redis and PostgreSQL for one test session.

Every test session gets its own NATS subject prefix and stream names, Redis key prefix and
PostgreSQL schema, so test runs (and a running demo) on one machine never see each other's data.
The servers are found through NATS_URL, REDIS_URL and DATABASE_URL (defaults: loopback). A server
that is not reachable fails the session with the command that starts it; it is never skipped.
"""

from __future__ import annotations

import os
import socket
import uuid
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from callcenter.common.bus.connection import START_HINT as NATS_HINT
from callcenter.common.config import CallCenterConfig, load_config
from callcenter.common.db.pool import START_HINT as PG_HINT
from callcenter.common.runtime import REDIS_START_HINT

DEFAULT_URLS = {
    "NATS_URL": "nats://127.0.0.1:4222",
    "REDIS_URL": "redis://127.0.0.1:6379/0",
    "DATABASE_URL": "postgresql://postgres@127.0.0.1:5432/test",
}
PORT_VARIABLES = {
    "gateway": "CALLCENTER_GATEWAY__PORT",
    "voice_pipeline": "CALLCENTER_VOICE_PIPELINE__PORT",
    "conversation": "CALLCENTER_CONVERSATION__HEALTH_PORT",
    "tools": "CALLCENTER_TOOLS__HEALTH_PORT",
    "post_call": "CALLCENTER_POST_CALL__HEALTH_PORT",
}
HINTS = {"NATS_URL": NATS_HINT, "REDIS_URL": REDIS_START_HINT, "DATABASE_URL": PG_HINT}


# Ports handed to services that bind them later come from below the kernel's ephemeral range
# (32768+ by default), so an outgoing connection can never take one between the hand-out and the
# bind, and each pytest-xdist worker draws from a slice of its own, so two workers never hand out
# the same port. Within a process a port is handed out once.
_PORT_RANGE = (10_000, 32_000)
_handed_out: set[int] = set()
_next_port: list[int] = []


def _worker_slice() -> tuple[int, int]:
    """This process's slice of the port range (the whole range outside pytest-xdist)."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    count = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1") or 1)
    index = int(worker[2:]) if worker.startswith("gw") and worker[2:].isdigit() else 0
    low, high = _PORT_RANGE
    size = (high - low) // max(count, 1)
    return low + index * size, low + (index + 1) * size


def free_port() -> int:
    """A TCP port nobody listens on right now, never handed out before in this process."""
    low, high = _worker_slice()
    if not _next_port:
        # Start somewhere different in each run, so concurrent runs outside xdist rarely meet.
        _next_port.append(low + (os.getpid() * 7919) % (high - low))
    for _ in range(high - low):
        port = _next_port[0]
        _next_port[0] = low if port + 1 >= high else port + 1
        if port in _handed_out:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    raise RuntimeError(f"no free TCP port left in {low}-{high}")


def unreachable_services() -> list[str]:
    """Each configured server that does not accept a TCP connection, with how to start it."""
    problems = []
    for var, default in DEFAULT_URLS.items():
        url = os.environ.get(var, default)
        parts = urlsplit(url)
        try:
            socket.create_connection(
                (parts.hostname or "127.0.0.1", parts.port or 0), timeout=2
            ).close()
        except OSError as exc:
            problems.append(f"{var}={url} is not reachable ({exc}); {HINTS[var]}")
    return problems


@dataclass
class TestEnvironment:
    """The namespace and ports of one test session; ``env`` configures a service subprocess."""

    __test__ = False  # not a test class, despite the name

    tag: str = field(default_factory=lambda: "t" + uuid.uuid4().hex[:10])
    ports: dict[str, int] = field(default_factory=dict)
    extra_env: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("gateway", "voice_pipeline", "conversation", "tools", "post_call"):
            self.ports.setdefault(name, free_port())

    @property
    def env(self) -> dict[str, str]:
        """Environment variables that put a service process into this namespace."""
        tag = self.tag
        values = {
            "NATS_URL": os.environ.get("NATS_URL", DEFAULT_URLS["NATS_URL"]),
            "REDIS_URL": os.environ.get("REDIS_URL", DEFAULT_URLS["REDIS_URL"]),
            "DATABASE_URL": os.environ.get("DATABASE_URL", DEFAULT_URLS["DATABASE_URL"]),
            "CALLCENTER_NATS__SUBJECT_PREFIX": f"{tag}.",
            "CALLCENTER_NATS__STREAM": f"{tag.upper()}_EVENTS",
            "CALLCENTER_NATS__DEAD_LETTER_STREAM": f"{tag.upper()}_DLQ",
            "CALLCENTER_NATS__STREAM_MAX_AGE_S": "3600",
            # as a deployment does: tools and post_call share the key that seals one-time codes
            "CALLCENTER_NOTIFICATIONS__CODE_KEY": f"code-key-{tag}",
            "CALLCENTER_REDIS__KEY_PREFIX": f"{tag}:",
            "CALLCENTER_DATABASE__SCHEMA_NAME": tag,
            "CALLCENTER_LOGGING__FORMAT": "json",
            "CALLCENTER_LOGGING__LEVEL": "DEBUG",
            "CALLCENTER_GATEWAY__PORT": str(self.ports["gateway"]),
            "CALLCENTER_GATEWAY__PUBLIC_BASE_URL": f"http://127.0.0.1:{self.ports['gateway']}",
            "CALLCENTER_VOICE_PIPELINE__PORT": str(self.ports["voice_pipeline"]),
            "CALLCENTER_VOICE_PIPELINE__PUBLIC_WS_URL": f"ws://127.0.0.1:{self.ports['voice_pipeline']}/twilio/media",
            "CALLCENTER_CONVERSATION__HEALTH_PORT": str(self.ports["conversation"]),
            "CALLCENTER_TOOLS__HEALTH_PORT": str(self.ports["tools"]),
            "CALLCENTER_POST_CALL__HEALTH_PORT": str(self.ports["post_call"]),
            "CALLCENTER_CONFIG": os.environ.get("CALLCENTER_CONFIG", "config.yaml"),
            "CALLCENTER_ENV_FILE": "/nonexistent/.env",
        }
        values.update(self.extra_env)
        return values

    def config(self, **env_overrides: str) -> CallCenterConfig:
        """The configuration a service in this namespace would load."""
        saved = dict(os.environ)
        try:
            os.environ.update(self.env)
            os.environ.update(env_overrides)
            return load_config()
        finally:
            os.environ.clear()
            os.environ.update(saved)
