"""Shared pytest fixtures: an isolated namespace on the real NATS, Redis and PostgreSQL.

See tests/support/environment.py. Service-level tests under services/*/tests and the integration
tests under tests/ all use these fixtures.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import asyncpg
import pytest
import redis.asyncio as aioredis

from callcenter.common.bus import Bus
from callcenter.common.config import CallCenterConfig
from callcenter.common.db import create_pool, migrate, seed
from callcenter.common.logging import configure_logging
from tests.support.environment import TestEnvironment, unreachable_services
from tests.support.processes import ServiceProcess, ServiceStarter

pytest_plugins = ("tests.deploy.scope_summary",)


def pytest_sessionstart(session: pytest.Session) -> None:
    problems = unreachable_services()
    if problems:
        raise pytest.UsageError("integration servers are not running:\n  " + "\n  ".join(problems))


#: Modules that take minutes (building images): first in line, so that with two workers the
#: other worker runs the rest meanwhile instead of both waiting on this one at the end.
LONGEST_MODULES = ("tests/deploy/test_images.py",)
#: Packages whose modules share one running system (a package-scoped fixture): with two workers
#: the whole package goes to one worker, so that system starts once.
SHARED_SYSTEM_PACKAGES = ("services/voice_pipeline/tests/", "tests/security/", "tests/browser/")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    items.sort(key=lambda item: item.nodeid.split("::")[0] not in LONGEST_MODULES)


def work_unit(nodeid: str) -> str:
    """What one worker runs together: the test's package if its modules share a system, else
    its module."""
    module = nodeid.split("::")[0]
    return next((p for p in SHARED_SYSTEM_PACKAGES if module.startswith(p)), module)


@pytest.hookimpl(tryfirst=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """``make test`` (``-n 2 --dist loadfile``): a file at a time, a shared-system package whole."""
    if config.getvalue("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    class WorkUnitScheduling(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return work_unit(nodeid)

    return WorkUnitScheduling(config, log)


@pytest.fixture(scope="session")
def test_env() -> TestEnvironment:
    """This session's namespace (subject prefix, stream names, key prefix, schema, ports)."""
    return TestEnvironment()


@pytest.fixture(scope="session")
def config(test_env: TestEnvironment) -> CallCenterConfig:
    """The configuration of this session's namespace."""
    cfg = test_env.config()
    configure_logging(service="tests", level="DEBUG", fmt="console")
    return cfg


@pytest.fixture(scope="session")
async def db_pool(config: CallCenterConfig) -> AsyncIterator[asyncpg.Pool]:
    """A pool on this session's schema, migrated and seeded; the schema is dropped afterwards."""
    pool = await create_pool(config.database, attempts=3)
    await migrate(pool)
    await seed(pool)
    yield pool
    await pool.close()
    if os.environ.get("KEEP_TEST_SCHEMA") != "1":
        conn = await asyncpg.connect(config.database.url)
        try:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{config.database.schema_name}" CASCADE')
        finally:
            await conn.close()


@pytest.fixture(scope="session")
async def bus(config: CallCenterConfig) -> AsyncIterator[Bus]:
    """A bus connection in this namespace; its streams are deleted afterwards."""
    connection = await Bus.connect(config.nats, name="tests")
    yield connection
    for stream in (config.nats.stream, config.nats.dead_letter_stream):
        try:
            await connection.js.delete_stream(stream)
        except Exception:
            pass
    await connection.drain()


@pytest.fixture(scope="session")
async def redis_client(config: CallCenterConfig) -> AsyncIterator[aioredis.Redis]:
    """Redis; this namespace's keys are deleted afterwards."""
    client = aioredis.Redis.from_url(config.redis.url, decode_responses=True)
    yield client
    async for key in client.scan_iter(match=f"{config.redis.key_prefix}*"):
        await client.delete(key)
    await client.aclose()


@pytest.fixture(scope="module", autouse=True)
async def _fresh_abuse_counters(
    config: CallCenterConfig, redis_client: aioredis.Redis
) -> AsyncIterator[None]:
    """Each module starts with no failed-login or wrong-Bearer counts from earlier modules.

    Every test client connects from 127.0.0.1, so one module's deliberate wrong tokens would
    otherwise lock the next module's admin out (the throttles count per client address).
    """
    for counter in ("admin:bearer_failures", "dashboard:login_failures", "inbox:login_failures"):
        async for key in redis_client.scan_iter(match=f"{config.redis.key_prefix}{counter}:*"):
            await redis_client.delete(key)
    yield


@pytest.fixture(scope="module")
def service_factory(test_env: TestEnvironment) -> Iterator[Callable[..., ServiceProcess]]:
    """Start service processes in this namespace: ``service_factory("tools")``.

    Module-scoped: every process a test module starts is stopped when the module ends, so the next
    module never finds stale replicas (with other settings) in its queue groups or on its ports.
    """
    starter = ServiceStarter(env=test_env.env, ports=test_env.ports, tag=test_env.tag)
    yield starter.start
    starter.stop_all()
