"""Redaction of card numbers, SSN-like numbers and one-time codes from text.

Used by logging, transcript storage, events and email, so the same rules apply everywhere.
"""

from __future__ import annotations

import re

_CARD = re.compile(r"(?<!\d)(?:\d[ -]?){12,18}\d(?!\d)")
_SSN = re.compile(r"(?<!\d)\d{3}[- ]\d{2}[- ]\d{4}(?!\d)")
_OTP = re.compile(
    r"(?i)\b((?:one[- ]time|verification|security|otp|passcode|pin)\s*(?:code|number)?\s*(?:is|:|=)?\s*)(\d{4,8})\b"
)
CARD_MASK = "[card redacted]"
SSN_MASK = "[ssn redacted]"
OTP_MASK = "[code redacted]"


def _luhn_ok(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2 == 1:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def _card(match: re.Match[str]) -> str:
    digits = re.sub(r"\D", "", match.group(0))
    if 13 <= len(digits) <= 19 and _luhn_ok(digits):
        return CARD_MASK
    return match.group(0)


def redact(text: str) -> str:
    """Replace PII in ``text`` with markers; other text is unchanged."""
    if not text:
        return text
    text = _CARD.sub(_card, text)
    text = _SSN.sub(SSN_MASK, text)
    text = _OTP.sub(lambda m: m.group(1) + OTP_MASK, text)
    return text


def redact_value(value: object) -> object:
    """Redact strings inside nested dicts and lists."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {key: redact_value(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [redact_value(item) for item in value]
    return value
