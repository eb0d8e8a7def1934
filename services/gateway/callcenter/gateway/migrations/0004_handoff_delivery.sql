-- Which agent messages reached the customer's chat widget: one written while the visitor's socket
-- was away is shown when the visitor reconnects (resume), once. Owned by the gateway.

ALTER TABLE handoff_messages ADD COLUMN IF NOT EXISTS delivered_at timestamptz;
CREATE INDEX IF NOT EXISTS handoff_messages_undelivered_idx
    ON handoff_messages (call_id, id) WHERE sender = 'agent' AND delivered_at IS NULL;
