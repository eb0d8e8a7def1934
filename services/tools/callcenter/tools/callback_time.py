"""Callback times in the customer's time zone, checked against business hours.

"Tomorrow at 10am" from a San Francisco customer means 10:00 in Los Angeles time, not 10:00 UTC.
A time with no UTC offset is read as wall-clock time in the customer's zone: the zone they said
(``timezone`` argument), else the zone of the address on file (by US state), else
``callbacks.default_customer_timezone``. The result is checked against ``callbacks`` business
hours (held in the business's own zone) and stated back in the customer's zone.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import asyncpg

from callcenter.common.config.sections import CallbackSettings
from callcenter.tools.domain import now
from callcenter.tools.notifications import settings as load_settings
from callcenter.tools.registry import SkillContext, ToolError

_PACIFIC = ("CA", "WA", "OR", "NV")
_MOUNTAIN = ("CO", "UT", "NM", "WY", "MT", "ID")
_CENTRAL = ("TX", "IL", "MN", "WI", "IA", "MO", "AR", "LA", "MS", "AL", "OK", "KS", "NE", "SD",
            "ND", "TN")  # fmt: skip
#: US state -> its main time zone (the states not listed are on Eastern time).
STATE_ZONES: dict[str, str] = {
    **dict.fromkeys(_PACIFIC, "America/Los_Angeles"),
    **dict.fromkeys(_MOUNTAIN, "America/Denver"),
    **dict.fromkeys(_CENTRAL, "America/Chicago"),
    "AZ": "America/Phoenix",
    "AK": "America/Anchorage",
    "HI": "Pacific/Honolulu",
}
#: Words customers use for a zone -> the IANA name.
ZONE_WORDS: dict[str, str] = {
    "pacific": "America/Los_Angeles",
    "pt": "America/Los_Angeles",
    "pst": "America/Los_Angeles",
    "pdt": "America/Los_Angeles",
    "mountain": "America/Denver",
    "central": "America/Chicago",
    "ct": "America/Chicago",
    "cst": "America/Chicago",
    "eastern": "America/New_York",
    "et": "America/New_York",
    "est": "America/New_York",
    "edt": "America/New_York",
    "utc": "UTC",
    "gmt": "UTC",
}
_DAY_NAMES = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]


@dataclass(slots=True, frozen=True)
class CallbackSlot:
    """A checked callback time and how to say it to the customer."""

    at: datetime
    customer_zone: str

    @property
    def local(self) -> datetime:
        """The time in the customer's zone."""
        return self.at.astimezone(ZoneInfo(self.customer_zone))

    def spoken(self) -> str:
        """``"Tuesday, December 1 at 10:00 AM PST"``."""
        local = self.local
        clock = f"{local:%I:%M %p}".lstrip("0")
        return f"{local:%A}, {local:%B} {local.day} at {clock} {local:%Z}"


def zone_named(name: str | None) -> str | None:
    """The IANA zone for what the customer said (``"Pacific"``, ``"America/Chicago"``), or None."""
    if not name:
        return None
    text = name.strip()
    key = text.lower().removesuffix(" time").strip()
    if key in ZONE_WORDS:
        return ZONE_WORDS[key]
    try:
        ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError):
        return None
    return text


async def customer_zone(
    conn: asyncpg.Connection, customer_id: str | None, *, said: str | None, default: str
) -> str:
    """The zone the customer said, else their address's, else ``default``.

    Raises:
        ToolError: the customer named a zone we do not know.

    """
    if said:
        zone = zone_named(said)
        if zone is None:
            raise ToolError(
                "invalid_timezone",
                "I didn't recognise that time zone. Which city or time zone are you in?",
            )
        return zone
    if customer_id:
        address = await conn.fetchval(
            "SELECT address FROM customers WHERE customer_id = $1", customer_id
        )
        if isinstance(address, dict) and (address.get("country") or "US") == "US":
            zone = STATE_ZONES.get(str(address.get("state") or "").upper())
            if zone or address.get("state"):
                return zone or "America/New_York"
    return default


def _clock(value: str) -> time:
    hours, _, minutes = value.partition(":")
    return time(int(hours), int(minutes or 0))


def hours_in(settings: CallbackSettings, zone: str, on: datetime) -> str:
    """The business hours as the customer would say them, e.g. ``"9:00 AM to 9:00 PM EST"``."""
    business = ZoneInfo(settings.timezone)
    day = on.astimezone(business).date()
    opens = datetime.combine(day, _clock(settings.opens), business).astimezone(ZoneInfo(zone))
    closes = datetime.combine(day, _clock(settings.closes), business).astimezone(ZoneInfo(zone))
    days = [_DAY_NAMES[d - 1] for d in sorted(settings.days)]
    span = f"{days[0]} to {days[-1]}" if len(days) > 1 else days[0]
    fmt = "%I:%M %p"
    return (
        f"{span}, {opens.strftime(fmt).lstrip('0')} to {closes.strftime(fmt).lstrip('0')} "
        f"{opens:%Z}"
    )


def check_slot(
    settings: CallbackSettings, *, wanted: datetime, zone: str, now: datetime, max_days: int
) -> CallbackSlot:
    """``wanted`` (wall-clock in ``zone`` when it has no offset) checked against the hours.

    Raises:
        ToolError: the time has passed, is too far ahead, or is outside business hours.

    """
    at = wanted if wanted.tzinfo else wanted.replace(tzinfo=ZoneInfo(zone))
    if at < now:
        raise ToolError(
            "invalid_time", "That time has already passed. What later time works for you?"
        )
    if at > now + timedelta(days=max_days):
        raise ToolError(
            "invalid_time",
            f"I can only schedule callbacks within the next {max_days} days. "
            "What time in that range works?",
        )
    business = at.astimezone(ZoneInfo(settings.timezone))
    inside = business.isoweekday() in settings.days and _clock(
        settings.opens
    ) <= business.time() < _clock(settings.closes)
    if not inside:
        raise ToolError(
            "outside_hours",
            "Our team can call back "
            + hours_in(settings, zone, at)
            + " (your time). What time in those hours works for you?",
        )
    return CallbackSlot(at=at, customer_zone=zone)


async def callback_slot(
    conn: asyncpg.Connection, ctx: SkillContext, args: Any, *, max_days: int
) -> CallbackSlot:
    """The checked slot for ``schedule_callback``'s ``preferred_time`` and ``timezone``."""
    settings = load_settings().callbacks
    zone = await customer_zone(
        conn, ctx.customer_id, said=args.timezone, default=settings.default_customer_timezone
    )
    return check_slot(settings, wanted=args.preferred_time, zone=zone, now=now(), max_days=max_days)
