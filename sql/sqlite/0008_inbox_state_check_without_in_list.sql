-- The inbox's state check without an IN list. SQLite checks `state IN (three values)` by
-- building a temporary B-tree of the list for every row it inserts or updates: a third of
-- what a webhook cost its writer (bench/ingest/README.md). The same rule as comparisons costs
-- next to nothing. Lists of one or two values compile to comparisons already.
--
-- SQLite cannot change a CHECK constraint in place, so the table is rebuilt with the same
-- columns, rows and ids, as in 0007 (foreign keys are off during migrations, so
-- `mutations.inbox_id` keeps pointing at the inbox).

CREATE TABLE inbox_checked_without_in_list (
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
    state               TEXT NOT NULL DEFAULT 'pending' CHECK (state = 'pending' OR state = 'done' OR state = 'quarantined'),
    claim_id            TEXT,
    lease_until_us      INTEGER,
    attempts            INTEGER NOT NULL DEFAULT 0,
    next_attempt_at_us  INTEGER NOT NULL DEFAULT 0,
    last_error          TEXT,
    processed_at_us     INTEGER
);
INSERT INTO inbox_checked_without_in_list
    (id, merchant_id, body, body_sha256, body_size, user_agent, moota_user, moota_webhook,
     remote_addr, received_at_us, state, claim_id, lease_until_us, attempts,
     next_attempt_at_us, last_error, processed_at_us)
SELECT id, merchant_id, body, body_sha256, body_size, user_agent, moota_user, moota_webhook,
       remote_addr, received_at_us, state, claim_id, lease_until_us, attempts,
       next_attempt_at_us, last_error, processed_at_us
FROM inbox;
DROP TABLE inbox;
ALTER TABLE inbox_checked_without_in_list RENAME TO inbox;
CREATE INDEX inbox_by_state ON inbox (state, id);
CREATE INDEX inbox_quarantined ON inbox (merchant_id, id) WHERE state = 'quarantined';
