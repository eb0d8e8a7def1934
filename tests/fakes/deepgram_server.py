"""A local stand-in for Deepgram's live transcription WebSocket (``/v1/listen``).

It speaks the real protocol, as pipecat's ``DeepgramSTTService`` (deepgram-sdk) uses it:
binary frames of linear16 audio in; JSON ``KeepAlive``, ``Finalize`` and ``CloseStream`` in;
``Results`` (interim with ``is_final: false``, final with ``is_final: true`` and ``speech_final``
or ``from_finalize``), ``UtteranceEnd`` and ``Metadata`` out. Auth is ``Authorization: Token``.

What it cannot do is understand speech: it finds utterances in the real audio it receives by
energy, and the words of each utterance come from a script a test sets per ``tag`` query
parameter (the voice pipeline tags each connection with the Twilio CallSid). An utterance with no
scripted words left yields empty transcripts, as background noise does with the real service.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections import defaultdict, deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from aiohttp import WSMsgType, web

from tests.fakes.aiohttp_stand_in import AiohttpStandIn

FRAME_MS = 20


@dataclass
class Connection:
    """One accepted transcription socket."""

    tag: str | None
    query: dict[str, str]
    ws: web.WebSocketResponse
    audio_bytes: int = 0
    sent: list[dict[str, Any]] = field(default_factory=list)
    closed: bool = False


@dataclass
class _Utterance:
    words: list[str]
    start_s: float
    speech_ms: int = 0
    silence_ms: int = 0
    interim_sent_at_ms: int = 0
    finalized: bool = False


class DeepgramFake(AiohttpStandIn):
    """Deepgram live transcription on a local port; set scripts with :meth:`script`."""

    def __init__(
        self,
        *,
        api_key: str = "dg-test-key",
        host: str = "127.0.0.1",
        port: int = 0,
        energy_threshold: float = 300.0,
        endpoint_silence_ms: int = 700,
        interim_every_ms: int = 250,
    ) -> None:
        super().__init__(api_key=api_key, host=host, port=port)
        self.energy_threshold = energy_threshold
        self.endpoint_silence_ms = endpoint_silence_ms
        self.interim_every_ms = interim_every_ms
        self.connections: list[Connection] = []
        self.final_times: dict[str | None, list[float]] = defaultdict(list)
        self.rejected = 0
        self._scripts: dict[str | None, deque[str]] = defaultdict(deque)

    def script(self, tag: str | None, *transcripts: str) -> None:
        """Queue what the next utterances heard on ``tag``'s sockets say (None: any tag)."""
        self._scripts[tag].extend(transcripts)

    def for_tag(self, tag: str) -> list[Connection]:
        """Every socket opened for ``tag``."""
        return [c for c in self.connections if c.tag == tag]

    def finals(self, tag: str) -> list[str]:
        """The non-empty final transcripts sent on ``tag``'s sockets."""
        return [
            m["channel"]["alternatives"][0]["transcript"]
            for c in self.for_tag(tag)
            for m in c.sent
            if m.get("type") == "Results"
            and m.get("is_final")
            and m["channel"]["alternatives"][0]["transcript"]
        ]

    async def drop(self, tag: str) -> int:
        """Cut ``tag``'s open sockets abruptly (as a network failure would); return how many."""
        dropped = 0
        for conn in self.for_tag(tag):
            if not conn.closed:
                conn.closed = True
                await conn.ws.close(code=1011, message=b"dropped by test")
                dropped += 1
        return dropped

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/v1/listen", self._listen)

    def _next_words(self, tag: str | None) -> list[str]:
        for key in (tag, None):
            queue = self._scripts.get(key)
            if queue:
                return queue.popleft().split()
        return []

    async def _listen(self, request: web.Request) -> web.StreamResponse:
        if request.headers.get("Authorization") != f"Token {self.api_key}":
            return web.json_response(
                {"err_code": "INVALID_AUTH", "err_msg": "Invalid credentials."}, status=401
            )
        if self.refuse > 0:
            self.refuse -= 1
            self.rejected += 1
            return web.json_response(
                {"err_code": "SERVICE_UNAVAILABLE", "err_msg": "unavailable"}, status=503
            )
        if request.query.get("encoding", "linear16") != "linear16":
            return web.json_response({"err_msg": "this stand-in takes linear16"}, status=400)
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        conn = Connection(tag=request.query.get("tag"), query=dict(request.query), ws=ws)
        self.connections.append(conn)
        rate = int(request.query.get("sample_rate", "16000"))
        interim = request.query.get("interim_results", "true") == "true"
        frame_bytes = rate * 2 * FRAME_MS // 1000
        request_id = str(uuid.uuid4())
        pending = b""
        utt: _Utterance | None = None
        audio_ms = 0

        async def send(message: dict[str, Any]) -> None:
            conn.sent.append(message)
            await ws.send_str(json.dumps(message))

        def results(u: _Utterance, words: list[str], **flags: Any) -> dict[str, Any]:
            duration = max(u.speech_ms, 1) / 1000
            step = duration / max(len(words), 1)
            return {
                "type": "Results",
                "channel_index": [0, 1],
                "duration": round(duration, 3),
                "start": round(u.start_s, 3),
                "is_final": flags.get("is_final", False),
                "speech_final": flags.get("speech_final", False),
                "from_finalize": flags.get("from_finalize", False),
                "channel": {
                    "alternatives": [
                        {
                            "transcript": " ".join(words),
                            "confidence": 0.98,
                            "words": [
                                {
                                    "word": w.lower().strip(".,?!"),
                                    "start": round(u.start_s + i * step, 3),
                                    "end": round(u.start_s + (i + 1) * step, 3),
                                    "confidence": 0.98,
                                    "punctuated_word": w,
                                }
                                for i, w in enumerate(words)
                            ],
                        }
                    ]
                },
                "metadata": {
                    "request_id": request_id,
                    "model_info": {"name": "general-nova-3", "version": "fake", "arch": "nova-3"},
                    "model_uuid": "00000000-0000-0000-0000-000000000000",
                },
            }

        async def finalize(u: _Utterance, *, from_finalize: bool) -> None:
            u.finalized = True
            if u.words:
                self.final_times[conn.tag].append(time.monotonic())
            await send(
                results(
                    u,
                    u.words,
                    is_final=True,
                    speech_final=not from_finalize,
                    from_finalize=from_finalize,
                )
            )

        try:
            async for msg in ws:
                if msg.type == WSMsgType.BINARY:
                    conn.audio_bytes += len(msg.data)
                    pending += msg.data
                    while len(pending) >= frame_bytes:
                        frame, pending = pending[:frame_bytes], pending[frame_bytes:]
                        audio_ms += FRAME_MS
                        samples = np.frombuffer(frame, dtype="<i2").astype(np.float32)
                        energy = float(np.sqrt(np.mean(samples * samples)))
                        speech = energy >= self.energy_threshold
                        if utt is None:
                            if speech:
                                utt = _Utterance(
                                    words=self._next_words(conn.tag),
                                    start_s=audio_ms / 1000,
                                )
                            continue
                        if speech:
                            utt.speech_ms += FRAME_MS
                            utt.silence_ms = 0
                        else:
                            utt.silence_ms += FRAME_MS
                        if (
                            interim
                            and not utt.finalized
                            and speech
                            and utt.words
                            and utt.speech_ms - utt.interim_sent_at_ms >= self.interim_every_ms
                        ):
                            utt.interim_sent_at_ms = utt.speech_ms
                            count = min(len(utt.words), 1 + utt.speech_ms // 400)
                            await send(results(utt, utt.words[:count]))
                        if utt.silence_ms >= self.endpoint_silence_ms:
                            if not utt.finalized:
                                await finalize(utt, from_finalize=False)
                            await send(
                                {
                                    "type": "UtteranceEnd",
                                    "channel": [0, 1],
                                    "last_word_end": round(utt.start_s + utt.speech_ms / 1000, 3),
                                }
                            )
                            utt = None
                elif msg.type == WSMsgType.TEXT:
                    data = json.loads(msg.data)
                    kind = data.get("type")
                    if kind == "Finalize":
                        if utt is not None and not utt.finalized:
                            await finalize(utt, from_finalize=True)
                        else:
                            empty = _Utterance(words=[], start_s=audio_ms / 1000)
                            await send(results(empty, [], is_final=True, from_finalize=True))
                    elif kind == "CloseStream":
                        await send(
                            {
                                "type": "Metadata",
                                "transaction_key": "deprecated",
                                "request_id": request_id,
                                "sha256": "0" * 64,
                                "created": "2026-01-01T00:00:00.000Z",
                                "duration": audio_ms / 1000,
                                "channels": 1,
                            }
                        )
                        break
                else:
                    break
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            conn.closed = True
            if not ws.closed:
                await ws.close()
        return ws
