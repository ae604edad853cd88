-- A user's session generation: part of every session's auth hash (with the
-- password hash), so that raising it ends every session the user has, on
-- every engine, the cookie engine's included ("sign out everywhere").
-- Sessions made at generation 0 keep the auth hash they always had.
ALTER TABLE users ADD COLUMN session_generation INTEGER NOT NULL DEFAULT 0;
