"""The call's processors driven by pipecat's own test runner (``pipecat.tests.utils.run_test``).

The turn processor talks to a conversation stand-in answering ``conversation.turn`` on the real
bus (this session's namespace) with our streaming responder, as the conversation service does.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from pipecat.audio.dtmf.types import KeypadEntry
from pipecat.frames.frames import (
    BotStartedSpeakingFrame,
    BotStoppedSpeakingFrame,
    ErrorFrame,
    InputAudioRawFrame,
    InputDTMFFrame,
    InterruptionFrame,
    LLMFullResponseEndFrame,
    LLMFullResponseStartFrame,
    OutputAudioRawFrame,
    TextFrame,
    TranscriptionFrame,
    TTSSpeakFrame,
    UserStartedSpeakingFrame,
    UserStoppedSpeakingFrame,
    VADUserStartedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
)
from pipecat.pipeline.pipeline import Pipeline
from pipecat.processors.aggregators.dtmf_aggregator import DTMFAggregator
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.tests.utils import SleepFrame, run_test
from pipecat.turns.user_turn_processor import UserTurnProcessor
from pipecat.turns.user_turn_strategies import UserTurnStrategies
from pydantic import SecretStr

from callcenter.common.bus import Bus
from callcenter.common.bus.streaming import StreamingRequest, StreamingResponder
from callcenter.common.clients import ConversationClient
from callcenter.common.config import CallCenterConfig
from callcenter.common.config.sections import VoicePipelineSettings
from callcenter.common.contracts import TurnCancel, TurnRequest
from callcenter.voice_pipeline.apology import ApologyCache
from callcenter.voice_pipeline.smart_turn import EndpointAwareTurnStop, SharedSmartTurn
from callcenter.voice_pipeline.timing import CallInfo, TurnRecord
from callcenter.voice_pipeline.turn_processor import DTMF_PREFIX, ConversationTurnProcessor
from callcenter.voice_pipeline.turns import (
    SPEECH_RESUMED_S,
    Backchannels,
    CallerTurnStartStrategy,
)
from callcenter.voice_pipeline.watchdog import CallWatchdog

ANSWER = ["Shipping takes ", "three to five ", "business days."]


@dataclass
class ConversationStandIn:
    """Answers ``conversation.turn`` with ``ANSWER`` in pieces, ``delay_s`` apart."""

    delay_s: float = 0.0
    requests: list[dict[str, Any]] = field(default_factory=list)
    cancels: list[dict[str, Any]] = field(default_factory=list)
    done: dict[str, Any] = field(default_factory=dict)

    async def handle(self, request: StreamingRequest) -> AsyncIterator[bytes]:
        self.requests.append(TurnRequest.from_bytes(request.data).model_dump())
        try:
            for piece in ANSWER:
                await asyncio.sleep(self.delay_s)
                yield json.dumps({"type": "delta", "text": piece}).encode()
            done = {"type": "done", "text": "".join(ANSWER), "turn_index": 7, **self.done}
            yield json.dumps(done).encode()
        finally:
            if request.cancelled:
                self.cancels.append(TurnCancel.from_bytes(request.cancel_payload).model_dump())


@pytest.fixture
async def conversation(bus: Bus) -> AsyncIterator[ConversationStandIn]:
    stand_in = ConversationStandIn()
    responder = StreamingResponder(
        nc=bus.nc,
        subject=bus.subject("conversation.turn"),
        queue="conversation-stand-in",
        handler=stand_in.handle,
    )
    await responder.start()
    yield stand_in
    await responder.stop(grace_s=1)


@dataclass
class Told:
    """The events a turn processor emitted."""

    turns: list[TurnRecord] = field(default_factory=list)
    ends: list[str] = field(default_factory=list)
    transfers: list[tuple[str, str, str]] = field(default_factory=list)


def turn_processor(
    config: CallCenterConfig, bus: Bus, *, can_hand_over: bool = True, **settings: Any
) -> tuple[ConversationTurnProcessor, Told]:
    processor = ConversationTurnProcessor(
        call=CallInfo(call_id="call-unit", call_sid="CA1", stream_sid="MZ1"),
        conversation=ConversationClient(bus=bus, first_timeout_s=5.0),
        settings=VoicePipelineSettings(**settings),
        greeting="Hello",
        apology=ApologyCache(config=config),
        can_hand_over=can_hand_over,
    )
    told = Told()

    @processor.event_handler("on_turn_finished")
    async def on_turn(_p: Any, turn: TurnRecord) -> None:
        told.turns.append(turn)

    @processor.event_handler("on_end_requested")
    async def on_end(_p: Any, reason: str) -> None:
        told.ends.append(reason)

    @processor.event_handler("on_transfer_requested")
    async def on_transfer(_p: Any, reason: str, summary: str, fallback: str) -> None:
        told.transfers.append((reason, summary, fallback))

    return processor, told


def _texts(frames: Any) -> str:
    return "".join(f.text for f in frames if type(f) is TextFrame)


async def test_a_caller_turn_streams_the_answer_to_tts(
    config: CallCenterConfig, bus: Bus, conversation: ConversationStandIn
) -> None:
    processor, told = turn_processor(config, bus)
    audio = InputAudioRawFrame(audio=b"\0" * 320, sample_rate=8000, num_channels=1)
    down, _ = await run_test(
        processor,
        frames_to_send=[
            UserStartedSpeakingFrame(),
            audio,
            TranscriptionFrame(text="How long is shipping?", user_id="", timestamp=""),
            UserStoppedSpeakingFrame(),
            SleepFrame(sleep=0.5),
        ],
    )
    assert [r["text"] for r in conversation.requests] == ["How long is shipping?"]
    request = conversation.requests[0]
    assert request["channel"] == "voice" and request["metadata"]["source"] == "speech"
    assert request["stt_final_ms"] is not None
    assert _texts(down) == "".join(ANSWER)
    kinds = [type(f) for f in down]
    assert kinds.index(LLMFullResponseStartFrame) < kinds.index(LLMFullResponseEndFrame)
    assert not any(isinstance(f, InputAudioRawFrame) for f in down)  # dropped here
    assert [t.turn_index for t in told.turns] == [7]  # reported once, with the conversation's


def _said(text: str) -> TranscriptionFrame:
    return TranscriptionFrame(text=text, user_id="", timestamp="")


@pytest.mark.parametrize(
    ("first", "pause_s", "rest"),
    [
        ("Thanks,", 0.2, "can you also check my refund?"),  # a pause at a comma
        ("The blue one", 1.5, "Where is my order?"),  # said over the answer, then a new question
    ],
    ids=["pause in a sentence", "new speech"],
)
async def test_words_said_over_the_answer_join_the_next_turn_only_when_speech_resumes_at_once(
    config: CallCenterConfig,
    bus: Bus,
    conversation: ConversationStandIn,
    first: str,
    pause_s: float,
    rest: str,
) -> None:
    processor, _ = turn_processor(config, bus)
    gap = SleepFrame(sleep=0.05)  # lets the transcripts (data frames) keep their place
    await run_test(
        processor,
        frames_to_send=[
            BotStartedSpeakingFrame(),  # the answer is still playing
            VADUserStartedSpeakingFrame(),
            gap,
            _said(first),
            gap,
            VADUserStoppedSpeakingFrame(stop_secs=0.2),
            SleepFrame(sleep=pause_s),
            VADUserStartedSpeakingFrame(),
            gap,
            BotStoppedSpeakingFrame(),  # the answer ended meanwhile
            gap,
            _said(rest),
            gap,
            VADUserStoppedSpeakingFrame(stop_secs=0.2),
            SleepFrame(sleep=0.5),
        ],
    )
    expected = f"{first} {rest}" if pause_s < 0.7 else rest
    assert [r["text"] for r in conversation.requests] == [expected]


GAP = SleepFrame(sleep=0.05)  # lets the transcripts (data frames) keep their place


def _spoken(text: str) -> list[Any]:
    """The frames of one stretch of caller speech: VAD start, its final, VAD stop."""
    return [
        VADUserStartedSpeakingFrame(),
        GAP,
        _said(text),
        GAP,
        VADUserStoppedSpeakingFrame(stop_secs=0.2),
    ]


async def test_words_over_the_answers_end_that_go_on_wait_for_the_rest_of_the_sentence(
    config: CallCenterConfig, bus: Bus, conversation: ConversationStandIn
) -> None:
    # "Thanks," said over the end of the answer (no turn granted yet), the answer ends in the
    # comma pause (the VAD stops, the bot is quiet now), then the rest of the sentence
    processor, _ = turn_processor(config, bus)
    thanks = _spoken("Thanks,")
    await run_test(
        processor,
        frames_to_send=[
            BotStartedSpeakingFrame(),
            *thanks[:-1],
            BotStoppedSpeakingFrame(),  # the answer ended in the pause
            GAP,
            thanks[-1],
            SleepFrame(sleep=0.3),
            *_spoken("can you also check my refund?"),
            SleepFrame(sleep=0.5),
        ],
    )
    assert [r["text"] for r in conversation.requests] == ["Thanks, can you also check my refund?"]


async def test_words_that_go_on_are_sent_when_the_caller_does_not(
    config: CallCenterConfig, bus: Bus, conversation: ConversationStandIn
) -> None:
    processor, _ = turn_processor(config, bus)
    await run_test(
        processor,
        frames_to_send=[*_spoken("Okay,"), SleepFrame(sleep=SPEECH_RESUMED_S + 0.5)],
    )
    assert [r["text"] for r in conversation.requests] == ["Okay,"]


def _turn_stops(frames: Any) -> list[str]:
    """What the caller had said (the finals) at each end of turn among ``frames``."""
    said: list[str] = []
    stops: list[str] = []
    for f in frames:
        if isinstance(f, TranscriptionFrame):
            said.append(f.text)
        elif isinstance(f, UserStoppedSpeakingFrame):
            stops.append(" ".join(said))
            said = []
    return stops


@pytest.mark.parametrize("goes_on", [True, False], ids=["caller goes on", "caller stops"])
async def test_a_turn_does_not_end_at_a_comma_while_the_caller_goes_on(goes_on: bool) -> None:
    # pipecat's user turns with our strategies; Smart Turn is skipped where the (local-style)
    # STT final closes speech, so the comma rule is what decides at the pause
    stop = EndpointAwareTurnStop(turn_analyzer=SharedSmartTurn(), skip_on_endpoint=True)
    user_turns = UserTurnProcessor(
        user_turn_strategies=UserTurnStrategies(
            start=[CallerTurnStartStrategy(backchannels=Backchannels([]), bot_busy=lambda: False)],
            stop=[stop],
        )
    )
    rest = [SleepFrame(sleep=0.3), *_spoken("can you also check my refund?")]  # a comma pause
    down, _ = await run_test(
        user_turns,
        frames_to_send=[
            *_spoken("Thanks,"),
            *(rest if goes_on else []),
            SleepFrame(sleep=SPEECH_RESUMED_S + 0.5),
        ],
    )
    expected = ["Thanks, can you also check my refund?"] if goes_on else ["Thanks,"]
    assert _turn_stops(down) == expected
    assert stop.held == 1


async def test_keypad_digits_become_one_turn_through_pipecats_aggregator(
    config: CallCenterConfig, bus: Bus, conversation: ConversationStandIn
) -> None:
    processor, _ = turn_processor(config, bus)
    keys = [KeypadEntry.ONE, KeypadEntry.ZERO, KeypadEntry.ZERO, KeypadEntry.ONE]
    await run_test(
        Pipeline([DTMFAggregator(timeout=5.0, prefix=DTMF_PREFIX), processor]),
        frames_to_send=[
            *(InputDTMFFrame(button=k) for k in keys),
            InputDTMFFrame(button=KeypadEntry.POUND),
            SleepFrame(sleep=0.5),
        ],
    )
    assert [r["text"] for r in conversation.requests] == ["1001"]
    assert conversation.requests[0]["metadata"]["source"] == "dtmf"
    assert conversation.requests[0]["metadata"]["dtmf"] == "1001"


async def test_barge_in_cancels_with_what_was_heard(
    config: CallCenterConfig, bus: Bus, conversation: ConversationStandIn
) -> None:
    conversation.delay_s = 0.4
    processor, told = turn_processor(config, bus)

    class HeardFirstWord(FrameProcessor):
        """Plays the output's part: the first answer word's audio went out."""

        async def process_frame(self, frame: Any, direction: FrameDirection) -> None:
            await super().process_frame(frame, direction)
            if type(frame) is TextFrame and not processor.turns[-1].heard_words:
                processor.word_heard(frame.text.split()[0])
            await self.push_frame(frame, direction)

    await run_test(
        Pipeline([processor, HeardFirstWord()]),
        frames_to_send=[
            UserStartedSpeakingFrame(),
            TranscriptionFrame(text="How long is shipping?", user_id="", timestamp=""),
            UserStoppedSpeakingFrame(),
            SleepFrame(sleep=0.6),
            TranscriptionFrame(text="uh-huh", user_id="", timestamp=""),  # listening
            SleepFrame(sleep=0.1),
            InterruptionFrame(),
            SleepFrame(sleep=0.5),
        ],
    )
    assert len(conversation.requests) == 1  # the backchannel was not a turn of its own
    assert [c["delivered_text"] for c in conversation.cancels] == ["Shipping"]
    assert len(told.turns) == 1 and told.turns[0].interrupted
    assert told.turns[0].heard_text == "Shipping"


async def test_silence_reprompts_then_says_goodbye_and_asks_to_end(
    config: CallCenterConfig, bus: Bus
) -> None:
    processor, told = turn_processor(config, bus, silence_reprompt_s=0.3, silence_hangup_s=0.6)
    settings = VoicePipelineSettings()
    bot_spoke = [BotStartedSpeakingFrame(), BotStoppedSpeakingFrame()]
    down, _ = await run_test(
        processor,
        frames_to_send=[
            *bot_spoke,  # the greeting
            SleepFrame(sleep=0.6),  # > reprompt: the reprompt is asked for
            *bot_spoke,  # ... and spoken
            SleepFrame(sleep=1.0),  # > hang-up: goodbye
            *bot_spoke,  # ... spoken: now end
            SleepFrame(sleep=0.2),
        ],
    )
    spoken = [f.text for f in down if isinstance(f, TTSSpeakFrame)]
    assert spoken == [settings.reprompt_text, settings.goodbye_text]
    assert told.ends == ["silence"]


@pytest.mark.parametrize("can_hand_over", [True, False], ids=["agent line", "nobody to take it"])
async def test_giving_up_promises_a_person_only_where_one_can_take_the_call(
    config: CallCenterConfig, bus: Bus, elevenlabs: Any, can_hand_over: bool
) -> None:
    speech = config.elevenlabs.model_copy(
        update={"api_key": SecretStr(elevenlabs.api_key), "url": elevenlabs.url}
    )
    with_tts = config.model_copy(update={"elevenlabs": speech})
    processor, told = turn_processor(with_tts, bus, can_hand_over=can_hand_over)
    settings = VoicePipelineSettings()
    said = settings.apology_text if can_hand_over else settings.apology_end_text
    before = len(elevenlabs.http_texts)

    async def provider_stays_down() -> None:
        await asyncio.sleep(0.2)
        await processor.give_up("stt_down")

    giving_up = asyncio.ensure_future(provider_stays_down())
    down, _ = await run_test(processor, frames_to_send=[SleepFrame(sleep=3.0)])
    await giving_up

    assert elevenlabs.http_texts[before:] == [said]  # what the caller hears, nothing else
    assert any(isinstance(f, OutputAudioRawFrame) for f in down)
    if can_hand_over:
        assert [t[0] for t in told.transfers] == ["stt_down"] and told.ends == []
    else:  # "can't go on with this call": the call ends, no transfer is asked for
        assert told.transfers == [] and told.ends == ["stt_down"]


async def test_an_end_asked_by_the_conversation_waits_for_the_answer_to_be_spoken(
    config: CallCenterConfig, bus: Bus, conversation: ConversationStandIn
) -> None:
    conversation.done = {"end_call": True}
    processor, told = turn_processor(config, bus)
    stops_seen: list[int] = []
    bot_stopped_at_end: list[int] = []

    class Output(FrameProcessor):
        """Counts the bot's stops as they pass (the output transport reports them)."""

        async def process_frame(self, frame: Any, direction: FrameDirection) -> None:
            await super().process_frame(frame, direction)
            if isinstance(frame, BotStoppedSpeakingFrame):
                stops_seen.append(1)
            await self.push_frame(frame, direction)

    @processor.event_handler("on_end_requested")
    async def check(_p: Any, _reason: str) -> None:
        bot_stopped_at_end.append(len(stops_seen))

    await run_test(
        Pipeline([Output(), processor]),
        frames_to_send=[
            UserStartedSpeakingFrame(),
            TranscriptionFrame(text="That is all, goodbye", user_id="", timestamp=""),
            UserStoppedSpeakingFrame(),
            SleepFrame(sleep=0.3),
            BotStartedSpeakingFrame(),
            SleepFrame(sleep=0.3),
            BotStoppedSpeakingFrame(),
            SleepFrame(sleep=0.2),
        ],
    )
    assert told.ends == ["assistant_ended"]
    assert bot_stopped_at_end == [1]  # not before the goodbye was spoken


