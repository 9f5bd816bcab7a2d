-- Lifecycle email: unsubscribes, the merchant's mail secret (signed unsubscribe links and
-- birthday offer codes) and email language, and the outbox columns the delivery needs.

ALTER TABLE customers ADD COLUMN unsubscribed_at_us INTEGER; -- NULL: subscribed
ALTER TABLE merchants ADD COLUMN mail_secret TEXT;           -- 64 hex digits, made on first use
ALTER TABLE merchants ADD COLUMN email_language TEXT NOT NULL DEFAULT 'id'
    CHECK (email_language IN ('id', 'en'));

-- Birthdays are matched on their month and day ('MM-DD', the last five characters of
-- either stored form).
CREATE INDEX customers_by_birthday ON customers (merchant_id, substr(birthday, length(birthday) - 4))
    WHERE birthday IS NOT NULL;

-- The outbox gains the status 'suppressed' (a recipient who may no longer be mailed: the
-- row is kept, with the reason). SQLite cannot change a CHECK, so the table is rebuilt.
CREATE TABLE outbox_v5 (
    id                 INTEGER PRIMARY KEY,
    merchant_id        TEXT NOT NULL REFERENCES merchants (id),
    kind               TEXT NOT NULL,
    recipient          TEXT NOT NULL, -- a customer id (cus_N) or a report address
    customer_id        INTEGER REFERENCES customers (id),
    period_key         TEXT NOT NULL, -- the local day, year or ISO week the email is for
    due_at_us          INTEGER NOT NULL,
    status             TEXT NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'sent', 'failed', 'held', 'suppressed')),
    attempts           INTEGER NOT NULL DEFAULT 0,
    next_attempt_at_us INTEGER NOT NULL DEFAULT 0,
    last_error         TEXT,
    claim_id           TEXT,
    lease_until_us     INTEGER,
    created_at_us      INTEGER NOT NULL,
    sent_at_us         INTEGER,
    payload            TEXT,  -- JSON frozen when enqueued (offer code, report figures)
    held_fingerprint   TEXT,  -- the templates a held email failed with
    UNIQUE (merchant_id, kind, recipient, period_key)
);
INSERT INTO outbox_v5 (id, merchant_id, kind, recipient, customer_id, period_key, due_at_us, status,
    attempts, next_attempt_at_us, last_error, claim_id, lease_until_us, created_at_us, sent_at_us)
SELECT id, merchant_id, kind, recipient, customer_id, period_key, due_at_us, status,
    attempts, next_attempt_at_us, last_error, claim_id, lease_until_us, created_at_us, sent_at_us
FROM outbox;
DROP TABLE outbox;
ALTER TABLE outbox_v5 RENAME TO outbox;
CREATE INDEX outbox_due ON outbox (status, next_attempt_at_us, due_at_us);
CREATE INDEX outbox_by_merchant ON outbox (merchant_id, status, id);
