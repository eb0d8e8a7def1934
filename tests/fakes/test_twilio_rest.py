"""The Twilio REST stand-in refuses what Twilio refuses, driven by the real twilio client."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from twilio.base.exceptions import TwilioRestException
from twilio.rest import Client

from callcenter.common.config.sections import TwilioSettings
from callcenter.gateway.twilio.rest import close_rest_client, rest_client
from tests.fakes.twilio_rest import TwilioStandIn, new_sid

ACCOUNT = "AC" + "2" * 32
TOKEN = "rest-test-token"


@pytest.fixture(scope="module")
def twilio() -> Iterator[TwilioStandIn]:
    stand_in = TwilioStandIn(account_sid=ACCOUNT, auth_token=TOKEN).start()
    yield stand_in
    stand_in.stop()


@pytest.fixture
async def client(twilio: TwilioStandIn) -> AsyncIterator[Client]:
    settings = TwilioSettings(
        enabled=True, account_sid=ACCOUNT, auth_token=TOKEN, api_base_url=twilio.base_url
    )
    made = rest_client(settings)
    assert made is not None
    yield made
    await close_rest_client(made)


async def test_call_updates_need_a_known_live_call(twilio: TwilioStandIn, client: Client) -> None:
    unknown = new_sid("CA")
    with pytest.raises(TwilioRestException) as refused:
        await client.calls(unknown).update_async(twiml="<Response><Hangup/></Response>")
    assert (refused.value.status, refused.value.code) == (404, 20404)

    live = new_sid("CA")
    twilio.set_call_status(live, "in-progress")
    call = await client.calls(live).update_async(twiml="<Response><Say>Hold on</Say></Response>")
    assert call.status == "in-progress"
    call = await client.calls(live).update_async(status="completed")
    assert call.status == "completed"
    with pytest.raises(TwilioRestException) as late:
        await client.calls(live).update_async(status="completed")
    assert (late.value.status, late.value.code) == (400, 21220)
    assert [u["call_sid"] for u in twilio.call_updates].count(live) == 2  # only accepted ones


@pytest.mark.parametrize(
    ("to", "sender", "code"),
    [("5551234567", "+15550001111", 21211), ("+15550002222", "ACME", 21212)],
    ids=["to", "from"],
)
async def test_numbers_must_be_e164(
    twilio: TwilioStandIn, client: Client, to: str, sender: str, code: int
) -> None:
    with pytest.raises(TwilioRestException) as refused:
        await client.messages.create_async(to=to, from_=sender, body="hello")
    assert (refused.value.status, refused.value.code) == (400, code)
    message = await client.messages.create_async(to="+15550002222", from_="+15550001111", body="hi")
    assert message.status == "queued"
