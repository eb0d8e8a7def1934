-- The gateway looks a voice call up by its Twilio CallSid (a replayed webhook for an ended call
-- must not start it again); an expression index keeps that cheap.
CREATE INDEX IF NOT EXISTS calls_twilio_call_sid_idx ON calls ((provider_ids->>'twilio_call_sid'));
