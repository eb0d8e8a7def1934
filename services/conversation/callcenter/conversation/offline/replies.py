"""What the offline engine says about a tool's result, in plain sentences."""

from __future__ import annotations

from datetime import datetime
from typing import Any

CAPABILITIES = (
    "I can check an order's status, help with returns, exchanges, cancellations and address "
    "changes, answer questions about our policies, open a ticket, schedule a callback, or "
    "connect you with a colleague."
)
ASK_VERIFY = (
    "To verify your identity, please tell me an order number on your account and the ZIP code "
    "it ships to."
)
SORRY = "I'm sorry about that; that's not the experience we want you to have. "
FALLBACK = (
    "Sorry, I'm not sure I can help with that. " + CAPABILITIES + " Shall I connect you with a "
    "colleague now?"
)
ENGLISH_ONLY = (
    "Sorry, I can only help in English for now. Would you like me to connect you with a "
    "colleague? (Lo siento, solo puedo ayudar en inglés. / Désolé, je ne peux aider qu'en anglais.)"
)
ASK_VERIFY_CODE = "Please tell me the one-time code we sent you, and the email on your account."


def _when(value: Any) -> datetime | str | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return str(value)


def day(value: Any) -> str | None:
    """``"Tuesday, March 4"`` from an ISO timestamp (None when there is none)."""
    when = _when(value)
    if not isinstance(when, datetime):
        return when
    return f"{when:%A}, {when:%B} {when.day}"


def moment(value: Any) -> str | None:
    """``"Tuesday, March 4 at 3:00 PM"``."""
    when = _when(value)
    if not isinstance(when, datetime):
        return when
    return f"{day(value)} at " + f"{when:%I:%M %p}".lstrip("0")


def words(value: Any) -> str:
    """``"in transit"`` from ``"in_transit"``."""
    return str(value).replace("_", " ").strip()


def order_status(data: dict[str, Any]) -> str:
    """An order's status in a sentence or three."""
    order = data.get("order_id", "Your order")
    status = words(data.get("status") or "being processed")
    parts = [f"Order {order} is {status}."]
    shipment = words(data.get("shipment_status") or "")
    if data.get("delivered_at"):
        parts = [f"Order {order} was delivered on {day(data['delivered_at'])}."]
    elif data.get("carrier") and data.get("tracking_number"):
        line = f"It's with {data['carrier']}, tracking number {data['tracking_number']}"
        if shipment and shipment != status:
            line += f", currently {shipment}"
        parts.append(line + ".")
        if data.get("estimated_delivery"):
            parts.append(f"It should arrive by {day(data['estimated_delivery'])}.")
    elif data.get("estimated_delivery"):
        parts.append(f"It should arrive by {day(data['estimated_delivery'])}.")
    items = data.get("items") or []
    if data.get("verified") and items:
        names = [str(i.get("product")) for i in items if i.get("product")][:3]
        if names:
            parts.append("It contains " + _join(names) + ".")
    if data.get("status") == "cancelled" and data.get("cancel_reason"):
        parts.append(f"It was cancelled ({words(data['cancel_reason'])}).")
    return " ".join(parts)


def recent_orders(data: dict[str, Any]) -> str:
    """The customer's latest orders."""
    orders = data.get("orders") or []
    if not orders:
        return "I don't see any orders on your account."
    lines = [f"{o.get('order_id')} ({words(o.get('status', ''))})" for o in orders[:3]]
    count = len(orders)
    lead = (
        "Your most recent order is"
        if count == 1
        else f"Your {min(count, 3)} most recent orders are"
    )
    return f"{lead} {_join(lines)}. Which one can I help with?"


def about_me(persona: str) -> str:
    """What the assistant says when asked whether it is a bot."""
    return (
        f"I'm {persona}: a virtual assistant, not a person. I can help with your orders and our "
        "policies, and connect you with a colleague whenever you like."
    )


