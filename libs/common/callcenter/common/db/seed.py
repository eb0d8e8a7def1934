"""Demo data: each package registers an ``async def seed(conn)`` under ``callcenter.seed``.

Seeds must be idempotent (``ON CONFLICT DO NOTHING`` or an existence check), so ``callcenter
seed`` can run on every ``make run``.
"""

from __future__ import annotations

from importlib.metadata import entry_points

import asyncpg

from callcenter.common.db.migrations import ORDER
from callcenter.common.logging import get_logger

log = get_logger(__name__)


async def seed(pool: asyncpg.Pool) -> list[str]:
    """Run every registered seed in a transaction each; return their names."""
    eps = sorted(
        entry_points(group="callcenter.seed"),
        key=lambda ep: (ORDER.index(ep.name) if ep.name in ORDER else len(ORDER), ep.name),
    )
    ran: list[str] = []
    for ep in eps:
        fn = ep.load()
        async with pool.acquire() as conn, conn.transaction():
            await fn(conn)
        log.info("seed applied", owner=ep.name)
        ran.append(ep.name)
    return ran
