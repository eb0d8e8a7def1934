"""Carrier rules that need no servers: keyword matching and splitting long answers."""

from __future__ import annotations

import pytest

from callcenter.gateway.sms.keywords import Keyword, classify
from callcenter.gateway.sms.splitter import sms_length, split_message


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("STOP", Keyword.OPT_OUT),
        (" stop. ", Keyword.OPT_OUT),
        ("Unsubscribe", Keyword.OPT_OUT),
        ("stop all", Keyword.OPT_OUT),
        ("START", Keyword.OPT_IN),
        ("unstop", Keyword.OPT_IN),
        ("Help", Keyword.HELP),
        ("INFO", Keyword.HELP),
        ("stop sending me the wrong size", None),
        ("Can you help me with a return?", None),
        ("yes", None),  # an everyday answer unless the customer opted out
    ],
)
def test_keywords_are_whole_messages(body: str, expected: Keyword | None) -> None:
    found = classify(body, opted_out=False)
    assert (found[0] if found else None) == expected


def test_yes_resubscribes_only_an_opted_out_customer() -> None:
    assert classify("Yes", opted_out=True) == (Keyword.OPT_IN, "YES")
    assert classify("Yes", opted_out=False) is None


def test_long_answer_is_split_at_sentence_boundaries() -> None:
    sentences = [
        f"Sentence number {n} tells you something useful about your order." for n in range(80)
    ]
    text = " ".join(sentences)

    parts = split_message(text, limit=1600)

    assert len(parts) > 1
    assert all(sms_length(part) <= 1600 for part in parts)
    assert all(part.endswith(".") for part in parts)
    assert " ".join(parts) == text


def test_a_sentence_longer_than_a_message_is_split_between_words() -> None:
    text = " ".join(["word"] * 1000)  # one 4999-character sentence

    parts = split_message(text, limit=1600)

    assert all(sms_length(part) <= 1600 for part in parts)
    assert " ".join(parts) == text


def test_length_counts_as_twilio_counts() -> None:
    parts = split_message("🙂" * 1000, limit=1600)  # 2000 UTF-16 code units

    assert [sms_length(part) for part in parts] == [1600, 400]
    assert "".join(parts) == "🙂" * 1000


def test_short_and_blank_answers() -> None:
    assert split_message("  Your order shipped.  ") == ["Your order shipped."]
    assert split_message("   ") == []


def test_twilio_advanced_opt_out_type_names_the_keyword() -> None:
    # a custom opt-out keyword configured in Twilio's console arrives with OptOutType=STOP
    assert classify("ARRET", opted_out=False, opt_out_type="STOP") == (Keyword.OPT_OUT, "ARRET")
    assert classify("Sure", opted_out=True, opt_out_type="START") == (Keyword.OPT_IN, "SURE")
