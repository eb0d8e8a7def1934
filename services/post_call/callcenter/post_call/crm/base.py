"""The CRM adapter interface."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from callcenter.post_call.contacts import Contact


@dataclass(slots=True, kw_only=True)
class CrmActivity:
    """A call logged on the customer's record."""

    call_id: str
    customer_id: str | None
    contact: Contact | None
    subject: str
    body: str
    occurred_at: datetime
    link: str


class CrmAdapter(ABC):
    """Logs activities on a CRM; called inside the step's transaction."""

    name: str

    async def start(self) -> None:  # noqa: B027 - optional hook
        """Open connections."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Close connections."""

    @abstractmethod
    async def log_activity(self, conn: asyncpg.Connection, activity: CrmActivity) -> str | None:
        """Record ``activity``; return the CRM's id for it (None for the built-in CRM)."""
