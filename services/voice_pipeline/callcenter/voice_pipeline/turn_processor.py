"""The caller's turns to the conversation service, its streamed answers to TTS.

:class:`ConversationTurnProcessor` sits after the user-turn processor and pipecat's
``DTMFAggregator`` and before TTS. It collects what the caller says in a turn (or the digits the
aggregator flushes), sends it to ``conversation.turn`` through ``ConversationClient`` and feeds the streamed reply to TTS as it
arrives (TTS speaks it sentence by sentence). It owns the conversational rules of a call:

* the greeting; barge-in (cancel the reply with what the caller actually heard);
* silence, with pipecat's ``UserIdleController``: a reprompt, then goodbye and hang-up;
* a transfer or the end of the call asked for by the conversation (after the bot stops talking);
* giving up (conversation or speech provider down): the cached apology, then a transfer.

It tells whoever runs the call through events, never callbacks:

- ``on_turn_finished(processor, turn)``: a turn is over for the caller (its answer was spoken,
  or it was interrupted, failed, or produced nothing to say): what was heard, and when.
- ``on_end_requested(processor, reason)``: hang up now (what had to be said was said).
- ``on_transfer_requested(processor, reason, summary, fallback)``: hand the call to an agent;
  if that fails the handler ends the call with reason ``fallback``.

Input audio stops here: nothing after it (TTS, the output transport) needs the caller's audio.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from pipecat.frames.frames import (
    BotStartedSpeakingFrame,
    BotStoppedSpeakingFrame,
    ErrorFrame,
    Frame,
    InputAudioRawFrame,
    InputDTMFFrame,
    InterimTranscriptionFrame,
    InterruptionFrame,
    LLMFullResponseEndFrame,
    LLMFullResponseStartFrame,
    OutputAudioRawFrame,
    TextFrame,
    TranscriptionFrame,
    TTSSpeakFrame,
    UserIdleTimeoutUpdateFrame,
    UserStartedSpeakingFrame,
    UserStoppedSpeakingFrame,
    VADUserStartedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
)
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor, FrameProcessorSetup
from pipecat.turns.user_idle_controller import UserIdleController

from callcenter.common.bus.streaming import StreamError
from callcenter.common.clients import ConversationClient, TurnStream
from callcenter.common.config.sections import VoicePipelineSettings
from callcenter.common.contracts import DeltaChunk, DoneChunk, TurnCaller, TurnRequest
from callcenter.common.logging import get_logger
from callcenter.voice_pipeline.apology import ApologyCache
from callcenter.voice_pipeline.timing import CallInfo, Source, TurnRecord, TurnTiming
from callcenter.voice_pipeline.turns import SPEECH_RESUMED_S, Backchannels, sentence_goes_on

log = get_logger(__name__)

#: What pipecat's DTMFAggregator puts before the digits of the transcription it flushes.
DTMF_PREFIX = "DTMF: "
#: How long a closing sentence may take to be spoken before the call is ended anyway.
SPEAK_THEN_END_LIMIT_S = 10.0


class ConversationTurnProcessor(FrameProcessor):
    """Caller turns to ``conversation.turn``; streamed replies to TTS; the call's rules."""

    def __init__(
        self,
        *,
        call: CallInfo,
        conversation: ConversationClient,
        settings: VoicePipelineSettings,
        greeting: str,
        apology: ApologyCache,
        can_hand_over: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.can_hand_over = can_hand_over  # whether giving up hands the call to a person
        self.call = call
        self._conversation = conversation
        self._settings = settings
        self._greeting = greeting
        self._apology = apology
        self._backchannels = Backchannels(settings.backchannels)
        self.turns: list[TurnRecord] = []
        self.greeting_sent_at: float | None = None
        self.greeting_audio_at: float | None = None
        self._user_text: list[str] = []
        self._in_user_turn = False
        self._caller_speaking = False  # the VAD hears the caller now
        self._caller_stopped_at: float | None = None
        self._vad_stopped_at: float | None = None  # when the VAD last heard the caller stop
        self._final_at: float | None = None
        self._bot_speaking = False
        self._current: TurnRecord | None = None
        self._reply_task: asyncio.Task[None] | None = None
        self._reply_stream: TurnStream | None = None
        self._held_send: asyncio.Task[None] | None = None  # held words sent if the caller stops
        self._background: set[asyncio.Task[Any]] = set()
        self._ending = False
        self._after_speech: tuple[str, str] | None = None  # ("end" | "transfer", reason)
        self._transfer_summary = ""
        self._reprompted = False
        self._idle = UserIdleController(user_idle_timeout=settings.silence_reprompt_s)
        self._idle.add_event_handler("on_user_turn_idle", self._on_caller_idle)
        self._register_event_handler("on_turn_finished")
        self._register_event_handler("on_end_requested")
        self._register_event_handler("on_transfer_requested")

    # ----- what the turn strategy, the taps and the serializer tell it -------------------------

    def bot_busy(self) -> bool:
        """Whether the assistant is talking or about to (a reply is on its way)."""
        return self._bot_speaking or (self._reply_task is not None and not self._reply_task.done())

    def audio_sent(self, at: float) -> None:
        """Audio left for Twilio at ``at`` (the serializer says so for every media message)."""
        if self.greeting_sent_at is not None and self.greeting_audio_at is None:
            self.greeting_audio_at = at
            log.info(
                "greeting playing",
                call_id=self.call.call_id,
                pipeline_ready_ms=round((self.greeting_sent_at - self.call.started) * 1000, 1),
                first_audio_ms=round((at - self.call.started) * 1000, 1),
            )
        turn = self._current
        if turn is not None and turn.timing.first_tts_audio is not None:
            if turn.timing.first_audio_sent is None:
                turn.timing.first_audio_sent = at

    def tts_audio(self) -> None:
        """TTS produced audio (a tap between TTS and the output says so)."""
        turn = self._current
        if turn is not None and turn.timing.request_sent and turn.timing.first_tts_audio is None:
            turn.timing.first_tts_audio = time.monotonic()

    def word_heard(self, text: str) -> None:
        """A spoken word's audio went out (a tap after the output says so)."""
        if self._current is not None and not self._current.interrupted:
            self._current.heard_words.append(text)

    # ----- lifecycle ---------------------------------------------------------------------------

    async def setup(self, setup: FrameProcessorSetup) -> None:
        """Set up the idle controller with this processor's task manager."""
        await super().setup(setup)
        await self._idle.setup(setup)

    async def cleanup(self) -> None:
        """Stop the timers and any reply in flight; report the last turn."""
        self._ending = True
        await self._idle.cleanup()
        if self._reply_task is not None and not self._reply_task.done():
            await self.cancel_task(self._reply_task)
        await self._drop_held_send()
        if self._reply_stream is not None and not self._reply_stream.finished:
            await self._reply_stream.cancel(
                delivered_text=self._current.heard_text if self._current else ""
            )
        if self._current is not None:
            await self._turn_finished(self._current)
        for task in list(self._background):
            task.cancel()
        await super().cleanup()

    # ----- frames ------------------------------------------------------------------------------

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        """Consume the caller's words, digits and audio; pass everything else on."""
        await super().process_frame(frame, direction)
        if isinstance(frame, InputAudioRawFrame):
            return  # nothing downstream needs the caller's audio
        if isinstance(frame, InputDTMFFrame):
            await self._caller_active()
            return
        if isinstance(frame, TranscriptionFrame | InterimTranscriptionFrame):
            await self._caller_active()
            if isinstance(frame, TranscriptionFrame) and frame.text.strip():
                await self._on_transcript(frame.text.strip())
            return
        await self._idle.process_frame(frame)
        if isinstance(frame, VADUserStartedSpeakingFrame):
            self._caller_speaking = True
            await self._drop_held_send()  # the caller goes on: the words wait for the rest
            resumed = (
                self._vad_stopped_at is not None
                and time.monotonic() - self._vad_stopped_at <= SPEECH_RESUMED_S
            )
            if not self._in_user_turn and not resumed:
                # New speech starts a new text; finals that come before the turn is granted (a
                # barge-in waits for enough words) are the start of that turn, not to be dropped.
                # Speech that resumes after a short pause ("Thanks, … can you") goes on the same.
                self._user_text = []
        elif isinstance(frame, VADUserStoppedSpeakingFrame):
            self._caller_speaking = False
            self._vad_stopped_at = time.monotonic()
        if isinstance(frame, UserStartedSpeakingFrame):
            await self._drop_held_send()  # the turn will send them
            self._in_user_turn = True
            self._caller_stopped_at = None
            self._final_at = None
            await self._caller_active()
        if isinstance(frame, VADUserStoppedSpeakingFrame):
            self._caller_stopped_at = time.monotonic() - frame.stop_secs
            if not self._in_user_turn and self._user_text and not self.bot_busy():
                await self._send_held()  # finals held while the caller spoke, no turn opened
        elif isinstance(frame, UserStoppedSpeakingFrame):
            self._in_user_turn = False
            await self._send_user_turn()
        elif isinstance(frame, InterruptionFrame):
            await self._barge_in()
        elif isinstance(frame, BotStartedSpeakingFrame):
            self._bot_speaking = True
        elif isinstance(frame, BotStoppedSpeakingFrame):
            self._bot_speaking = False
            turn = self._current
            if turn is not None and turn.timing.first_audio_sent and not self.bot_busy():
                await self._turn_finished(turn)  # the answer was spoken: all its timings known
            if self._after_speech is not None and not self.bot_busy():
                await self._run_after_speech()
        elif isinstance(frame, ErrorFrame):
            log.warning("pipeline error", call_id=self.call.call_id, error=frame.error)
        await self.push_frame(frame, direction)

    async def say_greeting(self) -> None:
        """Speak the greeting (the stream has just started)."""
        self.greeting_sent_at = time.monotonic()
        await self.push_frame(TTSSpeakFrame(self._greeting))

    async def _on_transcript(self, text: str) -> None:
        if text.startswith(DTMF_PREFIX):
            digits = text.removeprefix(DTMF_PREFIX).rstrip("#")
            if digits:
                now = time.monotonic()
                timing = TurnTiming(caller_stopped=now, final_transcript=now)
                await self._start_turn(digits, timing=timing, source="dtmf")
            return
        if self._in_user_turn:
            self._user_text.append(text)
            self._final_at = time.monotonic()
            return
        if self.bot_busy() and self._backchannels.only_backchannel(text):
            log.debug("backchannel ignored", call_id=self.call.call_id, text=text)
            return
        # A transcript after the turn was closed (late final): it belongs to the last turn.
        self._user_text.append(text)
        self._final_at = time.monotonic()
        if not self.bot_busy() and not self._caller_speaking:
            await self._send_held()  # else the caller's turn (or VAD stop) sends it whole

    async def _send_held(self) -> None:
        """Send words heard outside a turn.

        Words that stop a sentence that goes on ("Thanks,") wait ``SPEECH_RESUMED_S`` for the
        caller to go on first, as a turn would.
        """
        if not self._user_text or not sentence_goes_on(self._user_text[-1]):
            await self._send_user_turn()
        elif self._held_send is None:
            log.debug("words wait for the rest of the sentence", call_id=self.call.call_id)
            self._held_send = self.create_task(self._send_held_later(), "held-words")

    async def _send_held_later(self) -> None:
        await asyncio.sleep(SPEECH_RESUMED_S)
        self._held_send = None
        if not self._in_user_turn:
            await self._send_user_turn()

    async def _drop_held_send(self) -> None:
        task, self._held_send = self._held_send, None
        if task is not None:
            await self.cancel_task(task)

    async def _send_user_turn(self) -> None:
        text = " ".join(self._user_text).strip()
        if not text:
            await self._idle.wait_for_user()  # a turn with nothing to answer: keep timing
            return
        self._user_text = []
        timing = TurnTiming(caller_stopped=self._caller_stopped_at, final_transcript=self._final_at)
        await self._start_turn(text, timing=timing, source="speech")

    # ----- one turn ----------------------------------------------------------------------------

    async def _start_turn(self, text: str, *, timing: TurnTiming, source: Source) -> None:
        if self._ending:
            return
        if self.bot_busy():
            await self.broadcast_interruption()
            await self._barge_in()
        if self._current is not None:
            await self._turn_finished(self._current)
        turn = TurnRecord(index=len(self.turns), user_text=text, timing=timing, source=source)
        self.turns.append(turn)
        self._current = turn
        self._reply_task = self.create_task(self._run_turn(turn), "turn")

    def _request(self, turn: TurnRecord) -> TurnRequest:
        metadata: dict[str, Any] = {"source": turn.source, "call_sid": self.call.call_sid}
        if turn.source == "dtmf":
            metadata["dtmf"] = turn.user_text
        return TurnRequest(
            call_id=self.call.call_id,
            channel="voice",
            text=turn.user_text,
            caller=TurnCaller(number=self.call.from_number, verified_by_caller_id=False),
            stt_final_ms=turn.timing.stages_ms()["stt_final_ms"],
            metadata=metadata,
        )

    async def _run_turn(self, turn: TurnRecord) -> None:
        log.info(
            "caller turn", call_id=self.call.call_id, source=turn.source, chars=len(turn.user_text)
        )
        turn.timing.request_sent = time.monotonic()
        speaking = False
        try:
            stream = await self._conversation.stream_turn(self._request(turn))
            self._reply_stream = stream
            async for chunk in stream:
                if isinstance(chunk, DoneChunk):
                    turn.done = chunk
                    if turn.reply_text or not chunk.text:
                        continue
                elif not isinstance(chunk, DeltaChunk) or not chunk.text:
                    continue
                if turn.timing.first_text is None:
                    turn.timing.first_text = time.monotonic()
                if not speaking:
                    speaking = True
                    await self.push_frame(LLMFullResponseStartFrame())
                turn.reply_text += chunk.text
                await self.push_frame(TextFrame(chunk.text))
            if speaking:
                await self.push_frame(LLMFullResponseEndFrame())
            turn.timing.done = time.monotonic()
        except (StreamError, ValueError) as exc:  # ValueError: a request the contract refuses
            turn.error = exc.code if isinstance(exc, StreamError) else "bad_request"
            log.warning("conversation turn failed", call_id=self.call.call_id, error=turn.error)
            if speaking:
                await self.push_frame(LLMFullResponseEndFrame())
            await self._turn_finished(turn)
            await self.give_up(f"conversation_{turn.error}")
            return
        if not speaking:
            await self._turn_finished(turn)  # nothing to say: no audio will come
        done = turn.done
        if done is not None and done.transfer is not None:
            self._transfer_summary = done.transfer.summary
            self._after_speech = ("transfer", done.transfer.reason or "caller_asked")
        elif done is not None and done.end_call:
            self._after_speech = ("end", "assistant_ended")
        if self._after_speech is not None and not self._bot_speaking and not speaking:
            await self._run_after_speech()
        elif not speaking:
            await self._idle.wait_for_user()

    async def _turn_finished(self, turn: TurnRecord) -> None:
        """Tell (once) that the turn's timings are complete."""
        if turn.reported:
            return
        turn.reported = True
        await self._call_event_handler("on_turn_finished", turn)

    async def _barge_in(self) -> None:
        """The caller talked over the assistant: stop the reply, keep only what was heard."""
        turn = self._current
        task = self._reply_task
        if turn is None or turn.interrupted or not self.bot_busy():
            return
        turn.interrupted = True
        delivered = turn.heard_text
        if task is not None and not task.done():
            await self.cancel_task(task)
        self._after_speech = None
        if self._reply_stream is not None:
            # Also when the reply was fully generated before it was fully spoken: the
            # conversation service then cuts the stored answer to what was heard.
            await self._reply_stream.cancel(delivered_text=delivered)
        log.info(
            "barge-in", call_id=self.call.call_id, delivered_chars=len(delivered), turn=turn.index
        )
        await self._turn_finished(turn)

    # ----- silence -----------------------------------------------------------------------------

    async def _caller_active(self) -> None:
        """The caller did something: the silence timer starts over, from the reprompt."""
        if self._reprompted:
            self._reprompted = False
            await self._idle.process_frame(
                UserIdleTimeoutUpdateFrame(timeout=self._settings.silence_reprompt_s)
            )
        elif self._idle.waiting_for_user:
            await self._idle.process_frame(
                UserIdleTimeoutUpdateFrame(timeout=self._settings.silence_reprompt_s)
            )

    async def _on_caller_idle(self, _controller: UserIdleController) -> None:
        if self._ending or self.bot_busy():
            return
        if not self._reprompted:
            self._reprompted = True
            # the next silence (after the reprompt has been spoken) ends the call
            await self._idle.process_frame(
                UserIdleTimeoutUpdateFrame(timeout=self._settings.silence_hangup_s)
            )
            await self.push_frame(TTSSpeakFrame(self._settings.reprompt_text))
            return
        await self.say_then_end(self._settings.goodbye_text, "silence")

    # ----- how the call ends -------------------------------------------------------------------

    async def say_then_end(self, text: str, reason: str) -> None:
        """Say ``text``, then end the call with ``reason`` (at most 10 s later)."""
        if self._ending:
            return
        self._after_speech = ("end", reason)
        await self.push_frame(TTSSpeakFrame(text))
        self._background_task(self._end_later(reason))

    async def _end_later(self, reason: str) -> None:
        await asyncio.sleep(SPEAK_THEN_END_LIMIT_S)
        await self._request_end(reason)

    async def _run_after_speech(self) -> None:
        if self._after_speech is None:
            return
        (action, reason), self._after_speech = self._after_speech, None
        if action == "transfer":
            await self._request_transfer(reason, self._transfer_summary or self._summary())
        else:
            await self._request_end(reason)

    async def give_up(self, reason: str) -> None:
        """Something stayed broken: play the cached apology, then transfer (or end)."""
        if self._ending:
            return
        self._ending = True
        audio = await self._apology.load(hand_over=self.can_hand_over)
        if audio:
            await self.broadcast_interruption()
            await self.push_frame(
                OutputAudioRawFrame(audio=audio, sample_rate=8000, num_channels=1)
            )
            await asyncio.sleep(len(audio) / 16000)  # 8 kHz 16-bit: let it play out
        if not self.can_hand_over:
            log.info("giving up: nobody can take the call over", call_id=self.call.call_id)
            await self._call_event_handler("on_end_requested", reason)
            return
        log.info("call handed over", call_id=self.call.call_id, reason=reason)
        await self._call_event_handler("on_transfer_requested", reason, self._summary(), reason)

    async def _request_transfer(self, reason: str, summary: str) -> None:
        if self._ending:
            return
        self._ending = True
        await self._call_event_handler("on_transfer_requested", reason, summary, "transfer_failed")

    async def _request_end(self, reason: str) -> None:
        if self._ending:
            return
        self._ending = True
        log.info("call finishing", call_id=self.call.call_id, reason=reason)
        await self._call_event_handler("on_end_requested", reason)

    def _summary(self) -> str:
        lines = [f"caller: {t.user_text} / assistant: {t.reply_text}" for t in self.turns[-5:]]
        return " | ".join(lines)

    def _background_task(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
