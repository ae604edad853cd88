DROP TABLE recovery_codes;
DROP TABLE totp_devices;
DROP TABLE passkeys;
