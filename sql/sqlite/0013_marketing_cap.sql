-- The marketing cap (DESIGN §8): an email the cap holds back waits with the status
-- 'deferred' until its next slot (next_attempt_at_us), never dropped. SQLite cannot change a
-- CHECK, so the outbox is rebuilt with the same columns, rows and ids; the check is written
-- as comparisons, which cost nothing per row where an IN list builds a B-tree (0008).
--
-- Purchases gain an index by time: the feedback scheduler reads the purchases whose request
-- is due, a few days of one merchant's purchases.

CREATE TABLE outbox_with_deferred (
    id                 INTEGER PRIMARY KEY,
    merchant_id        TEXT NOT NULL REFERENCES merchants (id),
    kind               TEXT NOT NULL,
    recipient          TEXT NOT NULL, -- a customer id (cus_N) or a merchant's address
    customer_id        INTEGER REFERENCES customers (id),
    period_key         TEXT NOT NULL, -- the local day, year, ISO week, request or complaint
    due_at_us          INTEGER NOT NULL,
    status             TEXT NOT NULL DEFAULT 'pending'
        CHECK (status = 'pending' OR status = 'sent' OR status = 'failed' OR status = 'held'
               OR status = 'suppressed' OR status = 'deferred'),
    attempts           INTEGER NOT NULL DEFAULT 0,
    next_attempt_at_us INTEGER NOT NULL DEFAULT 0,
    last_error         TEXT,
    claim_id           TEXT,
    lease_until_us     INTEGER,
    created_at_us      INTEGER NOT NULL,
    sent_at_us         INTEGER,
    payload            TEXT,
    held_fingerprint   TEXT,
    UNIQUE (merchant_id, kind, recipient, period_key)
);
INSERT INTO outbox_with_deferred (id, merchant_id, kind, recipient, customer_id, period_key,
    due_at_us, status, attempts, next_attempt_at_us, last_error, claim_id, lease_until_us,
    created_at_us, sent_at_us, payload, held_fingerprint)
SELECT id, merchant_id, kind, recipient, customer_id, period_key,
    due_at_us, status, attempts, next_attempt_at_us, last_error, claim_id, lease_until_us,
    created_at_us, sent_at_us, payload, held_fingerprint
FROM outbox;
DROP TABLE outbox;
ALTER TABLE outbox_with_deferred RENAME TO outbox;
CREATE INDEX outbox_due ON outbox (status, next_attempt_at_us, due_at_us);
CREATE INDEX outbox_by_merchant ON outbox (merchant_id, status, id);

CREATE INDEX purchases_by_time ON purchases (merchant_id, occurred_at_us);
