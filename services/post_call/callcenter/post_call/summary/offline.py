"""The offline summariser: the problem in plain words, each action's final outcome, what remains.

Deterministic and instant; used when no LLM is configured and as the fallback when every model
fails. It reads what the customer said, which tools ran (the last outcome of each action wins: a
return that failed and then succeeded is done) and what the assistant said last. "Resolved" only
when something answered or acted on the request, nothing the customer asked for is left failed,
and the conversation did not end on "I couldn't find anything" or a wish for a person.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
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
#: What an action did, in the customer's words (for the email), by tool.
DONE_FOR_CUSTOMER = {
    "cancel_order": "we cancelled your order",
    "update_shipping_address": "we changed the shipping address of your order",
    "start_return": "we started your return",
    "exchange_items": "we set up your exchange",
    "schedule_callback": "we booked a callback from our team",
    "create_ticket": "we opened a support ticket",
    "transfer_to_agent": "we passed your conversation to a colleague",
}
#: Problem words in what the customer said -> the problem in plain words.
PROBLEMS: tuple[tuple[tuple[str, ...], str], ...] = (
    (("torn", "ripped", "tear ", "a tear", "hole in"), "an item arrived torn"),
    (("damaged", "broken", "cracked", "defective", "faulty"), "an item arrived damaged"),
    (("wrong item", "wrong size", "wrong colour", "wrong color", "not what i ordered"),
     "the wrong item was delivered"),
    (("missing",), "something is missing from an order"),
    (("never arrived", "hasn't arrived", "has not arrived", "didn't arrive", "not arrived",
      "where is my order", "still waiting"), "an order has not arrived"),
    (("late", "delayed"), "an order is late"),
    (("charged twice", "double charged", "overcharged", "charged me"), "a charge is wrong"),
    (("doesn't fit", "does not fit", "too small", "too big", "too large"), "an item does not fit"),
    (("cancel",), "they want to cancel an order"),
    (("return", "send back", "refund"), "they want to return something"),
    (("exchange", "swap"), "they want to exchange an item"),
    (("address",), "they want to change a shipping address"),
    (("call me back", "callback", "call back"), "they want a call back"),
)  # fmt: skip
#: The assistant's last words that mean the request was not met.
FAILURE_REPLY_CUES = (
    "couldn't find", "could not find", "can't find", "cannot find", "no information",
    "i'm not able", "i am not able", "unable to", "i can't do", "i can't help", "isn't something",
    "i don't have", "something went wrong", "not available", "can't reach",
)  # fmt: skip
#: Tools that only look something up for the assistant (no answer to the customer on their own).
HELPERS = {"verify_identity", "lookup_customer"}
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


def _data(result: Any) -> dict[str, Any]:
    if not isinstance(result, dict):
        return {}
    data = result.get("data", result)
    return data if isinstance(data, dict) else {}


def _answered(name: str, result: Any) -> bool:
    """Whether a successful call actually gave the customer something (not an empty search)."""
    data = _data(result)
    if name == "search_knowledge_base":
        return bool(data.get("articles") or data.get("results"))
    if name == "list_recent_orders":
        return bool(data.get("orders"))
    return True


def _action_key(call: dict[str, Any]) -> str:
    args = call.get("arguments") or {}
    target = args.get("order_id") if isinstance(args, dict) else None
    return f"{call.get('name')}:{target or ''}"


def _problem(user_texts: list[str]) -> tuple[str | None, str]:
    """The problem in plain words (None when none is recognised) and the customer's own line."""
    for text in user_texts:
        lowered = " " + text.lower() + " "
        for words, problem in PROBLEMS:
            if any(w in lowered for w in words):
                sentence = next(
                    (
                        s
                        for s in _SENTENCE.split(" ".join(text.split()))
                        if any(w in " " + s.lower() + " " for w in words)
                    ),
                    text,
                )
                return problem, _clip(sentence)
    first = user_texts[0] if user_texts else ""
    return None, _clip(_first_sentence(first) or first)


def _tool_ids(result: Any) -> list[str]:
    if not isinstance(result, dict):
        return []
    data = result.get("data", result)
    if not isinstance(data, dict):
        return []
    return [f"{key.replace('_', ' ')} {data[key]}" for key in _ID_KEYS if data.get(key)]


