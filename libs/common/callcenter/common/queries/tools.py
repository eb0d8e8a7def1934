"""The tools service's tables as other services may read them (post_call's contact lookup).

The tools service owns the retail tables (``customers``, ``orders``, …;
services/tools/.../migrations).
"""

from __future__ import annotations

import asyncpg


async def customer_contact(conn: asyncpg.Connection, customer_id: str) -> asyncpg.Record | None:
    """``customer_id``, ``name``, ``email`` and ``phone`` of a customer, or None when unknown."""
    return await conn.fetchrow(
        """
        SELECT customer_id, first_name || ' ' || last_name AS name, email, phone
        FROM customers WHERE customer_id = $1
        """,
        customer_id,
    )
