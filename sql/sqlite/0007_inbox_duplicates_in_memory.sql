-- The duplicate check leaves the schema: the webhook writer keeps every inbox body's
-- (merchant, digest) in memory (crates/setia-store/src/sqlite/webhooks.rs). The UNIQUE
-- (merchant_id, body_sha256) index put a random page of its B-tree into the WAL for every
-- new body, about half of what a webhook cost the writer (bench/ingest/README.md).
--
-- SQLite cannot drop a UNIQUE constraint, so the table is rebuilt with the same columns and
-- ids. The store runs its migrations with foreign keys off, as SQLite's ALTER TABLE advice
-- asks, so dropping the old table leaves `mutations.inbox_id` pointing at the new one.

CREATE TABLE inbox_without_digest_index (
    id                  INTEGER PRIMARY KEY,
    merchant_id         TEXT NOT NULL REFERENCES merchants (id),
    body                BLOB NOT NULL, -- the bytes exactly as signed
    body_sha256         TEXT NOT NULL,
    body_size           INTEGER NOT NULL,
    user_agent          TEXT,
    moota_user          TEXT,          -- X-MOOTA-USER
    moota_webhook       TEXT,          -- X-MOOTA-WEBHOOK
    remote_addr         TEXT NOT NULL,
    received_at_us      INTEGER NOT NULL,
    state               TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'done', 'quarantined')),
    claim_id            TEXT,
    lease_until_us      INTEGER,
    attempts            INTEGER NOT NULL DEFAULT 0,
    next_attempt_at_us  INTEGER NOT NULL DEFAULT 0,
    last_error          TEXT,
    processed_at_us     INTEGER
);
INSERT INTO inbox_without_digest_index
    (id, merchant_id, body, body_sha256, body_size, user_agent, moota_user, moota_webhook,
     remote_addr, received_at_us, state, claim_id, lease_until_us, attempts,
     next_attempt_at_us, last_error, processed_at_us)
SELECT id, merchant_id, body, body_sha256, body_size, user_agent, moota_user, moota_webhook,
       remote_addr, received_at_us, state, claim_id, lease_until_us, attempts,
       next_attempt_at_us, last_error, processed_at_us
FROM inbox;
DROP TABLE inbox;
ALTER TABLE inbox_without_digest_index RENAME TO inbox;
CREATE INDEX inbox_by_state ON inbox (state, id);
CREATE INDEX inbox_quarantined ON inbox (merchant_id, id) WHERE state = 'quarantined';