def cancelled(data: dict[str, Any]) -> str:
    """A cancellation confirmation."""
    text = f"Done: order {data.get('order_id')} is cancelled."
    if data.get("refund_amount"):
        text += f" You'll get {_money(data['refund_amount'])} back."
    return _confirmation(_then(text, data, "refund_note"), data)


def returned(data: dict[str, Any]) -> str:
    """A return confirmation."""
    products = [str(i.get("product")) for i in data.get("items") or [] if i.get("product")]
    what = _join(products) if products else "your items"
    text = (
        f"I've started return {data.get('return_id')} for {what} from order {data.get('order_id')}."
    )
    if data.get("refund_amount"):
        text += f" Your refund will be {_money(data['refund_amount'])}."
    return _then(text, data)


def exchanged(data: dict[str, Any]) -> str:
    """An exchange confirmation."""
    swaps = []
    for item in data.get("items") or []:
        options = item.get("to_options") or {}
        target = ", ".join(str(v) for v in options.values()) if isinstance(options, dict) else ""
        swaps.append(
            f"{item.get('product', 'your item')} in {target}"
            if target
            else str(item.get("product"))
        )
    text = f"I've set up exchange {data.get('exchange_id')} for {_join(swaps) or 'your items'}."
    return _then(text, data)


def address_changed(data: dict[str, Any]) -> str:
    """An address-change confirmation."""
    address = data.get("shipping_address") or {}
    where = ", ".join(
        str(address[k]) for k in ("line1", "line2", "city", "state", "zip") if address.get(k)
    )
    return _confirmation(f"Order {data.get('order_id')} will now ship to {where}.", data)


def ticket(data: dict[str, Any]) -> str:
    """A ticket confirmation."""
    return _then(f"I've opened ticket {data.get('ticket_id')} for you.", data)


def callback(data: dict[str, Any]) -> str:
    """A callback confirmation."""
    when = data.get("when_local") or moment(data.get("scheduled_for") or data.get("preferred_time"))
    text = "I've scheduled a callback"
    if when:
        text += f" for {when}"
    if data.get("phone"):
        text += f" to {data['phone']}"
    return text + "."


def verified(data: dict[str, Any]) -> str:
    """A verification success."""
    name = data.get("first_name")
    return f"Thanks{', ' + str(name) if name else ''}, you're verified."


def found_account(data: dict[str, Any]) -> str:
    """The result of an account lookup."""
    if data.get("verified"):
        name = data.get("first_name") or data.get("name")
        return f"I found your account{', ' + str(name) if name else ''}. How can I help?"
    return "Before I can look at an account, I need to verify that it's yours. " + ASK_VERIFY


def _confirmation(text: str, data: dict[str, Any]) -> str:
    """``text`` plus where the tool says a confirmation is being sent (only if it says so)."""
    sent = data.get("confirmation") or {}
    if not sent.get("to"):
        return text
    how = "texted" if sent.get("via") == "sms" else "emailed"
    return f"{text} A confirmation is being {how} to {sent['to']}."


def code_requested(data: dict[str, Any]) -> str:
    """What ``send_verification_code`` said it did."""
    return str(data.get("message") or "") + " When it arrives, tell me the code."


def _then(text: str, data: dict[str, Any], key: str = "next_steps") -> str:
    """``text`` followed by the tool's own note on what happens next, if it gave one."""
    return f"{text} {data[key]}" if data.get(key) else text


def _join(items: list[str]) -> str:
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def _money(value: Any) -> str:
    if isinstance(value, int | float):
        return f"${value:,.2f}"
    text = str(value)
    return text if text.startswith("$") else f"${text}"


RENDER = {
    "check_order_status": order_status,
    "list_recent_orders": recent_orders,
    "cancel_order": cancelled,
    "start_return": returned,
    "exchange_items": exchanged,
    "update_shipping_address": address_changed,
    "create_ticket": ticket,
    "schedule_callback": callback,
    "verify_identity": verified,
    "lookup_customer": found_account,
    "send_verification_code": code_requested,
}
