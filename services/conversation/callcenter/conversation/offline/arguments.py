"""Filling a tool's arguments from what the offline engine knows, guided by the tool's schema.

The tools service publishes each tool's JSON schema; the offline engine fills the properties it
has a value for (by name and common synonyms), picks enum values by the customer's words, and
leaves out what the schema does not list, so a renamed or added property does not break it.
"""

from __future__ import annotations

import re
from typing import Any

SYNONYMS: dict[str, tuple[str, ...]] = {
    "order_id": ("order_id", "order_number", "order"),
    "zip": ("zip", "zip_code", "postal_code", "postcode"),
    "phone": ("phone", "phone_number", "number"),
    "email": ("email", "email_address"),
    "code": ("code", "one_time_code", "otp"),
    "query": ("query", "question", "q", "search"),
    "reason": ("reason", "why"),
    "address": ("address", "new_address", "shipping_address"),
    "preferred_time": ("preferred_time", "time", "when", "scheduled_for"),
    "item_ids": ("item_ids",),
    "items": ("items",),
    "subject": ("subject", "title"),
    "description": ("description", "details", "body"),
    "method": ("method",),
    "customer_id": ("customer_id",),
    "first_name": ("first_name",),
    "last_name": ("last_name",),
    "queue": ("queue", "team", "department"),
    "priority": ("priority",),
    "refund_method": ("refund_method",),
    "limit": ("limit",),
}

#: words that choose an enum value (value -> pattern)
ENUM_HINTS: dict[str, str] = {
    "does not fit": r"\b(fit|too (small|big|large|tight|loose)|size)\b",
    "damaged or defective": r"\b(damaged|broken|defective|faulty|ripped|torn|stopped working)\b",
    "not as described": r"\b(not as described|different from|looks different|not what)\b",
    "wrong item": r"\b(wrong (item|one|thing|size|colou?r))\b",
    "changed my mind": r"\b(changed my mind|don'?t (want|need|like)|no longer|not needed)\b",
    "no longer needed": r"\b(no longer|don'?t (need|want)|not needed|changed my mind)\b",
    "ordered by mistake": r"\b(mistake|accident\w*|by error|wrong)\b",
    "found a better price": r"\b(cheaper|better price|lower price|price)\b",
    "gift_card": r"\b(gift card|store credit)\b",
    "urgent": r"\b(urgent|asap|immediately|emergency)\b",
    "high": r"\b(angry|furious|unacceptable|terrible|awful|worst)\b",
    "returns": r"\b(return|refund|exchange)\b",
    "orders": r"\b(order|delivery|shipping|package|cancel)\b",
    "billing": r"\b(bill|charge|payment|card|invoice)\b",
    "technical": r"\b(website|app|login|password|error)\b",
}


def properties(tool: dict[str, Any]) -> dict[str, Any]:
    """The parameter properties of an OpenAI function tool."""
    params = tool.get("function", {}).get("parameters") or {}
    return params.get("properties") or {}


def required(tool: dict[str, Any]) -> list[str]:
    """Names of the required parameters."""
    params = tool.get("function", {}).get("parameters") or {}
    return list(params.get("required") or [])


def _enum_values(spec: dict[str, Any]) -> list[str] | None:
    if "enum" in spec:
        return [str(v) for v in spec["enum"]]
    for option in spec.get("anyOf") or spec.get("oneOf") or []:
        if isinstance(option, dict) and "enum" in option:
            return [str(v) for v in option["enum"]]
    return None


def pick_enum(values: list[str], text: str, default: str | None = None) -> str:
    """The enum value the customer's words point to (else ``default``, "other" or the first)."""
    for value in values:
        hint = ENUM_HINTS.get(value)
        if hint and re.search(hint, text, re.IGNORECASE):
            return value
    for value in values:
        if value.replace("_", " ").lower() in text.lower():
            return value
    if default in values:
        return default  # type: ignore[return-value]
    return "other" if "other" in values else values[0]


def fill(tool: dict[str, Any], slots: dict[str, Any], *, text: str) -> dict[str, Any]:
    """Arguments for ``tool`` from ``slots`` (canonical names), limited to its schema."""
    out: dict[str, Any] = {}
    for name, spec in properties(tool).items():
        spec = spec if isinstance(spec, dict) else {}
        value = None
        for canonical, names in SYNONYMS.items():
            if name in names and slots.get(canonical) is not None:
                value = slots[canonical]
                break
        if value is None and name in slots:
            value = slots[name]
        enum = _enum_values(spec)
        if enum is not None:
            if value is not None and str(value) in enum:
                out[name] = value
            elif name in required(tool) or value is not None or slots.get("_choose_enums"):
                out[name] = pick_enum(enum, text, spec.get("default"))
            continue
        if value is not None:
            out[name] = value
    return out
