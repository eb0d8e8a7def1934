"""The built-in tickets table, keyed by ``idempotency_key``."""

from __future__ import annotations

import hashlib

import asyncpg

from callcenter.post_call.tickets.base import NewTicket, Opened, TicketAdapter


def ticket_id_for(key: str) -> str:
    """A short, stable ticket id derived from the idempotency key."""
    return "PC-" + hashlib.sha256(key.encode()).hexdigest()[:10].upper()


#: Heads what post-call adds to a ticket the conversation already had (once per call).
ESCALATION_HEADING = "--- After the conversation ---"

PRIORITY_RANK = {"low": 0, "normal": 1, "high": 2, "urgent": 3}


class BuiltinTickets(TicketAdapter):
    """Rows in ``tickets`` with ``source = 'post_call'``."""

    name = "builtin"

    async def open(self, conn: asyncpg.Connection, ticket: NewTicket) -> Opened:
        """Insert unless the key exists; escalate the call's open ticket if it has one."""
        # one query: the ticket with this key if there is one, else the call's oldest open one
        found = await conn.fetchrow(
            """
            SELECT ticket_id, priority, idempotency_key IS NOT DISTINCT FROM $1 AS same_key
            FROM tickets
            WHERE idempotency_key = $1 OR (call_id = $2 AND status = 'open')
            ORDER BY same_key DESC, created_at LIMIT 1 FOR UPDATE
            """,
            ticket.idempotency_key,
            ticket.call_id,
        )
        if found is not None and found["same_key"]:
            return Opened(ticket_id=str(found["ticket_id"]), result="existed")
        earlier = found
        if earlier is not None:
            await self._escalate(conn, earlier, ticket)
            return Opened(ticket_id=str(earlier["ticket_id"]), result="escalated")
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
            return Opened(ticket_id=str(new_id), result="opened")
        raced = await conn.fetchval(
            "SELECT ticket_id FROM tickets WHERE idempotency_key = $1", ticket.idempotency_key
        )
        return Opened(ticket_id=str(raced), result="existed")

    async def open_many(self, conn: asyncpg.Connection, tickets: list[NewTicket]) -> list[Opened]:
        """:meth:`open` for many: one query for what exists, one insert for the new ones."""
        found = await conn.fetch(
            """
            SELECT ticket_id, priority, idempotency_key, call_id, status FROM tickets
            WHERE idempotency_key = ANY($1::text[])
               OR (call_id = ANY($2::text[]) AND status = 'open')
            ORDER BY created_at FOR UPDATE
            """,
            [t.idempotency_key for t in tickets],
            [t.call_id for t in tickets],
        )
        by_key = {row["idempotency_key"]: row for row in found if row["idempotency_key"]}
        open_of: dict[str, asyncpg.Record] = {}
        for row in found:  # oldest first: the call's first open ticket
            if row["status"] == "open" and row["call_id"] is not None:
                open_of.setdefault(row["call_id"], row)
        opened: dict[str, Opened] = {}
        fresh: list[NewTicket] = []
        for ticket in tickets:
            key = ticket.idempotency_key
            if key in opened:
                continue
            if key in by_key:
                opened[key] = Opened(ticket_id=str(by_key[key]["ticket_id"]), result="existed")
            elif ticket.call_id in open_of:
                earlier = open_of[ticket.call_id]
                await self._escalate(conn, earlier, ticket)
                opened[key] = Opened(ticket_id=str(earlier["ticket_id"]), result="escalated")
            else:
                fresh.append(ticket)
                opened[key] = Opened(ticket_id=ticket_id_for(key), result="opened")
        if fresh:
            made = {
                row["idempotency_key"]
                for row in await conn.fetch(
                    """
                    INSERT INTO tickets (ticket_id, call_id, customer_id, source, priority,
                                         subject, body, link, idempotency_key)
                    SELECT t.ticket_id, t.call_id, t.customer_id, 'post_call', t.priority,
                           t.subject, t.body, t.link, t.key
                    FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[],
                                $6::text[], $7::text[], $8::text[])
                        AS t(ticket_id, call_id, customer_id, priority, subject, body, link, key)
                    ON CONFLICT (idempotency_key) DO NOTHING RETURNING idempotency_key
                    """,
                    [ticket_id_for(t.idempotency_key) for t in fresh],
                    [t.call_id for t in fresh],
                    [t.customer_id for t in fresh],
                    [t.priority for t in fresh],
                    [t.subject for t in fresh],
                    [t.body for t in fresh],
                    [t.link for t in fresh],
                    [t.idempotency_key for t in fresh],
                )
            }
            for ticket in fresh:
                if ticket.idempotency_key not in made:  # raced: another transaction opened it
                    opened[ticket.idempotency_key] = await self.open(conn, ticket)
        return [opened[t.idempotency_key] for t in tickets]

    async def _escalate(
        self, conn: asyncpg.Connection, earlier: asyncpg.Record, ticket: NewTicket
    ) -> None:
        """Raise the open ticket to ``ticket``'s priority (never lower it); add the findings."""
        priority = max(earlier["priority"], ticket.priority, key=PRIORITY_RANK.__getitem__)
        await conn.execute(
            """
            UPDATE tickets SET priority = $2, body = body || $3, link = coalesce(link, $4)
            WHERE ticket_id = $1
            """,
            earlier["ticket_id"],
            priority,
            f"\n\n{ESCALATION_HEADING}\n{ticket.body}",
            ticket.link,
        )
