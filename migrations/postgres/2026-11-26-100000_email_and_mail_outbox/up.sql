-- A user's e-mail address (Django's `User.email`), optional: accounts made
-- before it have none. `email` is the address as given, its domain in lower
-- case (`normalize_email`); `email_key` is what it is found and kept unique
-- by, the whole address in Unicode NFKC and lower case, computed by Porter
-- (`auth::email_address::email_key`), as `username_key` is.
ALTER TABLE users ADD COLUMN email TEXT;
ALTER TABLE users ADD COLUMN email_key TEXT;
-- Whether the owner followed a confirmation link sent to `email`.
ALTER TABLE users ADD COLUMN email_confirmed BOOLEAN NOT NULL DEFAULT FALSE;
-- An address the user asked to change to; it replaces `email` only when
-- the link sent to it is followed.
ALTER TABLE users ADD COLUMN new_email TEXT;
CREATE UNIQUE INDEX users_email_key ON users (email_key);

-- Mail waiting to be sent, written in the same transaction as the change
-- that caused it, and deleted once the server accepted it.
CREATE TABLE mail_outbox (
    id SERIAL PRIMARY KEY,
    -- The Message-ID's unique part: the same on every attempt, so a
    -- receiving server can tell a retry from a new mail.
    message_id TEXT NOT NULL,
    -- Empty for the decoy a reset request for an unknown address writes.
    recipient TEXT NOT NULL,
    subject TEXT NOT NULL,
    body_text TEXT NOT NULL,
    body_html TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMP NOT NULL,
    -- A sending worker's lease: no other worker takes the row before then.
    claimed_until TIMESTAMP,
    last_error TEXT,
    -- Set when Porter gave up on the mail; the row stays for the operator.
    failed_at TIMESTAMP
);
CREATE INDEX mail_outbox_due ON mail_outbox (next_attempt_at);
