"""The ticket adapter interface (a Zendesk or Jira adapter would implement it)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

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


class TicketAdapter(ABC):
    """Opens tickets; called inside the step's transaction."""

    name: str

    @abstractmethod
    async def open(self, conn: asyncpg.Connection, ticket: NewTicket) -> tuple[str, bool]:
        """Open ``ticket``; return its id and whether it is new (False: the key existed)."""
