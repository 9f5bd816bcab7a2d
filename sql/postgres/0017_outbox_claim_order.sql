-- Claiming takes the earliest due rows first. Without an index in that order, every claim
-- sorted all the waiting rows (100,000 of them when a big merchant's birthday offers are
-- queued) to take a batch; in due order a claim reads little more than its batch.
CREATE INDEX outbox_claim_order ON outbox (due_at_us, id) WHERE status IN ('pending', 'deferred');
