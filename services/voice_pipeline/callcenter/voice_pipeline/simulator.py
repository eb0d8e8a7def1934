"""A Twilio stand-in that places a phone call against a running system.

It does what Twilio does for an inbound call: POSTs the signed ``/twilio/voice`` webhook, reads
the TwiML ``<Connect><Stream>``, opens the media socket (signed handshake) and sends
``connected`` and ``start`` with the ``<Parameter>``s, then streams the caller's audio as 8 kHz
μ-law ``media`` messages in real time (silence between utterances, as a phone line does), sends
``dtmf`` and ``stop``, echoes ``mark``s and honours ``clear``. It records what the bot sends.
When the stream ends while the call is up (the server refused or closed the socket, not the
caller hanging up), it requests the ``<Connect action>`` URL as Twilio does, with Twilio's
standard call parameters, and records the TwiML it is given (:attr:`TwilioCaller.after_stream`);
when that TwiML is another ``<Connect><Stream>`` (the call resumed after its voice replica died),
it opens that stream as Twilio would: a new StreamSid, the new ``<Parameter>``s, the same call
(:attr:`TwilioCaller.streams` counts them, :attr:`TwilioCaller.resumed` is set).
Speech comes from espeak-ng (``apt-get install -y espeak-ng``) or a WAV file.

It is as strict as Twilio about what the bot sends back
(https://www.twilio.com/docs/voice/media-streams/websocket-messages, and warning 31951
https://www.twilio.com/docs/api/errors/31951): only JSON ``media``, ``mark`` and ``clear``
messages carrying the ``streamSid`` of this stream; anything else is dropped, as Twilio drops it,
and recorded in :attr:`TwilioCaller.protocol_errors`. A ``mark`` comes back only once the audio
sent before it has played at real-time pace, and a ``clear`` returns every pending mark at once.
A ``media`` payload must be base64 of headerless 8 kHz μ-law (error 31924 names "audio/x-mulaw at
8000 Hz, no file header bytes") in whole 20 ms frames. What Twilio cannot tell and this stand-in
does not try to: whether μ-law bytes are at the right sample rate — it only rejects payloads that
look like 16-bit PCM or a WAV/RIFF file.

Used by ``callcenter simulate-call``, the tests (``tests/fakes/twilio_caller.py``) and benches.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import io
import json
import shutil
import subprocess
import time
import uuid
import wave
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urljoin, urlsplit
from xml.etree import ElementTree

import httpx
import numpy as np
import soxr
import websockets
from twilio.request_validator import RequestValidator

RATE = 8000
FRAME_BYTES = 160  # 20 ms of μ-law at 8 kHz
FRAME_S = 0.02

_BIAS = 0x84
_CLIP = 32635


def pcm16_to_ulaw(pcm: bytes) -> bytes:
    """16-bit little-endian PCM to G.711 μ-law."""
    x = np.frombuffer(pcm, dtype="<i2").astype(np.int32)
    sign = np.where(x < 0, 0x80, 0)
    x = np.minimum(np.abs(x), _CLIP) + _BIAS
    exponent = np.floor(np.log2(x)).astype(np.int32) - 7
    exponent = np.clip(exponent, 0, 7)
    mantissa = (x >> (exponent + 3)) & 0x0F
    return (~(sign | (exponent << 4) | mantissa) & 0xFF).astype(np.uint8).tobytes()


def ulaw_to_pcm16(data: bytes) -> bytes:
    """G.711 μ-law to 16-bit little-endian PCM."""
    u = ~np.frombuffer(data, dtype=np.uint8).astype(np.int32) & 0xFF
    sign = u & 0x80
    exponent = (u >> 4) & 0x07
    mantissa = u & 0x0F
    x = (((mantissa << 3) + _BIAS) << exponent) - _BIAS
    return np.where(sign != 0, -x, x).astype("<i2").tobytes()


def trim_trailing_silence(ulaw: bytes, *, threshold: float = 200.0) -> bytes:
    """``ulaw`` without the quiet 20 ms frames at its end."""
    end = len(ulaw)
    while end > 0:
        frame = np.frombuffer(ulaw_to_pcm16(ulaw[max(0, end - FRAME_BYTES) : end]), dtype="<i2")
        if float(np.sqrt(np.mean(frame.astype(np.float32) ** 2))) >= threshold:
            break
        end -= FRAME_BYTES
    return ulaw[: max(end, 0)]


def wav_to_ulaw(data: bytes) -> bytes:
    """A mono or stereo 16-bit WAV, resampled to 8 kHz μ-law."""
    with wave.open(io.BytesIO(data)) as wav:
        rate, channels, width = wav.getframerate(), wav.getnchannels(), wav.getsampwidth()
        frames = wav.readframes(wav.getnframes())
    if width != 2:
        raise ValueError("only 16-bit WAV files are supported")
    samples = np.frombuffer(frames, dtype="<i2")
    if channels > 1:
        samples = samples.reshape(-1, channels).mean(axis=1).astype("<i2")
    if rate != RATE:
        samples = soxr.resample(samples, rate, RATE).astype("<i2")
    return pcm16_to_ulaw(samples.tobytes())


def speech_ulaw(text: str, *, voice: str = "en-us", words_per_minute: int = 175) -> bytes:
    """``text`` spoken by espeak-ng, as 8 kHz μ-law.

    Raises:
        RuntimeError: espeak-ng is not installed.

    """
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise RuntimeError("espeak-ng is not installed: apt-get install -y espeak-ng")
    wav = subprocess.run(
        [exe, "-v", voice, "-s", str(words_per_minute), "--stdout", text],
        check=True,
        capture_output=True,
    ).stdout
    return wav_to_ulaw(wav)


PREBUFFER_S = 0.06  # what a phone line's jitter buffer holds before it starts playing

#: What Twilio accepts from the server on a bidirectional stream (websocket-messages docs).
OUTBOUND_EVENTS = {"media", "mark", "clear"}
#: Twilio's warning for a message that breaks the Media Streams protocol, e.g. a wrong streamSid.
INVALID_MESSAGE = 31951


#: How much of the bot's audio the μ-law check judges at once (200 ms).
VOICE_WINDOW_BYTES = 1600


def ulaw_problem(audio: bytes) -> str | None:
    """Why ``audio`` is not headerless μ-law in whole 20 ms frames, or None if it is.

    Any byte is a μ-law sample, so these are the framing checks a phone line enforces: a RIFF/WAV
    header and a partial 20 ms frame. Whether the bytes are μ-law audio at all is judged over a
    longer window by :func:`not_ulaw_speech`.
    """
    if not audio:
        return "empty payload"
    if audio[:4] == b"RIFF":
        return "payload carries a RIFF/WAV header"
    if len(audio) % FRAME_BYTES:
        return f"payload of {len(audio)} bytes is not whole 20 ms frames ({FRAME_BYTES} bytes)"
    return None


def not_ulaw_speech(window: bytes) -> str | None:
    """Why ``window`` (200 ms of the bot's audio) is 16-bit PCM sent as μ-law, or None if not.

    Twilio plays any bytes as μ-law, so a bot that sends 16-bit PCM is heard as loud noise. Such a
    payload gives itself away by its bytes: the high byte of each sample takes few values (speech
    at a normal level stays near zero) while the low byte takes many, whereas μ-law bytes are
    spread alike at even and odd positions. Neighbour correlation is no test: real 8 kHz speech
    with its energy near 2.5 kHz (espeak-ng's vowels) correlates negatively over 200 ms. What this
    cannot see: very loud PCM (high bytes spread too), and silence either way.
    """
    data = np.frombuffer(window, dtype=np.uint8)
    even, odd = len(np.unique(data[0::2])), len(np.unique(data[1::2]))
    if max(even, odd) >= 24 and min(even, odd) / max(even, odd) < 0.4:
        return (
            "payload is not 8 kHz μ-law audio (16-bit PCM? "
            f"{min(even, odd)} vs {max(even, odd)} distinct bytes at odd/even places)"
        )
    return None


@dataclass
class BotAudio:
    """A stretch of audio the bot sent, between silences or clears, and how it would play.

    Playback starts ``PREBUFFER_S`` after the first packet and runs in real time; a packet that
    arrives after its turn to play is an underrun (the caller hears a gap), added to
    ``stall_s``, and playback resumes once it is there.
    """

    started: float
    ulaw: bytearray = field(default_factory=bytearray)
    stall_s: float = 0.0
    underruns: int = 0
    play_start: float = 0.0
    cleared_at: float | None = None

    def __post_init__(self) -> None:
        self.play_start = self.started + PREBUFFER_S

    @property
    def seconds(self) -> float:
        """How long it plays."""
        return len(self.ulaw) / RATE

    @property
    def play_end(self) -> float:
        """When its playback ends (given the stalls so far, and cut short by a ``clear``)."""
        end = self.play_start + self.seconds
        return end if self.cleared_at is None else min(end, self.cleared_at)

    def add(self, now: float, audio: bytes) -> None:
        """A packet arrived at ``now``."""
        due = self.play_end
        if now > due and self.ulaw:
            self.stall_s += now - due
            self.underruns += 1
            self.play_start += now - due
        self.ulaw.extend(audio)


class TwilioCaller:
    """One simulated inbound call."""

    def __init__(
        self,
        *,
        gateway_url: str,
        auth_token: str,
        account_sid: str = "AC" + "0" * 32,
        call_sid: str | None = None,
        from_number: str = "+15551230000",
        to_number: str = "+15559870000",
        public_base_url: str | None = None,
        on_status: Callable[[str, str], None] | None = None,
    ) -> None:
        """One call; ``on_status(call_sid, status)`` hears its state as Twilio's REST API knows it.

        That is ``in-progress`` once the webhook connected it and ``completed`` on hang-up.
        """
        self.on_status = on_status
        self.gateway_url = gateway_url.rstrip("/")
        self.public_base_url = (public_base_url or gateway_url).rstrip("/")
        self.auth_token = auth_token
        self.account_sid = account_sid
        self.call_sid = call_sid or "CA" + uuid.uuid4().hex
        self.stream_sid = "MZ" + uuid.uuid4().hex
        self.from_number = from_number
        self.to_number = to_number
        self.validator = RequestValidator(auth_token)
        self.stream_url: str | None = None
        self.connect_action: str | None = None
        #: the TwiML the ``<Connect action>`` answered once the stream ended (None: not requested)
        self.after_stream: str | None = None
        self.after_stream_done = asyncio.Event()
        #: media streams opened for this call (a resumed call has more than one)
        self.streams = 0
        #: set once the ``<Connect action>`` answered another stream and it was opened
        self.resumed = asyncio.Event()
        self._caller_ended = False
        self.parameters: dict[str, str] = {}
        self.ws: websockets.ClientConnection | None = None
        self.bot: list[BotAudio] = []
        self.clears: list[float] = []
        self.marks: list[str] = []
        self.marks_returned: list[tuple[str, float]] = []
        self.protocol_errors: list[tuple[int, str]] = []
        self._pending_marks: list[tuple[str, float]] = []
        self._marks_due: asyncio.Event = asyncio.Event()
        self.closed_code: int | None = None
        self.connected_at: float | None = None
        self.first_audio_at: float | None = None
        self._outgoing: asyncio.Queue[bytes] = asyncio.Queue()
        self._speech_done: asyncio.Event = asyncio.Event()
        self._speech_done.set()
        self._seq = 0
        self._tasks: list[asyncio.Task[None]] = []
        self._last_audio_at = 0.0
        self._cleared = False
        self._voice_window = bytearray()  # the bot's audio not yet judged as μ-law
        self.closed = asyncio.Event()

    # ----- webhooks ----------------------------------------------------------------------------

    def sign(self, url: str, params: dict[str, str]) -> str:
        """X-Twilio-Signature for a request to ``url`` with ``params``."""
        return self.validator.compute_signature(url, params)

    async def post_webhook(
        self, path: str, params: dict[str, str], *, signature: str | None = None
    ) -> httpx.Response:
        """POST a signed (or, with ``signature``, deliberately signed) webhook."""
        sig = signature if signature is not None else self.sign(self.public_base_url + path, params)
        async with httpx.AsyncClient(timeout=15.0) as client:
            return await client.post(
                self.gateway_url + path, data=params, headers={"X-Twilio-Signature": sig}
            )

    def voice_params(self) -> dict[str, str]:
        """The form Twilio posts to the voice webhook."""
        return {
            "AccountSid": self.account_sid,
            "ApiVersion": "2010-04-01",
            "CallSid": self.call_sid,
            "CallStatus": "ringing",
            "Direction": "inbound",
            "From": self.from_number,
            "To": self.to_number,
        }

    async def dial(self) -> str:
        """POST the voice webhook; return the TwiML and remember the stream URL and parameters.

        Raises:
            RuntimeError: the webhook was refused or did not connect a stream.

        """
        response = await self.post_webhook("/twilio/voice", self.voice_params())
        if response.status_code != 200:
            raise RuntimeError(f"voice webhook answered {response.status_code}: {response.text}")
        if not self._take_stream(response.text):
            raise RuntimeError(f"TwiML has no <Connect><Stream>: {response.text}")
        if self.on_status is not None:
            self.on_status(self.call_sid, "in-progress")
        return response.text

    def _take_stream(self, twiml: str) -> bool:
        """Remember the stream URL, action and parameters of TwiML's ``<Connect><Stream>``."""
        root = ElementTree.fromstring(twiml)
        stream = root.find("./Connect/Stream")
        if stream is None:
            return False
        self.stream_url = stream.attrib["url"]
        action = root.find("./Connect").attrib.get("action")  # type: ignore[union-attr]
        self.connect_action = (
            urljoin(self.public_base_url + "/twilio/voice", action) if action else None
        )
        self.parameters = {p.attrib["name"]: p.attrib["value"] for p in stream.findall("Parameter")}
        return True

    async def status(self, status: str = "completed") -> httpx.Response:
        """POST the status callback."""
        if self.on_status is not None:
            self.on_status(self.call_sid, status)
        params = {
            "AccountSid": self.account_sid,
            "CallSid": self.call_sid,
            "CallStatus": status,
            "CallDuration": "1",
        }
        return await self.post_webhook("/twilio/status", params)

    # ----- media stream ------------------------------------------------------------------------

    async def open_stream(
        self,
        *,
        url: str | None = None,
        signature: str | None = None,
        parameters: dict[str, str] | None = None,
    ) -> None:
        """Open the media socket and send ``connected`` and ``start``; start streaming."""
        target = url or self.stream_url
        if target is None:
            raise RuntimeError("dial() first")
        sig = signature if signature is not None else self.sign(target, {})
        try:
            self.ws = await websockets.connect(
                target, additional_headers={"X-Twilio-Signature": sig}, max_size=None
            )
        except (websockets.InvalidHandshake, OSError):
            await self._stream_ended()  # Twilio moves on to the <Connect action>
            raise
        self.streams += 1
        await self._send({"event": "connected", "protocol": "Call", "version": "1.0.0"})
        await self._send(
            {
                "event": "start",
                "sequenceNumber": self._next_seq(),
                "start": {
                    "accountSid": self.account_sid,
                    "streamSid": self.stream_sid,
                    "callSid": self.call_sid,
                    "tracks": ["inbound"],
                    "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": RATE, "channels": 1},
                    "customParameters": parameters if parameters is not None else self.parameters,
                },
                "streamSid": self.stream_sid,
            }
        )
        self.connected_at = time.monotonic()
        self._tasks.append(asyncio.create_task(self._sender()))
        self._tasks.append(asyncio.create_task(self._receiver()))
        self._tasks.append(asyncio.create_task(self._mark_player()))

    async def call(self) -> None:
        """Dial and open the stream."""
        await self.dial()
        await self.open_stream()

    def _next_seq(self) -> str:
        self._seq += 1
        return str(self._seq)

    async def _send(self, message: dict[str, object]) -> None:
        assert self.ws is not None
        await self.ws.send(json.dumps(message))

    async def send_raw(self, data: str) -> None:
        """Send anything at all on the media socket (for protocol tests)."""
        assert self.ws is not None
        await self.ws.send(data)

    async def _sender(self) -> None:
        """Real-time 20 ms media frames: queued speech, else line silence."""
        silence = b"\xff" * FRAME_BYTES
        chunk = 0
        next_at = time.monotonic()
        try:
            while self.ws is not None:
                try:
                    frame = self._outgoing.get_nowait()
                except asyncio.QueueEmpty:
                    frame = silence
                    self._speech_done.set()
                chunk += 1
                await self._send(
                    {
                        "event": "media",
                        "sequenceNumber": self._next_seq(),
                        "media": {
                            "track": "inbound",
                            "chunk": str(chunk),
                            "timestamp": str(chunk * 20),
                            "payload": base64.b64encode(frame).decode(),
                        },
                        "streamSid": self.stream_sid,
                    }
                )
                next_at += FRAME_S
                await asyncio.sleep(max(0.0, next_at - time.monotonic()))
        except (websockets.ConnectionClosed, asyncio.CancelledError):
            pass

    def _refuse(self, reason: str) -> None:
        """Drop a message Twilio would drop, and note it (Twilio's debugger shows 31951)."""
        self.protocol_errors.append((INVALID_MESSAGE, reason))

    def _check(self, raw: str | bytes) -> dict[str, object] | None:
        """The message if Twilio would accept it from the server, else None (and noted)."""
        if isinstance(raw, bytes):
            self._refuse("binary frame (Twilio takes JSON text messages)")
            return None
        try:
            message = json.loads(raw)
        except ValueError:
            self._refuse("not JSON")
            return None
        if not isinstance(message, dict) or message.get("event") not in OUTBOUND_EVENTS:
            event = message.get("event") if isinstance(message, dict) else None
            self._refuse(f"unsupported event {event!r} (only media, mark and clear)")
            return None
        if message.get("streamSid") != self.stream_sid:
            self._refuse(f"streamSid {message.get('streamSid')!r} is not this stream's")
            return None
        event = message["event"]
        if event == "media":
            media = message.get("media")
            payload = media.get("payload") if isinstance(media, dict) else None
            if not isinstance(payload, str):
                self._refuse("media without media.payload")
                return None
            try:
                audio = base64.b64decode(payload, validate=True)
            except (binascii.Error, ValueError):
                self._refuse("media payload is not base64")
                return None
            problem = ulaw_problem(audio)
            if problem is not None:
                self._refuse(problem)
                return None
            self._voice_window.extend(audio)
            if len(self._voice_window) >= VOICE_WINDOW_BYTES:
                problem = not_ulaw_speech(bytes(self._voice_window))
                self._voice_window.clear()
                if problem is not None:
                    self._refuse(problem)
                    return None
            message["_audio"] = audio
        elif event == "mark":
            mark = message.get("mark")
            if not isinstance(mark, dict) or not isinstance(mark.get("name"), str):
                self._refuse("mark without mark.name")
                return None
        return message

    async def _receiver(self) -> None:
        assert self.ws is not None
        try:
            async for raw in self.ws:
                message = self._check(raw)
                if message is None:
                    continue
                event = message.get("event")
                now = time.monotonic()
                if event == "media":
                    audio = message["_audio"]
                    assert isinstance(audio, bytes)
                    if self.first_audio_at is None:
                        self.first_audio_at = now
                    if not self.bot or self._cleared or now > self.bot[-1].play_end + 0.6:
                        self.bot.append(BotAudio(started=now))
                        self._cleared = False
                    self.bot[-1].add(now, audio)
                    self._last_audio_at = now
                elif event == "clear":
                    self.clears.append(now)
                    self._cleared = True
                    if self.bot:
                        self.bot[-1].cleared_at = now
                    # A clear empties Twilio's buffer and sends back every pending mark.
                    for name, _ in self._pending_marks:
                        await self._return_mark(name)
                    self._pending_marks.clear()
                elif event == "mark":
                    name = str(message["mark"]["name"])  # type: ignore[index]
                    self.marks.append(name)
                    # Twilio answers a mark when the audio sent before it has played.
                    due = self.bot[-1].play_end if self.bot and not self._cleared else now
                    self._pending_marks.append((name, max(due, now)))
                    self._marks_due.set()
        except websockets.ConnectionClosed as exc:
            self.closed_code = exc.rcvd.code if exc.rcvd else None
        finally:
            if self.closed_code is None and self.ws is not None and self.ws.close_code:
                self.closed_code = self.ws.close_code
            self.closed.set()
        await self._stream_ended()

    async def _stream_ended(self) -> None:
        """The stream ended with the call up: request the ``<Connect action>``, as Twilio does."""
        if self._caller_ended or self.connect_action is None:
            return
        params = {**self.voice_params(), "CallStatus": "in-progress"}
        sig = self.sign(self.connect_action, params)
        action = urlsplit(self.connect_action)
        url = self.gateway_url + action.path + (f"?{action.query}" if action.query else "")
        try:
            async with httpx.AsyncClient(timeout=15.0) as client:
                response = await client.post(url, data=params, headers={"X-Twilio-Signature": sig})
            self.after_stream = response.text if response.status_code == 200 else None
        except httpx.HTTPError:
            self.after_stream = None  # Twilio would say "an application error has occurred"
        finally:
            self.after_stream_done.set()
        if self.after_stream is not None and self._take_stream(self.after_stream):
            await self._resume_stream()

    async def _resume_stream(self) -> None:
        """Open the stream the action answered, as Twilio does: a new stream of the same call."""
        current = asyncio.current_task()
        for task in self._tasks:
            if task is not current:
                task.cancel()
        self._tasks = []
        self.stream_sid = "MZ" + uuid.uuid4().hex
        self.closed = asyncio.Event()
        self.closed_code = None
        self._pending_marks.clear()
        self._voice_window.clear()
        self.after_stream_done = asyncio.Event()
        try:
            await self.open_stream()
        except (websockets.InvalidHandshake, OSError):
            return  # refused as well: the action was requested again (open_stream)
        self.resumed.set()

    def said_after_stream(self) -> list[str]:
        """The ``<Say>`` texts of the TwiML the ``<Connect action>`` answered."""
        if self.after_stream is None:
            return []
        return [say.text or "" for say in ElementTree.fromstring(self.after_stream).iter("Say")]

    async def _return_mark(self, name: str) -> None:
        self.marks_returned.append((name, time.monotonic()))
        await self._send(
            {
                "event": "mark",
                "sequenceNumber": self._next_seq(),
                "streamSid": self.stream_sid,
                "mark": {"name": name},
            }
        )

    async def _mark_player(self) -> None:
        """Send each pending mark back once playback reaches it (in order, as Twilio does)."""
        try:
            while True:
                if not self._pending_marks:
                    self._marks_due.clear()
                    await self._marks_due.wait()
                    continue
                name, due = self._pending_marks[0]
                wait = due - time.monotonic()
                if wait > 0:
                    # more audio may arrive and stall playback; look again shortly
                    await asyncio.sleep(min(wait, FRAME_S))
                    continue
                self._pending_marks.pop(0)
                await self._return_mark(name)
        except (websockets.ConnectionClosed, asyncio.CancelledError):
            pass

    def assert_protocol_kept(self) -> None:
        """Raise if the bot sent anything Twilio would have refused (see :attr:`protocol_errors`).

        Raises:
            AssertionError: at least one message broke the Media Streams protocol.

        """
        if self.protocol_errors:
            raise AssertionError(
                f"the bot broke Twilio's Media Streams protocol: {self.protocol_errors[:5]}"
            )

    async def say(self, text: str | None = None, *, ulaw: bytes | None = None) -> float:
        """Speak (espeak-ng ``text`` or ready ``ulaw``); return when its last sound was sent.

        Trailing silence is left to the line (it sends silence anyway), so the return is when
        the caller stopped speaking. When the line closes first (the system hung up), it returns
        then: the rest is never sent.

        Returns:
            the seconds of speech sent.

        """
        audio = trim_trailing_silence(ulaw if ulaw is not None else speech_ulaw(text or ""))
        if self.closed.is_set():
            return 0.0
        self._speech_done.clear()
        for i in range(0, len(audio), FRAME_BYTES):
            frame = audio[i : i + FRAME_BYTES]
            await self._outgoing.put(frame.ljust(FRAME_BYTES, b"\xff"))
        spoken = asyncio.ensure_future(self._speech_done.wait())
        hung_up = asyncio.ensure_future(self.closed.wait())
        try:
            await asyncio.wait({spoken, hung_up}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            spoken.cancel()
            hung_up.cancel()
        unsent = 0
        while not self._outgoing.empty():  # the line closed: these are never sent
            self._outgoing.get_nowait()
            unsent += 1
        return max(len(audio) - unsent * FRAME_BYTES, 0) / RATE

    async def dtmf(self, digits: str) -> None:
        """Press keys."""
        for digit in digits:
            await self._send(
                {
                    "event": "dtmf",
                    "streamSid": self.stream_sid,
                    "sequenceNumber": self._next_seq(),
                    "dtmf": {"track": "inbound_track", "digit": digit},
                }
            )
            await asyncio.sleep(0.15)

    async def wait_for_bot(
        self, *, after: float | None = None, quiet_s: float = 0.8, timeout_s: float = 30.0
    ) -> BotAudio:
        """Wait until the bot has said something (started after ``after``) and gone quiet.

        Raises:
            TimeoutError: it did not.
            AssertionError: the bot broke the Media Streams protocol (Twilio would have dropped
                those messages, so the caller would not have heard them).

        """
        deadline = time.monotonic() + timeout_s
        since = after if after is not None else 0.0
        while time.monotonic() < deadline:
            fresh = [b for b in self.bot if b.started >= since]
            if fresh and time.monotonic() - self._last_audio_at >= quiet_s:
                self.assert_protocol_kept()
                return fresh[-1]
            if self.closed.is_set() and not fresh:
                break
            await asyncio.sleep(0.05)
        self.assert_protocol_kept()
        raise TimeoutError(f"the bot said nothing after {since} within {timeout_s}s")

    async def wait_speaking(self, *, after: float, timeout_s: float = 30.0) -> None:
        """Wait until bot audio arrives after ``after`` (see :meth:`wait_for_bot` for errors)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._last_audio_at >= after:
                self.assert_protocol_kept()
                return
            await asyncio.sleep(0.02)
        self.assert_protocol_kept()
        raise TimeoutError("the bot did not start speaking")

    async def hang_up(self, *, status_callback: bool = True) -> None:
        """Send ``stop``, close the socket and (like Twilio) post the final status."""
        self._caller_ended = True
        for task in self._tasks:
            task.cancel()
        if self.ws is not None:
            with contextlib.suppress(websockets.ConnectionClosed):
                await self._send(
                    {
                        "event": "stop",
                        "sequenceNumber": self._next_seq(),
                        "streamSid": self.stream_sid,
                        "stop": {"accountSid": self.account_sid, "callSid": self.call_sid},
                    }
                )
            await self.ws.close()
        if status_callback:
            await self.status("completed")

    async def close(self) -> None:
        """Stop streaming and close the socket (no stop message, no status callback)."""
        self._caller_ended = True
        for task in self._tasks:
            task.cancel()
        if self.ws is not None:
            await self.ws.close()


def ws_to_http(url: str) -> str:
    """``ws(s)://host/path`` -> ``http(s)://host``."""
    parts = urlsplit(url)
    scheme = "https" if parts.scheme == "wss" else "http"
    return f"{scheme}://{parts.netloc}"
