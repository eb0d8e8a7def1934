"""The bridge between a call's audio pipeline and the conversation service.

:class:`ConversationBridge` sits after the user-turn processor and before TTS. It collects what
the caller says in a turn (or types on the keypad), sends it to ``conversation.turn`` over the
bus and feeds the streamed reply to TTS as it arrives (TTS speaks it sentence by sentence). It
owns the call's conversational rules: the greeting, barge-in (cancel the turn with what the
caller actually heard), silence reprompt and hang-up, the maximum call length, transfers and
ending the call, and what happens when a provider or the conversation service fails.

:class:`FrameTap` (one after the output transport) sees the words as their audio is sent to
Twilio (pipecat releases each word's text frame when its audio plays), so the bridge knows what
was heard when the caller interrupts.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from pipecat.frames.frames import (
    BotStartedSpeakingFrame,
    BotStoppedSpeakingFrame,
    ErrorFrame,
    Frame,
    InputDTMFFrame,
    InterimTranscriptionFrame,
    InterruptionFrame,
    LLMFullResponseEndFrame,
    LLMFullResponseStartFrame,
    OutputAudioRawFrame,
    StartFrame,
    TextFrame,
    TranscriptionFrame,
    TTSSpeakFrame,
    UserStartedSpeakingFrame,
    UserStoppedSpeakingFrame,
    VADUserStartedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
)
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor

from callcenter.common.bus import Bus
from callcenter.common.bus.streaming import STREAM_ID_HEADER, ReplyStream, StreamError
from callcenter.common.config.sections import VoicePipelineSettings
from callcenter.common.logging import get_logger
from callcenter.voice_pipeline.turns import Backchannels

log = get_logger(__name__)

TURN_SUBJECT = "conversation.turn"


@dataclass(slots=True)
class TurnTiming:
    """Monotonic timestamps of one turn's stages (seconds); None until reached."""

    caller_stopped: float | None = None
    final_transcript: float | None = None
    request_sent: float | None = None
    first_token: float | None = None
    first_tts_audio: float | None = None
    first_audio_sent: float | None = None
    done: float | None = None

    def stages_ms(self) -> dict[str, float | None]:
        """Each stage in ms from the caller stopping (or from the final transcript)."""
        origin = self.caller_stopped or self.final_transcript or self.request_sent

        def ms(t: float | None) -> float | None:
            return None if t is None or origin is None else round((t - origin) * 1000, 1)

        overhead = None
        if self.final_transcript is not None and self.first_audio_sent is not None:
            overhead = round((self.first_audio_sent - self.final_transcript) * 1000, 1)
        return {
            "stt_final_ms": ms(self.final_transcript),
            "first_token_ms": ms(self.first_token),
            "first_audio_ms": ms(self.first_tts_audio),
            "first_audio_sent_ms": ms(self.first_audio_sent),
            "transcript_to_first_audio_sent_ms": overhead,
        }


@dataclass
class TurnRecord:
    """One caller turn and the assistant's answer, as this call saw them."""

    index: int
    user_text: str
    timing: TurnTiming
    source: str = "speech"
    reply_text: str = ""
    heard_words: list[str] = field(default_factory=list)
    interrupted: bool = False
    done: dict[str, Any] | None = None
    error: str | None = None


@dataclass
class CallInfo:
    """Who and what this call is."""

    call_id: str
    call_sid: str
    stream_sid: str
    from_number: str | None = None
    started: float = field(default_factory=time.monotonic)


