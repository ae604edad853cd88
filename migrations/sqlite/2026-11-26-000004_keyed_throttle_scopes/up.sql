-- Throttle scopes become keyed hashes (no typed username or address is kept
-- in clear), and a scope past its limit records until when it is locked, so
-- that an attempt is reserved atomically before its password is checked.
DELETE FROM login_attempts;
ALTER TABLE login_attempts ADD COLUMN locked_until TIMESTAMP;
