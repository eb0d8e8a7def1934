"""How the offline engine reads past typos, other languages, several requests, and which
knowledge-base sentence it quotes (pure functions, no services)."""

from __future__ import annotations

import pytest

from callcenter.conversation.offline.entities import clauses, intents
from callcenter.conversation.offline.knowledge import answer
from callcenter.conversation.offline.language import correct, is_foreign

ARTICLES = {
    "articles": [
        {
            "title": "Size guide",
            "body": "Apparel runs true to size. If you are between sizes, choose the larger size "
            "for layering. Shoes run half a size small; we recommend ordering half a size up.",
        },
        {
            "title": "Payment methods",
            "body": "We accept Visa, Mastercard, PayPal and Acme gift cards. Your card is charged "
            "when the order ships.",
        },
    ]
}


def test_typos_in_the_words_it_acts_on_are_read_right() -> None:
    assert correct("wats ur retrun polcy") == "what's your return policy"
    assert correct("wher is my ordr ORD-1001 pls") == "where is my order ORD-1001 please"
    assert intents(correct("representitive please")) == ["transfer"]
    assert correct("pls cancle it") == "please cancel it"
    assert correct("recommend a good movie") == "recommend a good movie"  # not "moved"
    # ids, names, places and inflected known words stay as they are
    assert correct("ORD-1001 to 742 Evergreen Terrace, Springfield") == (
        "ORD-1001 to 742 Evergreen Terrace, Springfield"
    )
    assert correct("it ships to 94105; the difference") == "it ships to 94105; the difference"


@pytest.mark.parametrize(
    "text",
    [
        "Hola, ¿dónde está mi pedido?",
        "Bonjour, je voudrais annuler ma commande",
        "Guten Tag, wo ist meine Bestellung?",
    ],
)
def test_other_languages_are_noticed(text: str) -> None:
    assert is_foreign(text)


@pytest.mark.parametrize("text", ["Where is my order?", "I'm in Paris, is my order late?", "Hola"])
def test_english_is_not_taken_for_another_language(text: str) -> None:
    assert not is_foreign(text)


def test_the_sentence_that_answers_is_quoted() -> None:
    assert answer(ARTICLES, "Do shoes run small?") == (
        "Shoes run half a size small; we recommend ordering half a size up."
    )
    assert answer(ARTICLES, "Can I pay with PayPal?").startswith("We accept Visa")
    # nothing shared: no answer (the caller falls back and offers a person)
    assert answer(ARTICLES, "what's the weather like in Paris?") is None
    assert answer(ARTICLES, "can you recommend a good movie?") is None  # "we recommend…"
    # a statement needs more than one shared word to count as a question about it
    assert answer(ARTICLES, "my llama ate my shoes") is None


def test_a_message_with_several_requests_is_split_in_order() -> None:
    text = "Where is ORD-1001? Also please cancel ORD-1002. My zip is 94105."
    assert [intent for intent, _ in clauses(text)] == ["order_status", "cancel"]
    assert clauses("How long do refunds take? I want to return ORD-1003")[0][0] == "knowledge"
    # one request over two sentences stays one
    assert len(clauses("I want to return ORD-1003. It doesn't fit.")) == 1


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("you're useless", "angry"),
        ("The sweater from ORD-1003 arrived torn", "complaint"),
        ("open a ticket for a manager", "ticket"),
        ("ok thanks", "thanks"),
        ("how are you today?", "how_are_you"),
        ("are you a robot?", "bot"),
        ("Is return shipping free?", "knowledge"),
        ("How long does a refund take to show up on my card?", "knowledge"),
        ("I'd like to return ITM-1003-2 from order ORD-1003, it's damaged", "return"),
        ("Please send ORD-1002 to 12 Oak Street, Austin, TX 78701", "address"),
    ],
)
def test_what_a_message_asks_for(text: str, expected: str) -> None:
    assert intents(correct(text))[0] == expected
