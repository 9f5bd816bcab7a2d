-- Who computes a merchant's nightly metrics for a day: with several workers on one database,
-- each (merchant, day) is claimed by one of them under a lease, and taken over by another
-- when the lease runs out before the run is finished (the holder died).
CREATE TABLE nightly_runs (
    merchant_id     TEXT NOT NULL REFERENCES merchants (id),
    as_of           TEXT NOT NULL,   -- YYYY-MM-DD, the day the snapshot is as of
    claim_id        TEXT NOT NULL,
    lease_until_us  BIGINT NOT NULL,
    claimed_at_us   BIGINT NOT NULL,
    finished_at_us  BIGINT,
    PRIMARY KEY (merchant_id, as_of)
);
