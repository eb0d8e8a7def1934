"""Fuzzing the edges: the gateway's OpenAPI (schemathesis), Twilio form posts, chat and media
socket frames. Nothing may answer 5xx, break the schema it documents, or take a process down.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import random
import uuid

import httpx
import pytest
import schemathesis
import websockets
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
)
from twilio.request_validator import RequestValidator
from websockets.exceptions import ConnectionClosed

from tests.security.conftest import PUBLIC_BASE_URL, PUBLIC_WS_URL, SecureSystem
from tests.support.chat_client import ChatVisitor

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "25"))
STREAMING = {"/api/live/events"}  # an endless SSE stream: covered by the auth tests instead
CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance]


def _alive(system: SecureSystem) -> None:
    for name, proc in system.services.items():
        assert proc.proc is not None and proc.proc.poll() is None, (name, proc.log_tail())
        assert httpx.get(f"{proc.url}/healthz", timeout=10).status_code == 200, name


def _fuzz(operation: schemathesis.APIOperation, base: str, headers: dict[str, str]) -> str | None:
    """Run generated cases against one operation; the failure, or None."""

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,
    )
    @given(case=operation.as_strategy())
    def run(case: schemathesis.Case) -> None:
        case.call_and_validate(base_url=base, headers=headers, checks=CHECKS, timeout=20)

    try:
        run()
    except BaseException as exc:  # hypothesis re-raises the minimal failing example(s)
        if isinstance(exc, KeyboardInterrupt):
            raise
        return f"{operation.method.upper()} {operation.path}: {exc}"[:3000]
    return None


def test_openapi_fuzzing_finds_no_server_error_or_schema_violation(
    secure_system: SecureSystem,
) -> None:
    base = secure_system.gateway.url
    admin = {"Authorization": f"Bearer {secure_system.admin_token}"}
    schema = schemathesis.openapi.from_url(f"{base}/openapi.json", headers=admin)
    failures: list[str] = []
    tried = []
    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.path in STREAMING:
            continue
        tried.append(f"{operation.method.upper()} {operation.path}")
        for headers in (admin, {}):
            failure = _fuzz(operation, base, headers)
            if failure:
                failures.append(failure)
    assert len(tried) >= 3, tried
    assert not failures, "\n\n".join(failures)
    _alive(secure_system)


def _signed(token: str, path: str, params: dict[str, str]) -> dict[str, str]:
    return {
        "X-Twilio-Signature": RequestValidator(token).compute_signature(
            PUBLIC_BASE_URL + path, params
        )
    }


MALFORMED_BODIES: list[tuple[str, bytes | str]] = [
    ("application/x-www-form-urlencoded", b""),
    ("application/x-www-form-urlencoded", b"CallSid"),
    ("application/x-www-form-urlencoded", b"CallSid=CA1&From=%ZZ%&To=%"),
    ("application/x-www-form-urlencoded", b"&&&===&&&"),
    ("application/x-www-form-urlencoded", b"Body=" + bytes(range(256))),
    ("application/x-www-form-urlencoded", b"CallSid=CA1&CallSid=CA2&CallStatus=completed"),
    ("application/x-www-form-urlencoded", "Body=\u202e\u0000\ud7ff\ufeff".encode("utf-8", "surrogatepass")),
    ("application/x-www-form-urlencoded", "&".join(f"k{i}=v" for i in range(3000))),
    ("multipart/form-data; boundary=xyz", b"--xyz\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n1\r\n--x"),
    ("multipart/form-data", b"garbage"),
    ("application/json", b'{"CallSid": "CA1", "From": "+1555"}'),
    ("text/xml", b"<?xml version='1.0'?><!DOCTYPE x [<!ENTITY a 'aaaa'>]><x>&a;</x>"),
    ("application/octet-stream", os.urandom(2048)),
]  # fmt: skip


@pytest.mark.parametrize("path", ["/twilio/voice", "/twilio/status", "/twilio/sms"])
async def test_malformed_twilio_posts_get_a_4xx_never_a_5xx(
    path: str, secure_system: SecureSystem
) -> None:
    async with httpx.AsyncClient(base_url=secure_system.gateway.url, timeout=20) as client:
        for content_type, body in MALFORMED_BODIES:
            unsigned = await client.post(path, content=body, headers={"Content-Type": content_type})
            assert 400 <= unsigned.status_code < 500, (content_type, body[:60], unsigned.text)
        # Signed, so they get past the signature check: missing, odd and oversized fields.
        rng = random.Random(7)
        forms = [
            {},
            {"CallSid": ""},
            {"CallSid": "CA" + uuid.uuid4().hex, "CallStatus": "exploded"},
            {"MessageSid": "SM" + uuid.uuid4().hex, "From": "", "To": "", "Body": ""},
            {"MessageSid": "SM" + uuid.uuid4().hex, "From": "not-a-number", "To": "+1", "Body": "x",
             "NumMedia": "999", "MediaUrl0": "file:///etc/passwd"},
            {"CallSid": "CA" + uuid.uuid4().hex, "From": "\u0000" * 20, "To": "'; DROP TABLE calls;--"},
            {"CallSid": "../../" * 10, "CallStatus": "completed"},
            {"MessageSid": "SM1", "From": "+15550001111", "To": "+15550002222",
             "Body": "".join(chr(rng.randrange(32, 0x2FFF)) for _ in range(1500))},
        ]  # fmt: skip
        for form in forms:
            response = await client.post(
                path, data=form, headers=_signed(secure_system.auth_token, path, form)
            )
            assert response.status_code < 500, (form, response.status_code, response.text)
    _alive(secure_system)


GARBAGE_FRAMES: list[str | bytes] = [
    b"\x00\xff\xfe\xfd",
    os.urandom(512),
    "",
    "{",
    '{"type": "message", "text": ',
    "null",
    "[]",
    '"message"',
    "1e999999",
    '{"type": null}',
    '{"type": "message"}',
    '{"type": "message", "text": null}',
    '{"type": "message", "text": {"nested": ["x"]}}',
    '{"type": "message", "text": 12345}',
    '{"type": "message", "text": "   "}',
    '{"type": "\\u006dessage", "text": "\\ud800"}',
    '{"type": "end", "extra": ' + "[" * 5000 + "]" * 5000 + "}",
    json.dumps({"type": "message", "text": "x" * 3000}),
    json.dumps({"type": "ping", "pad": "y" * 8000}),
]


async def test_binary_and_malformed_chat_frames_never_break_the_chat(
    secure_system: SecureSystem,
) -> None:
    async with ChatVisitor(secure_system.gateway.url) as chat:
        assert chat.ws is not None
        for frame in GARBAGE_FRAMES:
            await chat.ws.send(frame)
            answer = await chat.receive()
            assert answer["type"] in ("error", "pong", "typing"), (frame[:40], answer)
            while answer["type"] not in ("error", "pong", "done"):  # a turn ran: let it finish
                answer = await chat.receive()
        reply = await chat.say("Where is my order ORD-1001?")
        assert reply.kind == "done" and "ORD-1001" in reply.text, reply
        await chat.end()
    _alive(secure_system)


@pytest.mark.parametrize("token", ["\u00e9t\u00e9", "0" * 64, "", "%00"])
async def test_a_garbled_resume_token_starts_a_new_chat(
    secure_system: SecureSystem, token: str
) -> None:
    """A reconnect with a token that was never issued (non-ASCII included) gets a new chat."""
    async with ChatVisitor(secure_system.gateway.url) as chat:  # the chat stays open
        query = httpx.QueryParams({"call_id": chat.call_id, "resume_token": token})
        async with websockets.connect(f"{chat.url}?{query}") as ws:
            notice = json.loads(await asyncio.wait_for(ws.recv(), 30))
            assert notice["type"] == "error" and "starting a new one" in notice["message"]
            hello = json.loads(await asyncio.wait_for(ws.recv(), 30))
            assert hello["type"] == "session" and hello["call_id"] != chat.call_id, hello
            assert hello["resumed"] is False
        await chat.end()
    _alive(secure_system)


def _media(event: str, **fields: object) -> str:
    return json.dumps({"event": event, "streamSid": "MZ" + uuid.uuid4().hex, **fields})


MEDIA_GARBAGE: dict[str, str | bytes] = {
    "not json": "not json",
    "binary": b"\x00\x01binary",
    "empty object": "{}",
    "connected twice": _media("connected"),
    "start without body": _media("start"),
    "start with a null call sid": _media("start", start={"callSid": None}),
    "start with a huge token": _media("start", start={"customParameters": {"token": "a" * 20000}}),
    "media with bad base64": _media("media", media={"payload": "!!!not base64!!!"}),
    "media oversized": _media("media", media={"payload": base64.b64encode(os.urandom(64000)).decode()}),
    "dtmf with NUL": _media("dtmf", dtmf={"digit": "\u0000"}),
    "stop first": _media("stop"),
    "mark without name": _media("mark", mark={"name": None}),
    "customParameters not an object": _media("start", start={"customParameters": "not-a-dict"}),
}  # fmt: skip


@pytest.mark.parametrize("case", list(MEDIA_GARBAGE))
async def test_malformed_media_frames_close_the_socket_and_the_pipeline_lives_on(
    case: str, secure_system: SecureSystem
) -> None:
    frame = MEDIA_GARBAGE[case]
    signature = RequestValidator(secure_system.auth_token).compute_signature(PUBLIC_WS_URL, {})
    async with websockets.connect(
        secure_system.media_url, additional_headers={"X-Twilio-Signature": signature}
    ) as ws:
        try:
            for _ in range(3):  # the socket waits for up to three frames for a start
                await ws.send(frame)
            await asyncio.wait_for(ws.wait_closed(), timeout=20)
        except ConnectionClosed:
            pass
        assert ws.close_code in (1000, 1008), (case, ws.close_code)
    _alive(secure_system)