class ConversationBridge(FrameProcessor):
    """Caller turns to ``conversation.turn``; streamed replies to TTS; the call's rules."""

    def __init__(
        self,
        *,
        call: CallInfo,
        bus: Bus,
        settings: VoicePipelineSettings,
        greeting: str,
        on_end: Callable[[str], Awaitable[None]],
        on_transfer: Callable[[str, str], Awaitable[bool]],
        apology_audio: Callable[[], Awaitable[bytes | None]],
        on_turn: Callable[[TurnRecord], Awaitable[None]] | None = None,
        providers_ok: Callable[[], bool] = lambda: True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.call = call
        self._bus = bus
        self._settings = settings
        self._greeting = greeting
        self._on_end = on_end
        self._on_transfer = on_transfer
        self._apology_audio = apology_audio
        self._on_turn = on_turn
        self._providers_ok = providers_ok
        self._backchannels = Backchannels(settings.backchannels)
        self.turns: list[TurnRecord] = []
        self.greeting_sent_at: float | None = None
        self.greeting_audio_at: float | None = None
        self._user_text: list[str] = []
        self._in_user_turn = False
        self._caller_stopped_at: float | None = None
        self._final_at: float | None = None
        self._bot_speaking = False
        self._current: TurnRecord | None = None
        self._reply_task: asyncio.Task[None] | None = None
        self._reply_stream: ReplyStream | None = None
        self._dtmf: list[str] = []
        self._dtmf_task: asyncio.Task[None] | None = None
        self._watch_task: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._last_activity = time.monotonic()
        self._reprompted = False
        self._ending = False
        self._provider_down_since: float | None = None
        self._after_speech: Callable[[], Awaitable[None]] | None = None

    # ----- state the turn strategy and the tracker read --------------------------------------

    def bot_busy(self) -> bool:
        """Whether the assistant is talking or about to (a reply is on its way)."""
        return self._bot_speaking or (self._reply_task is not None and not self._reply_task.done())

    def audio_sent(self, at: float) -> None:
        """Called by the serializer whenever audio leaves for Twilio."""
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
                self._report_timings(turn)

    def _report_timings(self, turn: TurnRecord) -> None:
        """Send the turn's audio timings to the conversation service for its turn.completed."""
        stream = self._reply_stream
        if stream is None:
            return
        stages = turn.timing.stages_ms()
        body = json.dumps(
            {
                "latency": {
                    k: stages[k] for k in ("stt_final_ms", "first_audio_ms", "first_audio_sent_ms")
                }
            }
        ).encode()
        task = asyncio.create_task(
            self._bus.nc.publish(
                self._bus.subject(TURN_SUBJECT) + ".report",
                body,
                headers={STREAM_ID_HEADER: stream.stream_id},
            )
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def word_heard(self, frame: Frame) -> None:
        """Called (by a tap after the output) as each spoken word's audio goes out."""
        if self._current is not None and not self._current.interrupted:
            self._current.heard_words.append(getattr(frame, "text", ""))

    def tts_audio(self, frame: Frame) -> None:
        """Called (by a tap before the output) on every TTS audio frame."""
        turn = self._current
        if turn is not None and turn.timing.request_sent and turn.timing.first_tts_audio is None:
            turn.timing.first_tts_audio = time.monotonic()

    # ----- frames ------------------------------------------------------------------------------

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        """Route frames: consume the caller's words, pass everything else on."""
        await super().process_frame(frame, direction)
        if isinstance(frame, StartFrame):
            await self.push_frame(frame, direction)
            self._watch_task = self.create_task(self._watch(), "call-watch")
            return
        if isinstance(frame, (TranscriptionFrame, InterimTranscriptionFrame)):
            self._last_activity = time.monotonic()
            if isinstance(frame, TranscriptionFrame) and frame.text.strip():
                await self._on_transcript(frame.text.strip())
            return
        if isinstance(frame, VADUserStartedSpeakingFrame) and not self._in_user_turn:
            # New speech starts a new text; finals that come before the turn is granted (a
            # barge-in waits for enough words) are the start of that turn, not to be dropped.
            self._user_text = []
        if isinstance(frame, UserStartedSpeakingFrame):
            self._in_user_turn = True
            self._caller_stopped_at = None
            self._final_at = None
            self._last_activity = time.monotonic()
            self._reprompted = False
        elif isinstance(frame, VADUserStoppedSpeakingFrame):
            self._caller_stopped_at = time.monotonic() - getattr(frame, "stop_secs", 0.0)
            self._last_activity = time.monotonic()
        elif isinstance(frame, UserStoppedSpeakingFrame):
            self._in_user_turn = False
            await self._send_user_turn()
        elif isinstance(frame, InterruptionFrame):
            await self._barge_in()
        elif isinstance(frame, InputDTMFFrame):
            await self._on_digit(str(frame.button.value))
            return
        elif isinstance(frame, BotStartedSpeakingFrame):
            self._bot_speaking = True
        elif isinstance(frame, BotStoppedSpeakingFrame):
            self._bot_speaking = False
            self._last_activity = time.monotonic()
            if self._after_speech is not None and not self.bot_busy():
                action, self._after_speech = self._after_speech, None
                self._spawn(action())
        elif isinstance(frame, ErrorFrame):
            await self._on_error(frame)
        await self.push_frame(frame, direction)

    async def say_greeting(self) -> None:
        """Speak the greeting (the stream has just started)."""
        self.greeting_sent_at = time.monotonic()
        await self.push_frame(TTSSpeakFrame(self._greeting))

    async def _on_transcript(self, text: str) -> None:
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
        if not self.bot_busy():
            await self._send_user_turn()

    async def _send_user_turn(self) -> None:
        text = " ".join(self._user_text).strip()
        if not text:
            return
        self._user_text = []
        timing = TurnTiming(caller_stopped=self._caller_stopped_at, final_transcript=self._final_at)
        await self._start_turn(text, timing=timing, source="speech")

    async def _on_digit(self, digit: str) -> None:
        self._last_activity = time.monotonic()
        self._reprompted = False
        if self._dtmf_task is not None:
            await self.cancel_task(self._dtmf_task)
            self._dtmf_task = None
        if digit == "#":
            await self._send_digits()
            return
        self._dtmf.append(digit)
        self._dtmf_task = self.create_task(self._digits_after_pause(), "dtmf-pause")

    async def _digits_after_pause(self) -> None:
        await asyncio.sleep(self._settings.dtmf_timeout_s)
        self._dtmf_task = None
        await self._send_digits()

    async def _send_digits(self) -> None:
        digits = "".join(self._dtmf)
        self._dtmf = []
        if digits:
            now = time.monotonic()
            await self._start_turn(
                digits,
                timing=TurnTiming(caller_stopped=now, final_transcript=now),
                source="dtmf",
                metadata={"dtmf": digits},
            )

    # ----- one turn ----------------------------------------------------------------------------

    async def _start_turn(
        self,
        text: str,
        *,
        timing: TurnTiming,
        source: str,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        if self._ending:
            return
        if self._reply_task is not None and not self._reply_task.done() or self._bot_speaking:
            await self.broadcast_interruption()
            await self._barge_in()
        turn = TurnRecord(index=len(self.turns), user_text=text, timing=timing, source=source)
        self.turns.append(turn)
        self._current = turn
        self._reply_task = self.create_task(self._run_turn(turn, metadata or {}), "turn")

    async def _run_turn(self, turn: TurnRecord, extra: dict[str, Any]) -> None:
        stages = turn.timing.stages_ms()
        body = {
            "call_id": self.call.call_id,
            "channel": "voice",
            "text": turn.user_text,
            "caller": {"number": self.call.from_number, "verified_by_caller_id": False},
            "metadata": {
                "source": turn.source,
                "call_sid": self.call.call_sid,
                "latency": {"stt_final_ms": stages["stt_final_ms"]},
                **extra,
            },
        }
        log.info(
            "caller turn", call_id=self.call.call_id, source=turn.source, chars=len(turn.user_text)
        )
        turn.timing.request_sent = time.monotonic()
        started_response = False
        try:
            stream = await self._bus.stream_request(
                TURN_SUBJECT,
                body,
                first_timeout_s=self._settings.turn_timeout_s,
                idle_timeout_s=self._settings.turn_timeout_s,
            )
            self._reply_stream = stream
            async for chunk in stream:
                data = chunk.json()
                kind = data.get("type")
                if kind == "delta" and data.get("text"):
                    if turn.timing.first_token is None:
                        turn.timing.first_token = time.monotonic()
                    if not started_response:
                        started_response = True
                        await self.push_frame(LLMFullResponseStartFrame())
                    turn.reply_text += data["text"]
                    await self.push_frame(TextFrame(data["text"]))
                elif kind == "done":
                    turn.done = data
                    if not turn.reply_text and data.get("text"):
                        if turn.timing.first_token is None:
                            turn.timing.first_token = time.monotonic()
                        started_response = True
                        await self.push_frame(LLMFullResponseStartFrame())
                        turn.reply_text = data["text"]
                        await self.push_frame(TextFrame(data["text"]))
            if started_response:
                await self.push_frame(LLMFullResponseEndFrame())
            turn.timing.done = time.monotonic()
        except asyncio.CancelledError:
            raise
        except StreamError as exc:
            turn.error = exc.code
            log.warning("conversation turn failed", call_id=self.call.call_id, error=exc.code)
            if started_response:
                await self.push_frame(LLMFullResponseEndFrame())
            await self._give_up(f"conversation_{exc.code}")
            return
        finally:
            if self._on_turn is not None:
                self._spawn(self._report(turn))
        done = turn.done or {}
        if done.get("transfer"):
            transfer = done["transfer"] or {}
            self._after_speech = lambda: self._transfer(
                str(transfer.get("reason", "")), str(transfer.get("summary", ""))
            )
        elif done.get("end_call"):
            self._after_speech = lambda: self._finish("assistant_ended")
        if self._after_speech is not None and not self._bot_speaking and not started_response:
            action, self._after_speech = self._after_speech, None
            await action()

    async def _report(self, turn: TurnRecord) -> None:
        # Wait for the first audio to go out (or the turn to be cut) so latency is complete.
        for _ in range(100):
            if turn.timing.first_audio_sent or turn.interrupted or turn.error or self._ending:
                break
            await asyncio.sleep(0.05)
        assert self._on_turn is not None
        await self._on_turn(turn)

    async def _barge_in(self) -> None:
        """The caller talked over the assistant: stop the reply, keep only what was heard."""
        turn = self._current
        task = self._reply_task
        if turn is None or turn.interrupted:
            return
        speaking = self._bot_speaking or (task is not None and not task.done())
        if not speaking:
            return
        turn.interrupted = True
        delivered = " ".join(w.strip() for w in turn.heard_words if w.strip())
        if task is not None and not task.done():
            await self.cancel_task(task)
        self._after_speech = None
        payload = json.dumps({"delivered_text": delivered}).encode()
        stream = self._reply_stream
        if stream is not None:
            if not stream.finished:
                await stream.cancel(payload)
            else:
                # The reply was fully generated before it was fully spoken: tell the
                # conversation service anyway, so it can trim the stored reply.
                await self._bus.nc.publish(
                    self._bus.subject(TURN_SUBJECT) + ".cancel",
                    payload,
                    headers={STREAM_ID_HEADER: stream.stream_id},
                )
        log.info(
            "barge-in", call_id=self.call.call_id, delivered_chars=len(delivered), turn=turn.index
        )

    # ----- the call's rules --------------------------------------------------------------------

    async def _watch(self) -> None:
        """Silence reprompt / hang-up, maximum call length, providers that stay down."""
        s = self._settings
        while not self._ending:
            await asyncio.sleep(0.25)
            now = time.monotonic()
            if now - self.call.started >= s.max_call_s:
                await self._say_then_end(s.max_call_text, "max_duration")
                return
            if self._providers_ok():
                self._provider_down_since = None
            elif self._provider_down_since is None:
                log.warning("a speech provider is down", call_id=self.call.call_id)
                self._provider_down_since = now
            elif now - self._provider_down_since >= s.provider_down_s:
                await self._give_up("provider_down")
                return
            if self.bot_busy() or self._in_user_turn or self._dtmf:
                self._last_activity = now
                continue
            idle = now - self._last_activity
            if idle >= s.silence_hangup_s:
                await self._say_then_end(s.goodbye_text, "silence")
                return
            if idle >= s.silence_reprompt_s and not self._reprompted:
                self._reprompted = True
                await self.push_frame(TTSSpeakFrame(s.reprompt_text))

    async def _say_then_end(self, text: str, reason: str) -> None:
        self._after_speech = lambda: self._finish(reason)
        await self.push_frame(TTSSpeakFrame(text))
        self._spawn(self._finish_later(reason, delay_s=10.0))

    async def _finish_later(self, reason: str, *, delay_s: float) -> None:
        await asyncio.sleep(delay_s)
        await self._finish(reason)

    async def _on_error(self, frame: ErrorFrame) -> None:
        log.warning("pipeline error", call_id=self.call.call_id, error=frame.error)

    async def _give_up(self, reason: str) -> None:
        """Something stayed broken: play the cached apology, then transfer or end."""
        if self._ending:
            return
        audio = await self._apology_audio()
        if audio:
            await self.broadcast_interruption()
            await self.push_frame(
                OutputAudioRawFrame(audio=audio, sample_rate=8000, num_channels=1)
            )
            await asyncio.sleep(len(audio) / 16000)
        if not await self._on_transfer(reason, self._summary()):
            await self._finish(reason)
        else:
            self._ending = True

    async def _transfer(self, reason: str, summary: str) -> None:
        if self._ending:
            return
        if await self._on_transfer(reason or "caller_asked", summary or self._summary()):
            self._ending = True
        else:
            await self._finish("transfer_failed")

    def _summary(self) -> str:
        lines = [f"caller: {t.user_text} / assistant: {t.reply_text}" for t in self.turns[-5:]]
        return " | ".join(lines)

    async def _finish(self, reason: str) -> None:
        if self._ending:
            return
        self._ending = True
        log.info("call finishing", call_id=self.call.call_id, reason=reason)
        await self._on_end(reason)

    def _spawn(self, coro: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def cleanup(self) -> None:
        """Stop the call's timers and any reply in flight."""
        await super().cleanup()
        self._ending = True
        for task in (self._watch_task, self._dtmf_task, self._reply_task):
            if task is not None and not task.done():
                await self.cancel_task(task)
        if self._reply_stream is not None:
            await self._reply_stream.close()
        for task in list(self._tasks):
            task.cancel()


class FrameTap(FrameProcessor):
    """Calls ``on_frame`` for each downstream frame of ``frame_type``; passes everything on.

    After the output transport with ``TTSTextFrame`` it sees each word as its audio goes to
    Twilio; between TTS and the output with ``TTSAudioRawFrame``, when synthesised audio arrives.
    """

    def __init__(
        self, *, frame_type: type[Frame], on_frame: Callable[[Frame], None], **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self._frame_type = frame_type
        self._on_frame = on_frame

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        """Note the frame; pass it on."""
        await super().process_frame(frame, direction)
        if isinstance(frame, self._frame_type) and direction == FrameDirection.DOWNSTREAM:
            self._on_frame(frame)
        await self.push_frame(frame, direction)
