-- One row per voice turn: what the caller heard and when (turn.heard, from voice_pipeline) joined
-- with the conversation's turn.completed on (call_id, turn_index). Either event may come first;
-- each fills its own columns. A turn cut before the conversation's answer was done has no
-- turn_index and is kept in voice_turns_unjoined.
CREATE TABLE IF NOT EXISTS voice_turn_timings (
    call_id text NOT NULL,
    turn_index integer NOT NULL,
    -- from turn.heard (ms from the caller stopping; overhead = final transcript -> audio sent)
    source text,
    stt_final_ms double precision,
    first_text_ms double precision,
    first_audio_ms double precision,
    first_audio_sent_ms double precision,
    transcript_to_first_audio_sent_ms double precision,
    interrupted boolean,
    heard_text text,
    heard_at timestamptz,
    -- from turn.completed
    first_token_ms double precision,
    tool_ms double precision,
    total_ms double precision,
    completed_at timestamptz,
    PRIMARY KEY (call_id, turn_index)
);

CREATE TABLE IF NOT EXISTS voice_turns_unjoined (
    event_id text PRIMARY KEY,
    call_id text NOT NULL,
    source text,
    stt_final_ms double precision,
    first_audio_sent_ms double precision,
    interrupted boolean,
    heard_text text,
    error text,
    heard_at timestamptz NOT NULL
);
