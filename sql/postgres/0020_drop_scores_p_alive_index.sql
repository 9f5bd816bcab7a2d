-- The weekly report counts at-risk customers by scanning the merchant's scores, once a week;
-- this index was rewritten on every nightly run.
DROP INDEX IF EXISTS customer_scores_at_risk;
