-- The agent inbox (issue 14): named agents, who owns each conversation, and what was said
-- while a person owned it. Owned by the gateway.

CREATE TABLE IF NOT EXISTS agents (
    agent_id    text PRIMARY KEY,
    name        text NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 60),
    token_hash  text NOT NULL UNIQUE,
    created_at  timestamptz NOT NULL DEFAULT now(),
    disabled_at timestamptz
);

-- One row per conversation that ever left the bot: bot -> waiting_for_agent -> agent -> bot/closed.
CREATE TABLE IF NOT EXISTS handoffs (
    call_id          text PRIMARY KEY,
    channel          text NOT NULL CHECK (channel IN ('voice', 'sms', 'chat')),
    state            text NOT NULL CHECK (state IN ('bot', 'waiting_for_agent', 'agent', 'closed')),
    reason           text NOT NULL DEFAULT '',
    trigger          text NOT NULL DEFAULT 'tool',
    summary          text NOT NULL DEFAULT '',
    customer_number  text,
    business_number  text,
    requested_at     timestamptz NOT NULL DEFAULT now(),
    agent_id         text,
    agent_name       text,
    taken_at         timestamptz,
    ticket_id        text,
    updated_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS handoffs_waiting_idx ON handoffs (requested_at) WHERE state = 'waiting_for_agent';

-- Messages while a person owns the conversation (PII redacted before they are stored).
CREATE TABLE IF NOT EXISTS handoff_messages (
    id          bigserial PRIMARY KEY,
    call_id     text NOT NULL,
    sender      text NOT NULL CHECK (sender IN ('customer', 'agent', 'system')),
    agent_name  text,
    text        text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS handoff_messages_call_idx ON handoff_messages (call_id, id);
