-- Messages the assistant promised (codes, confirmations), each sent once: reserved as 'sending'
-- (committed) before the SMTP/Twilio send, confirmed 'sent' with the step's processed_events row.
-- body_text never holds a one-time code (it is masked before the row is stored).
CREATE TABLE IF NOT EXISTS notifications (
    notification_id  text PRIMARY KEY,
    call_id          text,
    customer_id      text NOT NULL,
    kind             text NOT NULL,
    via              text NOT NULL CHECK (via IN ('email', 'sms')),
    to_address       text NOT NULL,
    subject          text NOT NULL,
    body_text        text NOT NULL,
    status           text NOT NULL CHECK (status IN ('sending', 'sent')),
    provider_id      text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    sent_at          timestamptz
);
CREATE INDEX IF NOT EXISTS notifications_call_idx ON notifications (call_id);
CREATE INDEX IF NOT EXISTS notifications_customer_idx ON notifications (customer_id, created_at DESC);

