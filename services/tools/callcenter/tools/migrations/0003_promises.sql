-- Events a skill recorded in its own transaction, published to the bus after the commit
-- (a transactional outbox): customer notifications and "customer verified". The row's event_id
-- is the Nats-Msg-Id, so publishing it again is harmless.
CREATE TABLE IF NOT EXISTS event_outbox (
    event_id      text PRIMARY KEY,
    subject       text NOT NULL,
    call_id       text,
    body          jsonb NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    published_at  timestamptz
);
CREATE INDEX IF NOT EXISTS event_outbox_pending_idx ON event_outbox (created_at)
    WHERE published_at IS NULL;

-- How each one-time code was delivered (rate limits count codes per customer).
ALTER TABLE verification_codes ADD COLUMN IF NOT EXISTS sent_via text;
ALTER TABLE verification_codes ADD COLUMN IF NOT EXISTS call_id text;
CREATE INDEX IF NOT EXISTS verification_codes_recent_idx
    ON verification_codes (customer_id, created_at DESC);

-- A callback's time as the customer said it: their zone, so it is stated back in their time.
ALTER TABLE callbacks ADD COLUMN IF NOT EXISTS customer_timezone text;

-- Requests for a one-time code per call (found account or not), for the per-call limit that
-- says nothing about whether an account exists.
CREATE TABLE IF NOT EXISTS code_requests (
    id            bigserial PRIMARY KEY,
    call_id       text NOT NULL,
    requested_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS code_requests_call_idx ON code_requests (call_id, requested_at);
