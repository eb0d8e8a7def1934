"""A local stand-in for Twilio's REST API (2010-04-01), and Twilio's side of webhooks.

The real ``twilio`` client talks to it over HTTP when its requests are re-based
(``twilio.api_base_url`` in our config, see ``callcenter.gateway.twilio.rest``). It serves

* ``POST /2010-04-01/Accounts/{AccountSid}/Messages.json`` — send a message (``To``, ``From`` or
  ``MessagingServiceSid``, ``Body`` or ``MediaUrl``; a body over 1600 characters is refused with
  Twilio's error 21617, as Twilio does);
* ``POST /2010-04-01/Accounts/{AccountSid}/Calls/{CallSid}.json`` — update a live call (``Twiml``,
  ``Url``, ``Status``…), e.g. to transfer it;

checks HTTP Basic auth (account SID, auth token; 401 with Twilio's error 20003 otherwise) and the
account in the path, records every request, and answers with Twilio-shaped JSON resources.

It refuses what Twilio refuses (https://www.twilio.com/docs/api/errors/<code>): a call SID it does
not know (404, 20404: calls exist once :meth:`TwilioStandIn.set_call_status` registered them, as
the simulated caller does when it dials), an update to a call that is no longer in progress
(400, 21220 "Invalid call state for this update" — a completed call cannot be redirected or
hung up again), and phone numbers that are not E.164 (``+`` and up to 15 digits: 21211 for
``To``, 21212 for ``From``; https://www.twilio.com/docs/glossary/what-e164). What it cannot know
is whether a valid-looking number exists or can receive SMS (Twilio's 21614 and friends).

    twilio = TwilioStandIn(account_sid="AC…", auth_token="…").start()
    # config: twilio.api_base_url = twilio.base_url
    await twilio.wait_for_messages(1, to="+15550001111")
    twilio.messages  # what was sent, oldest first

:func:`sign_webhook` is what Twilio does when it calls a webhook: X-Twilio-Signature over the URL
and the POST parameters with the auth token.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from twilio.request_validator import RequestValidator

from tests.fakes.threaded_http import ThreadedHTTPStandIn

MAX_BODY_CHARS = 1600
E164 = re.compile(r"^\+[1-9]\d{1,14}$")
LIVE_STATES = {"queued", "ringing", "in-progress"}


def sign_webhook(auth_token: str, url: str, params: dict[str, str]) -> str:
    """The X-Twilio-Signature Twilio sends with a webhook to ``url`` carrying ``params``."""
    return RequestValidator(auth_token).compute_signature(url, params)


def new_sid(prefix: str) -> str:
    """A Twilio-style SID (two letters and 32 hex digits)."""
    return prefix + uuid.uuid4().hex


@dataclass
class RecordedRequest:
    """One request the stand-in received."""

    method: str
    path: str
    params: dict[str, str]
    lists: dict[str, list[str]]
    authorized: bool
    status: int = 0
    received_at: float = field(default_factory=time.time)


class TwilioStandIn(ThreadedHTTPStandIn):
    """The server; start it once per test module."""

    thread_name = "twilio-stand-in"

    def __init__(
        self, *, account_sid: str, auth_token: str, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        super().__init__(host=host, port=port)
        self.account_sid = account_sid
        self.auth_token = auth_token
        self._lock = threading.Lock()
        self.requests: list[RecordedRequest] = []
        self.messages: list[dict[str, Any]] = []
        self.call_updates: list[dict[str, Any]] = []
        self.calls: dict[str, str] = {}  # CallSid -> status
        self.fail_next: list[tuple[int, int, str]] = []  # (http status, twilio code, message)

    # -- control -------------------------------------------------------------------------

    def start(self) -> TwilioStandIn:
        stand_in = self

        class Handler(_Handler):
            state = stand_in

        self._serve(Handler)
        return self

    def stop(self) -> None:
        self._shutdown()

    @property
    def base_url(self) -> str:
        """What replaces ``https://api.twilio.com`` (set as ``twilio.api_base_url``)."""
        return self.origin

    def fail(self, status: int, code: int, message: str) -> None:
        """Refuse the next create/update request with a Twilio error."""
        with self._lock:
            self.fail_next.append((status, code, message))

    def set_call_status(self, call_sid: str, status: str) -> None:
        """Twilio's view of a call: a call is known once it has a status (``in-progress``…)."""
        with self._lock:
            self.calls[call_sid] = status

    def messages_to(self, number: str) -> list[dict[str, Any]]:
        """Messages sent to ``number``, oldest first."""
        with self._lock:
            return [m for m in self.messages if m["to"] == number]

    async def wait_for_messages(
        self, count: int, *, to: str, timeout_s: float = 20.0
    ) -> list[dict[str, Any]]:
        """Wait until at least ``count`` messages went to ``to``; return them all.

        Raises:
            AssertionError: they did not arrive in time.

        """
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            sent = self.messages_to(to)
            if len(sent) >= count:
                return sent
            await asyncio.sleep(0.05)
        raise AssertionError(
            f"expected {count} message(s) to {to}, got {self.messages_to(to)} "
            f"(requests: {[(r.method, r.path, r.status) for r in self.requests]})"
        )

    # -- used by the handler -------------------------------------------------------------

    def _authorized(self, header: str | None) -> bool:
        if not header or not header.startswith("Basic "):
            return False
        try:
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        except ValueError:
            return False
        return user == self.account_sid and password == self.auth_token

    def _record(self, request: RecordedRequest) -> tuple[int, int, str] | None:
        with self._lock:
            self.requests.append(request)
            return self.fail_next.pop(0) if self.fail_next else None

    def _resource_uri(self, kind: str, sid: str) -> str:
        return f"/2010-04-01/Accounts/{self.account_sid}/{kind}/{sid}.json"

    def _create_message(
        self, params: dict[str, str], lists: dict[str, list[str]]
    ) -> dict[str, Any]:
        body = params.get("Body", "")
        sid = new_sid("SM")
        now = formatdate(usegmt=True)
        message = {
            "sid": sid,
            "account_sid": self.account_sid,
            "api_version": "2010-04-01",
            "body": body,
            "date_created": now,
            "date_updated": now,
            "date_sent": None,
            "direction": "outbound-api",
            "error_code": None,
            "error_message": None,
            "from": params.get("From"),
            "messaging_service_sid": params.get("MessagingServiceSid"),
            "num_media": str(len(lists.get("MediaUrl", []))),
            "num_segments": str(max(1, -(-len(body) // 153))),
            "price": None,
            "price_unit": "USD",
            "status": "queued",
            "subresource_uris": {"media": self._resource_uri("Messages", sid)[:-5] + "/Media.json"},
            "to": params.get("To"),
            "uri": self._resource_uri("Messages", sid),
        }
        with self._lock:
            self.messages.append(message)
        return message

    def _update_call(self, call_sid: str, params: dict[str, str]) -> tuple[int, dict[str, Any]]:
        with self._lock:
            state = self.calls.get(call_sid)
            if state is None:
                return 404, _error(
                    404,
                    20404,
                    f"The requested resource {self._resource_uri('Calls', call_sid)} was not found",
                )
            if state not in LIVE_STATES:
                return 400, _error(
                    400, 21220, f"Call is not in-progress (it is {state}). Cannot update it."
                )
            status = params.get("Status", "in-progress")
            if status in {"completed", "canceled"}:
                self.calls[call_sid] = "completed"
            self.call_updates.append({"call_sid": call_sid, **params})
        now = formatdate(usegmt=True)
        return 200, {
            "sid": call_sid,
            "account_sid": self.account_sid,
            "api_version": "2010-04-01",
            "date_created": now,
            "date_updated": now,
            "direction": "inbound",
            "from": None,
            "to": None,
            "status": self.calls[call_sid],
            "uri": self._resource_uri("Calls", call_sid),
        }


def _error(status: int, code: int, message: str) -> dict[str, Any]:
    return {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }


class _Handler(BaseHTTPRequestHandler):
    state: TwilioStandIn
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        return

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length).decode() if length else ""
        pairs = parse_qsl(raw, keep_blank_values=True)
        lists: dict[str, list[str]] = {}
        for key, value in pairs:
            lists.setdefault(key, []).append(value)
        params = {key: values[-1] for key, values in lists.items()}
        state = self.state
        path = urlsplit(self.path).path
        request = RecordedRequest(
            method="POST",
            path=path,
            params=params,
            lists=lists,
            authorized=state._authorized(self.headers.get("Authorization")),
        )
        status, payload = self._route(request)
        request.status = status
        self._json(status, payload)

    def _route(self, request: RecordedRequest) -> tuple[int, dict[str, Any]]:
        state = self.state
        parts = request.path.strip("/").split("/")
        # 2010-04-01 / Accounts / {sid} / Messages.json | Calls / {CallSid}.json
        if len(parts) < 4 or parts[:2] != ["2010-04-01", "Accounts"]:
            state._record(request)
            return 404, _error(404, 20404, f"The requested resource {request.path} was not found")
        if not request.authorized or parts[2] != state.account_sid:
            state._record(request)
            return 401, _error(401, 20003, "Authenticate")
        failure = state._record(request)
        if failure is not None:
            return failure[0], _error(*failure)
        params = request.params
        if parts[3:] == ["Messages.json"]:
            if "To" not in params:
                return 400, _error(400, 21604, "A 'To' phone number is required.")
            if not E164.match(params["To"].removeprefix("whatsapp:")):
                return 400, _error(
                    400, 21211, f"The 'To' number {params['To']} is not a valid phone number."
                )
            if "From" not in params and "MessagingServiceSid" not in params:
                return 400, _error(400, 21603, "A 'From' phone number is required.")
            if "From" in params and not E164.match(params["From"].removeprefix("whatsapp:")):
                return 400, _error(
                    400, 21212, f"The 'From' number {params['From']} is not a valid phone number."
                )
            if not params.get("Body") and "MediaUrl" not in request.lists:
                return 400, _error(400, 21602, "Message body is required.")
            if len(params.get("Body", "").encode("utf-16-le")) // 2 > MAX_BODY_CHARS:
                return 400, _error(
                    400, 21617, "The concatenated message body exceeds the 1600 character limit."
                )
            return 201, state._create_message(params, request.lists)
        if len(parts) == 5 and parts[3] == "Calls" and parts[4].endswith(".json"):
            return state._update_call(parts[4][: -len(".json")], params)
        return 404, _error(404, 20404, f"The requested resource {request.path} was not found")

    def _json(self, status: int, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass
