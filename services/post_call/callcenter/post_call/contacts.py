"""Who the customer is, for CRM and email: the built-in CRM contact, else the customer record.

``crm_contacts`` (this service's table) wins; otherwise the tools service's ``customers`` table
is read when it exists (its key column is looked up once), so a verified caller's email is found
without the post-call service importing the tools service.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import asyncpg


@dataclass(slots=True, frozen=True)
class Contact:
    """A customer's contact details."""

    customer_id: str
    name: str | None = None
    email: str | None = None
    phone: str | None = None


_NAME_KEYS = ("name", "full_name")
_customer_key: dict[str, str | None] = {}


async def _customers_key(conn: asyncpg.Connection) -> str | None:
    schema = await conn.fetchval("SELECT current_schema()")
    if schema not in _customer_key:
        columns = {
            r["column_name"]
            for r in await conn.fetch(
                """
                SELECT column_name FROM information_schema.columns
                WHERE table_schema = current_schema() AND table_name = 'customers'
                """
            )
        }
        key = next((c for c in ("customer_id", "id") if c in columns), None)
        _customer_key[schema] = key if "email" in columns else None
    return _customer_key[schema]


def _name(record: dict[str, Any]) -> str | None:
    for key in _NAME_KEYS:
        if record.get(key):
            return str(record[key])
    parts = [str(record[k]) for k in ("first_name", "last_name") if record.get(k)]
    return " ".join(parts) or None


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
    key = await _customers_key(conn)
    if key is None:
        return None
    record = await conn.fetchval(
        f"SELECT to_jsonb(c) FROM customers c WHERE c.{key}::text = $1", customer_id
    )
    if record is None:
        return None
    return Contact(
        customer_id=customer_id,
        name=_name(record),
        email=record.get("email"),
        phone=record.get("phone"),
    )
