"""voice_timings joins what the caller heard (turn.heard) with turn.completed, either order."""

from __future__ import annotations

from callcenter.common.events import TurnCompleted, TurnHeard, TurnLatency
from callcenter.post_call.steps.voice_timings import VoiceTimingsStep
from services.post_call.tests.support import PostCall, delivery_of, new_call_id


def completed(call_id: str, turn_index: int, channel: str = "voice") -> TurnCompleted:
    return TurnCompleted(
        call_id=call_id,
        channel=channel,  # type: ignore[arg-type]
        turn_index=turn_index,
        user_text="How long does shipping take?",
        assistant_text="Three to five business days.",
        latency=TurnLatency(first_token_ms=210.0, total_ms=640.0, stt_final_ms=150.0),
    )


def heard(call_id: str, turn_index: int | None, **fields: object) -> TurnHeard:
    values: dict[str, object] = {
        "stt_final_ms": 150.0,
        "first_text_ms": 380.0,
        "first_audio_ms": 520.0,
        "first_audio_sent_ms": 560.0,
        "transcript_to_first_audio_sent_ms": 410.0,
        "heard_text": "Three to five",
    }
    values.update(fields)
    return TurnHeard(call_id=call_id, turn_index=turn_index, **values)  # type: ignore[arg-type]


async def test_both_halves_of_a_voice_turn_make_one_row_in_either_order(
    post_call: PostCall,
) -> None:
    step = VoiceTimingsStep(ctx=post_call.context())
    call_id = new_call_id()
    # turn 0: heard first (the usual order is the other one); turn 1: completed first
    assert await step.handle(delivery_of(heard(call_id, 0))) is True
    assert await step.handle(delivery_of(completed(call_id, 0))) is True
    assert await step.handle(delivery_of(completed(call_id, 1))) is True
    again = heard(call_id, 1, interrupted=True, heard_text="card 4111 1111 1111 1111")
    assert await step.handle(delivery_of(again)) is True
    assert await step.handle(delivery_of(again, attempt=2)) is False  # a redelivery
    rows = await post_call.db.fetch(
        "SELECT * FROM voice_turn_timings WHERE call_id = $1 ORDER BY turn_index", call_id
    )
    assert [r["turn_index"] for r in rows] == [0, 1]
    for row in rows:
        assert row["first_token_ms"] == 210.0 and row["total_ms"] == 640.0
        assert row["first_audio_sent_ms"] == 560.0
        assert row["transcript_to_first_audio_sent_ms"] == 410.0
    assert rows[0]["heard_text"] == "Three to five" and not rows[0]["interrupted"]
    assert rows[1]["interrupted"] and "4111" not in rows[1]["heard_text"]


async def test_other_channels_and_cut_turns(post_call: PostCall) -> None:
    step = VoiceTimingsStep(ctx=post_call.context())
    call_id = new_call_id()
    assert await step.handle(delivery_of(completed(call_id, 0, channel="chat"))) is False
    cut = heard(call_id, None, interrupted=True, first_audio_sent_ms=None)
    assert await step.handle(delivery_of(cut)) is True
    joined = await post_call.db.fetchval(
        "SELECT count(*) FROM voice_turn_timings WHERE call_id = $1", call_id
    )
    assert joined == 0
    unjoined = await post_call.db.fetchrow(
        "SELECT * FROM voice_turns_unjoined WHERE call_id = $1", call_id
    )
    assert unjoined["interrupted"] and unjoined["event_id"] == cut.event_id
