-- Customer scores are derived rows that only the nightly run writes, from the merchant's own
-- customers, and customers are never deleted. Checking both foreign keys on each of a
-- million rows was half of the run's store (bench/metrics/README.md); SQLite's scores, in a
-- file of their own, never had them.
ALTER TABLE customer_scores DROP CONSTRAINT IF EXISTS customer_scores_merchant_id_fkey;
ALTER TABLE customer_scores DROP CONSTRAINT IF EXISTS customer_scores_customer_id_fkey;
