-- The marketing cap (DESIGN §8): an email the cap holds back waits with the status
-- 'deferred' until its next slot (next_attempt_at_us), never dropped.
--
-- Purchases gain an index by time: the feedback scheduler reads the purchases whose request
-- is due, a few days of one merchant's purchases.

ALTER TABLE outbox DROP CONSTRAINT outbox_status_check;
ALTER TABLE outbox ADD CONSTRAINT outbox_status_check
    CHECK (status IN ('pending', 'sent', 'failed', 'held', 'suppressed', 'deferred'));

CREATE INDEX purchases_by_time ON purchases (merchant_id, occurred_at_us);
