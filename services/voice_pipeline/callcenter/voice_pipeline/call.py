"""One phone call: the media socket's handshake, its Pipecat pipeline, and how it ends.

The socket is refused (403 before accept) without a valid ``X-Twilio-Signature`` over the public
media URL, and closed (1008) unless the ``start`` message carries the gateway's signed token for
this CallSid. Then one pipeline runs for the call::

    Twilio in -> Silero VAD -> audio chunker -> watchdog -> Deepgram STT -> user turns
    (backchannel-aware start, smart-turn stop) -> caller audio dropped -> DTMF aggregator
    -> ConversationTurnProcessor -> ElevenLabs TTS -> tap (audio made) -> Twilio out
    -> tap (words heard)

The session listens to the processors' events (a turn's timings, an end or a transfer asked
for, the call too long, a provider down) and whatever ends the call (the assistant, silence, the
caller hanging up, a transfer, a broken stream) ends it once, with call.ended published through
the shared claim.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import asyncpg
import redis.asyncio as aioredis
from fastapi import WebSocket
from pipecat.audio.dtmf.types import KeypadEntry
from pipecat.audio.vad.silero import SileroVADAnalyzer
from pipecat.audio.vad.vad_analyzer import VADParams
from pipecat.frames.frames import EndFrame
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineParams, PipelineWorker
from pipecat.processors.aggregators.dtmf_aggregator import DTMFAggregator
from pipecat.processors.audio.vad_processor import VADProcessor
from pipecat.processors.frame_processor import FrameProcessor
from pipecat.serializers.base_serializer import FrameSerializer
from pipecat.transports.websocket.fastapi import FastAPIWebsocketParams, FastAPIWebsocketTransport
from pipecat.turns.user_stop import (
    SpeechTimeoutUserTurnStopStrategy,
)
from pipecat.turns.user_turn_processor import UserTurnProcessor
from pipecat.turns.user_turn_strategies import UserTurnStrategies
from pipecat.workers.runner import WorkerRunner
from starlette.websockets import WebSocketDisconnect
from twilio.request_validator import RequestValidator

from callcenter.common.bus import Bus
from callcenter.common.call_end import end_call, record_turn_count
from callcenter.common.call_resume import mark_call_closing
from callcenter.common.clients import ConversationClient
from callcenter.common.config import CallCenterConfig
from callcenter.common.events import Channel, TurnHeard
from callcenter.common.logging import bind_call, get_logger
from callcenter.common.pii import redact
from callcenter.voice_pipeline import metrics
from callcenter.voice_pipeline.apology import ApologyCache
from callcenter.voice_pipeline.audio_chunks import AudioChunker, CallerAudioEnd
from callcenter.voice_pipeline.serializer import CallSerializer
from callcenter.voice_pipeline.smart_turn import EndpointAwareTurnStop, SharedSmartTurn
from callcenter.voice_pipeline.speech import speech_services
from callcenter.voice_pipeline.taps import HeardTap, SynthesisTap
from callcenter.voice_pipeline.timing import CallInfo, TurnRecord
from callcenter.voice_pipeline.transfer import (
    TransferUnavailable,
    transfer_call,
    transfer_possible,
)
from callcenter.voice_pipeline.trusted_call import UntrustedStream, resolve_trusted_call
from callcenter.voice_pipeline.turn_processor import DTMF_PREFIX, ConversationTurnProcessor
from callcenter.voice_pipeline.turns import Backchannels, CallerTurnStartStrategy
from callcenter.voice_pipeline.vad import InlineSileroVAD
from callcenter.voice_pipeline.watchdog import CallWatchdog

log = get_logger(__name__)

SAMPLE_RATE = 8000
START_TIMEOUT_S = 10.0
POLICY_VIOLATION = 1008


@dataclass(slots=True, kw_only=True)
class VoiceDeps:
    """What every call of this process shares."""

    config: CallCenterConfig
    bus: Bus
    redis: aioredis.Redis
    db: asyncpg.Pool
    apology: ApologyCache


def handshake_signed(config: CallCenterConfig, websocket: WebSocket) -> bool:
    """Whether the upgrade request carries Twilio's signature over the public media URL."""
    token = config.twilio.auth_token
    signature = websocket.headers.get("X-Twilio-Signature")
    if token is None or not token.get_secret_value() or not signature:
        return False
    url = config.voice_pipeline.public_ws_url
    if websocket.url.query:
        url += "?" + websocket.url.query
    return RequestValidator(token.get_secret_value()).validate(url, {}, signature)


