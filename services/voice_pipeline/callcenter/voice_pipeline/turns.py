"""When a caller's turn starts: VAD while the bot is quiet, real words while it talks.

A caller who says "uh-huh", "okay" or "right" while the assistant is talking is listening, not
taking the turn: the assistant keeps talking. Anything else heard while it talks (interim
transcripts count, so the reaction is quick) starts the caller's turn, which interrupts it.

And when words stop a sentence that goes on: a final the STT punctuated with a comma ("Thanks,")
closes speech that is not over, whatever the pause sounds like, so a turn that would end there
waits :data:`SPEECH_RESUMED_S` for the caller to go on (:func:`sentence_goes_on`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

from pipecat.frames.frames import (
    Frame,
    InterimTranscriptionFrame,
    TranscriptionFrame,
    VADUserStartedSpeakingFrame,
)
from pipecat.turns.types import ProcessFrameResult
from pipecat.turns.user_start.base_user_turn_start_strategy import BaseUserTurnStartStrategy

_WORD = re.compile(r"[a-z']+(?:-[a-z']+)*")

#: Caller speech that starts again within this long after a pause continues the same words (a
#: pause at a comma), rather than starting new ones.
SPEECH_RESUMED_S = 0.7

#: What a punctuating STT ends a final with when the sentence is not over.
GOES_ON = (",", ";", ":", "…")


def sentence_goes_on(text: str) -> bool:
    """Whether the STT punctuated ``text`` as a sentence that goes on ("Thanks," "so,")."""
    return text.rstrip().endswith(GOES_ON)


def normalise(text: str) -> str:
    """Lower-case words separated by single spaces, punctuation dropped."""
    return " ".join(_WORD.findall(text.lower()))


class Backchannels:
    """The phrases that only show the caller is listening."""

    def __init__(self, phrases: Iterable[str]) -> None:
        self._phrases = {normalise(p) for p in phrases if normalise(p)}
        self._words = {w for p in self._phrases for w in p.split()}

    def only_backchannel(self, text: str) -> bool:
        """Whether ``text`` says nothing but backchannels (empty text counts)."""
        norm = normalise(text)
        if not norm or norm in self._phrases:
            return True
        return all(word in self._words for word in norm.split())


class CallerTurnStartStrategy(BaseUserTurnStartStrategy):
    """VAD starts the turn while the bot is quiet; non-backchannel words start it while busy."""

    def __init__(
        self, *, backchannels: Backchannels, bot_busy: Callable[[], bool], **kwargs: object
    ) -> None:
        super().__init__(**kwargs)
        self._backchannels = backchannels
        self._bot_busy = bot_busy

    async def process_frame(self, frame: Frame) -> ProcessFrameResult:
        """Start the caller's turn when the frame shows they are taking it."""
        await super().process_frame(frame)
        busy = self._bot_busy()
        if isinstance(frame, VADUserStartedSpeakingFrame) and not busy:
            await self.trigger_user_turn_started()
            return ProcessFrameResult.STOP
        if isinstance(frame, (TranscriptionFrame, InterimTranscriptionFrame)) and frame.text:
            if not busy or not self._backchannels.only_backchannel(frame.text):
                await self.trigger_user_turn_started()
                return ProcessFrameResult.STOP
        return ProcessFrameResult.CONTINUE
