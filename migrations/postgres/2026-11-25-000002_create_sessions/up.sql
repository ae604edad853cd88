-- Django's django_session, with two differences: the session key itself is
-- never stored (only its SHA-256, so a copy of this table cannot be replayed
-- as cookies), and the signed-in user is a column, so that a user's sessions
-- can be listed and revoked.
CREATE TABLE sessions (
    -- A surrogate id, safe to show in URLs; the key hash never leaves the server.
    id SERIAL PRIMARY KEY,
    key_hash TEXT NOT NULL UNIQUE,
    -- The session dictionary, as a JSON object.
    data TEXT NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    user_id INTEGER REFERENCES users (id) ON DELETE CASCADE,
    created_at TIMESTAMP NOT NULL
);

CREATE INDEX sessions_expires_at ON sessions (expires_at);
CREATE INDEX sessions_user_id ON sessions (user_id);
