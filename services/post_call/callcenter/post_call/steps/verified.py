"""verified: call.customer_verified -> ``calls.customer_id``, so the call shows who it was.

The tools service records the event when ``verify_identity`` succeeds, on every channel. A call
row not written yet (the edge's insert racing the event) is retried a few times; a conversation
that never had one (the terminal chat, a test talking to the conversation service directly) is
recorded as skipped rather than dead-lettered.
"""

from __future__ import annotations

from typing import ClassVar

import asyncpg

from callcenter.common.bus.consumer import Delivery, RetryLater
from callcenter.common.events import SUBJECT_CUSTOMER_VERIFIED, CustomerVerified
from callcenter.post_call.steps.base import Outcome, Step, skipped

#: Deliveries to wait for the call's row before deciding it has none.
ROW_WAIT_ATTEMPTS = 3


class VerifiedStep(Step):
    """Records the verified customer on the call."""

    name: ClassVar[str] = "verified"
    subjects: ClassVar[tuple[str, ...]] = (SUBJECT_CUSTOMER_VERIFIED,)

    async def handle(self, delivery: Delivery) -> bool:
        """Set the call's customer once.

        Raises:
            RetryLater: the call has no row yet.

        """
        event = self.parse(delivery, CustomerVerified)

        async def record(conn: asyncpg.Connection) -> Outcome:
            updated = await conn.fetchval(
                "UPDATE calls SET customer_id = $2 WHERE call_id = $1 RETURNING 1",
                event.call_id,
                event.customer_id,
            )
            if updated is None:
                if delivery.attempt < ROW_WAIT_ATTEMPTS and not delivery.is_last_attempt:
                    raise RetryLater(f"call {event.call_id} not recorded yet")
                return skipped("no calls row for this conversation")
            return Outcome(detail=f"customer {event.customer_id} ({event.method})")

        return await self.effect_once(event, record)
