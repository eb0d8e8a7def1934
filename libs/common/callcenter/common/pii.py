"""Redaction of card numbers, SSNs and one-time codes from text.

Two entry points:

- :func:`redact_customer_text` runs once where customer text enters the system (the gateway's
  chat and SMS routes, the voice pipeline's transcripts and keypad turns, and again in the
  conversation service on receipt), so no store, event, log, email or ticket ever holds a raw card
  number or SSN. One-time codes pass there: the customer must be able to give one to
  ``verify_identity`` (they are single-use and expire).
- :func:`redact` (cards, SSNs and one-time codes) is used by logging, transcript storage, events
  and email, so the same rules apply everywhere.

What is caught:

- **card numbers**: 13 to 19 digits that pass the Luhn check, written together or in groups
  separated by spaces, dashes, dots, slashes or underscores (any mix, up to three separator
  characters between digits, e.g. ``4111.1111.1111.1111`` or ``4111 - 1111 - ...``); a card run
  straight into other digit groups is still found (any run of whole groups that passes);
- **SSNs**: ``3-2-4`` digits with any of those separators (``078-05-1120``, ``078.05.1120``,
  ``078 05 1120``) always; 9 digits with no separator (``078051120``) when "SSN", "social
  security (number)" or "social" comes shortly before;
- **one-time codes**: 4 to 8 digits after "code", "passcode", "PIN", "OTP" and the like.

Not caught: numbers spelled out in words ("four one one one ..."), card numbers that fail Luhn
(typos), partial numbers ("the last four are 1111"), a bare 9-digit SSN with no SSN context
before it, and numbers split by other words.
"""

from __future__ import annotations

import re
from collections.abc import Callable

_SEP = r"[ \t.\-/_]"
#: Runs of digit groups, groups joined by at most two separator characters.
_DIGIT_RUN = re.compile(rf"(?<!\d)\d+(?:{_SEP}{{1,3}}\d+)*(?!\d)")
_GROUP = re.compile(r"\d+")
_SSN = re.compile(rf"(?<!\d)\d{{3}}{_SEP}\d{{2}}{_SEP}\d{{4}}(?![\d])")
_SSN_IN_CONTEXT = re.compile(
    r"(?i)\b(ssn|social(?:\s+security)?(?:\s+(?:number|no\.?|#))?)\b([^\d]{0,24})(\d{9})(?!\d)"
)
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


def _is_card(digits: str) -> bool:
    return 13 <= len(digits) <= 19 and _luhn_ok(digits)


def _cards_in_run(match: re.Match[str]) -> str:
    """The run with every stretch of whole digit groups that is a card number masked."""
    run = match.group(0)
    groups = [(m.start(), m.end()) for m in _GROUP.finditer(run)]
    pieces: list[str] = []
    done = 0  # index into run up to which output is written
    first = 0
    while first < len(groups):
        found = None
        digits = ""
        for last in range(first, len(groups)):
            digits += run[groups[last][0] : groups[last][1]]
            if len(digits) > 19:
                break
            if _is_card(digits):
                found = last  # keep the longest card starting here
        if found is None:
            first += 1
            continue
        start, end = groups[first][0], groups[found][1]
        pieces.append(run[done:start] + CARD_MASK)
        done = end
        first = found + 1
    pieces.append(run[done:])
    return "".join(pieces)


def redact_customer_text(text: str) -> str:
    """Card numbers and SSNs in customer text replaced by markers (one-time codes kept)."""
    if not text or not any(char.isdigit() for char in text):
        return text
    text = _DIGIT_RUN.sub(_cards_in_run, text)
    text = _SSN.sub(SSN_MASK, text)
    return _SSN_IN_CONTEXT.sub(lambda m: m.group(1) + m.group(2) + SSN_MASK, text)


def redact(text: str) -> str:
    """Replace PII (cards, SSNs, one-time codes) in ``text`` with markers; other text unchanged."""
    if not text:
        return text
    text = redact_customer_text(text)
    return _OTP.sub(lambda m: m.group(1) + OTP_MASK, text)


def _map_strings(value: object, change: Callable[[str], str]) -> object:
    if isinstance(value, str):
        return change(value)
    if isinstance(value, dict):
        return {key: _map_strings(item, change) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_map_strings(item, change) for item in value]
    return value


def redact_value(value: object) -> object:
    """Redact strings inside nested dicts and lists."""
    return _map_strings(value, redact)


def redact_customer_value(value: object) -> object:
    """:func:`redact_customer_text` on strings inside nested dicts and lists."""
    return _map_strings(value, redact_customer_text)
