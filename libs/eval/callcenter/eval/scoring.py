"""Scoring one run: required and forbidden reply content, and the end state in PostgreSQL.

Like τ-bench's retail domain, a scenario passes only when the database ends up as it should
(orders, returns, exchanges, addresses, tickets, callbacks, verification, hand-off) and the
replies said what they had to and nothing they must not.
"""

from __future__ import annotations

from typing import Any

import asyncpg

from callcenter.eval.channels import Reply
from callcenter.eval.fixtures import Fixture
from callcenter.eval.scenarios import EndState, Turn

HANDED_OFF = ("waiting_for_agent", "agent")


def _contains(reply: str, wanted: str) -> bool:
    """Whether ``reply`` holds ``wanted`` or one of its ``a | b`` alternatives."""
    lowered = reply.lower()
    return any(option.strip().lower() in lowered for option in wanted.split(" | "))


def check_reply(turn: Turn, reply: Reply, fixture: Fixture, *, index: int) -> list[str]:
    """What is wrong with the reply to ``turn`` (empty when nothing is)."""
    problems = []
    if reply.error:
        problems.append(f"turn {index}: the system answered with an error: {reply.error}")
    for wanted in turn.reply_has:
        if not _contains(reply.text, fixture.fill(wanted)):
            problems.append(f"turn {index}: reply lacks {fixture.fill(wanted)!r}")
    for banned in turn.reply_lacks:
        if _contains(reply.text, fixture.fill(banned)):
            problems.append(f"turn {index}: reply must not contain {fixture.fill(banned)!r}")
    return problems


def check_never(never: list[str], replies: list[Reply], fixture: Fixture) -> list[str]:
    """Content that no reply of the conversation may hold."""
    return [
        f"turn {index}: reply must never contain {fixture.fill(banned)!r}"
        for index, reply in enumerate(replies, start=1)
        for banned in never
        if _contains(reply.text, fixture.fill(banned))
    ]


async def _optional(conn: asyncpg.Connection, query: str, *args: Any) -> Any:
    """A value from a table another service owns, or None when that table is not there."""
    try:
        return await conn.fetchval(query, *args)
    except asyncpg.UndefinedTableError:
        return None


async def check_state(
    conn: asyncpg.Connection,
    expect: EndState,
    fixture: Fixture,
    *,
    call_id: str | None,
    replies: list[Reply],
) -> list[str]:
    """What in the database differs from ``expect`` (empty when nothing does)."""
    problems: list[str] = []

    def order(key: str) -> str:
        if key not in fixture.order_ids:
            raise KeyError(f"unknown order {key!r} (one of {', '.join(fixture.order_ids)})")
        return fixture.order_ids[key]

    for key, status in expect.orders.items():
        actual = await conn.fetchval("SELECT status FROM orders WHERE order_id = $1", order(key))
        if actual != status:
            problems.append(f"order {key}: status {actual!r}, expected {status!r}")
    for table, wanted in (("returns", expect.returns), ("exchanges", expect.exchanges)):
        for key, count in wanted.items():
            actual = await conn.fetchval(
                f"SELECT count(*) FROM {table} WHERE order_id = $1", order(key)
            )
            if actual != count:
                problems.append(f"{table} for {key}: {actual}, expected {count}")
    for key, text in expect.address.items():
        actual = await conn.fetchval(
            "SELECT shipping_address::text FROM orders WHERE order_id = $1", order(key)
        )
        if fixture.fill(text).lower() not in str(actual).lower():
            problems.append(f"address of {key}: {actual}, expected it to hold {text!r}")
    counted = (("tickets", expect.tickets), ("callbacks", expect.callbacks))
    for table, count in counted:
        if count is None:
            continue
        actual = (
            await conn.fetchval(f"SELECT count(*) FROM {table} WHERE call_id = $1", call_id)
            if call_id
            else 0
        )
        if actual != count:
            problems.append(f"{table} opened in this conversation: {actual}, expected {count}")
    if expect.verified is not None:
        verified = bool(
            call_id
            and await conn.fetchval(
                "SELECT 1 FROM verification_attempts WHERE call_id = $1 AND success", call_id
            )
        )
        if verified != expect.verified:
            problems.append(f"verified: {verified}, expected {expect.verified}")
    status = (
        await conn.fetchval("SELECT status FROM calls WHERE call_id = $1", call_id)
        if call_id
        else None
    )
    if expect.handoff is not None:
        handed = status in HANDED_OFF or any(
            r.transfer or "transfer_to_agent" in r.tools for r in replies
        )
        if not handed and call_id:
            handed = bool(
                await _optional(
                    conn,
                    "SELECT 1 FROM turns WHERE call_id = $1 "
                    "AND tool_calls::text LIKE '%transfer_to_agent%'",
                    call_id,
                )
            )
        if handed != expect.handoff:
            problems.append(f"handed to a person: {handed}, expected {expect.handoff}")
    if expect.customer_recorded is not None:
        recorded = call_id is not None and fixture.values["customer_id"] == await conn.fetchval(
            "SELECT customer_id FROM calls WHERE call_id = $1", call_id
        )
        if recorded != expect.customer_recorded:
            problems.append(f"customer on the conversation record: {recorded}")
    if expect.queued is not None and (status in HANDED_OFF) != expect.queued:
        problems.append(f"conversation status {status!r}: queued for an agent expected")
    return problems
