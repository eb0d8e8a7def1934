"""Fixtures for the tools tests: the executor on the session's seeded schema, and fresh customers.

Tests that change data build their own customer and orders (through the seed's own
:class:`SeedBatch`), so they never depend on each other or on the demo rows.
"""

from __future__ import annotations

import itertools
import random
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from callcenter.common.config import CallCenterConfig
from callcenter.tools.executor import CallCenterToolExecutor
from callcenter.tools.seed import SeedBatch, find_variant, shipment_for

_numbers = itertools.count(7_000_000)


@dataclass
class Shop:
    """A fresh customer with one order per requested state."""

    customer_id: str
    phone: str
    email: str
    zip: str
    orders: dict[str, str] = field(default_factory=dict)
    """label -> order id"""

    def order(self, label: str) -> str:
        return self.orders[label]


@pytest.fixture
async def executor(db_pool: asyncpg.Pool, config: CallCenterConfig) -> CallCenterToolExecutor:
    return CallCenterToolExecutor(db=db_pool, timeout_s=config.tools.call_timeout_s)


Call = Callable[..., Awaitable[dict[str, Any]]]


@pytest.fixture
def call(executor: CallCenterToolExecutor) -> Call:
    """``await call("tool", {args}, verified="CUS-…", channel="voice", caller="+1…")``."""

    async def run(
        name: str,
        arguments: dict[str, Any] | str | None = None,
        *,
        verified: str | None = None,
        channel: str = "chat",
        caller: str | None = None,
        call_id: str | None = None,
        tool_call_id: str | None = None,
    ) -> dict[str, Any]:
        context = {
            "call_id": call_id or f"call-{uuid.uuid4().hex[:8]}",
            "channel": channel,
            "tool_call_id": tool_call_id or f"tc-{uuid.uuid4().hex[:8]}",
            "verified_customer_id": verified,
            "caller_number": caller,
        }
        result = await executor.execute(name, arguments, context)
        assert set(result) in ({"success", "data"}, {"success", "error", "message"}), result
        return result

    return run


@pytest.fixture
def make_shop(db_pool: asyncpg.Pool) -> Callable[..., Awaitable[Shop]]:
    """Create a customer with orders: ``await make_shop("pending", "delivered", ...)``.

    States: pending, processing, shipped, delivered (5 days ago), delivered_old (60 days ago),
    cancelled. Each order has two items (a sweater M/navy and a T-shirt L/white).
    """

    async def make(*states: str) -> Shop:
        n = next(_numbers)
        today = datetime.now(UTC).date()
        shop = Shop(
            customer_id=f"CUS-T{n}",
            phone=f"+1444{n:07d}",
            email=f"test{n}@example.com",
            zip=f"{n % 100000:05d}",
        )
        address = {
            "line1": f"{n} Test St",
            "line2": None,
            "city": "Testville",
            "state": "CA",
            "zip": shop.zip,
            "country": "US",
        }
        batch = SeedBatch()
        batch.add_customer(
            customer_id=shop.customer_id,
            first_name="Test",
            last_name=f"Person{n}",
            email=shop.email,
            phone=shop.phone,
            address=address,
        )
        rng = random.Random(n)
        items = [
            (find_variant("PRD-002", size="M", color="navy"), 1),
            (find_variant("PRD-011", size="L", color="white"), 2),
        ]
        for k, state in enumerate(states):
            order_id = f"ORD-{n}{k:02d}"
            status = {"delivered_old": "delivered"}.get(state, state)
            age = {"delivered": 9, "delivered_old": 65, "shipped": 3, "processing": 1}.get(state, 0)
            placed = today - timedelta(days=age)
            shipment = shipment_for(rng, status=status, placed=placed, today=today)
            if shipment and state == "delivered":
                shipment["delivered_at"] = datetime.now(UTC) - timedelta(days=5)
            if shipment and state == "delivered_old":
                shipment["delivered_at"] = datetime.now(UTC) - timedelta(days=60)
            batch.add_order(
                order_id=order_id,
                customer_id=shop.customer_id,
                address=address,
                status=status,
                placed_at=datetime.combine(placed, datetime.min.time(), tzinfo=UTC),
                items=items,
                payment=("card", "Visa", "1111"),
                shipment=shipment,
            )
            shop.orders[state if state not in shop.orders else f"{state}{k}"] = order_id
        async with db_pool.acquire() as conn:
            await batch.write(conn)
        return shop

    return make
