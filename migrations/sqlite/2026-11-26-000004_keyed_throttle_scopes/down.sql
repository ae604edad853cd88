DELETE FROM login_attempts;
ALTER TABLE login_attempts DROP COLUMN locked_until;
