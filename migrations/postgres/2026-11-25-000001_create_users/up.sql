-- Django's auth_user, reduced to what the authentication dance needs.
CREATE TABLE users (
    id SERIAL PRIMARY KEY,
    username TEXT NOT NULL,
    -- An argon2id PHC string: algorithm, parameters, salt and hash.
    password TEXT NOT NULL,
    is_active BOOLEAN NOT NULL DEFAULT TRUE,
    is_superuser BOOLEAN NOT NULL DEFAULT FALSE,
    date_joined TIMESTAMP NOT NULL,
    last_login TIMESTAMP
);

-- Usernames are unique without regard to case: "Alice" and "alice" are one
-- user. Lookups use lower(username), so this index serves them too.
CREATE UNIQUE INDEX users_username_lower ON users (lower(username));
