"""Every Twilio endpoint refuses a request without Twilio's signature, and does nothing for it.

``X-Twilio-Signature`` is computed with the twilio package's RequestValidator (the vendor's own
code) over the configured public URL. Absent, forged, signed with another token, signed for
another URL, or signed for other parameters: 403 and no call row. A correctly signed request is
accepted (the control that shows the refusals are about the signature).
"""

from __future__ import annotations

import json
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable

import httpx
import pytest
import websockets
from starlette.datastructures import ImmutableMultiDict
from twilio.request_validator import RequestValidator
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.security.conftest import PUBLIC_BASE_URL, PUBLIC_WS_URL, SecureSystem


def _number() -> str:
    return "+1555" + uuid.uuid4().int.__str__()[:7]


def voice_form(number: str) -> dict[str, str]:
    return {
        "AccountSid": "AC" + "0" * 32,
        "CallSid": "CA" + uuid.uuid4().hex,
        "CallStatus": "ringing",
        "Direction": "inbound",
        "From": number,
        "To": "+15550001111",
    }


def status_form(number: str) -> dict[str, str]:
    return {
        "AccountSid": "AC" + "0" * 32,
        "CallSid": "CA" + uuid.uuid4().hex,
        "CallStatus": "completed",
        "From": number,
    }


def sms_form(number: str) -> dict[str, str]:
    return {
        "AccountSid": "AC" + "0" * 32,
        "MessageSid": "SM" + uuid.uuid4().hex,
        "From": number,
        "To": "+15550001111",
        "Body": "HELP",
        "NumMedia": "0",
    }


ENDPOINTS: dict[str, Callable[[str], dict[str, str]]] = {
    "/twilio/voice": voice_form,
    "/twilio/status": status_form,
    "/twilio/sms": sms_form,
}


def _forgeries(token: str, path: str, form: dict[str, str]) -> dict[str, dict[str, str]]:
    url = PUBLIC_BASE_URL + path
    right = RequestValidator(token)
    tampered = {**form, "From": "+15559999999"}
    return {
        "absent": {},
        "empty": {"X-Twilio-Signature": ""},
        "garbage": {"X-Twilio-Signature": "not-a-signature"},
        "other_token": {
            "X-Twilio-Signature": RequestValidator("x" * 32).compute_signature(url, form)
        },
        "other_url": {
            "X-Twilio-Signature": right.compute_signature("https://evil.example" + path, form)
        },
        "other_path": {
            "X-Twilio-Signature": right.compute_signature(PUBLIC_BASE_URL + "/twilio/x", form)
        },
        "tampered_params": {"X-Twilio-Signature": right.compute_signature(url, tampered)},
    }


@pytest.mark.parametrize("path", list(ENDPOINTS))
async def test_unsigned_or_forged_webhooks_are_refused_and_have_no_effect(
    path: str, secure_system: SecureSystem
) -> None:
    number = _number()
    form = ENDPOINTS[path](number)
    async with httpx.AsyncClient(base_url=secure_system.gateway.url, timeout=20) as client:
        for case, headers in _forgeries(secure_system.auth_token, path, form).items():
            response = await client.post(path, data=form, headers=headers)
            assert response.status_code == 403, (case, response.status_code, response.text)
            assert secure_system.auth_token not in response.text
    assert (
        await secure_system.db.fetchval("SELECT count(*) FROM calls WHERE from_number = $1", number)
        == 0
    )


@pytest.mark.parametrize("path", list(ENDPOINTS))
async def test_correctly_signed_webhooks_are_accepted(
    path: str, secure_system: SecureSystem
) -> None:
    form = ENDPOINTS[path](_number())
    signature = RequestValidator(secure_system.auth_token).compute_signature(
        PUBLIC_BASE_URL + path, form
    )
    async with httpx.AsyncClient(base_url=secure_system.gateway.url, timeout=20) as client:
        response = await client.post(path, data=form, headers={"X-Twilio-Signature": signature})
    assert response.status_code in (200, 204), response.text


