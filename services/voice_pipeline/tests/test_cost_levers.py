"""The voice pipeline's cost levers change what it costs, not what it decides.

* the energy gate skips the VAD model on line silence, and the VAD hears the same speech starts
  and stops as pipecat's own analyzer on the same audio;
* the audio chunker hands the STT the caller's audio unchanged, in fewer frames, never after
  a frame that followed it;
* Smart Turn is not run for speech the STT has endpointed, and is run otherwise.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from pipecat.audio.dtmf.types import KeypadEntry
from pipecat.audio.turn.base_turn_analyzer import EndOfTurnState
from pipecat.audio.vad.silero import SileroVADAnalyzer
from pipecat.audio.vad.vad_analyzer import VADParams, VADState
from pipecat.frames.frames import (
    InputAudioRawFrame,
    InputDTMFFrame,
    TranscriptionFrame,
    VADUserStoppedSpeakingFrame,
)
from pipecat.tests.utils import run_test

from callcenter.voice_pipeline.audio_chunks import AudioChunker
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