@dataclass(slots=True)
class _Action:
    """The final outcome of one action (tool and order) in the conversation."""

    name: str
    success: bool
    ids: list[str] = field(default_factory=list)
    error: str | None = None
    answered: bool = True


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
        # The last outcome of each action wins: a later success overrides an earlier failure.
        actions: dict[str, _Action] = {}
        for call in calls:
            name = str(call.get("name", ""))
            topic, _ = TOOL_TOPICS.get(name, (None, False))
            if topic and topic not in topics:
                topics.append(topic)
            success = bool(call.get("success", False))
            actions[_action_key(call)] = _Action(
                name=name,
                success=success,
                ids=_tool_ids(call.get("result")) if success else [],
                error=None if success else str(call.get("error") or "failed"),
                answered=success and _answered(name, call.get("result")),
            )
        agreed = [
            AGREED_VERBS[a.name] + (f" ({', '.join(a.ids)})" if a.ids else "")
            for a in actions.values()
            if a.success and a.name in AGREED_VERBS
        ]
        done_for_customer = [
            DONE_FOR_CUSTOMER[a.name] + (f" ({', '.join(a.ids)})" if a.ids else "")
            for a in actions.values()
            if a.success and a.name in DONE_FOR_CUSTOMER
        ]
        outstanding = [
            f"{AGREED_VERBS.get(a.name, a.name.replace('_', ' '))} ({(a.error or '').replace('_', ' ')})"
            for a in actions.values()
            if not a.success and a.name not in HELPERS
        ]
        problem, their_words = _problem(user_texts)

        pos, neg, strong = lexicon_score(user_texts)
        last_user = user_texts[-1].lower() if user_texts else ""
        last_reply = next(
            (t.assistant_text for t in reversed(turns) if t.assistant_text.strip()), ""
        )
        escalated = any(c.get("name") == "transfer_to_agent" for c in calls) or "transfer" in reason
        unresolved_cue = any(cue in last_user for cue in UNRESOLVED_CUES)
        failed_reply = any(cue in last_reply.lower() for cue in FAILURE_REPLY_CUES)
        met = any(a.success and a.answered and a.name not in HELPERS for a in actions.values())
        resolved = (
            bool(turns)
            and met
            and not escalated
            and not unresolved_cue
            and not outstanding
            and not failed_reply
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

        remains = self._remains(
            resolved=resolved, outstanding=outstanding, escalated=escalated, problem=problem
        )
        summary = self._summary_text(
            channel=channel, turns=turns, topics=topics, problem=problem,
            their_words=their_words, agreed=agreed, outstanding=outstanding,
            remains=remains, resolved=resolved, reason=reason, last_reply=last_reply,
        )  # fmt: skip
        follow_up = self._for_customer(
            done=done_for_customer, resolved=resolved, escalated=escalated, remains=remains
        )
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
    def _remains(
        *, resolved: bool, outstanding: list[str], escalated: bool, problem: str | None
    ) -> list[str]:
        if resolved:
            return []
        remains = [f"could not {item}" for item in outstanding]
        if escalated:
            remains.append("a colleague takes over the conversation")
        if not remains:
            remains.append(
                f"the customer's problem ({problem}) is not solved yet"
                if problem
                else "the customer's request is not met yet"
            )
        return remains

    @staticmethod
    def _for_customer(
        *, done: list[str], resolved: bool, escalated: bool, remains: list[str]
    ) -> str | None:
        """What the follow-up email tells the customer: what we did and what happens next."""
        parts: list[str] = []
        if done:
            parts.append("Here is what we did: " + "; ".join(done) + ".")
        if resolved:
            if not done:
                return None
            parts.append("Any confirmations we promised come in separate messages.")
        elif escalated:
            parts.append("A colleague is taking over and will get back to you.")
        else:
            parts.append(
                "We have not finished helping you yet: our team will look into it and get back to "
                "you."
            )
        return " ".join(parts)

    @staticmethod
    def _summary_text(
        *,
        channel: str,
        turns: list[TranscriptTurn],
        topics: list[str],
        problem: str | None,
        their_words: str,
        agreed: list[str],
        outstanding: list[str],
        remains: list[str],
        resolved: bool,
        reason: str,
        last_reply: str,
    ) -> str:
        if not turns:
            return f"The {channel} conversation ended ({reason}) before the customer said anything."
        about = problem or (", ".join(topics[:3]) if topics else "a general enquiry")
        parts = [f"Problem ({channel}): {about}."]
        if their_words:
            parts.append(f'In their words: "{their_words}"')
        parts.append("Done: " + ("; ".join(agreed) if agreed else "nothing was changed") + ".")
        if outstanding:
            parts.append("Not done: " + "; ".join(outstanding) + ".")
        if remains:
            parts.append("Remains: " + "; ".join(remains) + ".")
        if last_reply:
            parts.append(f'Last reply: "{_clip(_first_sentence(last_reply) or last_reply)}"')
        parts.append("Resolved." if resolved else "Not resolved.")
        return " ".join(parts)
