-- Login-failure limits shared by every server process, and what keeps session storage
-- bounded. An attempt is a row from the moment its password check is reserved (failed_at
-- NULL: in flight) until it succeeds (row deleted) or fails (failed_at set). The guard row
-- of an account key is locked while an attempt is reserved, so reservations for one account
-- are serialized across processes and N concurrent guesses never pass the limit.
CREATE TABLE login_guards (
    account_key  text PRIMARY KEY,              -- SHA-256 (hex) of the normalized email
    touched_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX login_guards_touched_idx ON login_guards (touched_at);

CREATE TABLE login_attempts (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_key  text NOT NULL,
    started_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
    failed_at    timestamptz                    -- NULL: the password is still being checked
);
CREATE INDEX login_attempts_key_idx ON login_attempts (account_key, started_at);
CREATE INDEX login_attempts_started_idx ON login_attempts (started_at);

-- The purge looks for ended and expired sessions.
CREATE INDEX sessions_expires_idx ON sessions (expires_at);
CREATE INDEX sessions_ended_idx ON sessions (ended_at) WHERE ended_at IS NOT NULL;
-- Rotation keeps the newest used tokens of a session.
CREATE INDEX refresh_tokens_session_used_idx ON refresh_tokens (session_id, used_at);
