-- 004_idempotency_user_scope: Idempotency-Keys are scoped to the user who sent them (stored
-- as "<user_id>:<key>"), so the column takes the user id prefix on top of a 255-char key.
ALTER TABLE idempotency_keys DROP CONSTRAINT idempotency_keys_key_check;
ALTER TABLE idempotency_keys ADD CONSTRAINT idempotency_keys_key_check CHECK (length(key) BETWEEN 1 AND 300);
