"""The deterministic offline engine: a "model" that needs no LLM.

It reads the customer's words (order numbers, ZIP codes, codes, addresses, times, and what they
want), calls the same tools an LLM would through the same loop, and answers from their results.
It is the default when no LLM is configured and the last resort when every LLM fails. What it
waits for between turns (verification, an order number, an address…) lives in the session.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from callcenter.common.config.sections import ConversationSettings
from callcenter.conversation.llm.base import ModelEvent, ModelRequest, TextDelta, ToolCallRequest
from callcenter.conversation.offline import replies
from callcenter.conversation.offline.arguments import fill
from callcenter.conversation.offline.entities import Entities, clauses, extract, intents
from callcenter.conversation.offline.knowledge import answer
from callcenter.conversation.offline.language import correct, is_foreign
from callcenter.conversation.session import Session

#: intents whose tools need a verified customer
ACCOUNT_INTENTS = {"cancel", "address", "exchange", "return", "recent_orders"}
#: intents that verify first when the customer volunteered a ZIP code or a one-time code
VERIFY_FIRST = ACCOUNT_INTENTS | {"order_status", "callback"}
#: intents answered with words alone (they keep a pending request waiting)
CHAT_INTENTS = ("thanks", "greeting", "how_are_you", "bot", "yes")
INTENT_TOOL = {
    "cancel": "cancel_order",
    "address": "update_shipping_address",
    "return": "start_return",
    "exchange": "exchange_items",
    "recent_orders": "list_recent_orders",
    "order_status": "check_order_status",
    "knowledge": "search_knowledge_base",
    "ticket": "create_ticket",
    "complaint": "create_ticket",
    "angry": "transfer_to_agent",
    "callback": "schedule_callback",
    "transfer": "transfer_to_agent",
    "lookup": "lookup_customer",
    "verify": "verify_identity",
    "send_code": "send_verification_code",
}
ASK = {
    "order_id": "Which order is it? Please tell me the order number, like ORD-1001.",
    "address": "What's the new address? Please give the street, city, state and ZIP code.",
    "option": "What size or color would you like instead?",
    "time": "When should we call you back? For example, tomorrow at 3 PM.",
    "account": (
        "I'll send a one-time code to the email or phone number we have on file. What's the email "
        "address or phone number on your account?"
    ),
}
NOT_AVAILABLE = (
    "I can't do that from here right now, but I can connect you with a colleague who can."
)


@dataclass(slots=True)
class Step:
    """What the offline engine does next: say something, and/or call tools."""

    text: str = ""
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)


@dataclass(slots=True)
class Plan:
    """The intent being worked on in this turn, and what is known for it."""

    intent: str
    slots: dict[str, Any]


class OfflineModel:
    """Implements :class:`~callcenter.conversation.llm.base.ChatModel` without an LLM."""

    name = "offline"
    retries = 0

    def __init__(self, *, settings: ConversationSettings) -> None:
        self.settings = settings

    async def stream(self, request: ModelRequest) -> AsyncIterator[ModelEvent]:
        """The next step of the turn, as a model would stream it."""
        step = Brain(request, persona=self.settings.persona).next_step()
        if step.text:
            for piece in re.findall(r"\S+\s*", step.text):
                yield TextDelta(piece)
        if request.allow_tools:
            for name, arguments in step.calls:
                yield ToolCallRequest(
                    id="off_" + uuid.uuid4().hex[:12], name=name, arguments=json.dumps(arguments)
                )


class Brain:
    """One decision of the offline engine, over one model request."""

    def __init__(self, request: ModelRequest, *, persona: str = "the assistant") -> None:
        self.request = request
        self.persona = persona
        self.session: Session = request.session
        self.state = request.session.offline
        self.turn = request.turn
        self.scratch: dict[str, Any] = self.turn.scratch
        self.tools = {
            t["function"]["name"]: t for t in request.tools if isinstance(t.get("function"), dict)
        }
        self.text = self.turn.request.text

    # -- entry ---------------------------------------------------------------------------

    def next_step(self) -> Step:
        """Plan from the customer's words, or continue from the last tool results."""
        results = self._last_results()
        if not results:
            step = self._start()
        else:
            step = self._after(results)
        if not self.request.allow_tools and step.calls:
            step = Step(text=step.text or replies.CAPABILITIES)
        return step

    def _last_results(self) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
        """(tool, arguments, reply) of the latest tool round of this turn."""
        messages = self.turn.messages
        for index in range(len(messages) - 1, -1, -1):
            message = messages[index]
            if message.get("role") == "assistant" and message.get("tool_calls"):
                replies_by_id = {
                    m.get("tool_call_id"): m.get("content") for m in messages[index + 1 :]
                }
                out = []
                for call in message["tool_calls"]:
                    function = call.get("function", {})
                    try:
                        args = json.loads(function.get("arguments") or "{}")
                        reply = json.loads(replies_by_id.get(call.get("id")) or "{}")
                    except ValueError:
                        args, reply = {}, {}
                    out.append((function.get("name", ""), args, reply))
                return out
        return []

    # -- the first step of a turn ----------------------------------------------------------

    def _start(self) -> Step:
        found = extract(self.text)
        if found.order_id:
            self.state["order_id"] = found.order_id
        offered = self.state.pop("offered_human", False)
        if is_foreign(self.text):
            return self._offer_human(replies.ENGLISH_ONLY)
        words = correct(self.text)  # "wher is my ordr" reads as "where is my order"
        kinds = intents(words)
        pending = self.state.get("pending")
        intent = kinds[0] if kinds else None
        if offered and intent == "yes":  # the customer took the offer of a colleague
            return self._do(
                Plan("transfer", {"said": "The customer asked for a colleague."}), found
            )
        verified = bool(self.session.verified_customer_id)
        if pending and intent in (None, "verify", "order_status", *CHAT_INTENTS, pending["intent"]):
            slots = {**pending.get("slots", {}), **found.as_slots()}
            slots["said"] = f"{slots.get('said') or ''} {self.text}".strip()
            plan = Plan(pending["intent"], slots)
            if pending["need"] == "verify" and (found.zip or found.code or intent == "verify"):
                self.state.pop("pending", None)
                return self._verify(plan, found)
            if pending["need"] != "verify" and (
                _gives_details(found) or (not verified and (found.zip or found.code))
            ):
                # what was asked for, or another detail of the same request: carry on with it
                self.state.pop("pending", None)
                return self._do(plan, found)
        requests = clauses(words)
        if len(requests) > 1:
            return self._several(requests, found)
        if intent is None and found.order_id:
            intent = "order_status"
        if intent is None and (found.zip or found.code) and not verified:
            intent = "verify"
        if intent is not None and intent not in CHAT_INTENTS:
            self.state.pop("pending", None)
        if intent is None:
            intent = "knowledge"
        return self._do(Plan(intent, {**found.as_slots(), "said": self.text}), found)

    def _several(self, requests: list[tuple[str, str]], found: Entities) -> Step:
        """A message with several requests: the first now, the others after it, in order."""
        self.state.pop("pending", None)
        shared = found.as_slots()
        plans: list[Plan] = []
        for intent, words in requests:
            own = extract(words)
            slots = {**shared, **own.as_slots(), "said": words}
            if intent == "knowledge":
                slots["query"] = words
            same = _same_request(plans, intent, slots)
            if same is not None:  # "Unacceptable! It arrived torn." is one complaint, one ticket
                same.slots["said"] = f"{same.slots['said']} {words}"
                continue
            plans.append(Plan(intent, slots))
        self.scratch["queue"] = plans[1:]
        return self._do(plans[0], extract(requests[0][1]))

    def _offer_human(self, text: str) -> Step:
        """Say ``text``, which offers a colleague; a "yes" next takes the offer."""
        self.state["offered_human"] = True
        return Step(text=text)

    def _do(self, plan: Plan, found: Entities) -> Step:
        """Start working on ``plan``."""
        self.scratch["plan"] = plan
        intent, slots = plan.intent, plan.slots
        if intent == "greeting":
            return Step(text="Hi! How can I help you today?")
        if intent == "thanks":
            return Step(text="You're welcome. Is there anything else I can help with?")
        if intent == "how_are_you":
            return Step(text="I'm doing well, thank you for asking! How can I help you today?")
        if intent == "bot":
            return Step(text=replies.about_me(self.persona))
        if intent == "yes":
            return Step(text="Sure. What can I help you with?")
        if intent == "goodbye":
            calls = [("end_call", {})] if "end_call" in self.tools else []
            return Step(text="Thank you for contacting us. Have a great day, goodbye!", calls=calls)
        if intent == "verify":
            return self._verify(plan, found)
        tool = INTENT_TOOL.get(intent)
        if tool is None or tool not in self.tools:
            return Step(text=NOT_AVAILABLE)
        if intent in ("cancel", "address", "return", "exchange", "order_status"):
            slots.setdefault("order_id", self.state.get("order_id"))
            if not slots.get("order_id"):
                if intent == "order_status" and self.session.verified_customer_id:
                    return self._call("list_recent_orders", plan)
                return self._ask("order_id", plan)
        if intent in VERIFY_FIRST and not self.session.verified_customer_id:
            if slots.get("code") or (slots.get("zip") and slots.get("order_id")):
                # verify with what the customer already gave, then carry on with the request
                return self._verify(plan, _credentials(slots))
            if intent in ACCOUNT_INTENTS:
                return self._need_verification(plan, lead="")
        if intent == "address" and not slots.get("address"):
            return self._ask("address", plan)
        if intent == "exchange" and not (slots.get("size") or slots.get("color")):
            return self._ask("option", plan)
        if intent == "send_code" and not (slots.get("email") or slots.get("phone")):
            return self._ask("account", plan)
        if intent == "callback" and not slots.get("preferred_time"):
            return self._ask("time", plan)
        if intent in ("return", "exchange") and not slots.get("item_ids"):
            known = (self.state.get("items") or {}).get(slots["order_id"])
            if known:
                slots["item_ids"] = _pick_items(known, str(slots.get("said") or self.text))
            else:
                return self._call("check_order_status", plan)
        if intent == "order_status" and len(found.order_ids) > 1:
            calls = [("check_order_status", {"order_id": o}) for o in found.order_ids]
            return Step(calls=calls)
        return self._call(tool, plan)

    def _call(self, tool: str, plan: Plan) -> Step:
        slots = dict(plan.slots)
        text = self.text
        said = str(slots.get("said") or text)  # the words that asked for it (maybe turns ago)
        if tool == "search_knowledge_base":
            slots["query"] = correct(str(slots.get("query") or text))[:300]
            slots["limit"] = 10
        elif tool == "create_ticket":
            slots["subject"] = text[:80] if len(text) >= 3 else "Customer request"
            slots["description"] = self._context(600)
            slots["_choose_enums"] = True
        elif tool == "transfer_to_agent":
            slots["reason"] = text[:300] if len(text) >= 3 else "The customer asked for a person."
            slots["_choose_enums"] = True
        elif tool == "schedule_callback":
            slots["reason"] = slots.get("reason") or self._context(300)
            slots.setdefault("phone", None)
        elif tool in ("cancel_order", "start_return"):
            slots["reason"] = None
            slots["_choose_enums"] = True
        elif tool == "exchange_items":
            options = {
                k: v for k, v in (("size", slots.get("size")), ("color", slots.get("color"))) if v
            }
            slots["items"] = [
                {"item_id": i, "new_options": options} for i in slots.get("item_ids") or []
            ]
        arguments = fill(self.tools[tool], slots, text=said)
        return Step(calls=[(tool, arguments)])

    def _ask(self, need: str, plan: Plan) -> Step:
        self._wait_for(need, plan)
        return Step(text=ASK[need])

    def _wait_for(self, need: str, plan: Plan, *, keep_slots: bool = True) -> None:
        """Remember across turns that ``plan`` goes on once the customer gives ``need``."""
        slots = _plain(plan.slots) if keep_slots else {}
        self.state["pending"] = {"intent": plan.intent, "need": need, "slots": slots}

    def _context(self, limit: int) -> str:
        """The customer's recent words (for a ticket or a callback reason)."""
        said = [m.get("content") or "" for m in self.session.history if m.get("role") == "user"]
        said = [*said[-3:], self.text]
        return " / ".join(s for s in said if s)[:limit] or "Customer request"

    # -- verification --------------------------------------------------------------------

    def _caller_id(self, plan: Plan) -> Step | None:
        """Try the caller's number first, on the channels where it means something."""
        if (
            self.turn.request.channel in ("voice", "sms")
            and self.session.caller_number
            and not self.state.get("caller_id_tried")
            and "verify_identity" in self.tools
        ):
            self.state["caller_id_tried"] = True
            self.scratch["plan"] = plan
            self.scratch["after_verify"] = True
            return Step(calls=[("verify_identity", {"method": "caller_id"})])
        return None

    def _verify(self, plan: Plan, found: Entities) -> Step:
        self.scratch["plan"] = plan
        self.scratch["after_verify"] = plan.intent != "verify"
        order_id = found.order_id or plan.slots.get("order_id") or self.state.get("order_id")
        if found.code:
            args = {"method": "one_time_code", "code": found.code}
            if found.email:
                args["email"] = found.email
            elif found.phone:
                args["phone"] = found.phone
            return Step(calls=[("verify_identity", args)])
        if found.zip and order_id:
            return Step(
                calls=[
                    (
                        "verify_identity",
                        {"method": "order_number_zip", "order_id": order_id, "zip": found.zip},
                    )
                ]
            )
        if found.zip and not order_id:
            self._wait_for("verify", plan)
            return Step(text="Thanks. Which order number is that ZIP code for?")
        return self._need_verification(plan, lead="")

    # -- after tool results ----------------------------------------------------------------

    def _after(self, results: list[tuple[str, dict[str, Any], dict[str, Any]]]) -> Step:
        plan: Plan | None = self.scratch.get("plan")
        texts: list[str] = []
        for name, args, reply in results:
            if reply.get("success"):
                follow = self._success(name, args, reply.get("data") or {}, plan)
            else:
                follow = self._failure(name, args, reply, plan)
            if follow.calls:
                return Step(text=" ".join([*texts, follow.text]).strip(), calls=follow.calls)
            if follow.text:
                texts.append(follow.text)
        queue: list[Plan] = self.scratch.get("queue") or []
        if queue:  # the next request of the same message
            follow = self._do(queue.pop(0), extract(""))
            return Step(text=" ".join([*texts, follow.text]).strip(), calls=follow.calls)
        return Step(text=" ".join(texts).strip() or replies.CAPABILITIES)

    def _success(
        self, name: str, args: dict[str, Any], data: dict[str, Any], plan: Plan | None
    ) -> Step:
        if name == "end_call":
            return Step()
        if name == "verify_identity":
            self.state.pop("pending", None)
            greeting = replies.verified(data)
            if plan is not None and self.scratch.pop("after_verify", False):
                follow = self._do(plan, extract(""))
                return Step(text=(greeting + " " + follow.text).strip(), calls=follow.calls)
            return Step(text=greeting + " How can I help?")
        if name == "check_order_status" and data.get("order_id"):
            items = [
                {"item_id": i["item_id"], "product": str(i.get("product") or "")}
                for i in data.get("items") or []
                if i.get("item_id")
            ]
            if items:
                self.state.setdefault("items", {})[data["order_id"]] = items
            if plan is not None and plan.intent in ("return", "exchange"):
                if not data.get("verified"):
                    return self._need_verification(plan, lead="")
                plan.slots["item_ids"] = _pick_items(
                    items, str(plan.slots.get("said") or self.text)
                )
                return self._do(plan, extract(""))
        sorry = replies.SORRY if plan is not None and plan.intent in ("complaint", "angry") else ""
        if name == "transfer_to_agent":
            if self.turn.request.channel == "voice":
                return Step(
                    text=sorry + "I'm connecting you with a colleague now. Please stay on the line."
                )
            return Step(
                text=sorry + "I'm handing this over to a colleague, who will take it from here."
            )
        if name == "search_knowledge_base":
            found = answer(data, str(args.get("query") or self.text))
            return Step(text=found) if found else self._offer_human(replies.FALLBACK)
        render = replies.RENDER.get(name)
        return Step(text=sorry + render(data) if render else "Done.")

    def _failure(
        self, name: str, args: dict[str, Any], reply: dict[str, Any], plan: Plan | None
    ) -> Step:
        error = str(reply.get("error") or "")
        message = str(reply.get("message") or "Something went wrong on our side.")
        if error == "not_verified" and plan is not None:
            return self._need_verification(plan, lead=message)
        if name == "verify_identity":
            if args.get("method") == "caller_id" and plan is not None:
                # the number did not match: ask for the other details, quietly
                self._wait_for("verify", plan)
                return Step(text=replies.ASK_VERIFY)
            if plan is not None and error != "too_many_attempts":
                for wrong in ("zip", "code"):  # never retried: the customer gives them again
                    plan.slots.pop(wrong, None)
                self._wait_for("verify", plan)
            return Step(text=message)
        if (
            error in ("order_not_found", "invalid_arguments")
            and plan is not None
            and "order_id" in args
        ):
            self.state.pop("order_id", None)
            self._wait_for("order_id", plan, keep_slots=False)
        return Step(text=message)

    def _need_verification(self, plan: Plan, *, lead: str) -> Step:
        step = self._caller_id(plan)
        if step is not None:
            return step
        self._wait_for("verify", plan)
        return Step(text=(lead + " " + replies.ASK_VERIFY).strip())


