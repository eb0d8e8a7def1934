"""Keeping the history inside a token budget.

Tokens are estimated (about four characters per token, plus a few per message): exact counts
would need each provider's tokenizer, and the budget only has to keep prompts small and bounded.
Old turns are dropped whole (a user message and everything after it up to the next user
message), so a tool result never loses the assistant message that asked for it.
"""

from __future__ import annotations

import json
import re
from typing import Any

Message = dict[str, Any]

PER_MESSAGE_TOKENS = 4


def estimate_tokens(message: Message) -> int:
    """Roughly how many tokens a message costs in a prompt."""
    size = len(message.get("content") or "")
    if message.get("tool_calls"):
        size += len(json.dumps(message["tool_calls"]))
    return size // 4 + PER_MESSAGE_TOKENS


def split_turns(history: list[Message]) -> list[list[Message]]:
    """Group messages into turns, each starting at a user message."""
    turns: list[list[Message]] = []
    for message in history:
        if message.get("role") == "user" or not turns:
            turns.append([message])
        else:
            turns[-1].append(message)
    return turns


def trim_history(history: list[Message], budget_tokens: int) -> list[Message]:
    """The most recent whole turns that fit ``budget_tokens`` (the last turn is always kept)."""
    turns = split_turns(history)
    kept: list[list[Message]] = []
    used = 0
    for turn in reversed(turns):
        cost = sum(estimate_tokens(m) for m in turn)
        if kept and used + cost > budget_tokens:
            break
        kept.append(turn)
        used += cost
    out = [m for turn in reversed(kept) for m in turn]
    while out and out[0].get("role") == "tool":  # a history never starts inside a tool round
        out.pop(0)
    return out


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def keep_delivered(turn: list[Message], delivered: str) -> list[Message]:
    """One turn's messages with the assistant's words cut to what the customer received.

    The assistant's texts of the turn, in order, make up what was sent. When ``delivered`` is a
    prefix of that (spacing aside), each text is cut where the delivered part ends; otherwise
    (a speech engine may report the heard words differently) the texts give way to ``delivered``
    as the turn's one answer. Tool rounds stay: their effects happened.
    """
    out = [dict(m) for m in turn]
    spoken = [m for m in out if m.get("role") == "assistant" and m.get("content")]
    full = " ".join(_norm(m["content"]) for m in spoken)
    said = _norm(delivered)
    if full.startswith(said):
        remaining = len(said)
        for message in spoken:
            text = _norm(message["content"])
            message["content"] = text[: max(remaining, 0)].strip() or None
            remaining -= len(text) + 1
    else:
        for message in spoken:
            message["content"] = None
        if said:
            out.append({"role": "assistant", "content": said})
    return [
        m
        for m in out
        if not (m.get("role") == "assistant" and not m.get("content") and not m.get("tool_calls"))
    ]
