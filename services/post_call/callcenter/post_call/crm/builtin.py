"""The built-in CRM: the activity is the ``crm_activities`` row itself."""

from __future__ import annotations

import asyncpg

from callcenter.post_call.crm.base import CrmActivity, CrmAdapter


class BuiltinCrm(CrmAdapter):
    """PostgreSQL only; nothing to call."""

    name = "builtin"

    async def log_activity(self, conn: asyncpg.Connection, activity: CrmActivity) -> str | None:
        """Nothing beyond the row the step writes (and the contact, when it is not one yet)."""
        if activity.contact is not None and not activity.contact.in_crm:
            await conn.execute(
                """
                INSERT INTO crm_contacts (customer_id, name, email, phone) VALUES ($1, $2, $3, $4)
                ON CONFLICT (customer_id) DO NOTHING
                """,
                activity.contact.customer_id,
                activity.contact.name,
                activity.contact.email,
                activity.contact.phone,
            )
        return None
