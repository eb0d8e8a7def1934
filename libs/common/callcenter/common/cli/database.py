"""``callcenter migrate`` and ``callcenter seed``."""

from __future__ import annotations

import argparse
import asyncio

from callcenter.common.config import load_config
from callcenter.common.db import create_pool, migrate, seed
from callcenter.common.logging import configure_logging


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``migrate`` and ``seed`` commands."""
    sub.add_parser("migrate", help="apply pending SQL migrations").set_defaults(func=_migrate)
    sub.add_parser("seed", help="load demo data (idempotent)").set_defaults(func=_seed)


async def _with_pool(action: str) -> list[str]:
    config = load_config()
    configure_logging(service="cli", level=config.logging.level, fmt="console")
    pool = await create_pool(config.database, attempts=3)
    try:
        if action == "migrate":
            return await migrate(pool)
        return await seed(pool)
    finally:
        await pool.close()


def _migrate(_: argparse.Namespace) -> int:
    applied = asyncio.run(_with_pool("migrate"))
    print(
        f"migrations applied: {len(applied)}"
        + (f" ({', '.join(applied)})" if applied else " (up to date)")
    )
    return 0


def _seed(_: argparse.Namespace) -> int:
    owners = asyncio.run(_with_pool("seed"))
    print(f"seed data loaded for: {', '.join(owners) or 'nothing registered'}")
    return 0
