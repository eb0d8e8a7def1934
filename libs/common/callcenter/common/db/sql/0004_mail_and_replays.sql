-- Mail caught by the local mail catcher (``callcenter up`` starts it when no SMTP server listens
-- on the configured port), shown by the dashboard so a newcomer sees what customers would get.
CREATE TABLE IF NOT EXISTS caught_mail (
    id           bigserial PRIMARY KEY,
    mail_from    text NOT NULL,
    rcpt_to      text[] NOT NULL,
    subject      text NOT NULL DEFAULT '',
    body_text    text NOT NULL DEFAULT '',
    raw          text NOT NULL,
    received_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS caught_mail_received_idx ON caught_mail (received_at DESC);

-- Dead letters a person replayed (dashboard or API): how often and when last.
ALTER TABLE dead_letters ADD COLUMN IF NOT EXISTS replay_count integer NOT NULL DEFAULT 0;
ALTER TABLE dead_letters ADD COLUMN IF NOT EXISTS replayed_at timestamptz;
