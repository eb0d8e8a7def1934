"""Only Twilio, for a call the gateway accepted, gets a media stream."""

from __future__ import annotations

import asyncio

import httpx
import pytest
import websockets
from twilio.request_validator import RequestValidator

from .conftest import PhoneSystem


async def test_forged_or_missing_webhook_signature_is_refused(phone: PhoneSystem) -> None:
    caller = phone.caller()
    forged = await caller.post_webhook("/twilio/voice", caller.voice_params(), signature="Zm9yZ2Vk")
    assert forged.status_code == 403
    async with httpx.AsyncClient() as client:
        unsigned = await client.post(
            phone.gateway.url + "/twilio/voice", data=caller.voice_params()
        )
    assert unsigned.status_code == 403
    wrong_key = phone.caller()
    wrong_key.validator = RequestValidator("not-the-auth-token")  # another account's token
    refused = await wrong_key.post_webhook("/twilio/voice", wrong_key.voice_params())
    assert refused.status_code == 403
    status = await caller.post_webhook(
        "/twilio/status", {"CallSid": caller.call_sid}, signature="x"
    )
    assert status.status_code == 403


async def test_media_socket_without_twilio_signature_is_refused(phone: PhoneSystem) -> None:
    caller = phone.caller()
    await caller.dial()
    with pytest.raises(websockets.InvalidStatus) as refused:
        await caller.open_stream(signature="Zm9yZ2Vk")
    assert refused.value.response.status_code == 403


@pytest.mark.parametrize("case", ["forged", "other_call", "missing", "not_a_dict"])
async def test_media_socket_with_a_bad_stream_token_is_closed(
    phone: PhoneSystem, case: str
) -> None:
    caller = phone.caller()
    other = phone.caller()
    await caller.dial()
    await other.dial()
    token = caller.parameters["token"]
    params = dict(caller.parameters)
    if case == "forged":
        params["token"] = token[:-4] + ("0000" if not token.endswith("0000") else "1111")
    elif case == "other_call":
        params["token"] = other.parameters["token"]  # a genuine token, for another CallSid
    elif case == "missing":
        params.pop("token")
    else:
        params = ["token", token]  # type: ignore[assignment]
    texts_before = len(phone.elevenlabs.texts)
    await caller.open_stream(parameters=params)
    await asyncio.wait_for(caller.closed.wait(), timeout=10)
    assert caller.closed_code == 1008
    assert caller.bot == []  # no greeting: no pipeline ran
    assert len(phone.elevenlabs.texts) == texts_before
