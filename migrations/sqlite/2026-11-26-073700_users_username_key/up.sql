-- Usernames are compared by a lookup key: the name in Unicode NFKC, then
-- lowercased in full Unicode (`auth::models::username_key`), so that
-- "ｖｉｃｔｉｍ", "VICTIM" and "victim" are one user. SQLite's lower()
-- folds ASCII only, so Porter computes the key and stores it here.
ALTER TABLE users ADD COLUMN username_key TEXT NOT NULL DEFAULT '';

-- Right for every ASCII name; Porter recomputes the others at start-up
-- (`auth::models::refresh_username_keys`), as SQL has no NFKC.
UPDATE users SET username_key = lower(username);

DROP INDEX users_username_lower;
CREATE UNIQUE INDEX users_username_key ON users (username_key);
