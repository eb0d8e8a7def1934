"""A local stand-in for Deepgram's live transcription WebSocket (``/v1/listen``).

It speaks the real protocol, as pipecat's ``DeepgramSTTService`` (deepgram-sdk) uses it:
binary frames of linear16 audio in; JSON ``KeepAlive``, ``Finalize`` and ``CloseStream`` in;
``Results`` (interim with ``is_final: false``, final with ``is_final: true`` and ``speech_final``
or ``from_finalize``), ``UtteranceEnd`` and ``Metadata`` out. Auth is ``Authorization: Token``.

It behaves as Deepgram documents, so a client that leans on a simplification fails here too:

* Interim results are revised: an interim's last word is a partial guess that a later interim or
  the final corrects (https://developers.deepgram.com/docs/interim-results).
* One utterance is finalized in several ``is_final`` pieces (every ``final_every_ms`` of speech),
  and only the piece closed by an endpoint carries ``speech_final: true``; the transcript of an
  utterance is the concatenation of its finals (https://developers.deepgram.com/docs/
  understand-endpointing-interim-results).
* Endpointing follows the ``endpointing`` parameter: milliseconds of silence, 10 ms when not
  given, none with ``endpointing=false`` (https://developers.deepgram.com/docs/endpointing).
* ``UtteranceEnd`` is sent only when ``utterance_end_ms`` was requested, after that long without
  a word, and the parameter needs ``interim_results=true`` (https://developers.deepgram.com/docs/
  utterance-end).
* A socket that gets neither audio nor a text message (``KeepAlive``) for ``idle_timeout_s``
  (Deepgram: about 10 s) is closed with 1011 and ``NET-0001`` (https://developers.deepgram.com/
  docs/audio-keep-alive, https://developers.deepgram.com/docs/recovering-from-connection-errors).

* A final holds only words already spoken: at a pause in the middle of an utterance ("Thanks,
  [pause] can you also check my refund?") the final, ``speech_final`` or ``from_finalize``
  alike, reads "Thanks,", and the rest is finalized when it has been said
  (https://developers.deepgram.com/docs/understand-endpointing-interim-results: endpointing
  finalizes "the process time range", the audio received so far).

What it cannot do is understand speech: it finds utterances in the real audio it receives by
energy, and the words of each utterance come from a script a test sets per ``tag`` query
parameter (the voice pipeline tags each connection with the Twilio CallSid). Where one scripted
utterance ends (``utterance_gap_ms`` of silence), how words line up with the audio
(``ms_per_word`` of speech each) and when a long utterance is cut into finals are this stand-in's
guesses, not Deepgram's model. Its rule for pauses: a speaker pauses only where the script has
punctuation (``PAUSE_MARKS``: ``, ; : . ? !`` ending a word) or at its end, so punctuation in a
script is where its audio may pause, and a script with none inside is said in one breath. A
pause (``end_of_speech_ms`` of silence; the client's ``Finalize`` in such a pause) ends the
phrase being said: the words up to the punctuation nearest to where the clock
(``ms_per_word``) has got to, at least one phrase past the last pause; after it the clock counts
on from there. The utterance's last word is final only at such a pause
(https://developers.deepgram.com/docs/finalize); while speech goes on, the clock's words may be
finalized in pieces. An utterance with no scripted words left yields empty transcripts, as
background noise does with the real service.
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


#: Punctuation a script word may end with where its speaker can pause.
PAUSE_MARKS = (",", ";", ":", ".", "?", "!")


@dataclass
class _Utterance:
    words: list[str]
    start_s: float
    speech_ms: int = 0
    silence_ms: int = 0
    interim_sent_at_ms: int = 0
    final_sent_at_ms: int = 0
    finalized: int = 0  # words already sent in a final
    endpointed: bool = False  # a speech_final closed the speech so far
    paused_at: int = 0  # words said before the last pause (where it ended a phrase)
    paused_speech_ms: int = 0  # speech_ms at the last pause
    paused: bool = False  # no speech since the last pause
    boundaries: list[int] = field(init=False)  # word counts where a phrase ends

    def __post_init__(self) -> None:
        inner = [i + 1 for i, w in enumerate(self.words[:-1]) if w.endswith(PAUSE_MARKS)]
        self.boundaries = [*inner, len(self.words)] if self.words else []

    def _estimate(self, ms_per_word: int) -> float:
        """Words said so far by the clock: those before the last pause, then ms_per_word each."""
        return self.paused_at + (self.speech_ms - self.paused_speech_ms) / ms_per_word

    def said(self, ms_per_word: int) -> int:
        """How many of its words are over while speech goes on (never the last one, since
        nothing tells it was the last)."""
        said = max(self.paused_at, int(self._estimate(ms_per_word)))
        return max(0, min(len(self.words) - 1, said))

    def pause(self, ms_per_word: int) -> int:
        """The speaker paused: the phrase being said is over; return the words said in all.

        A speaker pauses where the script has punctuation (or at its end), so the phrase ends at
        the boundary nearest to where the clock has got to, and at least one phrase past the
        last pause. A second call with no speech in between changes nothing.
        """
        if not self.paused:
            self.paused = True
            lowest = max(self.finalized, self.paused_at + 1)
            candidates = [b for b in self.boundaries if b >= lowest]
            if candidates:
                estimate = self._estimate(ms_per_word)
                self.paused_at = min(candidates, key=lambda b: (abs(b - estimate), b))
            self.paused_speech_ms = self.speech_ms
        return max(self.paused_at, self.finalized)


def _endpointing_ms(value: str | None) -> int | None:
    """The ``endpointing`` parameter: silence in ms, 10 by default, None when ``false``."""
    if value is None or value == "true":
        return 10
    if value == "false":
        return None
    return int(value)


class DeepgramFake(AiohttpStandIn):
    """Deepgram live transcription on a local port; set scripts with :meth:`script`."""

    def __init__(
        self,
        *,
        api_key: str = "dg-test-key",
        host: str = "127.0.0.1",
        port: int = 0,
        energy_threshold: float = 300.0,
        utterance_gap_ms: int = 700,
        interim_every_ms: int = 250,
        final_every_ms: int = 1000,
        ms_per_word: int = 220,
        end_of_speech_ms: int = 100,
        idle_timeout_s: float = 10.0,
    ) -> None:
        super().__init__(api_key=api_key, host=host, port=port)
        self.energy_threshold = energy_threshold
        self.utterance_gap_ms = utterance_gap_ms
        self.interim_every_ms = interim_every_ms
        self.final_every_ms = final_every_ms
        self.ms_per_word = ms_per_word
        self.end_of_speech_ms = end_of_speech_ms
        self.idle_timeout_s = idle_timeout_s
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
        """What each utterance heard on ``tag``'s sockets said: its final pieces, joined.

        An utterance ends with a ``speech_final`` or ``from_finalize`` final (or the socket's
        end); empty utterances are left out.
        """
        out: list[str] = []
        for conn in self.for_tag(tag):
            pieces: list[str] = []
            for m in conn.sent:
                if m.get("type") != "Results" or not m.get("is_final"):
                    continue
                text = m["channel"]["alternatives"][0]["transcript"]
                if text:
                    pieces.append(text)
                if (m.get("speech_final") or m.get("from_finalize")) and pieces:
                    out.append(" ".join(pieces))
                    pieces = []
            if pieces:
                out.append(" ".join(pieces))
        return out

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
        query = request.query
        if query.get("encoding", "linear16") != "linear16":
            return web.json_response({"err_msg": "this stand-in takes linear16"}, status=400)
        interim = query.get("interim_results", "false") == "true"
        utterance_end_ms = int(query["utterance_end_ms"]) if "utterance_end_ms" in query else None
        if utterance_end_ms is not None and not interim:
            # utterance-end docs: UtteranceEnd works from interim results, so it needs them
            return web.json_response(
                {
                    "err_code": "Bad Request",
                    "err_msg": "utterance_end_ms requires interim_results=true",
                },
                status=400,
            )
        try:
            endpointing_ms = _endpointing_ms(query.get("endpointing"))
        except ValueError:
            return web.json_response(
                {"err_code": "Bad Request", "err_msg": "endpointing must be an integer or false"},
                status=400,
            )
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        session = _Session(
            owner=self,
            conn=Connection(tag=query.get("tag"), query=dict(query), ws=ws),
            rate=int(query.get("sample_rate", "16000")),
            interim=interim,
            endpointing_ms=endpointing_ms,
            utterance_end_ms=utterance_end_ms,
        )
        self.connections.append(session.conn)
        await session.run()
        return ws


class _Session:
    """One socket's transcription: audio in, results out."""

    def __init__(
        self,
        *,
        owner: DeepgramFake,
        conn: Connection,
        rate: int,
        interim: bool,
        endpointing_ms: int | None,
        utterance_end_ms: int | None,
    ) -> None:
        self.owner = owner
        self.conn = conn
        self.ws = conn.ws
        self.frame_bytes = rate * 2 * FRAME_MS // 1000
        self.interim = interim
        self.endpointing_ms = endpointing_ms
        self.utterance_end_ms = utterance_end_ms
        self.request_id = str(uuid.uuid4())
        self.utt: _Utterance | None = None
        self.audio_ms = 0
        self.last_word_end_s = 0.0
        self.heard_since_end = False  # a word since the last UtteranceEnd

    async def send(self, message: dict[str, Any]) -> None:
        self.conn.sent.append(message)
        await self.ws.send_str(json.dumps(message))

    def results(self, u: _Utterance, words: list[str], **flags: Any) -> dict[str, Any]:
        duration = max(u.speech_ms, 1) / 1000
        step = duration / max(len(u.words), 1)
        first = u.finalized
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
                                "start": round(u.start_s + (first + i) * step, 3),
                                "end": round(u.start_s + (first + i + 1) * step, 3),
                                "confidence": 0.98,
                                "punctuated_word": w,
                            }
                            for i, w in enumerate(words)
                        ],
                    }
                ]
            },
            "metadata": {
                "request_id": self.request_id,
                "model_info": {"name": "general-nova-3", "version": "fake", "arch": "nova-3"},
                "model_uuid": "00000000-0000-0000-0000-000000000000",
            },
        }

    async def final(self, u: _Utterance, upto: int, **flags: Any) -> None:
        """Finalize ``u``'s words up to ``upto`` (those not finalized yet)."""
        words = u.words[u.finalized : upto]
        if not words and not (flags.get("speech_final") or flags.get("from_finalize")):
            return
        if flags.get("speech_final") or flags.get("from_finalize"):
            if u.words and upto >= len(u.words):
                self.owner.final_times[self.conn.tag].append(time.monotonic())
        await self.send(self.results(u, words, is_final=True, **flags))
        u.finalized = max(u.finalized, upto)
        u.final_sent_at_ms = u.speech_ms
        if words:
            self.heard()

    def heard(self) -> None:
        self.last_word_end_s = self.audio_ms / 1000
        self.heard_since_end = True

    async def on_frame(self, frame: bytes) -> None:
        self.audio_ms += FRAME_MS
        samples = np.frombuffer(frame, dtype="<i2").astype(np.float32)
        speech = float(np.sqrt(np.mean(samples * samples))) >= self.owner.energy_threshold
        if (
            not speech
            and self.utterance_end_ms is not None
            and self.heard_since_end
            and self.audio_ms / 1000 - self.last_word_end_s >= self.utterance_end_ms / 1000
        ):
            self.heard_since_end = False
            await self.send(
                {
                    "type": "UtteranceEnd",
                    "channel": [0, 1],
                    "last_word_end": round(self.last_word_end_s, 3),
                }
            )
        u = self.utt
        if u is None:
            if speech:
                self.utt = _Utterance(
                    words=self.owner._next_words(self.conn.tag), start_s=self.audio_ms / 1000
                )
            return
        per_word = self.owner.ms_per_word
        if speech:
            u.speech_ms += FRAME_MS
            u.silence_ms = 0
            u.endpointed = False
            u.paused = False
            said = u.said(per_word)
            if u.speech_ms - u.final_sent_at_ms >= self.owner.final_every_ms and said > u.finalized:
                await self.final(u, said)  # a long utterance is finalized in pieces
            elif (
                self.interim
                and u.finalized < len(u.words)
                and u.speech_ms - u.interim_sent_at_ms >= self.owner.interim_every_ms
            ):
                u.interim_sent_at_ms = u.speech_ms
                # the word being said is still a guess, which a later result revises
                said = max(said, u.finalized)
                current = u.words[said]
                guess = current[: max(1, len(current) // 2)]
                await self.send(self.results(u, [*u.words[u.finalized : said], guess]))
                self.heard()
            return
        u.silence_ms += FRAME_MS
        if u.silence_ms >= self.owner.end_of_speech_ms:
            upto = u.pause(per_word)  # a pause, not a gap between words: the phrase is over
        else:
            upto = u.said(per_word)
        if self.endpointing_ms is not None and u.silence_ms >= self.endpointing_ms:
            if upto > u.finalized or (not u.words and not u.endpointed):
                u.endpointed = True
                await self.final(u, upto, speech_final=True)
        if u.silence_ms >= self.owner.utterance_gap_ms:
            # the stand-in's end of one scripted utterance: whatever was left is said
            if u.finalized < len(u.words):
                await self.final(u, len(u.words), speech_final=self.endpointing_ms is not None)
            self.utt = None

    async def on_text(self, data: dict[str, Any]) -> bool:
        """Handle a control message; False when the stream is to close."""
        kind = data.get("type")
        if kind == "Finalize":
            # finalize docs: all audio received so far is transcribed and finalized. In a pause
            # the phrase being said is over (not the words of the utterance still to come);
            # while the caller speaks (the client's VAD heard a pause the speech has already
            # ended), only the words the clock says are over
            u = self.utt
            if u is not None:
                per_word = self.owner.ms_per_word
                in_pause = u.silence_ms >= self.owner.end_of_speech_ms
                upto = u.pause(per_word) if in_pause else u.said(per_word)
                await self.final(u, max(upto, u.finalized), from_finalize=True)
            else:
                empty = _Utterance(words=[], start_s=self.audio_ms / 1000)
                await self.send(self.results(empty, [], is_final=True, from_finalize=True))
        elif kind == "CloseStream":
            await self.send(
                {
                    "type": "Metadata",
                    "transaction_key": "deprecated",
                    "request_id": self.request_id,
                    "sha256": "0" * 64,
                    "created": "2026-01-01T00:00:00.000Z",
                    "duration": self.audio_ms / 1000,
                    "channels": 1,
                }
            )
            return False
        return True

    async def run(self) -> None:
        pending = b""
        try:
            while True:
                try:
                    msg = await self.ws.receive(timeout=self.owner.idle_timeout_s)
                except TimeoutError:
                    # audio-keep-alive docs: no data or KeepAlive for ~10 s closes the socket
                    await self.ws.close(
                        code=1011,
                        message=b"NET-0001: did not receive audio data or a text message "
                        b"within the timeout window",
                    )
                    break
                if msg.type == WSMsgType.BINARY:
                    self.conn.audio_bytes += len(msg.data)
                    pending += msg.data
                    while len(pending) >= self.frame_bytes:
                        frame, pending = pending[: self.frame_bytes], pending[self.frame_bytes :]
                        await self.on_frame(frame)
                elif msg.type == WSMsgType.TEXT:
                    if not await self.on_text(json.loads(msg.data)):
                        break
                else:
                    break
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            self.conn.closed = True
            if not self.ws.closed:
                await self.ws.close()
