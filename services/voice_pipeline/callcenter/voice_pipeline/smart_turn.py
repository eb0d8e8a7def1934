"""Smart Turn v3 with one ONNX session and one inference thread for every call of the process.

pipecat's ``LocalSmartTurnAnalyzerV3`` loads the model (~8 MB, its own ONNX session) per
instance and ``BaseSmartTurn`` runs it on a thread of its own per instance. A call needs its own
analyzer (audio buffer, speech state), not its own model or thread. pipecat has no hook to share
a session, so :class:`SharedSmartTurn` subclasses ``BaseSmartTurn`` through the two methods it
leaves to subclasses (``_predict_endpoint``, the model call, and ``_model_executor``, where it
runs): the prediction is delegated to one process-wide ``LocalSmartTurnAnalyzerV3`` and runs on
one process-wide thread, so concurrent calls queue instead of competing for the cores.

The model decides whether the caller has finished when the VAD hears them stop. When the STT has
already endpointed that speech on a finished sentence (Deepgram's ``speech_final`` on text ending
in ``.``/``?``/``!``, or the final of a local STT that only sends one per utterance) and nothing
was heard since, the STT's verdict stands and the model is not run: :class:`EndpointAwareTurnStop` (the stop strategy) tells the analyzer so, and
:meth:`SharedSmartTurn.analyze_end_of_turn` answers COMPLETE at once.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from typing import Any

import numpy as np
from pipecat.audio.turn.base_turn_analyzer import EndOfTurnState
from pipecat.audio.turn.smart_turn.base_smart_turn import BaseSmartTurn
from pipecat.audio.turn.smart_turn.local_smart_turn_v3 import LocalSmartTurnAnalyzerV3
from pipecat.frames.frames import (
    Frame,
    InterimTranscriptionFrame,
    TranscriptionFrame,
    VADUserStartedSpeakingFrame,
)
from pipecat.metrics.metrics import MetricsData
from pipecat.turns.types import ProcessFrameResult
from pipecat.turns.user_stop import TurnAnalyzerUserTurnStopStrategy

from callcenter.voice_pipeline.turns import SPEECH_RESUMED_S, sentence_goes_on


@cache
def _model() -> LocalSmartTurnAnalyzerV3:
    """The process's one loaded model (single-threaded ONNX session: ``cpu_count=1``)."""
    return LocalSmartTurnAnalyzerV3(cpu_count=1)


@cache
def _worker() -> ThreadPoolExecutor:
    """The process's one Smart Turn inference thread."""
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix="smart-turn")


def load_shared_model() -> None:
    """Load the model now (at service start) rather than on the first call."""
    _model()


class SharedSmartTurn(BaseSmartTurn):
    """A per-call Smart Turn analyzer on the process's shared model and worker thread."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._shared = _model()
        #: the STT endpointed the speech heard so far (set by :class:`EndpointAwareTurnStop`)
        self.stt_endpointed = False
        #: ends of speech the model ran for / was not run for (the STT had endpointed them)
        self.predictions = 0
        self.skipped = 0

    async def analyze_end_of_turn(self) -> tuple[EndOfTurnState, MetricsData | None]:
        """COMPLETE without the model when the STT endpointed the speech; else the model's say."""
        if self.stt_endpointed:
            self.skipped += 1
            self.clear()
            return EndOfTurnState.COMPLETE, None
        self.predictions += 1
        return await super().analyze_end_of_turn()

    @property
    def _model_executor(self) -> ThreadPoolExecutor:  # type: ignore[override]
        """The shared inference thread (``BaseSmartTurn`` would start one per analyzer)."""
        return _worker()

    def _predict_endpoint(self, audio_array: np.ndarray) -> dict[str, Any]:
        """Run the shared model (stateless per call: the audio is the whole input)."""
        return self._shared._predict_endpoint(audio_array)


#: How a punctuating STT ends a sentence it considers finished.
SENTENCE_END = (".", "?", "!")


