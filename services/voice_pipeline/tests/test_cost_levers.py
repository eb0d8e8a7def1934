"""The voice pipeline's cost levers change what it costs, not what it decides.

* the energy gate skips the VAD model on line silence, and the VAD hears the same speech starts
  and stops as pipecat's own analyzer on the same audio;
* the audio chunker hands the STT the caller's audio unchanged, in fewer frames, never after
  a frame that followed it;
* Smart Turn is not run for speech the STT has endpointed, and is run otherwise;
* the media socket's short path (one parse and decode per message, μ-law without a resampler)
  writes the messages pipecat's Twilio serializer writes and reads the audio it reads, and
  still refuses what Twilio never sends;
* the phone serializer joins the caller's audio as it arrives, every byte in order;
* the caller's audio stops after the user turn processor, and nothing else does.
"""

from __future__ import annotations

import base64
import json
from types import SimpleNamespace

import pytest
from pipecat.audio.dtmf.types import KeypadEntry
from pipecat.audio.turn.base_turn_analyzer import EndOfTurnState
from pipecat.audio.vad.silero import SileroVADAnalyzer
from pipecat.audio.vad.vad_analyzer import VADParams, VADState
from pipecat.frames.frames import (
    InputAudioRawFrame,
    InputDTMFFrame,
    InterruptionFrame,
    OutputAudioRawFrame,
    TranscriptionFrame,
    TTSTextFrame,
    VADUserStoppedSpeakingFrame,
)
from pipecat.tests.utils import run_test

from callcenter.voice_pipeline.audio_chunks import AudioChunker, CallerAudioEnd
from callcenter.voice_pipeline.serializer import CallSerializer, MalformedMediaMessage
from callcenter.voice_pipeline.simulator import speech_ulaw, ulaw_to_pcm16
from callcenter.voice_pipeline.smart_turn import SharedSmartTurn, stt_endpointed
from callcenter.voice_pipeline.vad import InlineSileroVAD

RATE = 8000
FRAME = 320  # 20 ms of 16-bit PCM at 8 kHz, as Twilio's messages decode


def call_audio() -> bytes:
    """A caller's line: 2 s of silence, a question, 2 s of silence, an answer, 1 s silence."""
    silence = b"\x00" * (RATE * 2 * 2)
    first = ulaw_to_pcm16(speech_ulaw("How long does shipping take for my order?"))
    second = ulaw_to_pcm16(speech_ulaw("Yes, the blue one please."))
    return silence + first + silence + second + silence[: RATE * 2]


async def vad_states(analyzer: SileroVADAnalyzer, audio: bytes) -> list[VADState]:
    analyzer.set_sample_rate(RATE)
    states = []
    for i in range(0, len(audio) - FRAME + 1, FRAME):
        states.append(await analyzer.analyze_audio(audio[i : i + FRAME]))
    return states


async def test_energy_gate_skips_the_model_on_silence_and_hears_the_same_speech() -> None:
    audio = call_audio()
    params = VADParams(stop_secs=0.2)
    gated = InlineSileroVAD(energy_gate=True, params=params)
    pipecats = SileroVADAnalyzer(params=params)
    heard = await vad_states(gated, audio)
    expected = await vad_states(pipecats, audio)
    await pipecats.cleanup()
    assert heard == expected
    assert VADState.SPEAKING in heard  # the speech is there to hear
    assert gated.gate is not None
    windows = len(audio) // 512
    assert gated.gate.skipped > windows // 3  # most of the line is silence


async def test_without_the_gate_every_window_runs_the_model() -> None:
    gated = InlineSileroVAD(energy_gate=False, params=VADParams())
    assert gated.gate is None
    assert VADState.SPEAKING in await vad_states(gated, call_audio())


async def test_chunker_joins_audio_in_order_and_flushes_before_other_frames() -> None:
    pcm = bytes(range(256)) * 10  # 2560 bytes: 8 frames of 20 ms
    frames = [
        InputAudioRawFrame(audio=pcm[i : i + FRAME], sample_rate=RATE, num_channels=1)
        for i in range(0, len(pcm), FRAME)
    ]
    sent = [
        *frames[:4],  # 80 ms: one 60 ms chunk, 20 ms pending
        VADUserStoppedSpeakingFrame(stop_secs=0.2),  # flushes the pending 20 ms first
        *frames[4:7],
        InputDTMFFrame(button=KeypadEntry.ONE),
        frames[7],
    ]
    down, _ = await run_test(AudioChunker(chunk_ms=60), frames_to_send=sent)
    audio = [f for f in down if isinstance(f, InputAudioRawFrame)]
    assert b"".join(f.audio for f in audio) == pcm  # every byte, in order
    assert [len(f.audio) for f in audio] == [960, 320, 960, 320]
    kinds = [type(f).__name__ for f in down if not isinstance(f, InputAudioRawFrame)]
    assert kinds == ["VADUserStoppedSpeakingFrame", "InputDTMFFrame"]
    order = [type(f) for f in down]
    assert order.index(VADUserStoppedSpeakingFrame) == 2  # after the audio that preceded it
    assert order.index(InputDTMFFrame) == 4


def transcript(speech_final: bool | None, text: str = "Where is my order?") -> TranscriptionFrame:
    result = None if speech_final is None else SimpleNamespace(speech_final=speech_final)
    return TranscriptionFrame(text, "", "2026-01-01T00:00:00", result=result)


