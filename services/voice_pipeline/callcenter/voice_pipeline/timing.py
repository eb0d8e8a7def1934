"""One caller turn as the call saw it, and when each of its stages happened."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Literal

from callcenter.common.contracts import DoneChunk

Source = Literal["speech", "dtmf"]


@dataclass(slots=True)
class TurnTiming:
    """Monotonic timestamps of one turn's stages (seconds); None until reached."""

    caller_stopped: float | None = None
    final_transcript: float | None = None
    request_sent: float | None = None
    first_text: float | None = None
    first_tts_audio: float | None = None
    first_audio_sent: float | None = None
    done: float | None = None

    def stages_ms(self) -> dict[str, float | None]:
        """Each stage in ms from the caller stopping (or from the final transcript).

        ``transcript_to_first_audio_sent_ms`` is the platform's overhead: final transcript to
        the first answer audio written to Twilio.
        """
        origin = self.caller_stopped or self.final_transcript or self.request_sent

        def ms(t: float | None) -> float | None:
            # A stage can come before the origin (a final transcript ahead of the VAD's stop):
            # it then took no time after the caller stopped.
            return None if t is None or origin is None else max(0.0, round((t - origin) * 1000, 1))

        overhead = None
        if self.final_transcript is not None and self.first_audio_sent is not None:
            overhead = round((self.first_audio_sent - self.final_transcript) * 1000, 1)
        return {
            "stt_final_ms": ms(self.final_transcript),
            "first_text_ms": ms(self.first_text),
            "first_audio_ms": ms(self.first_tts_audio),
            "first_audio_sent_ms": ms(self.first_audio_sent),
            "transcript_to_first_audio_sent_ms": overhead,
        }


@dataclass(slots=True)
class TurnRecord:
    """One caller turn and the assistant's answer, as this call saw them."""

    index: int
    user_text: str
    timing: TurnTiming
    source: Source = "speech"
    reply_text: str = ""
    heard_words: list[str] = field(default_factory=list)
    interrupted: bool = False
    done: DoneChunk | None = None
    error: str | None = None
    reported: bool = False

    @property
    def heard_text(self) -> str:
        """The words whose audio went out to the caller."""
        return " ".join(w.strip() for w in self.heard_words if w.strip())

    @property
    def turn_index(self) -> int | None:
        """The conversation service's index of this turn (from its ``done`` chunk)."""
        return None if self.done is None else self.done.turn_index


@dataclass(slots=True)
class CallInfo:
    """Who and what this call is."""

    call_id: str
    call_sid: str
    stream_sid: str
    from_number: str | None = None
    started: float = field(default_factory=time.monotonic)
    #: 0 for the call's first media stream, n for its n-th resumed one (after a replica died)
    resume: int = 0
    #: caller turns of the call's earlier streams (a resumed call counts on from them)
    turns_before: int = 0
    #: what is left of ``max_call_s`` for this stream (None: all of it); a resumed call's
    #: length counts from when the call was answered, not from this stream
    max_call_s: float | None = None
