-- A browser call (channel 'web_voice', issue 17) can be handed off like any other.
ALTER TABLE handoffs DROP CONSTRAINT IF EXISTS handoffs_channel_check;
ALTER TABLE handoffs ADD CONSTRAINT handoffs_channel_check
    CHECK (channel IN ('voice', 'sms', 'chat', 'web_voice'));
