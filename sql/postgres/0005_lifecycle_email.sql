-- Lifecycle email: unsubscribes, the merchant's mail secret (signed unsubscribe links and
-- birthday offer codes) and email language, and the outbox columns the delivery needs.

ALTER TABLE customers ADD COLUMN unsubscribed_at_us BIGINT; -- NULL: subscribed
ALTER TABLE merchants ADD COLUMN mail_secret TEXT;          -- 64 hex digits, made on first use
ALTER TABLE merchants ADD COLUMN email_language TEXT NOT NULL DEFAULT 'id'
    CHECK (email_language IN ('id', 'en'));

-- Birthdays are matched on their month and day ('MM-DD', the last five characters of
-- either stored form).
CREATE INDEX customers_by_birthday ON customers (merchant_id, (substr(birthday, length(birthday) - 4)))
    WHERE birthday IS NOT NULL;

-- The outbox gains the status 'suppressed' (a recipient who may no longer be mailed: the
-- row is kept, with the reason).
ALTER TABLE outbox DROP CONSTRAINT outbox_status_check;
ALTER TABLE outbox ADD CONSTRAINT outbox_status_check
    CHECK (status IN ('pending', 'sent', 'failed', 'held', 'suppressed'));
ALTER TABLE outbox ADD COLUMN payload TEXT;          -- JSON frozen when enqueued
ALTER TABLE outbox ADD COLUMN held_fingerprint TEXT; -- the templates a held email failed with
DROP INDEX outbox_due;
CREATE INDEX outbox_due ON outbox (status, next_attempt_at_us, due_at_us);
CREATE INDEX outbox_by_merchant ON outbox (merchant_id, status, id);
