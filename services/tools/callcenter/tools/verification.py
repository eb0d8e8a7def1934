"""Identity checks shared by ``verify_identity`` and the ``issue-code`` command.

One-time codes are stored hashed, work once and expire; every attempt is recorded so a call that
keeps guessing is stopped after :data:`MAX_FAILED_ATTEMPTS`.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

import asyncpg

from callcenter.tools.domain import now

MAX_FAILED_ATTEMPTS = 5
CODE_TTL = timedelta(minutes=10)


def hash_code(customer_id: str, code: str) -> str:
    """The stored form of a one-time code."""
    return hashlib.sha256(f"{customer_id}:{code.strip()}".encode()).hexdigest()


async def issue_code(
    conn: asyncpg.Connection, customer_id: str, *, ttl: timedelta = CODE_TTL
) -> str:
    """Create a six-digit one-time code for ``customer_id`` and return it (to be sent to them)."""
    code = f"{secrets.randbelow(1_000_000):06d}"
    await conn.execute(
        "INSERT INTO verification_codes (customer_id, code_hash, expires_at) VALUES ($1, $2, $3)",
        customer_id,
        hash_code(customer_id, code),
        now() + ttl,
    )
    return code


async def redeem_code(conn: asyncpg.Connection, customer_id: str, code: str) -> bool:
    """Whether ``code`` is a live code of ``customer_id``; a matching code is used up."""
    used = await conn.fetchval(
        """
        UPDATE verification_codes SET used_at = now()
        WHERE id = (
            SELECT id FROM verification_codes
            WHERE customer_id = $1 AND code_hash = $2 AND used_at IS NULL AND expires_at > now()
            ORDER BY id DESC LIMIT 1 FOR UPDATE
        )
        RETURNING id
        """,
        customer_id,
        hash_code(customer_id, code),
    )
    return used is not None


async def failed_attempts(conn: asyncpg.Connection, call_id: str) -> int:
    """Failed verification attempts on this call so far."""
    return int(
        await conn.fetchval(
            "SELECT count(*) FROM verification_attempts WHERE call_id = $1 AND NOT success",
            call_id,
        )
    )


async def record_attempt(
    conn: asyncpg.Connection,
    *,
    call_id: str,
    method: str,
    customer_id: str | None,
    success: bool,
) -> None:
    """Remember one verification attempt."""
    await conn.execute(
        "INSERT INTO verification_attempts (call_id, method, success, customer_id) "
        "VALUES ($1, $2, $3, $4)",
        call_id,
        method,
        success,
        customer_id,
    )
