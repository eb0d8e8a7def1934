"""Callback times are understood and stated in the customer's zone and checked against the hours."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import asyncpg

from services.tools.tests.conftest import Call

PACIFIC = ZoneInfo("America/Los_Angeles")


def weekday_ahead(zone: ZoneInfo, days: int = 2) -> datetime:
    day = datetime.now(zone).date() + timedelta(days=days)
    while day.isoweekday() > 5:
        day += timedelta(days=1)
    return datetime.combine(day, time(0, 0))


async def test_a_san_francisco_customer_at_10am_is_called_at_10am_pacific(
    call: Call, make_shop, db_pool: asyncpg.Pool
) -> None:
    shop = await make_shop()  # the test customers live in CA
    wall = weekday_ahead(PACIFIC).replace(hour=10)  # "10am", no offset: as the customer said it
    result = await call(
        "schedule_callback",
        {"preferred_time": wall.isoformat(), "reason": "a refund question"},
        verified=shop.customer_id,
    )
    assert result["success"], result
    data = result["data"]
    assert data["timezone"] == "America/Los_Angeles"
    assert datetime.fromisoformat(data["scheduled_for"]) == wall.replace(tzinfo=PACIFIC)
    assert "at 10:00 AM P" in data["when_local"]  # PST or PDT
    row = await db_pool.fetchrow(
        "SELECT scheduled_for, customer_timezone FROM callbacks WHERE callback_id = $1",
        data["callback_id"],
    )
    assert row["customer_timezone"] == "America/Los_Angeles"
    assert row["scheduled_for"] == wall.replace(tzinfo=PACIFIC)


async def test_a_time_outside_support_hours_is_refused_with_the_hours_in_their_zone(
    call: Call, make_shop
) -> None:
    shop = await make_shop()
    wall = weekday_ahead(PACIFIC).replace(hour=10)
    result = await call(
        "schedule_callback",
        {"preferred_time": wall.isoformat(), "reason": "a refund question", "timezone": "Eastern"},
        verified=shop.customer_id,
    )
    # 10 am Eastern is 7 am Pacific: inside 6 am - 6 pm Pacific.
    assert result["success"], result
    assert result["data"]["timezone"] == "America/New_York"
    early = await call(
        "schedule_callback",
        {"preferred_time": wall.replace(hour=2).isoformat(), "reason": "a refund question"},
        verified=shop.customer_id,
    )
    assert early["error"] == "outside_hours"
    assert "6:00 AM to 6:00 PM P" in early["message"]  # the hours, in the customer's own zone
    eastern = await call(
        "schedule_callback",
        {
            "preferred_time": wall.replace(hour=8).isoformat(),
            "reason": "a refund question",
            "timezone": "America/New_York",
        },
        verified=shop.customer_id,
    )
    assert eastern["error"] == "outside_hours"  # 8 am Eastern is 5 am Pacific
    assert "9:00 AM to 9:00 PM E" in eastern["message"]
    unknown = await call(
        "schedule_callback",
        {"preferred_time": wall.isoformat(), "reason": "a refund", "timezone": "Narnia"},
        verified=shop.customer_id,
    )
    assert unknown["error"] == "invalid_timezone"
