DROP TABLE group_permissions;
DROP TABLE user_permissions;
DROP TABLE user_groups;
DROP TABLE groups;
DROP TABLE permissions;
ALTER TABLE users DROP COLUMN is_staff;
