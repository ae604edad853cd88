-- Django's authorization tables: permissions (declared in code,
-- `auth::permissions`, and synced here at start-up), groups, and the links
-- between users, groups and permissions. A superuser holds every
-- permission without a row.
ALTER TABLE users ADD COLUMN is_staff BOOLEAN NOT NULL DEFAULT FALSE;
-- Django's superusers are staff too.
UPDATE users SET is_staff = TRUE WHERE is_superuser;

CREATE TABLE permissions (
    id SERIAL PRIMARY KEY,
    -- "sessions.view_any": what code asks `has_perm` for.
    codename TEXT NOT NULL UNIQUE,
    -- What a person reads in the staff area.
    name TEXT NOT NULL
);

CREATE TABLE groups (
    id SERIAL PRIMARY KEY,
    name TEXT NOT NULL UNIQUE
);

CREATE TABLE user_groups (
    user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    group_id INTEGER NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
    PRIMARY KEY (user_id, group_id)
);

CREATE TABLE user_permissions (
    user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    permission_id INTEGER NOT NULL REFERENCES permissions (id) ON DELETE CASCADE,
    PRIMARY KEY (user_id, permission_id)
);

CREATE TABLE group_permissions (
    group_id INTEGER NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
    permission_id INTEGER NOT NULL REFERENCES permissions (id) ON DELETE CASCADE,
    PRIMARY KEY (group_id, permission_id)
);
