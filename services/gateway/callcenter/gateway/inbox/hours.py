"""Business hours from config: whether an agent can be expected now."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from callcenter.common.config.sections import BusinessHours


def _minutes(text: str) -> int:
    hours, _, minutes = text.partition(":")
    return int(hours) * 60 + int(minutes)


def is_open(hours: BusinessHours, *, now: datetime | None = None) -> bool:
    """Whether ``now`` (default: the current time) is inside business hours."""
    local = (now or datetime.now(UTC)).astimezone(ZoneInfo(hours.timezone))
    if local.weekday() not in hours.days:
        return False
    minute = local.hour * 60 + local.minute
    return _minutes(hours.opens) <= minute < _minutes(hours.closes)
