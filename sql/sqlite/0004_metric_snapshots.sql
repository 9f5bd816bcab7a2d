-- What the analytics batch computes: one JSON report per run (schema 1 of DESIGN §4), and
-- the latest scores of every customer, for the customer API, the dashboard and the emails.

CREATE TABLE metric_snapshots (
    id              INTEGER PRIMARY KEY,
    merchant_id     TEXT NOT NULL REFERENCES merchants (id),
    as_of           TEXT NOT NULL,  -- YYYY-MM-DD, merchant time
    period          TEXT NOT NULL CHECK (period IN ('month', 'week')),
    computed_at_us  INTEGER NOT NULL,
    report          TEXT NOT NULL   -- the metrics JSON
);
CREATE INDEX metric_snapshots_latest ON metric_snapshots (merchant_id, id);

CREATE TABLE customer_scores (
    merchant_id             TEXT NOT NULL REFERENCES merchants (id),
    customer_id             INTEGER NOT NULL REFERENCES customers (id),
    as_of                   TEXT NOT NULL,
    recency_days            INTEGER NOT NULL,
    frequency_days          INTEGER NOT NULL,
    monetary_minor          INTEGER NOT NULL,
    rfm_r                   INTEGER NOT NULL,
    rfm_f                   INTEGER NOT NULL,
    rfm_m                   INTEGER NOT NULL,
    segment                 TEXT NOT NULL,
    p_alive                 REAL,      -- NULL when the churn model could not be fitted
    expected_purchases_90d  REAL,
    clv_12m_minor           INTEGER,
    computed_at_us          INTEGER NOT NULL,
    PRIMARY KEY (merchant_id, customer_id)
);
CREATE INDEX customer_scores_at_risk ON customer_scores (merchant_id, p_alive);
