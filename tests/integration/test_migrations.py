"""Migrations and seed data run twice without change; an edited applied migration is refused."""

from __future__ import annotations

import asyncpg
import pytest

from callcenter.common.config import CallCenterConfig
from callcenter.common.db import discover_migrations, migrate, seed
from callcenter.common.db.migrations import Migration, _migrate


async def _snapshot(pool: asyncpg.Pool, schema: str) -> dict[str, int]:
    tables = await pool.fetch(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = $1 AND table_type = 'BASE TABLE'",
        schema,
    )
    counts = {}
    for row in tables:
        counts[row["table_name"]] = await pool.fetchval(
            f'SELECT count(*) FROM "{row["table_name"]}"'
        )
    return counts


async def test_migrate_and_seed_twice_change_nothing(
    db_pool: asyncpg.Pool, config: CallCenterConfig
) -> None:
    schema = config.database.schema_name
    before = await _snapshot(db_pool, schema)  # the fixture already migrated and seeded once
    assert "schema_migrations" in before and "calls" in before
    assert before["schema_migrations"] == len(discover_migrations())
    assert await migrate(db_pool) == []
    await seed(db_pool)
    assert await _snapshot(db_pool, schema) == before


async def test_an_edited_applied_migration_is_refused(db_pool: asyncpg.Pool) -> None:
    applied = discover_migrations()[0]
    edited = Migration(owner=applied.owner, name=applied.name, sql=applied.sql + "\n-- edited")
    async with db_pool.acquire() as conn:
        with pytest.raises(RuntimeError, match="changed after it was applied"):
            await _migrate(conn, [edited])
