"""Identity checks shared by ``verify_identity`` and the ``issue-code`` command.

One-time codes are stored hashed, work once and expire; every attempt is recorded so a call that
keeps guessing is stopped after :data:`MAX_FAILED_ATTEMPTS`. Across calls and channels, failed
attempts are counted per target (the customer and order an attempt was against) and per source
(the chat's IP address or the caller's phone number, from the gateway's ``calls`` row) within
``security.verification_window_s``: a target or source over its limit is locked (recorded in
``verification_lockouts``), and an attempt on it fails even with the right answer.
"""

from __future__ import annotations

import functools
import hashlib
import secrets
from datetime import timedelta

import asyncpg

from callcenter.common.config import load_config
from callcenter.common.config.sections import SecuritySettings
from callcenter.common.logging import get_logger
from callcenter.tools.domain import normalize_phone, now

log = get_logger(__name__)

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
    targets: list[str] | None = None,
    source: str | None = None,
) -> None:
    """Remember one verification attempt (what it was against, and where it came from)."""
    await conn.execute(
        "INSERT INTO verification_attempts (call_id, method, success, customer_id, targets, source) "
        "VALUES ($1, $2, $3, $4, $5, $6)",
        call_id,
        method,
        success,
        customer_id,
        targets or [],
        source,
    )


# --- brute force across conversations ---------------------------------------------------------

LOCKED_MESSAGE = (
    "For your security, I can't verify this account right now: there have been too many "
    "unsuccessful attempts. I can connect you to a member of our team, or we can send a one-time "
    "code to the email or phone number on file for the account."
)
SOURCE_LOCKED_MESSAGE = (
    "For your security, I can't take more verification attempts from here right now. I can "
    "connect you to a member of our team, or we can send a one-time code to the email or phone "
    "number on file for your account."
)


@functools.cache
def lockout_limits() -> SecuritySettings:
    """``security.verification_*`` of this process's configuration."""
    return load_config().security


async def attempt_source(conn: asyncpg.Connection, call_id: str) -> str | None:
    """Where this call comes from, as the gateway recorded it (never from the request).

    ``ip:<address>`` for a web chat or browser call, ``phone:<E.164>`` for SMS and voice; None when the gateway
    recorded no such call.
    """
    row = await conn.fetchrow(
        "SELECT channel, from_number, provider_ids->>'client_ip' AS client_ip FROM calls "
        "WHERE call_id = $1",
        call_id,
    )
    if row is None:
        return None
    if row["channel"] in ("chat", "web_voice"):  # the browser's address; no number
        return f"ip:{row['client_ip']}" if row["client_ip"] else None
    return f"phone:{normalize_phone(row['from_number'])}" if row["from_number"] else None


async def _recent_failures(conn: asyncpg.Connection, clause: str, value: object) -> int:
    window = timedelta(seconds=lockout_limits().verification_window_s)
    return int(
        await conn.fetchval(
            "SELECT count(*) FROM verification_attempts "
            f"WHERE NOT success AND attempted_at > $2 AND {clause}",
            value,
            now() - window,
        )
    )


async def code_sent_since_lock(conn: asyncpg.Connection, targets: list[str]) -> bool:
    """Whether a live one-time code went to the locked customer's contact on file after the lock.

    That is the help path the lock's reply offers: only the account's owner receives the code, so
    a ``one_time_code`` attempt with it is not held back by the target lock (the per-call and
    per-source limits still apply, and a wrong code still counts).
    """
    customers = [t.removeprefix("customer:") for t in targets if t.startswith("customer:")]
    if not customers:
        return False
    return bool(
        await conn.fetchval(
            """
            SELECT true FROM verification_codes v
            WHERE v.customer_id = ANY($1::text[]) AND v.used_at IS NULL AND v.expires_at > now()
              AND v.created_at > (
                  SELECT max(locked_at) FROM verification_lockouts
                  WHERE subject = 'customer:' || v.customer_id
              )
            LIMIT 1
            """,
            customers,
        )
    )


async def lock_reason(
    conn: asyncpg.Connection, *, targets: list[str], source: str | None
) -> str | None:
    """The customer-facing refusal when a target or the source is locked, else None."""
    limits = lockout_limits()
    if source and (
        await _recent_failures(conn, "source = $1", source)
        >= limits.verification_max_failures_per_source
    ):
        return SOURCE_LOCKED_MESSAGE
    if targets and (
        await _recent_failures(conn, "targets && $1::text[]", targets)
        >= limits.verification_max_failures_per_target
    ):
        return LOCKED_MESSAGE
    return None


async def record_lockouts(
    conn: asyncpg.Connection,
    *,
    call_id: str,
    channel: str,
    targets: list[str],
    source: str | None,
) -> list[str]:
    """After a failed attempt: record each target or source this failure locked; return them."""
    limits = lockout_limits()
    window = timedelta(seconds=limits.verification_window_s)
    checks = [
        ("target", t, "targets && $1::text[]", [t], limits.verification_max_failures_per_target)
        for t in targets
    ]
    if source:
        checks.append(
            ("source", source, "source = $1", source, limits.verification_max_failures_per_source)
        )
    locked = []
    for kind, subject, clause, value, limit in checks:
        failures = await _recent_failures(conn, clause, value)
        if failures == limit:  # this failure is the one that locks it
            await conn.execute(
                "INSERT INTO verification_lockouts "
                "(kind, subject, call_id, channel, failures, locked_until) "
                "VALUES ($1, $2, $3, $4, $5, $6)",
                kind,
                subject,
                call_id,
                channel,
                failures,
                now() + window,
            )
            log.warning("verification locked", kind=kind, subject=subject, call_id=call_id)
            locked.append(subject)
    return locked