def _pick_items(items: list[dict[str, str]], said: str) -> list[str]:
    """The items the customer named ("my sweater"), else every item of the order."""
    words = re.findall(r"[a-z]{4,}", said.lower())

    def named(product: str) -> bool:
        names = re.findall(r"[a-z]{4,}", product.lower())
        return any(n in w or w in n for n in names for w in words)  # "shirts" names a "Shirt"

    chosen = [i["item_id"] for i in items if named(i.get("product", ""))]
    return chosen or [i["item_id"] for i in items]


def _credentials(slots: dict[str, Any]) -> Entities:
    """The verification details among ``slots``, as :meth:`Brain._verify` reads them."""
    return Entities(
        text="",
        order_id=slots.get("order_id"),
        zip=slots.get("zip"),
        code=slots.get("code"),
        email=slots.get("email"),
        phone=slots.get("phone"),
    )


def _gives_details(found: Entities) -> bool:
    """Whether a message carries a detail a pending request may need."""
    return bool(
        found.order_id
        or found.item_ids
        or found.address
        or found.size
        or found.color
        or found.when
        or found.email
        or found.phone
    )


def _plain(slots: dict[str, Any]) -> dict[str, Any]:
    """Slots that can be stored in the session (JSON)."""
    return {k: v for k, v in slots.items() if not k.startswith("_") and v is not None}


def _same_request(plans: list[Plan], intent: str, slots: dict[str, Any]) -> Plan | None:
    """An earlier plan that ``intent`` / ``slots`` only restate (same intent, no other target).

    Two clauses with one intent are one request unless they name different things (two orders
    to return are two returns); the knowledge base answers each question on its own.
    """
    if intent == "knowledge":
        return None
    for plan in plans:
        if plan.intent != intent:
            continue
        clash = any(
            key in plan.slots and plan.slots[key] != value
            for key, value in slots.items()
            if key not in ("said", "query") and value
        )
        if not clash:
            return plan
    return None
