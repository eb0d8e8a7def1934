-- Calls whose end could not be recorded when it happened (for example Redis was down): the
-- gateway's reapers sweep them. A partial index keeps that sweep cheap.
CREATE INDEX IF NOT EXISTS calls_ending_idx ON calls (started_at) WHERE status = 'ending';
