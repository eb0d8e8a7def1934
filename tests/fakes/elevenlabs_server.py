"""A local stand-in for ElevenLabs text-to-speech.

It speaks the real protocols pipecat's ``ElevenLabsTTSService`` and a plain HTTP client use:

* WebSocket ``/v1/text-to-speech/{voice_id}/multi-stream-input?model_id=…&output_format=…``
  (header ``xi-api-key``): in, ``{"text", "context_id", "voice_settings"?}``, ``{"context_id",
  "flush": true}``, ``{"context_id", "close_context": true}``, ``{"text": ""}`` keep-alives and
  ``{"close_socket": true}``; out, ``{"audio": <base64>, "alignment": {"chars",
  "charStartTimesMs", "charDurationsMs"}, "normalizedAlignment": …, "contextId"}`` per chunk and
  ``{"isFinal": true, "contextId"}`` once a closed context has had all its audio.
* HTTP ``POST /v1/text-to-speech/{voice_id}[/stream]?output_format=…`` with ``{"text",
  "model_id"}``: the audio bytes.

The audio is a tone whose length follows the text (``ms_per_char``), in the requested format
(``pcm_<rate>`` 16-bit little-endian or ``ulaw_8000``). Every text it was asked to say is kept in
:attr:`texts`, so a test can tell what the caller was told.

The stream-input socket keeps ElevenLabs' rules (https://elevenlabs.io/docs/api-reference/
text-to-speech/v-1-text-to-speech-voice-id-multi-stream-input and the multi-context guide):

* Text is generated when the buffer allows it, not when it arrives: with ``auto_mode=true``
  ("disables chunk schedule and buffers") each text at once; otherwise once a context's buffer
  reaches the next size of ``chunk_length_schedule`` (default ``[120, 160, 250, 290]``
  characters) or on ``flush``. Text still buffered when its context closes is never spoken.
* Generation runs apart from reading, so ``{"isFinal": true}`` for a closed context comes
  after that context's last audio, however early ``close_context`` was sent.
* ``voice_settings`` is accepted only on the message that opens a context; sent later, the
  socket is closed with 1008 (policy violation), as is a sixth open context
  (``max_active_conversations``: at most 5 per socket).
* With no message for ``inactivity_timeout`` seconds (query parameter, default 20, at most 180)
  the socket is closed with 1008 (``input_timeout_exceeded``); ``{"text": ""}`` keeps it open.

What it cannot know is how long real generation takes or how it splits audio: chunks here are
``CHUNK_CHARS`` characters each, generated as fast as the socket takes them.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import math
from dataclasses import dataclass, field

import numpy as np
from aiohttp import WSMsgType, web

from callcenter.voice_pipeline.simulator import pcm16_to_ulaw
from tests.fakes.aiohttp_stand_in import AiohttpStandIn

CHUNK_CHARS = 12
#: multi-context guide: "a maximum of 5 concurrent contexts per connection"
MAX_CONTEXTS = 5
DEFAULT_SCHEDULE = [120, 160, 250, 290]
DEFAULT_INACTIVITY_S = 20.0
MAX_INACTIVITY_S = 180.0
#: a sentinel queued after a context's last text: its isFinal
_FINAL = object()


def synthesize(text: str, *, output_format: str, ms_per_char: float) -> bytes:
    """A tone as long as ``text`` would take to say, in ElevenLabs' ``output_format``."""
    fmt, _, rate_s = output_format.partition("_")
    rate = int(rate_s or 16000)
    n = int(rate * ms_per_char * len(text) / 1000)
    t = np.arange(n) / rate
    pcm = (6000 * np.sin(2 * math.pi * 330 * t)).astype("<i2").tobytes()
    if fmt == "ulaw":
        return pcm16_to_ulaw(pcm)
    return pcm


@dataclass
class TTSSocket:
    """One accepted multi-stream-input socket."""

    query: dict[str, str]
    ws: web.WebSocketResponse
    contexts: dict[str, list[str]] = field(default_factory=dict)
    closed: bool = False
    close_code: int | None = None
    close_reason: str = ""


