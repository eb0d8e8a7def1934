"""Making replies fit the channel while they stream.

Chat gets the text as it is generated. Voice and SMS get whole sentences with markdown removed
(a speech synthesiser would read the asterisks; a phone shows them), voice in short speakable
pieces (the voice pipeline speaks the first sentence while the rest is still generating), SMS cut
to SMS length at a sentence boundary.
"""

from __future__ import annotations

import re

_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]*\s+|\n+")
_LINK = re.compile(r"\[([^\]]+)\]\((?:[^)]+)\)")
_EMPHASIS = re.compile(r"(\*\*|__|\*|_|~~|`+)(?=\S)(.+?)(?<=\S)\1")
_HEADING = re.compile(r"^\s{0,3}#{1,6}\s*", re.MULTILINE)
_BULLET = re.compile(r"^\s*(?:[-*+•]|\d+[.)])\s+", re.MULTILINE)
_LEFTOVER = re.compile(r"[*`#|>]+")
_SPACES = re.compile(r"[ \t]+")


def strip_markdown(text: str) -> str:
    """Plain text: links to their words, no emphasis markers, headings, bullets or tables."""
    text = _LINK.sub(r"\1", text)
    for _ in range(2):
        text = _EMPHASIS.sub(r"\2", text)
    text = _HEADING.sub("", text)
    text = _BULLET.sub("", text)
    text = _LEFTOVER.sub("", text)
    return _SPACES.sub(" ", text).strip()


def _ensure_sentence(text: str) -> str:
    """A capital and a full stop for a line that lacks them (a bullet becomes a sentence)."""
    if not text:
        return text
    text = text[0].upper() + text[1:]
    if text[-1] not in ".!?:;,…":
        return text + "."
    return text


class ChannelWriter:
    """Turns model text deltas into the pieces a channel should get.

    ``feed`` returns the pieces ready to send now; ``flush`` the rest at the end of the reply.
    ``text`` is everything handed out so far (what the customer got, if nothing was cut off).
    """

    def __init__(self, *, channel: str, sms_max_chars: int = 320, voice_max_chars: int = 600):
        self.channel = channel
        self._plain = channel in ("voice", "web_voice", "sms")
        self._limit = {
            "sms": sms_max_chars,
            "voice": voice_max_chars,
            "web_voice": voice_max_chars,
        }.get(channel)
        self._buffer = ""
        self._parts: list[str] = []
        self._space = False
        self.truncated = False

    @property
    def text(self) -> str:
        """What has been handed out so far."""
        return "".join(self._parts)

    def new_round(self) -> None:
        """The model speaks again after tool calls: separate its text from what came before."""
        text = self.text
        self._space = bool(text) and not text[-1].isspace()

    def feed(self, delta: str) -> list[str]:
        """Pieces to send for this delta (possibly none yet)."""
        if not delta or self.truncated:
            return []
        if not self._plain:
            if self._space and not delta[0].isspace():
                delta = " " + delta
            self._space = False
            self._parts.append(delta)
            return [delta]
        self._buffer += delta
        out: list[str] = []
        while True:
            match = _SENTENCE_END.search(self._buffer)
            if match is None:
                break
            sentence, self._buffer = self._buffer[: match.start()], self._buffer[match.end() :]
            piece = self._emit(sentence)
            if piece:
                out.append(piece)
            if self.truncated:
                break
        return out

    def flush(self) -> list[str]:
        """The rest of the reply."""
        if not self._plain or self.truncated:
            return []
        rest, self._buffer = self._buffer, ""
        piece = self._emit(rest)
        return [piece] if piece else []

    def _emit(self, sentence: str) -> str:
        clean = _ensure_sentence(strip_markdown(sentence))
        if not clean:
            return ""
        piece = (" " if self._parts else "") + clean
        if self._limit is not None and len(self.text) + len(piece) > self._limit:
            self.truncated = True
            if self._parts:
                return ""
            piece = clean[: self._limit - 1].rsplit(" ", 1)[0] + "…"
        self._parts.append(piece)
        return piece


def fit_text(
    text: str, *, channel: str, sms_max_chars: int = 320, voice_max_chars: int = 600
) -> str:
    """A whole reply made to fit the channel (for text that does not stream)."""
    writer = ChannelWriter(
        channel=channel, sms_max_chars=sms_max_chars, voice_max_chars=voice_max_chars
    )
    writer.feed(text)
    writer.flush()
    return writer.text
