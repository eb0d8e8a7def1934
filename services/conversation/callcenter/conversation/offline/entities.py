"""What the offline engine understands in a customer's words: ids, codes, addresses, times, intents."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

_ORDER = re.compile(
    r"(?i)\b(?:ORD[-\s]?(\d{3,8})|order\s*(?:number|no\.?|num|#)?\s*(?:is\s*)?#?\s*(\d{3,8}))\b|#(\d{3,8})\b"
)
_ITEM = re.compile(r"(?i)\bITM-\d+-\d+\b")
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+\.[\w.-]+")
_PHONE = re.compile(r"(?<!\w)(\+?1[\s.-]?)?\(?(\d{3})\)?[\s.-]?(\d{3})[\s.-]?(\d{4})(?!\d)")
_ZIP = re.compile(r"(?<![\d-])(\d{5})(?:-\d{4})?(?!\d)")
_CODE = re.compile(r"(?i)(?<!zip )(?<!postal )\b(?:code|pin|passcode)\b\D{0,15}(\d{4,8})\b")
_NAME = re.compile(
    r"(?i)\b(?:my name is|this is|i am|i'm)\s+([a-z][a-z'-]+)(?:\s+([a-z][a-z'-]+))?"
)
_ADDRESS = re.compile(
    r"(?i)(\d+[a-z]?\s+[\w .'-]+?)\s*,\s*(?:((?:apt|apartment|suite|unit|#)[^,]*?)\s*,\s*)?"
    r"([a-z][a-z .'-]+?)\s*,?\s+([a-z]{2})\s*,?\s+(\d{5}(?:-\d{4})?)\b"
)
_SIZE = re.compile(
    r"(?i)\b(?:size\s+(xxs|xs|s|m|l|xl|xxl|\d{1,2}(?:\.5)?)\b|(?:in\s+(?:a\s+)?)?(extra small|extra large|small|medium|large)\b)"
)
_SIZE_WORDS = {"extra small": "XS", "small": "S", "medium": "M", "large": "L", "extra large": "XL"}
COLORS = (
    "black white red blue green navy gray grey brown beige pink purple yellow orange olive "
    "khaki tan cream charcoal burgundy teal silver gold"
).split()
_COLOR = re.compile(r"(?i)\b(" + "|".join(COLORS) + r")\b")
_TIME = re.compile(r"(?i)\b(?:at\s+)?(\d{1,2})(?::(\d{2}))?\s*(am|pm|a\.m\.|p\.m\.)?\b")
_WEEKDAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
_PARTS_OF_DAY = {"morning": 10, "noon": 12, "afternoon": 14, "evening": 17}


def _words(text: str, *patterns: str) -> bool:
    return any(re.search(p, text, re.IGNORECASE) for p in patterns)


@dataclass(slots=True)
class Entities:
    """Everything found in one message."""

    text: str
    order_id: str | None = None
    order_ids: list[str] = field(default_factory=list)
    item_ids: list[str] = field(default_factory=list)
    email: str | None = None
    phone: str | None = None
    zip: str | None = None
    code: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    address: dict[str, Any] | None = None
    size: str | None = None
    color: str | None = None
    when: datetime | None = None

    def as_slots(self) -> dict[str, Any]:
        """The entities as argument values by their usual names."""
        slots: dict[str, Any] = {
            "order_id": self.order_id,
            "item_ids": self.item_ids or None,
            "email": self.email,
            "phone": self.phone,
            "zip": self.zip,
            "code": self.code,
            "first_name": self.first_name,
            "last_name": self.last_name,
            "address": self.address,
            # wall-clock time as the customer said it: the tools read it in the customer's zone
            "preferred_time": self.when.replace(tzinfo=None).isoformat() if self.when else None,
            "size": self.size,
            "color": self.color,
        }
        return {k: v for k, v in slots.items() if v}


def extract(text: str, *, now: datetime | None = None) -> Entities:
    """Find ids, contact details, codes, an address, options and a time in ``text``."""
    found = Entities(text=text)
    rest = text
    for match in _ORDER.finditer(text):
        order_id = "ORD-" + next(g for g in match.groups() if g)
        if order_id not in found.order_ids:
            found.order_ids.append(order_id)
        rest = rest.replace(match.group(0), " ")
    found.order_id = found.order_ids[0] if found.order_ids else None
    found.item_ids = [m.upper() for m in _ITEM.findall(text)]
    for item in found.item_ids:
        rest = re.sub(re.escape(item), " ", rest, flags=re.IGNORECASE)
    email = _EMAIL.search(rest)
    if email:
        found.email = email.group(0).rstrip(".")
        rest = rest.replace(email.group(0), " ")
    code = _CODE.search(rest)
    if code:
        found.code = code.group(1)
        rest = rest.replace(code.group(0), " ")
    address = _ADDRESS.search(rest)
    if address:
        line1, line2, city, state, zip_code = address.groups()
        found.address = {
            "line1": line1.strip(),
            "city": city.strip().title(),
            "state": state.upper(),
            "zip": zip_code,
            **({"line2": line2.strip()} if line2 else {}),
        }
        rest = rest.replace(address.group(0), " ")
    phone = _PHONE.search(rest)
    if phone:
        found.phone = "+1" + "".join(phone.groups()[1:])
        rest = rest.replace(phone.group(0), " ")
    zip_match = _ZIP.search(rest)
    if zip_match:
        found.zip = zip_match.group(1)
    name = _NAME.search(text)
    if name and name.group(1).lower() not in {"calling", "looking", "trying", "not", "a", "the"}:
        found.first_name = name.group(1).title()
        if name.group(2) and name.group(2).lower() not in {"and", "calling", "from", "with"}:
            found.last_name = name.group(2).title()
    size = _SIZE.search(text)
    if size:
        found.size = (
            size.group(1) or _SIZE_WORDS.get((size.group(2) or "").lower(), "")
        ).upper() or None
    color = _COLOR.search(text)
    if color:
        found.color = color.group(1).lower()
    found.when = parse_when(text, now=now)
    return found


def parse_when(text: str, *, now: datetime | None = None) -> datetime | None:
    """A callback time from words like "tomorrow at 3pm" or "Friday morning" (UTC)."""
    lowered = text.lower()
    now = now or datetime.now(UTC)
    day: datetime | None = None
    if "tomorrow" in lowered:
        day = now + timedelta(days=1)
    elif "today" in lowered or "later" in lowered:
        day = now
    else:
        for index, name in enumerate(_WEEKDAYS):
            if name in lowered:
                ahead = (index - now.weekday()) % 7 or 7
                day = now + timedelta(days=ahead)
                break
    hour: int | None = None
    minute = 0
    for match in _TIME.finditer(text):
        meridiem = (match.group(3) or "").replace(".", "").lower()
        if not meridiem and not re.search(r"(?i)\bat\s+\d", match.group(0)):
            continue
        hour = int(match.group(1)) % 12 if meridiem else int(match.group(1))
        if meridiem == "pm":
            hour += 12
        elif not meridiem and 1 <= hour <= 7:
            hour += 12  # "at 3" means the afternoon
        minute = int(match.group(2) or 0)
        break
    if hour is None:
        for word, value in _PARTS_OF_DAY.items():
            if word in lowered:
                hour = value
                break
    if day is None and hour is None:
        return None
    day = day or now
    when = day.replace(
        hour=hour if hour is not None else 10, minute=minute, second=0, microsecond=0
    )
    if when <= now:
        when += timedelta(days=1)
    return when


# -- intents --------------------------------------------------------------------------------

INTENT_PATTERNS: list[tuple[str, tuple[str, ...]]] = [
    (
        "goodbye",
        (
            r"\b(good ?bye|bye|that'?s all|that is all|nothing else|no,? thanks?|hang up|have a (good|nice) (day|one))\b",
        ),
    ),
    (
        "send_code",
        (
            r"\b(send|text|e-?mail)\b[^.?!]{0,25}\bcode\b",
            r"\b(get|want|need)\b[^.?!]{0,15}\b(one[- ]time|verification|new) code\b",
        ),
    ),
    ("ticket", (r"\b(ticket|report (a|an) (problem|issue))\b",)),
    (
        "angry",
        (
            r"\b(useless|stupid|idiot\w*|ridiculous|furious|pathetic|waste of (my )?time|hate (you|this)|you suck|incompetent)\b",
        ),
    ),
    (
        "transfer",
        (
            r"\b(human|real person|agent|representative|operator|someone else|speak (to|with) (a|some)one|transfer me|supervisor|manager)\b",
        ),
    ),
    ("callback", (r"\b(call me back|callback|call back|ring me)\b",)),
    ("cancel", (r"\bcancel\b",)),
    (
        "address",
        (
            r"\b(address|ship (it )?to|deliver (it )?to|send it to|moved)\b",
            r"\b(send|ship|deliver)\b[^.?!]{0,40}?\bto\s+\d",
        ),
    ),
    (
        "exchange",
        (
            r"\b(exchange|swap|different (size|colou?r)|another (size|colou?r)|in a (smaller|bigger|larger))\b",
        ),
    ),
    ("return", (r"\b(return|refund|send (it|this|them) back)\b",)),
    (
        "complaint",
        (
            r"\b(complain\w*|not happy|unhappy|terrible|awful|worst|torn|ripped|damaged|broken|defective|"
            r"wrong (item|thing|product|size|colou?r)|rude|disappoint\w*|frustrat\w*|unacceptable)\b",
        ),
    ),
    ("verify", (r"\b(verify|verification|confirm (my|who)|identity)\b",)),
    (
        "recent_orders",
        (
            r"\b(my orders|recent orders|orders do i have|order history|last order|latest order|past orders)\b",
        ),
    ),
    ("lookup", (r"\b(look ?up|find) (my )?account\b", r"\bmy account\b")),
    (
        "order_status",
        (
            r"\b(where|status|track|tracking|shipped|arriv\w*|deliver\w*|when will|package|parcel)\b",
            r"\b(check (on )?(my |the |this |that )?order|what'?s in|what is in|contents)\b",
        ),
    ),
    ("greeting", (r"^\s*(hi|hello|hey|good (morning|afternoon|evening))\b[\s!.,]*$",)),
    (
        "how_are_you",
        (r"^\W*((hi|hello|hey)\W+)?how (are|r) (you|u)( doing)?( today)?\W*$",),
    ),
    (
        "bot",
        (
            r"\bare you (a |an )?(robot|bot|real|human|ai|person|machine|computer)\b",
            r"\b(am i|i'?m) (talking|chatting|speaking) (to|with) (a |an )?(robot|bot|ai|machine|computer)\b",
        ),
    ),
    (
        "thanks",
        (
            r"^\W*((ok(ay)?|great|perfect|cool|got it|awesome|alright|thanks|thank you|thx|nice|"
            r"that'?s (great|helpful|perfect))([\s,!.]+|$))+(so much|a lot|very much)?[\s!.]*$",
        ),
    ),
    (
        "yes",
        (
            r"^\W*(yes|yeah|yep|sure|please|yes please|please do|ok(ay)?,? please)\W*(please|do)?\W*$",
        ),
    ),
]
POLICY_QUESTION = (
    r"\b(policy|policies|how long|how many days|how much|window|hours|are you open|opening hours|warranty|"
    r"shipping (cost|fee|time)s?|free shipping|payment|pay with|gift cards?|price match|"
    r"do you (ship|offer|accept|price|refund)|how does .+ work|is .{0,30}\bfree|"
    r"run (small|large|big)|size guide|cheaper|price (drop|adjust\w*)|expire)\b"
)
ACTION_PHRASE = (
    r"(?i)(ORD-?\d|\b(i want|i'?d like|i would like|please|can you|could you|help me)\b)"
)
#: intents that carry a request of their own (a message may hold several)
REQUESTS = {
    "cancel", "address", "exchange", "return", "order_status", "callback", "recent_orders",
    "ticket", "complaint", "transfer", "knowledge",
}  # fmt: skip
_CLAUSE = re.compile(r"(?<=[.?!;])\s+|\s+(?:and )?also,?\s+", re.IGNORECASE)


def intents(text: str) -> list[str]:
    """The intents a message matches, strongest first."""
    found = [name for name, patterns in INTENT_PATTERNS if _words(text, *patterns)]
    policy = _words(text, POLICY_QUESTION) and not re.search(ACTION_PHRASE, text)
    if policy:
        # "what is your return policy?" is a question, not a return
        found = [
            i for i in found if i not in ("return", "exchange", "cancel", "address", "order_status")
        ]
        found.insert(0, "knowledge")
    return found


def matches(text: str, pattern: str) -> bool:
    """Whether ``pattern`` occurs in ``text`` (case-insensitive)."""
    return _words(text, pattern)


def clauses(text: str) -> list[tuple[str, str]]:
    """(intent, words) of each request in a message that asks for several things at once.

    "Where is ORD-1001? Also please cancel ORD-1002." gives two; a message with one request (or
    several sentences about the same one) gives at most one.
    """
    out: list[tuple[str, str]] = []
    for part in _CLAUSE.split(text):
        kinds = [k for k in intents(part) if k in REQUESTS]
        if kinds and (not out or (kinds[0], extract(part).order_id) != (out[-1][0], None)):
            if out and out[-1][0] == kinds[0] and not extract(part).order_id:
                continue
            out.append((kinds[0], part))
    return out