class ElevenLabsFake(AiohttpStandIn):
    """ElevenLabs TTS on a local port."""

    def __init__(
        self,
        *,
        api_key: str = "el-test-key",
        host: str = "127.0.0.1",
        port: int = 0,
        ms_per_char: float = 40.0,
        first_audio_delay_s: float = 0.0,
        inactivity_timeout_s: float | None = None,
    ) -> None:
        super().__init__(api_key=api_key, host=host, port=port)
        self.ms_per_char = ms_per_char
        self.first_audio_delay_s = first_audio_delay_s
        #: overrides the socket's ``inactivity_timeout`` (so tests need not wait 20 s)
        self.inactivity_timeout_s = inactivity_timeout_s
        self.sockets: list[TTSSocket] = []
        self.texts: list[str] = []
        self.http_texts: list[str] = []

    def spoken(self) -> str:
        """Everything it has been asked to say on sockets, joined."""
        return " ".join(t.strip() for t in self.texts if t.strip())

    async def drop(self) -> int:
        """Cut every open socket abruptly; return how many."""
        count = 0
        for sock in self.sockets:
            if not sock.closed:
                sock.closed = True
                await sock.ws.close(code=1011, message=b"dropped by test")
                count += 1
        return count

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/v1/text-to-speech/{voice}/multi-stream-input", self._stream_input)
        app.router.add_post("/v1/text-to-speech/{voice}", self._http_tts)
        app.router.add_post("/v1/text-to-speech/{voice}/stream", self._http_tts)

    def _authorised(self, request: web.Request) -> bool:
        return request.headers.get("xi-api-key") == self.api_key

    async def _http_tts(self, request: web.Request) -> web.StreamResponse:
        if not self._authorised(request):
            return web.json_response({"detail": {"status": "invalid_api_key"}}, status=401)
        body = await request.json()
        text = str(body.get("text", ""))
        self.http_texts.append(text)
        fmt = request.query.get("output_format", "mp3_44100_128")
        if not (fmt.startswith("pcm_") or fmt == "ulaw_8000"):
            return web.json_response({"detail": "this stand-in makes pcm_* and ulaw_8000"}, 400)
        audio = synthesize(text, output_format=fmt, ms_per_char=self.ms_per_char)
        return web.Response(body=audio, content_type="application/octet-stream")

    async def _stream_input(self, request: web.Request) -> web.StreamResponse:
        if not self._authorised(request):
            return web.json_response({"detail": {"status": "invalid_api_key"}}, status=401)
        if self.refuse > 0:
            self.refuse -= 1
            return web.json_response({"detail": "unavailable"}, status=503)
        try:
            timeout = float(request.query.get("inactivity_timeout", DEFAULT_INACTIVITY_S))
        except ValueError:
            timeout = -1.0
        if not 0 < timeout <= MAX_INACTIVITY_S:
            return web.json_response(
                {"detail": {"status": "invalid_request", "message": "inactivity_timeout <= 180"}},
                status=400,
            )
        ws = web.WebSocketResponse(max_msg_size=16 * 1024 * 1024)
        await ws.prepare(request)
        sock = TTSSocket(query=dict(request.query), ws=ws)
        self.sockets.append(sock)
        stream = _StreamInput(
            owner=self,
            sock=sock,
            output_format=request.query.get("output_format", "pcm_16000"),
            auto_mode=request.query.get("auto_mode", "false") == "true",
            inactivity_timeout_s=self.inactivity_timeout_s or timeout,
        )
        await stream.run()
        return ws


class _PolicyViolation(Exception):
    """The client broke a rule for which ElevenLabs closes the socket with 1008."""


