-- The weekly report counts at-risk customers by scanning the merchant's scores (a few hundred
-- milliseconds a week at a million customers); this index was written on every nightly run.
DROP INDEX IF EXISTS customer_scores_at_risk;
