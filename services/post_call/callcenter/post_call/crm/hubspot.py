"""HubSpot: a note (engagement) on the customer's contact, through the CRM v3 API.

``POST /crm/v3/objects/contacts/search`` finds the contact by email; ``POST
/crm/v3/objects/notes`` creates the note associated with it (association type 202, note to
contact). Rate limits and server errors are retried; other client errors are permanent.
"""

from __future__ import annotations

import html
from typing import Any

import asyncpg
import httpx

from callcenter.common.bus.consumer import PermanentFailure, RetryLater
from callcenter.common.config.sections import CrmSettings
from callcenter.post_call.crm.base import CrmActivity, CrmAdapter

NOTE_TO_CONTACT = 202


class HubSpotCrm(CrmAdapter):
    """Notes on HubSpot contacts."""

    name = "hubspot"

    def __init__(self, *, settings: CrmSettings) -> None:
        if settings.hubspot_token is None:
            raise ValueError(
                "crm.adapter is 'hubspot' but no token is set: set HUBSPOT_TOKEN "
                "(or CALLCENTER_CRM__HUBSPOT_TOKEN)"
            )
        self._settings = settings
        self._client: httpx.AsyncClient | None = None

    async def start(self) -> None:
        """Open the HTTP client."""
        assert self._settings.hubspot_token is not None
        self._client = httpx.AsyncClient(
            base_url=self._settings.hubspot_base_url,
            headers={"Authorization": f"Bearer {self._settings.hubspot_token.get_secret_value()}"},
            timeout=self._settings.hubspot_timeout_s,
        )

    async def close(self) -> None:
        """Close the HTTP client."""
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        if self._client is None:
            await self.start()
        assert self._client is not None
        try:
            response = await self._client.post(path, json=body)
        except httpx.HTTPError as exc:
            raise RetryLater(f"HubSpot unreachable: {type(exc).__name__}: {exc}") from exc
        if response.status_code == 429 or response.status_code >= 500:
            retry_after = response.headers.get("Retry-After")
            raise RetryLater(
                f"HubSpot {response.status_code} on {path}",
                delay_s=float(retry_after) if retry_after and retry_after.isdigit() else None,
            )
        if response.status_code >= 400:
            raise PermanentFailure(
                f"HubSpot {response.status_code} on {path}: {response.text[:300]}"
            )
        return response.json()

    async def find_contact_id(self, email: str) -> str | None:
        """The HubSpot contact id with this email, if any."""
        found = await self._post(
            "/crm/v3/objects/contacts/search",
            {
                "filterGroups": [
                    {"filters": [{"propertyName": "email", "operator": "EQ", "value": email}]}
                ],
                "properties": ["email"],
                "limit": 1,
            },
        )
        results = found.get("results") or []
        return str(results[0]["id"]) if results else None

    async def log_activity(self, conn: asyncpg.Connection, activity: CrmActivity) -> str | None:
        """Create the note; return its HubSpot id."""
        contact_id = None
        if activity.contact is not None and activity.contact.email:
            contact_id = await self.find_contact_id(activity.contact.email)
        body = (
            f"<p><strong>{html.escape(activity.subject)}</strong></p>"
            f"<p>{html.escape(activity.body).replace(chr(10), '<br>')}</p>"
            f'<p><a href="{html.escape(activity.link)}">Transcript</a></p>'
        )
        payload: dict[str, Any] = {
            "properties": {
                "hs_timestamp": activity.occurred_at.isoformat(),
                "hs_note_body": body,
            }
        }
        if contact_id is not None:
            payload["associations"] = [
                {
                    "to": {"id": contact_id},
                    "types": [
                        {
                            "associationCategory": "HUBSPOT_DEFINED",
                            "associationTypeId": NOTE_TO_CONTACT,
                        }
                    ],
                }
            ]
        created = await self._post("/crm/v3/objects/notes", payload)
        return str(created["id"])