class _StreamInput:
    """One multi-stream-input socket: messages in, generation in order in a task of its own."""

    def __init__(
        self,
        *,
        owner: ElevenLabsFake,
        sock: TTSSocket,
        output_format: str,
        auto_mode: bool,
        inactivity_timeout_s: float,
    ) -> None:
        self.owner = owner
        self.sock = sock
        self.ws = sock.ws
        self.output_format = output_format
        self.auto_mode = auto_mode
        self.inactivity_timeout_s = inactivity_timeout_s
        self.buffers: dict[str, str] = {}
        self.generated: dict[str, int] = {}  # how many generations each context has had
        self.started: set[str] = set()
        self.work: asyncio.Queue[tuple[str, object]] = asyncio.Queue()

    def schedule_size(self, context_id: str) -> int:
        """How many buffered characters trigger the context's next generation."""
        done = self.generated.get(context_id, 0)
        return DEFAULT_SCHEDULE[min(done, len(DEFAULT_SCHEDULE) - 1)]

    def generate(self, context_id: str) -> None:
        """Queue the context's buffered text for generation."""
        text, self.buffers[context_id] = self.buffers.get(context_id, ""), ""
        if text.strip():
            self.generated[context_id] = self.generated.get(context_id, 0) + 1
            self.sock.contexts.setdefault(context_id, []).append(text)
            self.owner.texts.append(text)
            self.work.put_nowait((context_id, text))

    def on_message(self, data: dict[str, object]) -> bool:
        """Handle one message; False when the socket is to close."""
        if data.get("close_socket"):
            return False
        context_id = str(data.get("context_id") or "default")
        opening = context_id not in self.buffers and context_id not in self.sock.contexts
        if data.get("close_context"):
            self.buffers.pop(context_id, None)  # unflushed text is never spoken
            if not opening:
                self.sock.contexts.setdefault(context_id, [])
                self.work.put_nowait((context_id, _FINAL))
            return True
        text = data.get("text")
        if "voice_settings" in data and not opening:
            raise _PolicyViolation("voice_settings may only be sent with a context's first message")
        if opening and (text or data.get("flush")):
            if len(self.buffers) >= MAX_CONTEXTS:
                raise _PolicyViolation(
                    f"max_active_conversations: at most {MAX_CONTEXTS} contexts per connection"
                )
            self.buffers[context_id] = ""
        if isinstance(text, str) and text and context_id in self.buffers:
            self.buffers[context_id] += text
            if self.auto_mode or len(self.buffers[context_id]) >= self.schedule_size(context_id):
                self.generate(context_id)
        if data.get("flush") and context_id in self.buffers:
            self.generate(context_id)
        return True

    async def speak(self, context_id: str, text: str) -> None:
        owner = self.owner
        if context_id not in self.started:
            self.started.add(context_id)
            if owner.first_audio_delay_s:
                await asyncio.sleep(owner.first_audio_delay_s)
        for i in range(0, len(text), CHUNK_CHARS):
            piece = text[i : i + CHUNK_CHARS]
            audio = synthesize(
                piece, output_format=self.output_format, ms_per_char=owner.ms_per_char
            )
            per = owner.ms_per_char
            alignment = {
                "chars": list(piece),
                "charStartTimesMs": [round(j * per) for j in range(len(piece))],
                "charDurationsMs": [round(per) for _ in piece],
            }
            await self.ws.send_str(
                json.dumps(
                    {
                        "audio": base64.b64encode(audio).decode(),
                        "alignment": alignment,
                        "normalizedAlignment": alignment,
                        "contextId": context_id,
                    }
                )
            )

    async def generator(self) -> None:
        """Generate queued text in order; a context's isFinal after its last audio."""
        while True:
            context_id, item = await self.work.get()
            try:
                if item is _FINAL:
                    self.sock.contexts.pop(context_id, None)
                    self.buffers.pop(context_id, None)
                    await self.ws.send_str(json.dumps({"isFinal": True, "contextId": context_id}))
                else:
                    await self.speak(context_id, str(item))
            finally:
                self.work.task_done()

    async def run(self) -> None:
        task = asyncio.create_task(self.generator())
        try:
            while True:
                try:
                    msg = await self.ws.receive(timeout=self.inactivity_timeout_s)
                except TimeoutError:
                    await self.close(1008, "input_timeout_exceeded: no text within the timeout")
                    break
                if msg.type != WSMsgType.TEXT:
                    break
                if not self.on_message(json.loads(msg.data)):
                    await self.drain()
                    break
        except _PolicyViolation as exc:
            await self.close(1008, str(exc))
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            self.sock.closed = True
            if not self.ws.closed:
                await self.ws.close()

    async def drain(self) -> None:
        """Let queued generation finish (``close_socket`` ends the socket gracefully)."""
        await asyncio.wait_for(self.work.join(), timeout=30)

    async def close(self, code: int, reason: str) -> None:
        self.sock.close_code, self.sock.close_reason = code, reason
        await self.ws.close(code=code, message=reason.encode()[:120])
