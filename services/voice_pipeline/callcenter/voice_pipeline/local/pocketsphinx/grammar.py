"""The demo grammar PocketSphinx listens with, and its words turned back into text.

The general English language model in the wheel hears too little on an 8 kHz phone line (it
turned "where is my order" into "we're really order"), so the recogniser is biased to the phrases
a caller of the demo says: questions about an order, an order number said digit by digit ("O R D
one oh oh one"), returns, yes and no. Zero is best said "oh": the model, trained on 16 kHz audio,
often hears the phone-band "zero" as "three".
"""

from __future__ import annotations

import re

PHRASES = (
    "where is my order",
    "where's my order",
    "what is the status of my order",
    "i want to return it",
    "i want to return my order",
    "how long does shipping take",
    "for my order",
    "cancel my order",
    "my order number is",
    "order number",
    "order",
    "it is",
    "yes",
    "no",
    "please",
    "thanks",
    "thank you",
    "that's all",
    "goodbye",
    "o r d",
)

DIGITS = {
    "zero": "0",
    "oh": "0",
    "one": "1",
    "two": "2",
    "three": "3",
    "four": "4",
    "five": "5",
    "six": "6",
    "seven": "7",
    "eight": "8",
    "nine": "9",
}


def demo_grammar(extra_phrases: list[str] | None = None) -> str:
    """The JSGF grammar: any sequence of the phrases and single digits.

    Args:
        extra_phrases: More phrases to accept (lower case; words must be in the dictionary).
    """
    phrases = [*PHRASES, *(extra_phrases or []), *DIGITS]
    alternatives = " | ".join(dict.fromkeys(p.strip().lower() for p in phrases if p.strip()))
    return (
        "#JSGF V1.0;\n"
        "grammar callcenter;\n"
        "public <utterance> = <part>+;\n"
        f"<part> = {alternatives};\n"
    )


_DIGIT_WORD = "|".join(DIGITS)
_DIGIT_RUN = re.compile(rf"\b(?:(?:{_DIGIT_WORD})\b\s*)+")
_ORD = re.compile(r"\bo r d\b")


def to_text(hypothesis: str) -> str:
    """Recognised words as the text a caller means: digit words joined, "o r d" as ORD.

    ``"where is my order o r d one oh oh one"`` becomes ``"where is my order ORD 1001"``.
    """
    text = _DIGIT_RUN.sub(
        lambda m: "".join(DIGITS[w] for w in m.group(0).split()) + " ", hypothesis.strip()
    )
    text = _ORD.sub("ORD", text)
    return re.sub(r"\s+", " ", text).strip()
