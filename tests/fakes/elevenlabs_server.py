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
"""

from __future__ import annotations

import asyncio
import base64
import json
import math
from dataclasses import dataclass, field

import numpy as np
from aiohttp import WSMsgType, web

from callcenter.voice_pipeline.simulator import pcm16_to_ulaw
from tests.fakes.aiohttp_stand_in import AiohttpStandIn

CHUNK_CHARS = 12


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
    ) -> None:
        super().__init__(api_key=api_key, host=host, port=port)
        self.ms_per_char = ms_per_char
        self.first_audio_delay_s = first_audio_delay_s
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
        fmt = request.query.get("output_format", "pcm_16000")
        ws = web.WebSocketResponse(max_msg_size=16 * 1024 * 1024)
        await ws.prepare(request)
        sock = TTSSocket(query=dict(request.query), ws=ws)
        self.sockets.append(sock)
        started: set[str] = set()

        async def speak(context_id: str, text: str) -> None:
            if context_id not in started:
                started.add(context_id)
                if self.first_audio_delay_s:
                    await asyncio.sleep(self.first_audio_delay_s)
            for i in range(0, len(text), CHUNK_CHARS):
                piece = text[i : i + CHUNK_CHARS]
                audio = synthesize(piece, output_format=fmt, ms_per_char=self.ms_per_char)
                per = self.ms_per_char
                alignment = {
                    "chars": list(piece),
                    "charStartTimesMs": [round(j * per) for j in range(len(piece))],
                    "charDurationsMs": [round(per) for _ in piece],
                }
                await ws.send_str(
                    json.dumps(
                        {
                            "audio": base64.b64encode(audio).decode(),
                            "alignment": alignment,
                            "normalizedAlignment": alignment,
                            "contextId": context_id,
                        }
                    )
                )

        try:
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    break
                data = json.loads(msg.data)
                if data.get("close_socket"):
                    break
                context_id = data.get("context_id") or "default"
                if data.get("close_context"):
                    if context_id in sock.contexts:
                        await ws.send_str(json.dumps({"isFinal": True, "contextId": context_id}))
                        sock.contexts.pop(context_id, None)
                    continue
                if data.get("flush"):
                    continue
                text = data.get("text")
                if text is None:
                    continue
                sock.contexts.setdefault(context_id, [])
                if text.strip():
                    sock.contexts[context_id].append(text)
                    self.texts.append(text)
                    await speak(context_id, text)
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            sock.closed = True
            if not ws.closed:
                await ws.close()
        return ws