def test_which_finals_close_the_speech() -> None:
    assert stt_endpointed(transcript(True))  # Deepgram's speech_final on a finished sentence
    assert not stt_endpointed(transcript(False))  # an is_final piece of ongoing speech
    # an endpoint at a pause mid-sentence is Smart Turn's to judge
    assert not stt_endpointed(transcript(True, "Thanks,"))
    assert not stt_endpointed(transcript(True, "I would like to"))
    assert stt_endpointed(transcript(None, "where is my order"))  # a local STT's one final


@pytest.mark.parametrize("endpointed", [True, False])
async def test_smart_turn_runs_only_when_the_stt_has_not_endpointed(endpointed: bool) -> None:
    analyzer = SharedSmartTurn()
    analyzer.set_sample_rate(RATE)
    speech = ulaw_to_pcm16(speech_ulaw("Where is my order"))
    for i in range(0, len(speech) - FRAME + 1, FRAME):
        analyzer.append_audio(speech[i : i + FRAME], is_speech=True)
    analyzer.stt_endpointed = endpointed
    state, _ = await analyzer.analyze_end_of_turn()
    if endpointed:
        assert (state, analyzer.predictions, analyzer.skipped) == (EndOfTurnState.COMPLETE, 0, 1)
    else:
        assert (analyzer.predictions, analyzer.skipped) == (1, 0)
    await analyzer.cleanup()


async def phone_serializer(*, fast_media: bool, join_ms: int = 20) -> CallSerializer:
    serializer = CallSerializer(
        stream_sid="MZ" + "0" * 32,
        call_sid="CA" + "0" * 32,
        params=CallSerializer.InputParams(auto_hang_up=False),
        fast_media=fast_media,
        join_ms=join_ms,
    )
    await serializer.setup(SimpleNamespace(audio_in_sample_rate=RATE, audio_out_sample_rate=RATE))
    return serializer


async def test_media_short_path_writes_and_reads_what_pipecats_serializer_does() -> None:
    fast = await phone_serializer(fast_media=True)
    pipecats = await phone_serializer(fast_media=False)
    sent: list[float] = []
    fast.on_audio_sent = sent.append
    pcm = ulaw_to_pcm16(speech_ulaw("Your order ships today."))[: 40 * 16 * 5]  # 5 × 40 ms
    for i in range(0, len(pcm), 640):
        frame = OutputAudioRawFrame(audio=pcm[i : i + 640], sample_rate=RATE, num_channels=1)
        message = await fast.serialize(frame)
        assert message == await pipecats.serialize(frame)
        assert isinstance(message, str)
        assert json.loads(message)["media"]["payload"]  # Twilio's JSON, audio in it
        heard, expected = await fast.deserialize(message), await pipecats.deserialize(message)
        assert isinstance(heard, InputAudioRawFrame) and isinstance(expected, InputAudioRawFrame)
        assert (heard.audio, heard.sample_rate) == (expected.audio, expected.sample_rate)
    assert fast.media_out == len(sent) == 5  # each message noted as audio sent
    clear = InterruptionFrame()
    assert await fast.serialize(clear) == await pipecats.serialize(clear)  # barge-in: clear
    assert await fast.serialize(OutputAudioRawFrame(b"", RATE, 1)) is None
    assert fast.media_out == 5


async def test_media_short_path_still_refuses_a_payload_that_is_not_base64() -> None:
    serializer = await phone_serializer(fast_media=True)
    bad = json.dumps({"event": "media", "media": {"payload": "AAAA*AAAA"}})
    with pytest.raises(MalformedMediaMessage):
        await serializer.deserialize(bad)
    assert serializer.malformed == "payload not base64"
    good = json.dumps(
        {"event": "media", "media": {"payload": base64.b64encode(b"\xff" * 160).decode()}}
    )
    frame = await (await phone_serializer(fast_media=True)).deserialize(good)
    assert (
        isinstance(frame, InputAudioRawFrame) and frame.audio == b"\x00\x00" * 160
    )  # μ-law 0xff: 0


async def test_media_short_path_joins_the_callers_audio_in_order() -> None:
    serializer = await phone_serializer(fast_media=True, join_ms=60)
    pipecats = await phone_serializer(fast_media=False)
    ulaw = speech_ulaw("Where is my order?")[: 160 * 7]  # seven 20 ms messages
    messages = [
        json.dumps({"event": "media", "media": {"payload": base64.b64encode(part).decode()}})
        for part in (ulaw[i : i + 160] for i in range(0, len(ulaw), 160))
    ]
    frames = [await serializer.deserialize(m) for m in messages]
    joined = [f for f in frames if f is not None]
    assert [f is not None for f in frames] == [False, False, True] * 2 + [False]
    expected = [await pipecats.deserialize(m) for m in messages]
    audio = b"".join(f.audio for f in expected if isinstance(f, InputAudioRawFrame))
    assert all(isinstance(f, InputAudioRawFrame) and f.sample_rate == RATE for f in joined)
    assert b"".join(f.audio for f in joined) == audio[: 2 * 960]  # every byte, in order


async def test_caller_audio_stops_after_the_turn_processor_and_nothing_else_does() -> None:
    audio = InputAudioRawFrame(audio=b"\x01\x00" * 480, sample_rate=RATE, num_channels=1)
    sent = [audio, InputDTMFFrame(button=KeypadEntry.ONE), audio, TTSTextFrame("hi", "")]
    down, _ = await run_test(CallerAudioEnd(), frames_to_send=sent)
    assert [type(f) for f in down] == [InputDTMFFrame, TTSTextFrame]
