DROP TABLE mail_outbox;
DROP INDEX users_email_key;
ALTER TABLE users DROP COLUMN new_email;
ALTER TABLE users DROP COLUMN email_confirmed;
ALTER TABLE users DROP COLUMN email_key;
ALTER TABLE users DROP COLUMN email;
