"""The offline summariser: extractive summary, lexicon sentiment, agreed actions from tool calls.

Deterministic and instant; used when no LLM is configured and as the fallback when every model
fails. It reads what the customer said, which tools ran and what the assistant said last.
"""

from __future__ import annotations

import re
from typing import Any

from callcenter.post_call.summary.base import CallSummary, Summarizer, TranscriptTurn

POSITIVE = {
    "thanks", "thank", "great", "perfect", "awesome", "excellent", "helpful", "appreciate",
    "good", "happy", "wonderful", "fantastic", "love", "glad", "nice", "resolved", "brilliant",
}  # fmt: skip
NEGATIVE = {
    "angry", "terrible", "awful", "worst", "horrible", "useless", "ridiculous", "frustrated",
    "frustrating", "annoyed", "upset", "disappointed", "unacceptable", "bad", "broken", "wrong",
    "late", "never", "hate", "complaint", "damaged", "missing", "waste", "poor", "furious",
}  # fmt: skip
STRONG_NEGATIVE = {"terrible", "worst", "horrible", "unacceptable", "furious", "hate", "ridiculous"}
NEGATIONS = {"not", "no", "never", "don't", "didn't", "isn't", "wasn't", "doesn't", "can't"}
UNRESOLVED_CUES = (
    "still not", "not resolved", "doesn't help", "didn't help", "not helpful", "speak to a human",
    "real person", "an agent", "a human", "representative", "manager", "supervisor", "escalate",
)  # fmt: skip

#: Topic -> words that suggest it (in what the customer said).
TOPIC_WORDS: dict[str, tuple[str, ...]] = {
    "order status": (
        "where is my order",
        "order status",
        "tracking",
        "track",
        "delivery",
        "arrive",
    ),
    "return": ("return", "send back", "refund"),
    "exchange": ("exchange", "swap", "different size", "different color"),
    "cancellation": ("cancel",),
    "shipping address": ("address", "ship to"),
    "payment": ("payment", "charge", "charged", "card", "billing", "invoice"),
    "account": ("account", "password", "login", "email address"),
    "product question": ("size", "stock", "available", "product", "warranty"),
    "complaint": ("complaint", "complain", "damaged", "broken", "wrong item"),
}
#: Tool -> topic, and whether a success is something agreed with the customer.
TOOL_TOPICS: dict[str, tuple[str, bool]] = {
    "check_order_status": ("order status", False),
    "list_recent_orders": ("order status", False),
    "cancel_order": ("cancellation", True),
    "update_shipping_address": ("shipping address", True),
    "start_return": ("return", True),
    "exchange_items": ("exchange", True),
    "schedule_callback": ("callback", True),
    "create_ticket": ("ticket", True),
    "transfer_to_agent": ("transfer to agent", True),
    "search_knowledge_base": ("policy question", False),
}
AGREED_VERBS = {
    "cancel_order": "cancel the order",
    "update_shipping_address": "update the shipping address",
    "start_return": "start a return",
    "exchange_items": "exchange the items",
    "schedule_callback": "call you back",
    "create_ticket": "open a support ticket",
    "transfer_to_agent": "pass the conversation to a human agent",
}
_WORD = re.compile(r"[a-z']+")
_SENTENCE = re.compile(r"(?<=[.!?])\s+")
_ID_KEYS = ("order_id", "return_id", "exchange_id", "ticket_id", "callback_id", "tracking_number")


def _clip(text: str, limit: int = 160) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _first_sentence(text: str) -> str:
    return _SENTENCE.split(" ".join(text.split()), maxsplit=1)[0] if text.strip() else ""


def lexicon_score(texts: list[str]) -> tuple[int, int, bool]:
    """Positive and negative word counts (a negation flips the next word), and strong negativity."""
    pos = neg = 0
    strong = False
    for text in texts:
        words = _WORD.findall(text.lower())
        for i, word in enumerate(words):
            negated = any(w in NEGATIONS for w in words[max(0, i - 2) : i])
            if word in POSITIVE:
                if negated:
                    neg += 1
                else:
                    pos += 1
            elif word in NEGATIVE and not negated:
                neg += 1
                strong = strong or word in STRONG_NEGATIVE
    return pos, neg, strong