# ----- the watchdog ----------------------------------------------------------------------------


@dataclass
class Alarms:
    too_long: int = 0
    down: list[FrameProcessor] = field(default_factory=list)


def watchdog(provider: FrameProcessor, **kwargs: float) -> tuple[CallWatchdog, Alarms]:
    dog = CallWatchdog(providers=[provider], **kwargs)  # type: ignore[arg-type]
    alarms = Alarms()

    @dog.event_handler("on_call_too_long")
    async def too_long(_dog: Any) -> None:
        alarms.too_long += 1

    @dog.event_handler("on_provider_down")
    async def down(_dog: Any, processor: FrameProcessor) -> None:
        alarms.down.append(processor)

    return dog, alarms


def failure(provider: FrameProcessor) -> ErrorFrame:
    frame = ErrorFrame(error="connection error")
    frame.processor = provider
    return frame


async def test_watchdog_a_provider_that_keeps_failing_is_down() -> None:
    stt = FrameProcessor(name="stt")
    dog, alarms = watchdog(stt, max_call_s=60, provider_down_s=0.3)
    await run_test(
        dog,
        frames_to_send=[failure(stt), SleepFrame(sleep=0.1), failure(stt), SleepFrame(sleep=0.5)],
        frames_to_send_direction=FrameDirection.UPSTREAM,
    )
    assert alarms.down == [stt]


async def test_watchdog_one_drop_that_reconnects_is_no_outage() -> None:
    stt = FrameProcessor(name="stt")
    # the call-length alarm (later than the provider check) is the signal that time has passed
    dog, alarms = watchdog(stt, max_call_s=0.8, provider_down_s=0.3)
    await run_test(
        dog,
        frames_to_send=[failure(stt), SleepFrame(sleep=1.2)],
        frames_to_send_direction=FrameDirection.UPSTREAM,
    )
    assert alarms.too_long == 1
    assert alarms.down == []


async def test_watchdog_a_provider_pipecat_gave_up_on_is_down_at_once() -> None:
    stt = FrameProcessor(name="stt")
    await stt.set_usable(False)
    dog, alarms = watchdog(stt, max_call_s=60, provider_down_s=30)
    await run_test(
        dog,
        frames_to_send=[failure(stt), SleepFrame(sleep=0.2)],
        frames_to_send_direction=FrameDirection.UPSTREAM,
    )
    assert alarms.down == [stt]
