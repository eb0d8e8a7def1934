"""Answering from knowledge-base articles: quote the sentence that answers the question.

Each sentence of the articles found is scored by the question's content words it shares (a
shared word pair such as "return shipping" counts extra); the best sentence is quoted with the
sentence after it when that one shares a word too. Too weak a match is no answer at all, so an
off-topic message gets the fallback rather than an unrelated policy.
"""

from __future__ import annotations

import re
from typing import Any

STOPWORDS = set(
    """
    a an the is are was were be been am do does did can could will would should shall may might
    i me my mine you your we our us it its this that these those there here what which who whom
    when where why how if of to in on at by for with from up out about into over after before
    and or but not no so than too very just any some all each more most other such only own same
    have has had having get got getting like want need please tell know let much many long take
    still also yet ok okay hi hello thanks thank s t don doesn isn aren wasn
    recommend suggest good best great nice help anything something thing way really sure
    """.split()
)
#: a question's word also matches these words of an answer
SYNONYMS = {
    "free": {"free", "prepaid", "cost"},
    "pay": {"pay", "accept", "payment"},
    "expire": {"expire", "expiry"},
    "hour": {"hour", "available", "monday"},
    "open": {"open", "available", "hour"},
    "small": {"small", "size"},
    "big": {"large", "size"},
    "ship": {"ship", "shipping"},
    "shipping": {"shipping", "ship"},
    "cheaper": {"price", "cheaper"},
}
QUESTION = re.compile(
    r"(?i)^\s*(is|are|do|does|did|can|could|how|what|when|where|which|why|will|would|should)\b|\?\s*$"
)
SENTENCE = re.compile(r"(?<=[.!?])\s+")


def _stem(word: str) -> str:
    word = word.lower()
    for suffix in ("ing", "ed", "es", "s"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)]
    return word


def content_words(text: str) -> list[str]:
    """The stemmed words of ``text`` that carry meaning."""
    return [_stem(w) for w in re.findall(r"[a-zA-Z$][\w'$-]*", text) if w.lower() not in STOPWORDS]


def _score(question: list[str], sentence: str) -> float:
    words = content_words(sentence)
    vocabulary = set(words)
    score = float(sum(1 for w in set(question) if SYNONYMS.get(w, {w}) & vocabulary))
    pairs = set(zip(words, words[1:], strict=False))
    score += sum(0.5 for pair in zip(question, question[1:], strict=False) if pair in pairs)
    return score


def answer(data: dict[str, Any], question: str, *, minimum: float | None = None) -> str | None:
    """The best answering sentence (and the next when it adds to it), or None when none answers.

    Args:
        data: The ``search_knowledge_base`` result (``articles`` with ``body``).
        question: What the customer asked.
        minimum: The score a sentence needs to count as an answer (default: one shared word
            for a question, two for a statement).

    """
    if minimum is None:
        minimum = 1.0 if QUESTION.search(question) else 2.0
    articles = data.get("articles") or data.get("results") or []
    asked = content_words(question)
    best: tuple[float, int, int] | None = None  # (score, -article rank, sentence index)
    bodies: list[list[str]] = []
    for rank, article in enumerate(articles):
        body = str(article.get("body") or article.get("content") or article.get("snippet") or "")
        sentences = [s for s in SENTENCE.split(body.strip()) if s]
        bodies.append(sentences)
        title = content_words(str(article.get("title") or ""))
        for index, sentence in enumerate(sentences):
            score = _score(asked, sentence) + 0.25 * sum(1 for w in set(asked) if w in title)
            if best is None or (score, -rank) > (best[0], best[1]):
                best = (score, -rank, index)
    if best is None or best[0] < minimum:
        return None
    sentences = bodies[-best[1]]
    index = best[2]
    quoted = [sentences[index]]
    if index + 1 < len(sentences) and _score(asked, sentences[index + 1]) > 0:
        quoted.append(sentences[index + 1])
    return " ".join(quoted)
