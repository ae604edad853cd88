-- Django's auth_user, reduced to what the authentication dance needs.
CREATE TABLE users (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    username TEXT NOT NULL,
    -- An argon2id PHC string: algorithm, parameters, salt and hash.
    password TEXT NOT NULL,
    is_active BOOLEAN NOT NULL DEFAULT 1,
    is_superuser BOOLEAN NOT NULL DEFAULT 0,
    date_joined TIMESTAMP NOT NULL,
    last_login TIMESTAMP
);

-- Usernames are unique without regard to case: "Alice" and "alice" are one
-- user. Lookups use lower(username), so this index serves them too.
CREATE UNIQUE INDEX users_username_lower ON users (lower(username));