def _tool_ids(result: Any) -> list[str]:
    if not isinstance(result, dict):
        return []
    data = result.get("data", result)
    if not isinstance(data, dict):
        return []
    return [f"{key.replace('_', ' ')} {data[key]}" for key in _ID_KEYS if data.get(key)]


class OfflineSummarizer(Summarizer):
    """Extractive, deterministic, instant."""

    async def summarize(
        self, *, channel: str, reason: str, turns: list[TranscriptTurn]
    ) -> tuple[CallSummary, str]:
        """Summarise from the customer's words, the tools that ran and the last reply."""
        user_texts = [t.user_text for t in turns if t.user_text.strip()]
        calls = [c for t in turns for c in t.tool_calls]
        topics: list[str] = []
        lowered = " ".join(user_texts).lower()
        for topic, words in TOPIC_WORDS.items():
            if any(w in lowered for w in words):
                topics.append(topic)
        agreed: list[str] = []
        failed: list[str] = []
        for call in calls:
            name = str(call.get("name", ""))
            topic, is_agreement = TOOL_TOPICS.get(name, (None, False))
            if topic and topic not in topics:
                topics.append(topic)
            if not call.get("success", False):
                failed.append(name)
            elif is_agreement:
                ids = _tool_ids(call.get("result"))
                verb = AGREED_VERBS.get(name, name.replace("_", " "))
                agreed.append(verb + (f" ({', '.join(ids)})" if ids else ""))

        pos, neg, strong = lexicon_score(user_texts)
        last_user = user_texts[-1].lower() if user_texts else ""
        escalated = any(c.get("name") == "transfer_to_agent" for c in calls) or "transfer" in reason
        unresolved_cue = any(cue in last_user for cue in UNRESOLVED_CUES)
        resolved = (
            bool(turns)
            and not escalated
            and not unresolved_cue
            and not (failed and not agreed and neg > pos)
        )
        if neg > pos:
            sentiment = "negative"
        elif pos > neg:
            sentiment = "positive"
        else:
            sentiment = "neutral"
        satisfaction = {"positive": 4, "neutral": 3, "negative": 2}[sentiment]
        if sentiment == "positive" and resolved and pos >= 2:
            satisfaction = 5
        if strong:
            satisfaction = 1
        if not resolved:
            satisfaction = max(1, min(satisfaction, 2) if sentiment != "positive" else 3)

        summary = self._summary_text(
            channel=channel, turns=turns, topics=topics, agreed=agreed, failed=failed,
            resolved=resolved, reason=reason,
        )  # fmt: skip
        follow_up = None
        if agreed:
            follow_up = "We agreed to " + "; ".join(agreed) + "."
        elif not resolved:
            follow_up = "Your request is not fully resolved yet; our team will follow up."
        result = CallSummary(
            summary=summary,
            sentiment=sentiment,
            satisfaction=satisfaction,
            resolved=resolved,
            topics=topics[:6] or ["general enquiry"],
            follow_up_needed=bool(agreed) or not resolved,
            follow_up=follow_up,
        )
        return result, "offline"

    @staticmethod
    def _summary_text(
        *,
        channel: str,
        turns: list[TranscriptTurn],
        topics: list[str],
        agreed: list[str],
        failed: list[str],
        resolved: bool,
        reason: str,
    ) -> str:
        if not turns:
            return f"The {channel} conversation ended ({reason}) before the customer said anything."
        about = ", ".join(topics[:3]) if topics else "a general enquiry"
        first = next((t.user_text for t in turns if t.user_text.strip()), "")
        parts = [f"The customer contacted us by {channel} about {about}."]
        if first:
            parts.append(f'They said: "{_clip(_first_sentence(first) or first)}"')
        if agreed:
            parts.append("Agreed: " + "; ".join(agreed) + ".")
        if failed:
            parts.append("Failed actions: " + ", ".join(sorted(set(failed))) + ".")
        last_reply = next(
            (t.assistant_text for t in reversed(turns) if t.assistant_text.strip()), ""
        )
        if last_reply:
            parts.append(f'Last reply: "{_clip(_first_sentence(last_reply) or last_reply)}"')
        parts.append("Resolved." if resolved else "Not resolved.")
        return " ".join(parts)
