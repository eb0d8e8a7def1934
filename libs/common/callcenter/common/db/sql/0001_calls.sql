-- Calls (every channel), written by the edge that owns the call and by post-call steps.
CREATE TABLE IF NOT EXISTS calls (
    call_id       text PRIMARY KEY,
    channel       text NOT NULL CHECK (channel IN ('voice', 'sms', 'chat')),
    from_number   text,
    to_number     text,
    customer_id   text,
    provider_ids  jsonb NOT NULL DEFAULT '{}'::jsonb,
    status        text NOT NULL DEFAULT 'active',
    started_at    timestamptz NOT NULL DEFAULT now(),
    ended_at      timestamptz,
    end_reason    text,
    duration_s    double precision,
    turn_count    integer
);
CREATE INDEX IF NOT EXISTS calls_started_at_idx ON calls (started_at DESC);
CREATE INDEX IF NOT EXISTS calls_channel_idx ON calls (channel, started_at DESC);

-- Exactly-once effects: a step records (step, event_id) in the same transaction as its effect.
CREATE TABLE IF NOT EXISTS processed_events (
    step         text NOT NULL,
    event_id     text NOT NULL,
    call_id      text,
    processed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (step, event_id)
);

-- What a consumer gave up on, with the reason; shown by the API.
CREATE TABLE IF NOT EXISTS dead_letters (
    id              bigserial PRIMARY KEY,
    consumer        text NOT NULL,
    subject         text NOT NULL,
    stream_sequence bigint NOT NULL,
    event_id        text,
    call_id         text,
    attempts        integer NOT NULL,
    reason          text NOT NULL,
    payload         jsonb,
    created_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (consumer, stream_sequence)
);
CREATE INDEX IF NOT EXISTS dead_letters_call_idx ON dead_letters (call_id);

-- Tickets are opened by the tools service (create_ticket) and by the post-call ticket step.
CREATE TABLE IF NOT EXISTS tickets (
    ticket_id    text PRIMARY KEY,
    call_id      text,
    customer_id  text,
    source       text NOT NULL,
    priority     text NOT NULL DEFAULT 'normal' CHECK (priority IN ('low', 'normal', 'high', 'urgent')),
    status       text NOT NULL DEFAULT 'open',
    subject      text NOT NULL,
    body         text NOT NULL DEFAULT '',
    link         text,
    idempotency_key text UNIQUE,
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS tickets_call_idx ON tickets (call_id);
