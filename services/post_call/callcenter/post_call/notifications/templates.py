"""The text of each notification kind, for email and SMS.

Written for the customer: what happened and what happens next, with the ids they may quote.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from callcenter.common.events import NotificationRequested
from callcenter.common.pii import redact
from callcenter.common.sealing import SealError, code_context, unseal


@dataclass(slots=True, frozen=True, kw_only=True)
class Message:
    """A rendered notification: ``subject`` (email only), the body, and the body as stored."""

    subject: str
    text: str
    #: ``text`` with any one-time code masked: what the ``notifications`` row keeps.
    stored_text: str


def _money(value: Any) -> str:
    text = str(value or "")
    return text if not text or text.startswith("$") else f"${text}"


def _items(details: dict[str, Any]) -> str:
    items = [str(i) for i in details.get("items") or []]
    return ", ".join(items) if items else "the items we discussed"


def _address(details: dict[str, Any]) -> str:
    a = details.get("shipping_address") or {}
    parts = [a.get("line1"), a.get("line2"), a.get("city"), a.get("state"), a.get("zip")]
    return ", ".join(str(p) for p in parts if p)


def _body(event: NotificationRequested, company: str, code: str) -> tuple[str, list[str]]:
    d = event.details
    kind = event.kind
    if kind == "verification_code":
        minutes = d.get("expires_in_minutes", 10)
        return f"Your {company} verification code", [
            f"Your verification code is {code}.",
            f"It expires in {minutes} minutes and works once. If you did not ask for it, ignore "
            "this message; nobody can use your account without it.",
        ]
    if kind == "return_confirmation":
        return f"Your return {d.get('return_id')} for order {d.get('order_id')}", [
            f"We started your return {d.get('return_id')} for order {d.get('order_id')}: "
            f"{_items(d)}.",
            f"Prepaid return label: {d.get('label_url')}",
            f"Print it, attach it to the parcel and drop it off with the carrier. Your refund of "
            f"{_money(d.get('refund_amount'))} is issued once the items arrive.",
        ]
    if kind == "exchange_confirmation":
        return f"Your exchange {d.get('exchange_id')} for order {d.get('order_id')}", [
            f"We started your exchange {d.get('exchange_id')} for order {d.get('order_id')}: "
            f"{_items(d)}.",
            f"Prepaid return label: {d.get('label_url')}",
            "Send the original items back with it; the new ones ship once the carrier scans the "
            f"parcel. Price difference: {_money(d.get('price_difference'))}.",
        ]
    if kind == "cancellation_confirmation":
        return f"Order {d.get('order_id')} is cancelled", [
            f"Your order {d.get('order_id')} is cancelled.",
            f"The full amount, {_money(d.get('refund_amount'))}, goes back to your original payment "
            "method within 5 to 10 business days.",
        ]
    return f"New shipping address for order {d.get('order_id')}", [
        f"Order {d.get('order_id')} will now ship to: {_address(d)}.",
        "If you did not ask for this change, reply to this message straight away.",
    ]


def open_code(event: NotificationRequested, key: bytes | None) -> str:
    """The one-time code sealed in a ``verification_code`` notification.

    Raises:
        SealError: no key here, or not the key (or the event) the tools service sealed it with.

    """
    sealed = event.details.get("code_sealed")
    if not isinstance(sealed, str) or key is None:
        raise SealError("no sealed code, or notifications.code_key is not set here")
    return unseal(key, sealed, context=code_context(event.event_id, event.customer_id))


def render_notification(
    event: NotificationRequested, *, company: str, key: bytes | None = None
) -> Message:
    """The message for ``event`` (SMS: one short paragraph; email: with greeting and sign-off).

    Raises:
        SealError: a verification code that does not open with ``key``.

    """
    code = open_code(event, key) if event.kind == "verification_code" else ""
    subject, lines = _body(event, company, code)
    if event.via == "sms":
        text = f"{company}: " + " ".join(lines)
    else:
        text = "Hello,\n\n" + "\n\n".join(lines) + f"\n\n{company} Support\n"
    stored = text.replace(code, "••••••") if code else text
    return Message(subject=subject, text=text, stored_text=redact(stored))