async def _signed_voice_call(secure_system: SecureSystem) -> dict[str, str]:
    """Dial in properly; return the stream parameters (call_id, token) and the call sid."""
    form = voice_form(_number())
    signature = RequestValidator(secure_system.auth_token).compute_signature(
        PUBLIC_BASE_URL + "/twilio/voice", form
    )
    async with httpx.AsyncClient(base_url=secure_system.gateway.url, timeout=20) as client:
        response = await client.post(
            "/twilio/voice", data=form, headers={"X-Twilio-Signature": signature}
        )
    assert response.status_code == 200, response.text
    stream = ET.fromstring(response.text).find("./Connect/Stream")
    assert stream is not None and stream.attrib["url"] == PUBLIC_WS_URL
    params = {p.attrib["name"]: p.attrib["value"] for p in stream.findall("Parameter")}
    return {**params, "call_sid": form["CallSid"]}


@pytest.mark.parametrize("case", ["absent", "garbage", "other_token", "other_url"])
async def test_media_socket_refuses_an_unsigned_handshake(
    case: str, secure_system: SecureSystem
) -> None:
    headers = {
        "absent": {},
        "garbage": {"X-Twilio-Signature": "forged"},
        "other_token": {
            "X-Twilio-Signature": RequestValidator("y" * 32).compute_signature(PUBLIC_WS_URL, {})
        },
        "other_url": {
            "X-Twilio-Signature": RequestValidator(secure_system.auth_token).compute_signature(
                "wss://evil.example/twilio/media", {}
            )
        },
    }[case]
    with pytest.raises(InvalidStatus) as refused:
        async with websockets.connect(secure_system.media_url, additional_headers=headers):
            pass
    assert refused.value.response.status_code == 403


def _start(call_sid: str, params: dict[str, str]) -> str:
    return json.dumps(
        {
            "event": "start",
            "sequenceNumber": "1",
            "streamSid": "MZ" + uuid.uuid4().hex,
            "start": {
                "accountSid": "AC" + "0" * 32,
                "streamSid": "MZ" + uuid.uuid4().hex,
                "callSid": call_sid,
                "tracks": ["inbound"],
                "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
                "customParameters": params,
            },
        }
    )


async def _closed_code(secure_system: SecureSystem, frames: list[str | bytes]) -> int | None:
    """Open a correctly signed media socket, send ``frames``, return the close code."""
    signature = RequestValidator(secure_system.auth_token).compute_signature(PUBLIC_WS_URL, {})
    async with websockets.connect(
        secure_system.media_url, additional_headers={"X-Twilio-Signature": signature}
    ) as ws:
        for frame in frames:
            await ws.send(frame)
        try:
            while True:
                await ws.recv()
        except ConnectionClosed as closed:
            return closed.rcvd.code if closed.rcvd else None


async def test_media_socket_refuses_a_forged_or_replayed_stream_token(
    secure_system: SecureSystem,
) -> None:
    real = await _signed_voice_call(secure_system)
    connected = json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"})
    token = real["token"]
    cases = {
        "no token": {"call_id": real["call_id"]},
        "forged token": {"call_id": real["call_id"], "token": "x.y.9999999999.abc"},
        "tampered mac": {
            **real,
            "token": token[:-4] + ("0000" if token[-4:] != "0000" else "1111"),
        },
    }
    for case, params in cases.items():
        code = await _closed_code(secure_system, [connected, _start(real["call_sid"], params)])
        assert code == 1008, (case, code)
    # The real token belongs to its own CallSid only.
    code = await _closed_code(secure_system, [connected, _start("CA" + uuid.uuid4().hex, real)])
    assert code == 1008
    assert secure_system.voice.proc is not None and secure_system.voice.proc.poll() is None


async def test_a_webhook_with_a_repeated_parameter_is_validated_with_every_value(
    secure_system: SecureSystem,
) -> None:
    """Twilio signs each value of a repeated form key; collapsing the form loses some (point 7)."""
    form = {**sms_form(_number()), "Tag": ["first", "second"]}
    signed = ImmutableMultiDict([(k, v) for k, vs in form.items() for v in _values(vs)])
    signature = RequestValidator(secure_system.auth_token).compute_signature(
        PUBLIC_BASE_URL + "/twilio/sms", signed
    )
    tampered = {**form, "Tag": ["first", "forged"]}
    async with httpx.AsyncClient(base_url=secure_system.gateway.url, timeout=20) as client:
        accepted = await client.post(
            "/twilio/sms", data=form, headers={"X-Twilio-Signature": signature}
        )
        refused = await client.post(
            "/twilio/sms", data=tampered, headers={"X-Twilio-Signature": signature}
        )
    assert accepted.status_code in (200, 204), accepted.text
    assert refused.status_code == 403


def _values(value: str | list[str]) -> list[str]:
    return value if isinstance(value, list) else [value]
