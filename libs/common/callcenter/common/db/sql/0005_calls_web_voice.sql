-- Browser calls (issue 17): the chat widget's "Call" button opens a voice call from the microphone,
-- channel 'web_voice' (no caller number). The voice pipeline finds the call by the stream id the
-- gateway put in its token.
ALTER TABLE calls DROP CONSTRAINT IF EXISTS calls_channel_check;
ALTER TABLE calls ADD CONSTRAINT calls_channel_check
    CHECK (channel IN ('voice', 'sms', 'chat', 'web_voice'));
CREATE INDEX IF NOT EXISTS calls_web_stream_id_idx ON calls ((provider_ids->>'web_stream_id'));
