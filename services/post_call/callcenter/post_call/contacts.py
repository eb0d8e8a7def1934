"""Who the customer is, for CRM and email: the built-in CRM contact, else the customer record.

``crm_contacts`` (this service's table) wins; otherwise the tools service's customer record is
read through its query module (:mod:`callcenter.common.queries.tools`), so a verified caller's
email is found without the post-call service importing the tools service or spelling its SQL.
"""

from __future__ import annotations

from collections.abc import Iterable
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
    #: Whether it is the built-in CRM's own row (``crm_contacts``), not the customer record.
    in_crm: bool = False


async def find_contact(conn: asyncpg.Connection, customer_id: str | None) -> Contact | None:
    """The contact for ``customer_id``, or None when unknown."""
    if not customer_id:
        return None
    row = await conn.fetchrow(
        "SELECT customer_id, name, email, phone FROM crm_contacts WHERE customer_id = $1",
        customer_id,
    )
    if row is not None:
        return Contact(**dict(row), in_crm=True)
    record = await tools.customer_contact(conn, customer_id)
    return Contact(**dict(record)) if record is not None else None


async def find_contacts(
    conn: asyncpg.Connection, customer_ids: Iterable[str | None]
) -> dict[str, Contact]:
    """:func:`find_contact` for many customers: one query, then the customer record of the rest."""
    wanted = list(dict.fromkeys(c for c in customer_ids if c))
    if not wanted:
        return {}
    rows = await conn.fetch(
        "SELECT customer_id, name, email, phone FROM crm_contacts WHERE customer_id = ANY($1)",
        wanted,
    )
    found = {row["customer_id"]: Contact(**dict(row), in_crm=True) for row in rows}
    for customer_id in wanted:
        if customer_id not in found:
            record = await tools.customer_contact(conn, customer_id)
            if record is not None:
                found[customer_id] = Contact(**dict(record))
    return found
