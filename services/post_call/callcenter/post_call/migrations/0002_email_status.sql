-- Two-phase follow-up email: a row is reserved as 'sending' (committed) before the SMTP send and
-- confirmed 'sent' with the step's processed_events row. A row left in 'sending' means an attempt
-- stopped between the send and its record: the email is never sent a second time for it.
ALTER TABLE emails ADD COLUMN IF NOT EXISTS status text NOT NULL DEFAULT 'sent';
ALTER TABLE emails DROP CONSTRAINT IF EXISTS emails_status_check;
ALTER TABLE emails ADD CONSTRAINT emails_status_check CHECK (status IN ('sending', 'sent'));
