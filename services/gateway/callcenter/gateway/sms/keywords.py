"""Carrier keywords: opt-out, opt-in and help (the set Twilio's default opt-out handling uses).

A keyword counts only when it is the whole message (case, surrounding spaces and trailing
punctuation ignored), so "stop sending me the wrong size" is an ordinary message. When the
account uses Twilio's Advanced Opt-Out, the webhook's ``OptOutType`` (STOP, START, HELP) names the
keyword Twilio matched, custom keywords included, and takes precedence.
"""

from __future__ import annotations

import re
from enum import StrEnum


class Keyword(StrEnum):
    """What a keyword asks for."""

    OPT_OUT = "opt_out"
    OPT_IN = "opt_in"
    HELP = "help"


OPT_OUT_WORDS = frozenset(
    {"STOP", "STOPALL", "STOP ALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "OPTOUT", "REVOKE"}
)
OPT_IN_WORDS = frozenset({"START", "UNSTOP", "YES"})
HELP_WORDS = frozenset({"HELP", "INFO"})

#: Opt-in words that are also everyday answers: they re-subscribe only an opted-out customer.
AMBIGUOUS_OPT_IN_WORDS = frozenset({"YES"})

#: Twilio's ``OptOutType`` webhook parameter (Advanced Opt-Out).
OPT_OUT_TYPES = {"STOP": Keyword.OPT_OUT, "START": Keyword.OPT_IN, "HELP": Keyword.HELP}

_SPACES = re.compile(r"\s+")


def normalise(body: str) -> str:
    """The message as a keyword candidate: upper case, single spaces, no trailing punctuation."""
    return _SPACES.sub(" ", body).strip().rstrip(".!?").strip().upper()


def classify(body: str, *, opted_out: bool, opt_out_type: str = "") -> tuple[Keyword, str] | None:
    """The keyword in ``body`` and its normalised word, or None for an ordinary message."""
    word = normalise(body)
    if opt_out_type in OPT_OUT_TYPES:
        return OPT_OUT_TYPES[opt_out_type], word
    if word in OPT_OUT_WORDS:
        return Keyword.OPT_OUT, word
    if word in OPT_IN_WORDS and (opted_out or word not in AMBIGUOUS_OPT_IN_WORDS):
        return Keyword.OPT_IN, word
    if word in HELP_WORDS:
        return Keyword.HELP, word
    return None
