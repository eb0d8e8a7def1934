-- Verification brute force across conversations (issue 13): every failed attempt names what it
-- was against (targets: 'customer:<id>', 'order:<id>') and where it came from (source: 'ip:<addr>'
-- for chat, 'phone:<E.164>' for SMS and voice, read from the gateway's calls row), so failures
-- are counted per target and per source across all calls and channels within a window.
ALTER TABLE verification_attempts ADD COLUMN IF NOT EXISTS targets text[] NOT NULL DEFAULT '{}';
ALTER TABLE verification_attempts ADD COLUMN IF NOT EXISTS source text;
CREATE INDEX IF NOT EXISTS verification_attempts_targets_idx
    ON verification_attempts USING gin (targets) WHERE NOT success;
CREATE INDEX IF NOT EXISTS verification_attempts_source_idx
    ON verification_attempts (source, attempted_at) WHERE NOT success;

-- Each time a target or a source gets locked: for supervisors and for the help path (a human or a
-- one-time code to the contact on file).
CREATE TABLE IF NOT EXISTS verification_lockouts (
    id          bigserial PRIMARY KEY,
    kind        text NOT NULL CHECK (kind IN ('target', 'source')),
    subject     text NOT NULL,
    call_id     text NOT NULL,
    channel     text,
    failures    integer NOT NULL,
    locked_at   timestamptz NOT NULL DEFAULT now(),
    locked_until timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS verification_lockouts_subject_idx
    ON verification_lockouts (subject, locked_until DESC);
