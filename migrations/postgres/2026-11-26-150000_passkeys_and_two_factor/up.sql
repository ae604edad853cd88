-- Passkeys (WebAuthn credentials), as webauthn-rs serialises them. A user
-- may have several; each signs in on its own (it is two factors in one: a
-- device and the PIN or biometric that unlocks it).
CREATE TABLE passkeys (
    id SERIAL PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- The user handle the authenticator stores with a discoverable
    -- credential: random, one per user, so it says nothing about them.
    user_handle TEXT NOT NULL,
    -- The credential id, in hex: how a sign-in finds its passkey.
    credential_id TEXT NOT NULL UNIQUE,
    -- webauthn-rs's `Passkey` as JSON: the public key and the signature
    -- counter, updated after each use.
    credential TEXT NOT NULL,
    -- A name the user chose ("laptop"), to tell their passkeys apart.
    name TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    last_used_at TIMESTAMP
);
CREATE INDEX passkeys_user_id ON passkeys (user_id);

-- A user's TOTP authenticator: at most one. It takes effect (the password
-- alone no longer signs in) once `confirmed_at` is set, by a valid code.
CREATE TABLE totp_devices (
    user_id INTEGER PRIMARY KEY NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- The shared secret, encrypted (AES-256-GCM under a key derived from
    -- SECRET_KEY): a copy of the table alone cannot mint codes.
    secret TEXT NOT NULL,
    confirmed_at TIMESTAMP,
    -- The last time step a code was accepted for: a code is good once.
    last_step BIGINT NOT NULL DEFAULT 0
);

-- Single-use recovery codes, for a user who lost their authenticator: only
-- their keyed hash is kept.
CREATE TABLE recovery_codes (
    id SERIAL PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code_hash TEXT NOT NULL UNIQUE,
    used_at TIMESTAMP
);
CREATE INDEX recovery_codes_user_id ON recovery_codes (user_id);
