"""post_call's tables as other services may use them (the gateway's API and dashboard).

post_call owns ``turns``, ``summaries``, ``post_call_steps``, ``emails``, ``crm_activities`` and
``email_unsubscribes`` (services/post_call/.../migrations). These functions are the only SQL about
them outside post_call: reads for the API and the dashboard, and :func:`record_unsubscribe`, the
one write post_call accepts from outside (an address that wants no more follow-up email, which its
email step then honours).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import asyncpg

#: Calls (``c``) with their summary's headline (``s``): for listing calls.
CALLS_WITH_HEADLINE = """
    SELECT c.call_id, c.channel, c.status, c.from_number, c.to_number, c.customer_id,
           c.started_at, c.ended_at, c.end_reason, c.duration_s, c.turn_count,
           s.sentiment, s.satisfaction, s.resolved
    FROM calls c LEFT JOIN summaries s ON s.call_id = c.call_id
"""


def headline_filters(
    *, sentiment: str | None, resolved: bool | None, max_satisfaction: int | None
) -> list[tuple[str, Any]]:
    """WHERE clauses (``?`` for the value) on the headline of :data:`CALLS_WITH_HEADLINE`."""
    return [
        ("s.sentiment = ?", sentiment),
        ("s.resolved = ?", resolved),
        ("s.satisfaction <= ?", max_satisfaction),
    ]


async def transcript(db: asyncpg.Pool, call_id: str) -> list[asyncpg.Record]:
    """The stored turns of one call, in order."""
    return await db.fetch(
        """
        SELECT turn_index, user_text, assistant_text, tool_calls, latency, interrupted, engine,
               occurred_at
        FROM turns WHERE call_id = $1 ORDER BY turn_index
        """,
        call_id,
    )


async def summary(db: asyncpg.Pool, call_id: str) -> asyncpg.Record | None:
    """The call's summary, once summarised."""
    return await db.fetchrow("SELECT * FROM summaries WHERE call_id = $1", call_id)


async def step_statuses(db: asyncpg.Pool, call_id: str) -> list[asyncpg.Record]:
    """Each post-call step that ran for the call: step, status, detail, events, updated_at."""
    return await db.fetch(
        "SELECT step, status, detail, events, updated_at FROM post_call_steps WHERE call_id = $1",
        call_id,
    )


async def follow_up_email(db: asyncpg.Pool, call_id: str) -> asyncpg.Record | None:
    """The follow-up email sent for the call, if any."""
    return await db.fetchrow(
        "SELECT to_address, subject, body_text, message_id, sent_at FROM emails WHERE call_id = $1",
        call_id,
    )


async def crm_activities(db: asyncpg.Pool, call_id: str) -> list[asyncpg.Record]:
    """The CRM activities logged for the call, oldest first."""
    return await db.fetch(
        """
        SELECT adapter, external_id, subject, body, created_at
        FROM crm_activities WHERE call_id = $1 ORDER BY created_at
        """,
        call_id,
    )


async def record_unsubscribe(db: asyncpg.Pool, email: str, source: str) -> asyncpg.Record:
    """Record that ``email`` wants no follow-up email (the first record is kept); the record."""
    async with db.acquire() as conn, conn.transaction():
        await conn.execute(
            "INSERT INTO email_unsubscribes (email, source) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            email,
            source,
        )
        return await conn.fetchrow(
            "SELECT email, source, unsubscribed_at FROM email_unsubscribes WHERE email = $1", email
        )


async def turns_of_calls(db: asyncpg.Pool, call_ids: Sequence[str]) -> list[asyncpg.Record]:
    """The stored turns of several calls, by call then turn."""
    return await db.fetch(
        """
        SELECT call_id, turn_index, user_text, assistant_text, tool_calls, latency,
               interrupted, occurred_at
        FROM turns WHERE call_id = ANY($1::text[]) ORDER BY call_id, turn_index
        """,
        list(call_ids),
    )


async def summaries_of_calls(db: asyncpg.Pool, call_ids: Sequence[str]) -> list[asyncpg.Record]:
    """The summaries of several calls (those summarised)."""
    return await db.fetch(
        """
        SELECT call_id, summary, sentiment, satisfaction, resolved, topics, follow_up_needed
        FROM summaries WHERE call_id = ANY($1::text[])
        """,
        list(call_ids),
    )


async def latency_percentiles(
    db: asyncpg.Pool, *, since: datetime, channel: str | None, stages: Sequence[str]
) -> list[asyncpg.Record]:
    """Per stage of ``stages``: count and p50/p90/p99 (``p``) of turns since ``since``.

    ``tool_ms`` counts only the turns that called a tool.
    """
    return await db.fetch(
        """
        SELECT s.stage, count(*) AS n,
               percentile_cont(ARRAY[0.5, 0.9, 0.99]) WITHIN GROUP (ORDER BY s.v) AS p
        FROM turns t
        CROSS JOIN LATERAL (
            SELECT key AS stage, (value #>> '{}')::float8 AS v
            FROM jsonb_each(t.latency)
            WHERE jsonb_typeof(value) = 'number'
        ) s
        WHERE t.occurred_at >= $1 AND ($2::text IS NULL OR t.channel = $2)
          AND s.stage = ANY($3::text[])
          AND (s.stage <> 'tool_ms' OR jsonb_array_length(t.tool_calls) > 0)
        GROUP BY s.stage
        """,
        since,
        channel,
        list(stages),
    )


async def satisfaction_counts(
    db: asyncpg.Pool, *, since: datetime, channel: str | None
) -> list[asyncpg.Record]:
    """Summaries since ``since`` counted (``n``) by satisfaction and sentiment."""
    return await db.fetch(
        """
        SELECT satisfaction, sentiment, count(*) AS n FROM summaries
        WHERE created_at >= $1 AND ($2::text IS NULL OR channel = $2)
        GROUP BY satisfaction, sentiment
        """,
        since,
        channel,
    )


async def tool_call_counts(
    db: asyncpg.Pool, *, since: datetime, channel: str | None
) -> list[asyncpg.Record]:
    """Tool calls and failures (``calls``, ``errors``) per tool ``name`` since ``since``."""
    return await db.fetch(
        """
        SELECT tc->>'name' AS name, count(*) AS calls,
               count(*) FILTER (WHERE NOT coalesce((tc->>'success')::boolean, false)) AS errors
        FROM turns t CROSS JOIN LATERAL jsonb_array_elements(t.tool_calls) tc
        WHERE t.occurred_at >= $1 AND ($2::text IS NULL OR t.channel = $2)
        GROUP BY 1 ORDER BY calls DESC, name
        """,
        since,
        channel,
    )


# --- the agent inbox (the gateway) reads the bot's part of a conversation ----------------------

#: The customer the conversation's turns verified last (``h`` is the row whose ``call_id`` it is).
LAST_VERIFIED_CUSTOMER = """
    (SELECT t.customer_id FROM turns t WHERE t.call_id = h.call_id
       AND t.customer_id IS NOT NULL ORDER BY t.turn_index DESC LIMIT 1)
"""


async def conversation_turns(db: asyncpg.Pool, call_id: str) -> list[asyncpg.Record]:
    """The stored turns of ``call_id`` in order: user_text, assistant_text, tool_calls, occurred_at."""
    return await db.fetch(
        "SELECT user_text, assistant_text, tool_calls, occurred_at FROM turns "
        "WHERE call_id = $1 ORDER BY turn_index",
        call_id,
    )
