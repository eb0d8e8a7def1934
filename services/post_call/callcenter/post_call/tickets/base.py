"""The ticket adapter interface (a Zendesk or Jira adapter would implement it)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Literal

import asyncpg


@dataclass(slots=True, kw_only=True)
class NewTicket:
    """A ticket to open."""

    call_id: str
    customer_id: str | None
    priority: str
    subject: str
    body: str
    link: str
    idempotency_key: str


@dataclass(slots=True, frozen=True, kw_only=True)
class Opened:
    """What became of a ticket to open.

    ``opened`` (new), ``existed`` (same key) or ``escalated`` (the call already had an open
    ticket, which now carries this one's priority and findings: one ticket per customer problem,
    not one per system that noticed it).
    """

    ticket_id: str
    result: Literal["opened", "existed", "escalated"]


class TicketAdapter(ABC):
    """Opens tickets; called inside the step's transaction."""

    name: str

    @abstractmethod
    async def open(self, conn: asyncpg.Connection, ticket: NewTicket) -> Opened:
        """Open ``ticket``, or escalate the call's open ticket with it."""

    async def open_many(self, conn: asyncpg.Connection, tickets: list[NewTicket]) -> list[Opened]:
        """:meth:`open` for each of ``tickets``, in order (an adapter may do it at once)."""
        return [await self.open(conn, ticket) for ticket in tickets]
