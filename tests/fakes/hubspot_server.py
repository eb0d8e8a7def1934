"""A local stand-in for HubSpot's CRM v3 API: contacts search and notes (engagements).

It speaks HubSpot's wire protocol for the calls the post-call CRM adapter makes, with bearer
authentication, so the adapter's real HTTP client is exercised:

* ``POST /crm/v3/objects/contacts`` creates a contact (``{"properties": {"email": ...}}``);
* ``POST /crm/v3/objects/contacts/search`` with an ``email EQ`` filter finds it;
* ``POST /crm/v3/objects/notes`` creates a note with ``hs_note_body``/``hs_timestamp`` and
  associations; ``GET /crm/v3/objects/notes/{id}`` reads it back.

    hubspot = HubSpotStandIn(token="pat-test").start()
    hubspot.add_contact("ada@example.com")          # -> contact id
    # config: crm.adapter=hubspot, crm.hubspot_base_url=hubspot.base_url, crm.hubspot_token=pat-test
    hubspot.notes                                    # what was created

``fail_next(n, status=503)`` answers the next ``n`` requests with an error.
"""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.fakes.threaded_http import ThreadedHTTPStandIn


class HubSpotStandIn(ThreadedHTTPStandIn):
    """The server; ``start()`` it, then read ``notes`` and ``requests``."""

    thread_name = "hubspot-stand-in"

    def __init__(self, *, token: str = "pat-test", host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(host=host, port=port)
        self.token = token
        self._lock = threading.Lock()
        self._next_id = 1000
        self.contacts: dict[str, dict[str, Any]] = {}
        self.notes: dict[str, dict[str, Any]] = {}
        self.requests: list[dict[str, Any]] = []
        self._failures: list[int] = []

    def start(self) -> HubSpotStandIn:
        """Listen in a background thread."""
        owner = self

        class Handler(_Handler):
            server_owner = owner

        self._serve(Handler)
        return self

    def stop(self) -> None:
        """Stop listening."""
        self._shutdown()

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return self.origin

    @property
    def env(self) -> dict[str, str]:
        """Variables that point a service at this server."""
        return {
            "CALLCENTER_CRM__ADAPTER": "hubspot",
            "CALLCENTER_CRM__HUBSPOT_BASE_URL": self.base_url,
            "CALLCENTER_CRM__HUBSPOT_TOKEN": self.token,
        }

    def _new_id(self) -> str:
        with self._lock:
            self._next_id += 1
            return str(self._next_id)

    def add_contact(self, email: str, **properties: str) -> str:
        """Create a contact; return its id."""
        contact_id = self._new_id()
        self.contacts[contact_id] = {"email": email.lower(), **properties}
        return contact_id

    def fail_next(self, count: int, *, status: int = 503) -> None:
        """Answer the next ``count`` requests with ``status``."""
        with self._lock:
            self._failures.extend([status] * count)

    def notes_for_contact(self, contact_id: str) -> list[dict[str, Any]]:
        """Notes associated with a contact."""
        return [
            note
            for note in self.notes.values()
            if any(a["to"]["id"] == contact_id for a in note.get("associations", []))
        ]

    def _take_failure(self) -> int | None:
        with self._lock:
            return self._failures.pop(0) if self._failures else None


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


class _Handler(BaseHTTPRequestHandler):
    server_owner: HubSpotStandIn

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        return

    def _send(self, status: int, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json;charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _error(self, status: int, message: str, category: str) -> None:
        self._send(
            status,
            {
                "status": "error",
                "message": message,
                "correlationId": "00000000-0000-0000-0000-000000000000",
                "category": category,
            },
        )

    def _authorised(self) -> bool:
        owner = self.server_owner
        if self.headers.get("Authorization") != f"Bearer {owner.token}":
            self._error(
                401,
                "Authentication credentials not found.",
                "INVALID_AUTHENTICATION",
            )
            return False
        failure = owner._take_failure()
        if failure is not None:
            self._error(failure, "Internal error", "INTERNAL_ERROR")
            return False
        return True

    def do_GET(self) -> None:
        if not self._authorised():
            return
        owner = self.server_owner
        prefix = "/crm/v3/objects/notes/"
        if self.path.startswith(prefix) and self.path[len(prefix) :] in owner.notes:
            self._send(200, owner.notes[self.path[len(prefix) :]])
            return
        self._error(404, "Object not found", "OBJECT_NOT_FOUND")

    def do_POST(self) -> None:
        owner = self.server_owner
        length = int(self.headers.get("Content-Length") or 0)
        try:
            body = json.loads(self.rfile.read(length) or b"{}")
        except ValueError:
            self._error(400, "Invalid input JSON", "VALIDATION_ERROR")
            return
        with owner._lock:
            owner.requests.append({"path": self.path, "body": body})
        if not self._authorised():
            return
        if self.path == "/crm/v3/objects/contacts/search":
            self._search(body)
        elif self.path == "/crm/v3/objects/contacts":
            props = body.get("properties") or {}
            contact_id = owner.add_contact(str(props.get("email", "")), **props)
            self._send(201, {"id": contact_id, "properties": owner.contacts[contact_id]})
        elif self.path == "/crm/v3/objects/notes":
            self._create_note(body)
        else:
            self._error(404, f"Unknown path {self.path}", "OBJECT_NOT_FOUND")

    def _search(self, body: dict[str, Any]) -> None:
        owner = self.server_owner
        wanted: str | None = None
        for group in body.get("filterGroups", []):
            for flt in group.get("filters", []):
                if flt.get("propertyName") == "email" and flt.get("operator") == "EQ":
                    wanted = str(flt.get("value", "")).lower()
        results = [
            {"id": cid, "properties": props, "archived": False}
            for cid, props in owner.contacts.items()
            if wanted is not None and props.get("email") == wanted
        ][: int(body.get("limit", 10))]
        self._send(200, {"total": len(results), "results": results})

    def _create_note(self, body: dict[str, Any]) -> None:
        owner = self.server_owner
        props = body.get("properties") or {}
        if "hs_timestamp" not in props:
            self._error(400, "Property values were not valid: hs_timestamp", "VALIDATION_ERROR")
            return
        for assoc in body.get("associations", []):
            if assoc.get("to", {}).get("id") not in owner.contacts:
                self._error(400, "Association target not found", "VALIDATION_ERROR")
                return
        note_id = owner._new_id()
        note = {
            "id": note_id,
            "properties": props,
            "associations": body.get("associations", []),
            "createdAt": _now(),
            "updatedAt": _now(),
            "archived": False,
        }
        with owner._lock:
            owner.notes[note_id] = note
        self._send(201, {k: v for k, v in note.items() if k != "associations"})
