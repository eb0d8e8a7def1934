"""Who the customer is, for CRM and email: the built-in CRM contact, else the customer record.

``crm_contacts`` (this service's table) wins; otherwise the tools service's customer record is
read through its query module (:mod:`callcenter.common.queries.tools`), so a verified caller's
email is found without the post-call service importing the tools service or spelling its SQL.
"""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

from callcenter.common.queries import tools


@dataclass(slots=True, frozen=True)
class Contact:
    """A customer's contact details."""

    customer_id: str
    name: str | None = None
    email: str | None = None
    phone: str | None = None


async def find_contact(conn: asyncpg.Connection, customer_id: str | None) -> Contact | None:
    """The contact for ``customer_id``, or None when unknown."""
    if not customer_id:
        return None
    row = await conn.fetchrow(
        "SELECT customer_id, name, email, phone FROM crm_contacts WHERE customer_id = $1",
        customer_id,
    )
    if row is not None:
        return Contact(**dict(row))
    record = await tools.customer_contact(conn, customer_id)
    return Contact(**dict(record)) if record is not None else None
