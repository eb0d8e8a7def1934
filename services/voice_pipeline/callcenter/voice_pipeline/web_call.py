"""A voice call from the browser (channel ``web_voice``): the chat widget's "Call" button.

The browser captures the microphone and talks to ``/web/media`` over a WebSocket; the call then
runs the same pipeline as a phone call (:class:`~callcenter.voice_pipeline.call.CallSession`),
at 16 kHz. The protocol:

* browser -> pipeline: first a text frame ``{"type": "start", "token": "<stream token>"}``, then
  binary frames of 16-bit little-endian mono PCM at 16 kHz (at most half a second each), and
  ``{"type": "hangup"}`` to end the call (closing the socket ends it too).
* pipeline -> browser: ``{"type": "started", "call_id": …, "sample_rate": 16000}`` once the
  token was accepted, binary frames of the same PCM to play, ``{"type": "clear"}`` when the
  caller interrupted (drop what is queued for playback); the socket closes when the call ends.

Trust: the browser never names its call. The gateway recorded it (``POST /web-voice/calls``) with
a stream id in ``provider_ids.web_stream_id`` and handed the browser a short-lived token signed
for that call and stream (:mod:`callcenter.common.stream_token`, as on the phone path); the
socket is closed (1008) unless the token is valid, the call is a live ``web_voice`` call of that
stream, and no other socket has claimed it (single use).

Identity: when the call was started from a chat whose session token the gateway checked, the
gateway's row names that chat (``provider_ids.chat_call_id``); the pipeline reads it from the row,
as the phone path reads the caller's number, and sends it with every turn
(``caller.linked_call_id``), so a visitor verified in the chat is verified on the call. Nothing the
browser sends on this socket says who the caller is.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass

from fastapi import WebSocket
from pipecat.audio.utils import create_stream_resampler
from pipecat.frames.frames import (
    AudioRawFrame,
    Frame,
    InputAudioRawFrame,
    InterruptionFrame,
)
from pipecat.processors.frame_processor import FrameProcessorSetup
from pipecat.serializers.base_serializer import FrameSerializer
from starlette.websockets import WebSocketDisconnect

from callcenter.common.contracts import TurnCaller, TurnRequest
from callcenter.common.events import Channel
from callcenter.common.logging import get_logger
from callcenter.common.stream_token import (
    InvalidStreamToken,
    stream_token_secret,
    verify_stream_token,
)
from callcenter.voice_pipeline.call import (
    START_TIMEOUT_S,
    CallSession,
    VoiceDeps,
    refuse,
)
from callcenter.voice_pipeline.timing import CallInfo, TurnRecord
from callcenter.voice_pipeline.trusted_call import UntrustedStream, claim_live_stream
from callcenter.voice_pipeline.turn_processor import ConversationTurnProcessor

log = get_logger(__name__)

#: the browser's audio rate, both ways
BROWSER_RATE = 16000
#: half a second of 16 kHz PCM16; the widget sends 20 ms
MAX_FRAME_BYTES = BROWSER_RATE
#: the ``provider_ids`` entry that names a browser call's stream
STREAM_KEY = "web_stream_id"
#: the ``provider_ids`` entry that names the chat the call was started from (checked by the gateway)
CHAT_KEY = "chat_call_id"


class MalformedBrowserMessage(ValueError):
    """A message on the browser socket that is not this protocol."""


class BrowserAudioSerializer(FrameSerializer):
    """Raw PCM16 both ways; interruptions become ``clear``; anything unexpected ends the call."""

    def __init__(self) -> None:
        super().__init__()
        self.malformed: str | None = None
        self.stopped = False
        self.on_audio_sent: Callable[[float], None] | None = None
        self.media_out = 0
        self._rate = BROWSER_RATE
        self._in = create_stream_resampler()
        self._out = create_stream_resampler()

    async def setup(self, setup: FrameProcessorSetup) -> None:
        """Note the pipeline's rate (audio in is resampled to it when it differs)."""
        self._rate = setup.audio_in_sample_rate or BROWSER_RATE

    async def serialize(self, frame: Frame) -> str | bytes | None:
        """Audio as PCM16 at 16 kHz; an interruption as ``clear``; nothing else goes out."""
        if isinstance(frame, InterruptionFrame):
            return json.dumps({"type": "clear"})
        if isinstance(frame, AudioRawFrame):
            audio = frame.audio
            if frame.sample_rate != BROWSER_RATE:
                audio = await self._out.resample(audio, frame.sample_rate, BROWSER_RATE)
            if not audio:
                return None
            self.media_out += 1
            if self.on_audio_sent is not None:
                self.on_audio_sent(time.monotonic())
            return audio
        return None

    async def deserialize(self, data: str | bytes) -> Frame | None:
        """A frame of microphone audio, or None (hang-up); raise for anything else."""
        if isinstance(data, str):
            try:
                message = json.loads(data)
            except ValueError as exc:
                self.malformed = "not JSON"
                raise MalformedBrowserMessage("text frame is not JSON") from exc
            if isinstance(message, dict) and message.get("type") == "hangup":
                self.stopped = True
                return None
            self.malformed = "unknown message"
            raise MalformedBrowserMessage("unknown text message on the browser socket")
        if len(data) % 2 or len(data) > MAX_FRAME_BYTES:
            self.malformed = "bad audio frame"
            raise MalformedBrowserMessage("audio frame is not 16-bit PCM of at most 0.5 s")
        audio = data
        if self._rate != BROWSER_RATE:
            audio = await self._in.resample(audio, BROWSER_RATE, self._rate)
        return InputAudioRawFrame(audio=audio, num_channels=1, sample_rate=self._rate)


