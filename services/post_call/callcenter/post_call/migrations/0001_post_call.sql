-- Post-call workflow tables (owner: post_call).

-- Transcript: one row per turn, PII redacted before it is stored.
CREATE TABLE IF NOT EXISTS turns (
    call_id        text NOT NULL,
    turn_index     integer NOT NULL,
    channel        text NOT NULL,
    user_text      text NOT NULL,
    assistant_text text NOT NULL,
    tool_calls     jsonb NOT NULL DEFAULT '[]'::jsonb,
    latency        jsonb NOT NULL DEFAULT '{}'::jsonb,
    interrupted    boolean NOT NULL DEFAULT false,
    engine         text NOT NULL DEFAULT 'offline',
    customer_id    text,
    event_id       text NOT NULL,
    occurred_at    timestamptz NOT NULL,
    stored_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (call_id, turn_index)
);

-- One summary per call.
CREATE TABLE IF NOT EXISTS summaries (
    call_id          text PRIMARY KEY,
    channel          text,
    customer_id      text,
    summary          text NOT NULL,
    sentiment        text NOT NULL,
    satisfaction     integer NOT NULL CHECK (satisfaction BETWEEN 1 AND 5),
    resolved         boolean NOT NULL,
    topics           jsonb NOT NULL DEFAULT '[]'::jsonb,
    follow_up_needed boolean NOT NULL,
    follow_up        text,
    engine           text NOT NULL,
    turns_expected   integer NOT NULL,
    turns_stored     integer NOT NULL,
    event_id         text NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now()
);

-- Built-in CRM: contacts and the activities logged on them (one per call and adapter).
CREATE TABLE IF NOT EXISTS crm_contacts (
    customer_id text PRIMARY KEY,
    name        text,
    email       text,
    phone       text,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS crm_activities (
    id           bigserial PRIMARY KEY,
    call_id      text NOT NULL,
    customer_id  text,
    adapter      text NOT NULL,
    external_id  text,
    kind         text NOT NULL DEFAULT 'call_summary',
    subject      text NOT NULL,
    body         text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (call_id, adapter, kind)
);
CREATE INDEX IF NOT EXISTS crm_activities_customer_idx ON crm_activities (customer_id, created_at DESC);

-- Follow-up email: one per call at most; addresses that unsubscribed get none.
CREATE TABLE IF NOT EXISTS emails (
    call_id     text PRIMARY KEY,
    customer_id text,
    to_address  text NOT NULL,
    subject     text NOT NULL,
    body_text   text NOT NULL,
    message_id  text NOT NULL,
    sent_at     timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS email_unsubscribes (
    email           text PRIMARY KEY,
    unsubscribed_at timestamptz NOT NULL DEFAULT now(),
    source          text
);

-- What each step did for each call (done / skipped, with a short detail), for the API.
CREATE TABLE IF NOT EXISTS post_call_steps (
    call_id    text NOT NULL,
    step       text NOT NULL,
    status     text NOT NULL,
    detail     text,
    events     integer NOT NULL DEFAULT 1,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (call_id, step)
);
