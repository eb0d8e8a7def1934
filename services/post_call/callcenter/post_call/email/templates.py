"""The follow-up email, as plain text and HTML: what we did and what happens next, for the customer.

It never carries the internal summary (that is for the CRM and the ticket).

Every value is PII-redacted and (in the HTML part) escaped before it is placed in a template.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from string import Template

from callcenter.common.pii import redact

TEXT = Template(
    """Hello $name,

thank you for contacting $company by $channel.

$agreed

What happens next: $next

If anything is not right, just reply to this email and we will help.

$company Support

Your reference: $call_id
You receive this email because you contacted us. To stop follow-up emails, reply with "unsubscribe".
"""
)

HTML = Template(
    """<!doctype html>
<html><body style="font-family: sans-serif; line-height: 1.5">
<p>Hello $name,</p>
<p>thank you for contacting $company by $channel.</p>
<p>$agreed</p>
<h3>What happens next</h3>
<p>$next</p>
<p>If anything is not right, just reply to this email and we will help.</p>
<p>$company Support</p>
<p style="color: #777; font-size: 12px">Your reference: $call_id<br>
You receive this email because you contacted us. To stop follow-up emails, reply with
&quot;unsubscribe&quot;.</p>
</body></html>
"""
)


@dataclass(slots=True, frozen=True, kw_only=True)
class FollowUp:
    """A rendered follow-up email."""

    subject: str
    text: str
    html: str


def render_follow_up(
    *,
    company: str,
    name: str | None,
    channel: str | None,
    call_id: str,
    agreed: str | None,
    resolved: bool,
) -> FollowUp:
    """Fill the templates; every value is redacted, and escaped for HTML."""
    values = {
        "company": company,
        "name": redact(name or "there"),
        "channel": {
            "voice": "phone",
            "web_voice": "a call from our website",
            "sms": "text message",
            "chat": "chat",
        }.get(channel or "", "phone"),
        "call_id": call_id,
        "agreed": redact(agreed or "Our team will follow up with you about your request."),
        "next": (
            "nothing more is needed from you."
            if resolved
            else "our team picks up what is still open and contacts you."
        ),
    }
    escaped = {key: html.escape(value) for key, value in values.items()}
    return FollowUp(
        subject=f"{company}: following up on your conversation with us",
        text=TEXT.substitute(values),
        html=HTML.substitute(escaped),
    )
