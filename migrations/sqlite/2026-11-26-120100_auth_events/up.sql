-- The security log users and staff read: one row per sign-in, failed
-- sign-in, sign-out, password or address change, revoked session,
-- permission change and staff action. Never a password, a key or a token;
-- a username typed at a failed sign-in only as a keyed hash.
CREATE TABLE auth_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    -- What happened: "login", "login_failed", "user_deactivated", ...
    kind TEXT NOT NULL,
    -- Whose account it concerns, if anyone's.
    user_id INTEGER REFERENCES users (id) ON DELETE SET NULL,
    -- Who did it: the user, a staff member, or nobody known.
    actor_id INTEGER REFERENCES users (id) ON DELETE SET NULL,
    -- The client address and browser, "" from the command line.
    ip TEXT NOT NULL,
    user_agent TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    -- A small JSON object: the permission granted, the session revoked.
    detail TEXT NOT NULL
);

CREATE INDEX auth_events_user_id ON auth_events (user_id, created_at);
CREATE INDEX auth_events_created_at ON auth_events (created_at);
