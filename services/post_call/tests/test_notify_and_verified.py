"""The notify and verified steps in-process: once per notification, only to the contact on file."""

from __future__ import annotations

import pytest

from callcenter.common.bus.consumer import PermanentFailure, RetryLater
from callcenter.common.events import CustomerVerified, NotificationRequested
from callcenter.post_call.steps.notify import NotifyStep
from callcenter.post_call.steps.verified import VerifiedStep
from services.post_call.tests.support import PostCall, delivery_of, new_call_id


def cancellation(call_id: str, customer_id: str) -> NotificationRequested:
    return NotificationRequested(
        event_id=f"cancellation_confirmation-{call_id}",
        call_id=call_id,
        customer_id=customer_id,
        kind="cancellation_confirmation",
        details={"order_id": "ORD-9", "refund_amount": "12.00"},
    )


async def test_a_notification_is_sent_once_and_a_failed_send_is_retried(
    post_call: PostCall,
) -> None:
    smtp, db = post_call.smtp, post_call.db
    call_id = new_call_id()
    address = f"{call_id}@example.com"
    await post_call.add_contact(f"cust-{call_id}", address)
    step = NotifyStep(ctx=post_call.context())
    event = cancellation(call_id, f"cust-{call_id}")

    smtp.fail_next(1)
    with pytest.raises(RetryLater):
        await step.handle(delivery_of(event))
    assert (
        await db.fetchval(
            "SELECT count(*) FROM notifications WHERE notification_id = $1", event.event_id
        )
        == 0
    )  # the reservation was given back, so the retry sends

    assert await step.handle(delivery_of(event, attempt=2)) is True
    assert await step.handle(delivery_of(event, attempt=3)) is False  # a redelivery
    [mail] = smtp.messages_to(address)
    assert mail.message["Subject"] == "Order ORD-9 is cancelled" and "$12.00" in mail.text


async def test_an_uncertain_send_is_dead_lettered_not_repeated(post_call: PostCall) -> None:
    call_id = new_call_id()
    await post_call.add_contact(f"cust-{call_id}", f"{call_id}@example.com")
    event = cancellation(call_id, f"cust-{call_id}")
    # A reservation left by an attempt that died after sending.
    await post_call.db.execute(
        "INSERT INTO notifications (notification_id, call_id, customer_id, kind, via, to_address, "
        "subject, body_text, status) VALUES ($1, $2, $3, 'x', 'email', 'a@b.c', 's', 'b', "
        "'sending')",
        event.event_id,
        call_id,
        f"cust-{call_id}",
    )
    with pytest.raises(PermanentFailure, match="may already have been delivered"):
        await NotifyStep(ctx=post_call.context()).handle(delivery_of(event))
    assert post_call.smtp.messages_to(f"{call_id}@example.com") == []


async def test_the_verified_customer_waits_for_the_call_row_then_gives_up_quietly(
    post_call: PostCall,
) -> None:
    step = VerifiedStep(ctx=post_call.context())
    known, unknown = new_call_id(), new_call_id()
    await post_call.db.execute(
        "INSERT INTO calls (call_id, channel, status) VALUES ($1, 'voice', 'active')", known
    )
    event = CustomerVerified(call_id=known, customer_id="CUS-0002", method="caller_id")
    assert await step.handle(delivery_of(event)) is True
    assert (
        await post_call.db.fetchval("SELECT customer_id FROM calls WHERE call_id = $1", known)
        == "CUS-0002"
    )

    orphan = CustomerVerified(call_id=unknown, customer_id="CUS-0002", method="caller_id")
    with pytest.raises(RetryLater):
        await step.handle(delivery_of(orphan, attempt=1))
    assert await step.handle(delivery_of(orphan, attempt=3)) is True
    status = await post_call.step_status(unknown, "verified")
    assert status["status"] == "skipped"
