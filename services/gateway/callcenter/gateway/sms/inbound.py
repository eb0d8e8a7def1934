"""An inbound message as Twilio's webhook describes it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class InboundSms:
    """The fields of Twilio's messaging webhook that the gateway uses."""

    message_sid: str
    customer: str
    business: str
    body: str
    num_media: int
    opt_out_type: str = ""  # STOP, START or HELP when Twilio's Advanced Opt-Out matched a keyword

    @classmethod
    def from_form(cls, form: Mapping[str, str]) -> InboundSms | None:
        """Parse the webhook's form; None when a required field (MessageSid, From, To) is absent."""
        sid = form.get("MessageSid") or form.get("SmsMessageSid") or ""
        customer, business = form.get("From", ""), form.get("To", "")
        if not (sid and customer and business):
            return None
        try:
            num_media = int(form.get("NumMedia") or 0)
        except ValueError:
            num_media = 0
        return cls(
            message_sid=sid,
            customer=customer,
            business=business,
            body=form.get("Body", ""),
            num_media=num_media,
            opt_out_type=form.get("OptOutType", "").upper(),
        )
