-- Customer scores live in a file of their own beside the database (`{database}-scores`,
-- attached to every connection as `scores`), so that a nightly run's million rows never
-- hold the main file's only writer. The store makes that file; the scores are derived data,
-- and the next nightly run writes them there.
DROP TABLE customer_scores;
