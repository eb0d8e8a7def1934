"""Fixtures for reliability tests: a private NATS, Redis and PostgreSQL per module.

Outage and fault tests stop, kill and restart servers; they do that only to these private
servers, never to the shared ones other test runs use.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.environment import TestEnvironment
from tests.support.private_servers import PrivateStack, prepare_database, private_stack


@pytest.fixture(scope="module")
def stack() -> Iterator[PrivateStack]:
    """Private NATS, Redis and PostgreSQL for this module."""
    with private_stack() as servers:
        yield servers


@pytest.fixture(scope="module")
async def stack_env(stack: PrivateStack, test_env: TestEnvironment) -> dict[str, str]:
    """Service environment: this session's namespace on the private servers (database seeded)."""
    env = {**test_env.env, **stack.env()}
    await prepare_database(stack.postgres.url, env["CALLCENTER_DATABASE__SCHEMA_NAME"])
    return env
