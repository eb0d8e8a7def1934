"""Split a long answer into SMS messages at sentence boundaries.

Twilio accepts message bodies of up to 1600 characters, counted in UTF-16 code units (an emoji
counts two). Sentences are packed greedily; a sentence longer than the limit is split between
words, and a word longer than the limit is cut.
"""

from __future__ import annotations

import re

MAX_SMS_CHARS = 1600

_SENTENCE_END = re.compile(r"(?<=[.!?…])\s+|\n+")
_WORD_GAP = re.compile(r"\s+")


def sms_length(text: str) -> int:
    """Length as Twilio counts it (UTF-16 code units)."""
    return len(text.encode("utf-16-le")) // 2


def _cut(word: str, limit: int) -> list[str]:
    pieces: list[str] = []
    start, length = 0, 0
    for index, char in enumerate(word):
        width = 2 if ord(char) > 0xFFFF else 1
        if length + width > limit:
            pieces.append(word[start:index])
            start, length = index, 0
        length += width
    return [*pieces, word[start:]] if start < len(word) else pieces


def _pack(units: list[str], limit: int, joiner: str) -> list[str]:
    messages: list[str] = []
    current = ""
    for unit in units:
        candidate = f"{current}{joiner}{unit}" if current else unit
        if sms_length(candidate) <= limit:
            current = candidate
            continue
        if current:
            messages.append(current)
        current = unit
    if current:
        messages.append(current)
    return messages


def split_message(text: str, *, limit: int = MAX_SMS_CHARS) -> list[str]:
    """``text`` as SMS bodies of at most ``limit`` characters each (none when it is blank)."""
    text = text.strip()
    if not text:
        return []
    if sms_length(text) <= limit:
        return [text]
    units: list[str] = []
    for sentence in filter(None, (s.strip() for s in _SENTENCE_END.split(text))):
        if sms_length(sentence) <= limit:
            units.append(sentence)
            continue
        words: list[str] = []
        for word in _WORD_GAP.split(sentence):
            words.extend(_cut(word, limit) if sms_length(word) > limit else [word])
        units.extend(_pack(words, limit, " "))
    return _pack(units, limit, " ")
