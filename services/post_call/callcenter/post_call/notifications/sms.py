"""Sending a text message through Twilio's Messages REST API (2010-04-01) with httpx."""

from __future__ import annotations

import httpx

from callcenter.common.bus.consumer import PermanentFailure, RetryLater
from callcenter.common.config.sections import TwilioSettings

TWILIO_API = "https://api.twilio.com"


class TwilioSmsSender:
    """``POST /2010-04-01/Accounts/{sid}/Messages.json`` from the business number."""

    def __init__(self, *, settings: TwilioSettings, from_number: str | None) -> None:
        self._settings = settings
        self._from = from_number

    @property
    def available(self) -> bool:
        """Whether Twilio is enabled with an account, a token and a business number."""
        s = self._settings
        return bool(s.enabled and s.account_sid and s.auth_token and self._from)

    async def send(self, *, to: str, body: str) -> str:
        """Send ``body`` to ``to``; returns the message SID.

        Raises:
            RetryLater: Twilio could not be reached or answered 429/5xx.
            PermanentFailure: Twilio refused the message (4xx), or SMS is not configured.

        """
        s = self._settings
        if not self.available or s.auth_token is None or not s.account_sid:
            raise PermanentFailure("SMS is not configured (twilio.* and notifications.sms_from)")
        base = (s.api_base_url or TWILIO_API).rstrip("/")
        url = f"{base}/2010-04-01/Accounts/{s.account_sid}/Messages.json"
        try:
            async with httpx.AsyncClient(timeout=10.0) as client:
                response = await client.post(
                    url,
                    data={"To": to, "From": self._from or "", "Body": body},
                    auth=(s.account_sid, s.auth_token.get_secret_value()),
                )
        except httpx.HTTPError as exc:
            raise RetryLater(f"Twilio: {type(exc).__name__}: {exc}") from exc
        if response.status_code == 429 or response.status_code >= 500:
            raise RetryLater(f"Twilio answered {response.status_code}")
        if response.status_code >= 400:
            raise PermanentFailure(f"Twilio refused the message: {response.text[:300]}")
        return str(response.json().get("sid", ""))
