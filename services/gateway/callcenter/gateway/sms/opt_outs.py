"""Opt-outs, stored in PostgreSQL (table ``sms_opt_outs``) so they survive restarts and replicas."""

from __future__ import annotations

import asyncpg


async def is_opted_out(db: asyncpg.Pool, *, customer: str, business: str) -> bool:
    """Whether ``customer`` asked ``business`` to send nothing more."""
    row = await db.fetchval(
        "SELECT 1 FROM sms_opt_outs WHERE customer_number = $1 AND business_number = $2",
        customer,
        business,
    )
    return row is not None


async def opt_out(db: asyncpg.Pool, *, customer: str, business: str, keyword: str) -> bool:
    """Record the opt-out (idempotent); return whether it is new."""
    status = await db.execute(
        """
        INSERT INTO sms_opt_outs (customer_number, business_number, keyword)
        VALUES ($1, $2, $3)
        ON CONFLICT (customer_number, business_number) DO NOTHING
        """,
        customer,
        business,
        keyword,
    )
    return status != "INSERT 0 0"


async def opt_in(db: asyncpg.Pool, *, customer: str, business: str) -> bool:
    """Remove the opt-out; return whether there was one."""
    status = await db.execute(
        "DELETE FROM sms_opt_outs WHERE customer_number = $1 AND business_number = $2",
        customer,
        business,
    )
    return status != "DELETE 0"
