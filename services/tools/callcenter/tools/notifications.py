"""What a skill promises to send the customer, recorded with its effect and sent by post_call.

:func:`promise_notification` writes a ``NotificationRequested`` to the outbox in the skill's own
transaction. The event never names a recipient: post_call's ``notify`` step sends it to the email
or phone on file for ``customer_id``. :func:`masked_email` lets the assistant say where it goes
without reading an address out in full.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Literal

import asyncpg

from callcenter.common.config import CallCenterConfig, load_config
from callcenter.common.events import NotificationKind, NotificationRequested
from callcenter.tools import outbox


@lru_cache(maxsize=1)
def settings() -> CallCenterConfig:
    """The configuration (read once per process)."""
    return load_config()


def masked_email(address: str) -> str:
    """``m***@example.com``: enough for the customer to recognise, not to read out."""
    local, _, domain = address.partition("@")
    return f"{local[:1]}***@{domain}" if domain else "the address on file"


def masked_phone(number: str) -> str:
    """The last four digits of a phone number."""
    digits = "".join(ch for ch in number if ch.isdigit())
    return f"the number ending in {digits[-4:]}" if len(digits) >= 4 else "the number on file"


async def contact_on_file(conn: asyncpg.Connection, customer_id: str) -> asyncpg.Record | None:
    """The customer's email and phone as stored."""
    return await conn.fetchrow(
        "SELECT email, phone FROM customers WHERE customer_id = $1", customer_id
    )


async def promise_notification(
    conn: asyncpg.Connection,
    *,
    notification_id: str,
    call_id: str,
    customer_id: str,
    kind: NotificationKind,
    details: dict[str, Any],
    via: Literal["email", "sms"] = "email",
) -> dict[str, Any]:
    """Record the notification (sent once: ``notification_id`` is its event id).

    Returns:
        What the skill's result says about it: how and where (masked) it goes.

    """
    await outbox.record(
        conn,
        NotificationRequested(
            event_id=notification_id,
            call_id=call_id or "-",
            customer_id=customer_id,
            kind=kind,
            via=via,
            details=details,
        ),
    )
    contact = await contact_on_file(conn, customer_id)
    if via == "sms":
        where = masked_phone(contact["phone"]) if contact else "the number on file"
    else:
        where = masked_email(contact["email"]) if contact else "the email address on file"
    return {"notification_id": notification_id, "via": via, "to": where, "status": "queued"}