def stt_endpointed(frame: TranscriptionFrame) -> bool:
    """Whether a final transcript closes the caller's speech (the STT found its end).

    Deepgram's results carry ``speech_final`` (its endpointer heard the silence after the words);
    an ``is_final`` piece without it is only a stretch of ongoing speech. Deepgram endpoints on
    any short silence, a pause mid-sentence too ("Thanks, [pause] can you also..."), which is what
    Smart Turn is there to judge: so an endpoint counts only when the punctuated text also ends a
    sentence. A local STT that sends one final per utterance (no vendor result attached) has
    found the end by sending it.
    """
    if frame.result is None:
        return True
    speech_final = getattr(frame.result, "speech_final", None)
    return bool(frame.finalized or speech_final) and frame.text.rstrip().endswith(SENTENCE_END)


class EndpointAwareTurnStop(TurnAnalyzerUserTurnStopStrategy):
    """pipecat's turn-analyzer stop strategy, with two rules of ours about the STT's text.

    * Smart Turn is skipped when the STT has endpointed (``skip_on_endpoint``): a final
      transcript that closes the speech marks the analyzer endpointed; an interim (more words
      coming) or the caller starting to speak again clears it.
    * A turn that would end on words the STT punctuated as going on ("Thanks," at a comma
      pause, :func:`~callcenter.voice_pipeline.turns.sentence_goes_on`) ends only after
      ``hold_s`` more without the caller going on: Smart Turn hears the pause, not the sentence.
      Speech, an interim or a final in the meantime drops the hold, and pipecat's strategy
      judges the speech that follows as usual.
    """

    def __init__(
        self,
        *,
        turn_analyzer: SharedSmartTurn,
        skip_on_endpoint: bool = True,
        hold_s: float = SPEECH_RESUMED_S,
        **kwargs: Any,
    ) -> None:
        super().__init__(turn_analyzer=turn_analyzer, **kwargs)
        self._smart_turn = turn_analyzer
        self._skip = skip_on_endpoint
        self._hold_s = hold_s
        self._last_final = ""
        self._hold: asyncio.Task[None] | None = None
        #: turn ends put off because the sentence went on (tests and logs read it)
        self.held = 0

    async def process_frame(self, frame: Frame) -> ProcessFrameResult:
        """Track the STT's endpoint and words, then let pipecat's strategy handle the frame."""
        if isinstance(frame, TranscriptionFrame):
            self._last_final = frame.text
            if self._skip:
                self._smart_turn.stt_endpointed = stt_endpointed(frame)
            await self._drop_hold()
        elif isinstance(frame, InterimTranscriptionFrame | VADUserStartedSpeakingFrame):
            self._smart_turn.stt_endpointed = False
            await self._drop_hold()
        return await super().process_frame(frame)

    async def trigger_user_turn_stopped(self, **kwargs: Any) -> None:
        """End the turn, or put the end off while the sentence goes on."""
        if self._hold_s > 0 and sentence_goes_on(self._last_final):
            if self._hold is None:
                self.held += 1
                self._hold = self.create_task(self._stop_after_hold(kwargs), "sentence-hold")
            return
        await super().trigger_user_turn_stopped(**kwargs)

    async def handle_user_turn_started(self) -> None:
        """A new turn: nothing held, no words yet."""
        await self._drop_hold()
        self._last_final = ""
        await super().handle_user_turn_started()

    async def handle_user_turn_stopped(self) -> None:
        """The turn ended (maybe by another strategy or a timeout): nothing held."""
        await self._drop_hold()
        self._last_final = ""
        await super().handle_user_turn_stopped()

    async def cleanup(self) -> None:
        """Stop a hold in progress."""
        await self._drop_hold()
        await super().cleanup()

    async def _stop_after_hold(self, kwargs: dict[str, Any]) -> None:
        await asyncio.sleep(self._hold_s)
        self._hold = None  # ending the turn drops the hold: not this task
        await super().trigger_user_turn_stopped(**kwargs)

    async def _drop_hold(self) -> None:
        hold, self._hold = self._hold, None
        if hold is not None:
            await self.cancel_task(hold)