async def read_start(websocket: WebSocket) -> dict[str, Any]:
    """Read Twilio's ``connected`` and ``start`` messages; return ``start``'s body.

    Raises:
        ValueError: the first messages are not Twilio's.

    """
    async with asyncio.timeout(START_TIMEOUT_S):
        for _ in range(3):
            message = json.loads(await websocket.receive_text())
            if not isinstance(message, dict):
                break
            if message.get("event") == "start" and isinstance(message.get("start"), dict):
                return message["start"]
            if message.get("event") != "connected":
                break
    raise ValueError("the media stream did not start with connected/start")


class CallSession:
    """One call's pipeline, the handlers of its processors' events, and its end.

    A phone call (Twilio Media Streams) by default; a browser call
    (:mod:`callcenter.voice_pipeline.web_call`) changes the line: its channel, audio rate,
    serializer and turn processor.
    """

    #: the channel the call is recorded and ended under
    channel: Channel = "voice"
    #: the pipeline's audio rate (the phone line's 8 kHz)
    sample_rate: int = SAMPLE_RATE
    turn_processor: type[ConversationTurnProcessor] = ConversationTurnProcessor

    def __init__(self, *, deps: VoiceDeps, websocket: WebSocket, call: CallInfo) -> None:
        self.deps = deps
        self.websocket = websocket
        self.call = call
        self.end_reason: str | None = None
        self.transferred = False
        #: closed on shutdown for another replica to resume (:meth:`hand_off`): not ended here
        self.handed_off = False
        self.finished = asyncio.Event()
        self._later: asyncio.Task[None] | None = None
        self.worker: PipelineWorker | None = None
        cfg = deps.config
        self.serializer = self._serializer()
        self.turns = self.turn_processor(
            call=call,
            conversation=ConversationClient(
                bus=deps.bus, first_timeout_s=cfg.voice_pipeline.turn_timeout_s
            ),
            settings=cfg.voice_pipeline,
            greeting=cfg.voice_pipeline.resume_text if call.resume else cfg.conversation.greeting,
            apology=deps.apology,
            can_hand_over=self.can_hand_over(),
        )
        self.turns.add_event_handler("on_turn_finished", self._turn_finished)
        self.turns.add_event_handler("on_end_requested", self._end_requested)
        self.turns.add_event_handler("on_transfer_requested", self._transfer_requested)
        self.serializer.on_audio_sent = self.turns.audio_sent

    def can_hand_over(self) -> bool:
        """Whether this call can be handed to a person (a phone call, with an agent line)."""
        return transfer_possible(self.deps.config)

    def _serializer(self) -> FrameSerializer:
        """Twilio Media Streams for this call (hanging up through Twilio's REST API)."""
        twilio = self.deps.config.twilio
        hang_up = bool(twilio.account_sid and twilio.auth_token is not None)
        return CallSerializer(
            stream_sid=self.call.stream_sid,
            call_sid=self.call.call_sid,
            account_sid=twilio.account_sid if hang_up else None,
            auth_token=twilio.auth_token.get_secret_value()
            if hang_up and twilio.auth_token
            else None,
            base_url=twilio.api_base_url if hang_up else None,
            params=CallSerializer.InputParams(auto_hang_up=hang_up),
            fast_media=self.deps.config.voice_pipeline.media_fast_path,
            join_ms=self.deps.config.voice_pipeline.stt_audio_chunk_ms
            if self.deps.config.voice_pipeline.media_join_caller_audio
            else 20,
        )

    def _pipeline(self) -> Pipeline:
        cfg = self.deps.config
        vp = cfg.voice_pipeline
        transport = FastAPIWebsocketTransport(
            websocket=self.websocket,
            params=FastAPIWebsocketParams(
                audio_in_enabled=True,
                audio_out_enabled=True,
                add_wav_header=False,
                audio_out_10ms_chunks=vp.audio_out_chunk_ms // 10,
                serializer=self.serializer,
                allowed_origins=[],
            ),
        )

        @transport.event_handler("on_client_connected")
        async def on_connected(_transport: Any, _ws: Any) -> None:
            await self.turns.say_greeting()

        @transport.event_handler("on_client_disconnected")
        async def on_disconnected(_transport: Any, _ws: Any) -> None:
            if self.serializer.malformed:
                self._set_reason("protocol_error")
            self._set_reason("caller_hung_up")
            if self.worker is not None:
                await self.worker.cancel(reason=self.end_reason)

        stt, tts = speech_services(cfg, sample_rate=self.sample_rate, tag=self.call.call_sid)
        # Processors that only look at a frame and pass it on (or join audio) gain nothing from
        # a queue and task of their own: in direct mode the pusher's task runs them.
        direct = {"enable_direct_mode": vp.direct_mode_processors}
        watchdog = CallWatchdog(
            providers=[stt, tts],
            max_call_s=vp.max_call_s if self.call.max_call_s is None else self.call.max_call_s,
            provider_down_s=vp.provider_down_s,
            call_id=self.call.call_id,
            **direct,
        )
        watchdog.add_event_handler("on_call_too_long", self._call_too_long)
        watchdog.add_event_handler("on_provider_down", self._provider_down)
        stop = (
            [
                EndpointAwareTurnStop(
                    turn_analyzer=SharedSmartTurn(),
                    skip_on_endpoint=vp.smart_turn_skip_on_stt_endpoint,
                )
            ]
            if vp.smart_turn
            else [SpeechTimeoutUserTurnStopStrategy()]
        )
        user_turns = UserTurnProcessor(
            user_turn_strategies=UserTurnStrategies(
                start=[
                    CallerTurnStartStrategy(
                        backchannels=Backchannels(vp.backchannels),
                        bot_busy=self.turns.bot_busy,
                    )
                ],
                stop=stop,
            ),
        )
        vad_params = VADParams(stop_secs=vp.vad_stop_secs)
        vad = VADProcessor(
            vad_analyzer=InlineSileroVAD(energy_gate=vp.vad_energy_gate, params=vad_params)
            if vp.vad_inline
            else SileroVADAnalyzer(params=vad_params),
            # inline VAD: nothing in it waits; a thread per call (not inline) keeps its queue
            enable_direct_mode=vp.direct_mode_processors and vp.vad_inline,
        )
        keypad = DTMFAggregator(
            timeout=vp.dtmf_timeout_s,
            termination_digit=KeypadEntry.POUND,
            prefix=DTMF_PREFIX,
            **direct,
        )
        # Joined already as it arrived (the phone serializer), or here, after the VAD.
        arrives_ms = self.serializer.join_ms if isinstance(self.serializer, CallSerializer) else 20
        chunker = (
            [AudioChunker(chunk_ms=vp.stt_audio_chunk_ms, **direct)]
            if vp.stt_audio_chunk_ms > arrives_ms
            else []
        )
        # The watchdog needs the providers' upstream errors and the StartFrame, not every 20 ms
        # of caller audio: after the chunker it sees a third of the frames.
        return Pipeline(
            [
                transport.input(),
                vad,
                *chunker,
                watchdog,
                stt,
                user_turns,
                *([CallerAudioEnd(**direct)] if vp.caller_audio_end else []),
                keypad,
                self.turns,
                tts,
                SynthesisTap(turns=self.turns, **direct),
                transport.output(),
                HeardTap(turns=self.turns, **direct),
            ]
        )

    def _set_reason(self, reason: str) -> None:
        if self.end_reason is None:
            self.end_reason = reason

    async def _closing(self, reason: str) -> None:
        """Before the socket closes on purpose: the stream's end is not to be resumed."""
        try:
            await mark_call_closing(
                self.deps.redis,
                key_prefix=self.deps.config.redis.key_prefix,
                call_id=self.call.call_id,
                reason=reason,
            )
        except Exception:
            log.warning("call not marked closing (Redis)", call_id=self.call.call_id)

    # ----- what the processors tell ------------------------------------------------------------

    async def _call_too_long(self, _watchdog: CallWatchdog) -> None:
        await self.turns.say_then_end(self.deps.config.voice_pipeline.max_call_text, "max_duration")

    async def _provider_down(self, _watchdog: CallWatchdog, _provider: FrameProcessor) -> None:
        await self.turns.give_up("provider_down")

    async def _end_requested(self, _turns: ConversationTurnProcessor, reason: str) -> None:
        self._set_reason(reason)
        await self._closing(reason)
        if self.worker is not None:
            await self.worker.queue_frame(EndFrame())
            self._spawn_cancel_after(8.0)

    def _spawn_cancel_after(self, delay_s: float) -> None:
        async def later() -> None:
            await asyncio.sleep(delay_s)
            if self.worker is not None and not self.worker.has_finished():
                await self.worker.cancel(reason="end timed out")

        self._later = asyncio.get_running_loop().create_task(later())

    async def _transfer_requested(
        self, turns: ConversationTurnProcessor, reason: str, summary: str, fallback: str
    ) -> None:
        try:
            await transfer_call(
                config=self.deps.config,
                redis=self.deps.redis,
                call_id=self.call.call_id,
                call_sid=self.call.call_sid,
                reason=reason,
                summary=summary,
            )
        except TransferUnavailable as exc:
            log.warning("transfer unavailable", call_id=self.call.call_id, error=str(exc))
            await self._end_requested(turns, fallback)
            return
        except Exception:
            log.exception("transfer failed", call_id=self.call.call_id)
            await self._end_requested(turns, fallback)
            return
        self.transferred = True
        await self._closing("transferred")
        self.serializer.suppress_hang_up()
        self._set_reason("transferred")
        if self.worker is not None:
            await self.worker.cancel(reason="transferred")

    async def _turn_finished(self, _turns: ConversationTurnProcessor, turn: TurnRecord) -> None:
        """Log and export the turn's timings, publish what the caller heard (turn.heard)."""
        stages = turn.timing.stages_ms()
        for stage, value in stages.items():
            if value is not None:
                metrics.TURN_STAGE_MS.labels(stage=stage).observe(value)
        log.info(
            "voice turn",
            call_id=self.call.call_id,
            turn=turn.index,
            source=turn.source,
            interrupted=turn.interrupted,
            error=turn.error,
            **stages,
        )
        heard = TurnHeard(
            call_id=self.call.call_id,
            turn_index=turn.turn_index,
            source=turn.source,
            interrupted=turn.interrupted,
            heard_text=redact(turn.heard_text) if turn.heard_words else None,
            error=turn.error,
            **stages,
        )
        try:
            await self.deps.bus.publish(heard)
        except Exception:
            log.exception("turn.heard not published", call_id=self.call.call_id, turn=turn.index)
        await record_turn_count(
            self.deps.redis,
            key_prefix=self.deps.config.redis.key_prefix,
            call_id=self.call.call_id,
            turns=self.call.turns_before + len(self.turns.turns),
        )

    # ----- the call's life ---------------------------------------------------------------------

    async def run(self) -> None:
        """Run the call to its end, then publish call.ended (once per call)."""
        self.worker = PipelineWorker(
            self._pipeline(),
            params=PipelineParams(
                audio_in_sample_rate=self.sample_rate,
                audio_out_sample_rate=self.sample_rate,
                enable_metrics=False,
            ),
            idle_timeout_secs=None,
            enable_rtvi=False,
            enable_turn_tracking=self.deps.config.voice_pipeline.pipeline_turn_tracking,
            check_dangling_tasks=False,
        )
        runner = WorkerRunner(handle_sigint=False, check_dangling_tasks=False)
        metrics.ACTIVE_CALLS.inc()
        try:
            await runner.add_workers(self.worker)
            await runner.run()
        finally:
            metrics.ACTIVE_CALLS.dec()
            try:
                await self._ended()
            finally:
                self.finished.set()

    async def _ended(self) -> None:
        if self._later is not None:
            self._later.cancel()
        if self.serializer.malformed:
            self.end_reason = "protocol_error"
        self._set_reason("caller_hung_up" if self.serializer.stopped else "stream_closed")
        if self.turns.greeting_audio_at is not None:
            metrics.GREETING_MS.observe((self.turns.greeting_audio_at - self.call.started) * 1000)
        if self.handed_off:
            log.info("call handed to another replica", call_id=self.call.call_id)
        else:
            await end_call(
                bus=self.deps.bus,
                redis=self.deps.redis,
                db=self.deps.db,
                key_prefix=self.deps.config.redis.key_prefix,
                call_id=self.call.call_id,
                reason=self.end_reason or "stream_closed",
                turn_count=self.call.turns_before + len(self.turns.turns),
                channel=self.channel,
            )
        if self.websocket.client_state.name == "CONNECTED":
            try:
                await self.websocket.close()
            except Exception:
                pass

    async def hand_off(self) -> None:
        """Service shutdown with room elsewhere: close the media socket, leave the call up.

        Twilio then requests the ``<Connect action>`` and the gateway resumes the stream on
        another replica (``callcenter.common.call_resume``), where the caller hears the resume
        line and the conversation goes on.
        """
        self.handed_off = True
        self.serializer.suppress_hang_up()
        self._set_reason("handed_off")
        if self.worker is not None:
            await self.worker.cancel(reason="handed to another replica")

    async def stop(self) -> None:
        """Service shutdown: end the call (the caller is handed back to Twilio)."""
        self._set_reason("service_shutdown")
        await self._closing("service_shutdown")
        if self.worker is not None:
            await self.worker.cancel(reason="service shutdown")


