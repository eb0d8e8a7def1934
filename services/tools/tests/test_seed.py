"""The demo seed: deterministic, idempotent, and holding what the demo and docs rely on."""

from __future__ import annotations

from datetime import date

import asyncpg

from callcenter.tools.seed import build, seed

TABLES = (
    "customers",
    "orders",
    "order_items",
    "payments",
    "shipments",
    "product_variants",
    "kb_articles",
)


def test_build_is_deterministic() -> None:
    day = date(2026, 11, 23)
    assert build(day).rows == build(day).rows


async def test_seed_sizes_and_idempotence(db_pool: asyncpg.Pool) -> None:
    before = {t: await db_pool.fetchval(f"SELECT count(*) FROM {t}") for t in TABLES}
    assert before["customers"] >= 300
    assert before["orders"] >= 3000
    assert before["kb_articles"] >= 10
    async with db_pool.acquire() as conn:
        await seed(conn)  # the fast path: already seeded
        await build(date.today()).write(conn)  # and the full insert: nothing new
    after = {t: await db_pool.fetchval(f"SELECT count(*) FROM {t}") for t in TABLES}
    assert after == before


async def test_demo_order_1001(db_pool: asyncpg.Pool) -> None:
    row = await db_pool.fetchrow(
        """
        SELECT o.status, o.customer_id, s.carrier, s.tracking_number, s.estimated_delivery,
               c.phone, c.email, c.zip
        FROM orders o JOIN shipments s USING (order_id) JOIN customers c USING (customer_id)
        WHERE o.order_id = 'ORD-1001'
        """
    )
    assert row["status"] == "shipped"
    assert row["customer_id"] == "CUS-0001"
    assert row["carrier"] == "UPS" and row["tracking_number"] and row["estimated_delivery"]
    assert (row["phone"], row["zip"]) == ("+15555550101", "94105")
    assert row["email"]
