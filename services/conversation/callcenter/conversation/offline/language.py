"""Reading past typos, and noticing a message that is not in English (deterministic, no model)."""

from __future__ import annotations

import re
from difflib import get_close_matches

#: the words the offline engine acts on; a near miss ("retrun", "ordr") is read as the word
VOCABULARY = sorted(
    set(
        """
        order orders return returns refund refunds exchange cancel cancellation address shipping
        ship shipped delivery delivered deliver package parcel tracking track status where what
        when policy policies warranty payment account verify verification representative agent
        human person manager supervisor operator complaint complain ticket callback please
        receipt received damaged broken torn wrong size color colour sweater jacket shoes vest
        hoodie backpack bottle socks international express standard exchange refund money
        different change changed moved street because thanks thank hello goodbye
        """.split()
    )
)
_KNOWN = set(VOCABULARY) | {
    "the", "and", "you", "your", "for", "with", "this", "that", "have", "from", "want", "need",
    "like", "would", "could", "can", "will", "just", "still", "about", "they", "them", "there",
    "here", "into", "know", "does", "make", "many", "much", "some", "more", "time", "today",
    "tomorrow", "morning", "evening", "afternoon", "help", "okay", "sure", "nope", "yes", "yeah",
    "works", "work", "were", "was", "been", "being", "also", "only", "other", "another", "again",
    "difference", "different", "differ", "cheaper", "price",
}  # fmt: skip
#: common short spellings in chat ("wats ur retrun polcy")
SHORTHAND = {
    "pls": "please", "plz": "please", "ur": "your", "u": "you", "wat": "what", "wats": "what's",
    "whats": "what's", "thx": "thanks", "ty": "thank you", "r": "are", "wheres": "where's",
    "cant": "can't", "dont": "don't", "im": "I'm", "id": "I'd",
}  # fmt: skip


def _known(word: str) -> bool:
    """Whether ``word`` (or the word it inflects: "ships", "returned") is a known word."""
    forms = {word}
    for suffix in ("s", "es", "ed", "d", "ing"):
        if word.endswith(suffix):
            stem = word[: -len(suffix)]
            forms |= {stem, stem + "e"}
    return bool(forms & _KNOWN)


def _fix(word: str) -> str:
    lowered = word.lower()
    if lowered in SHORTHAND:
        return SHORTHAND[lowered]
    if len(lowered) < 4 or not lowered.isalpha() or _known(lowered):
        return word
    # short words need a closer match: "movie" is not "moved"
    close = get_close_matches(lowered, VOCABULARY, n=1, cutoff=0.8 if len(lowered) > 5 else 0.85)
    return close[0] if close else word


def correct(text: str) -> str:
    """``text`` with near-miss spellings of the words the engine acts on put right.

    Ids, numbers and words it does not know stay as they are, so "ORD-1001" or a street name
    is never "corrected".
    """
    return re.sub(r"(?<![\w-])[A-Za-z]+(?![\w-])", lambda m: _fix(m.group(0)), text)


_FOREIGN_WORDS = set(
    """
    hola gracias pedido donde dónde está quiero necesito ayuda por favor mi cancelar devolver
    bonjour merci je voudrais commande annuler où est mon ma pouvez vous aide
    guten tag danke bitte wo ist meine bestellung ich möchte hallo
    ciao grazie ordine dove il mio vorrei obrigado olá meu encomenda onde
    """.split()
)


def is_foreign(text: str) -> bool:
    """Whether ``text`` reads as another language (Spanish, French, German, Italian, Portuguese)."""
    words = re.findall(r"[^\W\d_]+", text.lower())
    if not words:
        return False
    hits = sum(w in _FOREIGN_WORDS for w in words)
    if re.search(r"[¿¡ñßäöüàâçèéêîôûœ]", text.lower()):
        hits += 1
    return hits >= 2 and hits * 3 >= len(words)