#: checks a new media socket: the call's session, or None (the socket was refused)
Accept = Callable[[VoiceDeps, WebSocket], Awaitable[CallSession | None]]


async def accept_call(deps: VoiceDeps, websocket: WebSocket) -> CallSession | None:
    """Check the socket and its start message; the call's session, or None (refused)."""
    if not handshake_signed(deps.config, websocket):
        log.warning("media socket refused: bad X-Twilio-Signature")
        await websocket.close(code=POLICY_VIOLATION)  # before accept: HTTP 403
        return None
    await websocket.accept()
    try:
        start = await read_start(websocket)
    except (ValueError, TimeoutError, WebSocketDisconnect, KeyError) as exc:
        log.warning("media socket closed: no valid start", error=str(exc))
        await refuse(websocket)
        return None
    params = start.get("customParameters")
    if not isinstance(params, dict):
        params = {}
    params = {str(k): v for k, v in params.items() if isinstance(v, str)}
    call_sid = start.get("callSid")
    call_sid = call_sid if isinstance(call_sid, str) else ""
    try:  # caller number etc. from the gateway's record, never from customParameters
        trusted = await resolve_trusted_call(
            config=deps.config,
            redis=deps.redis,
            db=deps.db,
            token=params.get("token"),
            call_sid=call_sid,
        )
    except UntrustedStream as exc:
        log.warning("media socket closed: untrusted stream", error=str(exc), call_sid=call_sid)
        await refuse(websocket)
        return None
    call = CallInfo(
        call_id=trusted.call_id,
        call_sid=trusted.call_sid,
        stream_sid=start["streamSid"] if isinstance(start.get("streamSid"), str) else "",
        from_number=trusted.from_number,
        started=time.monotonic(),
        resume=trusted.resume,
        turns_before=trusted.turns_before,
        max_call_s=trusted.time_left_s(deps.config.voice_pipeline.max_call_s),
    )
    return CallSession(deps=deps, websocket=websocket, call=call)


async def refuse(websocket: WebSocket) -> None:
    """Close a socket that may not stream (1008), whatever state it is in."""
    try:
        await websocket.close(code=POLICY_VIOLATION)
    except Exception:
        pass


async def serve_call(
    deps: VoiceDeps,
    websocket: WebSocket,
    active: set[CallSession],
    *,
    accept: Accept = accept_call,
) -> None:
    """A media socket's handler: accept (Twilio's by default), run, end."""
    session = await accept(deps, websocket)
    if session is None:
        return
    active.add(session)
    try:
        with bind_call(session.call.call_id):
            log.info("media stream started", call_sid=session.call.call_sid)
            await session.run()
    finally:
        active.discard(session)
