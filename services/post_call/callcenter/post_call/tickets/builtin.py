"""The built-in tickets table, keyed by ``idempotency_key``."""

from __future__ import annotations

import hashlib

import asyncpg

from callcenter.post_call.tickets.base import NewTicket, TicketAdapter


def ticket_id_for(key: str) -> str:
    """A short, stable ticket id derived from the idempotency key."""
    return "PC-" + hashlib.sha256(key.encode()).hexdigest()[:10].upper()


class BuiltinTickets(TicketAdapter):
    """Rows in ``tickets`` with ``source = 'post_call'``."""

    name = "builtin"

    async def open(self, conn: asyncpg.Connection, ticket: NewTicket) -> tuple[str, bool]:
        """Insert unless a ticket with the same key exists."""
        new_id = await conn.fetchval(
            """
            INSERT INTO tickets (ticket_id, call_id, customer_id, source, priority, subject, body,
                                 link, idempotency_key)
            VALUES ($1, $2, $3, 'post_call', $4, $5, $6, $7, $8)
            ON CONFLICT (idempotency_key) DO NOTHING RETURNING ticket_id
            """,
            ticket_id_for(ticket.idempotency_key),
            ticket.call_id,
            ticket.customer_id,
            ticket.priority,
            ticket.subject,
            ticket.body,
            ticket.link,
            ticket.idempotency_key,
        )
        if new_id is not None:
            return str(new_id), True
        existing = await conn.fetchval(
            "SELECT ticket_id FROM tickets WHERE idempotency_key = $1", ticket.idempotency_key
        )
        return str(existing), False
