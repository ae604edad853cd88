-- Failed logins, counted per (username, client IP) and per client IP, so
-- that throttling works on any database and across instances.
CREATE TABLE login_attempts (
    -- "user:<ip>:<lowercased username>" or "ip:<ip>".
    scope TEXT PRIMARY KEY NOT NULL,
    -- Failures since the counter last started; it starts again after a
    -- quiet hour.
    failures INTEGER NOT NULL,
    last_failure_at TIMESTAMP NOT NULL
);

CREATE INDEX login_attempts_last_failure_at ON login_attempts (last_failure_at);
