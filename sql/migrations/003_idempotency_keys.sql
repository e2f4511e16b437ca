-- 003_idempotency_keys: responses remembered for Idempotency-Key replays (API.md: a POST
-- replayed with the same key and body within 24 h returns the first response).
--
-- A request first inserts its row with status NULL (in flight; a concurrent replay waits or
-- gets 409), then stores the response. request_hash is a digest of method, path and body: the
-- same key with another hash is 422. Rows older than 24 h are purged by created_at.

CREATE TABLE idempotency_keys (
    org_id           bigint NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    key              text NOT NULL CHECK (length(key) BETWEEN 1 AND 255),
    request_hash     bytea NOT NULL,
    status           smallint CHECK (status BETWEEN 100 AND 599),
    response_headers text,
    response_body    bytea,
    created_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (org_id, key)
);
CREATE INDEX idempotency_keys_created_idx ON idempotency_keys (created_at);