@dataclass(slots=True)
class WebCallInfo(CallInfo):
    """A browser call, and the chat it was started from (as the gateway recorded it)."""

    chat_call_id: str | None = None


class WebVoiceTurnProcessor(ConversationTurnProcessor):
    """The phone call's turn processor, asking the conversation service as ``web_voice``."""

    def _request(self, turn: TurnRecord) -> TurnRequest:
        request = super()._request(turn)
        linked = self.call.chat_call_id if isinstance(self.call, WebCallInfo) else None
        return request.model_copy(
            update={"channel": "web_voice", "caller": TurnCaller(linked_call_id=linked)}
        )


class WebCallSession(CallSession):
    """A browser call: 16 kHz PCM over the socket, no number, no phone transfer."""

    channel: Channel = "web_voice"
    sample_rate: int = BROWSER_RATE
    turn_processor = WebVoiceTurnProcessor

    def can_hand_over(self) -> bool:
        """Never: no agent can join a browser call (the apology does not promise one)."""
        return False

    def _serializer(self) -> FrameSerializer:
        return BrowserAudioSerializer()

    async def _transfer_requested(
        self, turns: ConversationTurnProcessor, reason: str, summary: str, fallback: str
    ) -> None:
        # A browser call cannot be redirected to an agent's phone: the transfer tool refuses on
        # web_voice and giving up ends the call (can_hand_over), so nothing should ask; if
        # something does, the call ends rather than promising a person.
        log.info("browser call cannot be handed over; ending it", reason=reason)
        await self._end_requested(turns, fallback)


async def resolve_web_call(deps: VoiceDeps, token: object) -> WebCallInfo:
    """The call a browser's token opens, claimed for this socket, as the gateway recorded it.

    Raises:
        UntrustedStream: the token is invalid or expired, the call is not a live browser call of
            that stream, or another socket already claimed it.

    """
    secret = stream_token_secret(deps.config)
    if secret is None:
        raise UntrustedStream("no stream token secret configured")
    if not isinstance(token, str):
        raise UntrustedStream("no stream token")
    try:
        call_id = verify_stream_token(secret, token, call_sid=None)
    except InvalidStreamToken as exc:
        raise UntrustedStream(str(exc)) from exc
    stream_id = token.split(".")[1]  # verified above: the signed stream id
    row = await claim_live_stream(
        config=deps.config,
        redis=deps.redis,
        db=deps.db,
        call_id=call_id,
        channel="web_voice",
        stream_key=STREAM_KEY,
        stream_id=stream_id,
    )
    chat = row["provider_ids"].get(CHAT_KEY)
    return WebCallInfo(
        call_id=call_id,
        call_sid=stream_id,
        stream_sid=stream_id,
        chat_call_id=chat if isinstance(chat, str) and chat else None,
    )


async def accept_web_call(deps: VoiceDeps, websocket: WebSocket) -> CallSession | None:
    """Accept the socket, check its start message; the call's session, or None (refused)."""
    await websocket.accept()
    try:
        async with asyncio.timeout(START_TIMEOUT_S):
            start = json.loads(await websocket.receive_text())
        if not isinstance(start, dict) or start.get("type") != "start":
            raise ValueError("the first message is not start")
        call = await resolve_web_call(deps, start.get("token"))
    except UntrustedStream as exc:
        log.warning("browser call refused: untrusted stream", error=str(exc))
        await refuse(websocket)
        return None
    except (ValueError, TimeoutError, WebSocketDisconnect, KeyError, RuntimeError) as exc:
        log.warning("browser call refused: no valid start", error=str(exc))
        await refuse(websocket)
        return None
    await websocket.send_text(
        json.dumps({"type": "started", "call_id": call.call_id, "sample_rate": BROWSER_RATE})
    )
    return WebCallSession(deps=deps, websocket=websocket, call=call)
