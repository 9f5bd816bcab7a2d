-- What the analytics batch computes: one JSON report per run (schema 1 of DESIGN §4), and
-- the latest scores of every customer, for the customer API, the dashboard and the emails.

CREATE TABLE metric_snapshots (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    merchant_id     TEXT NOT NULL REFERENCES merchants (id),
    as_of           TEXT NOT NULL,  -- YYYY-MM-DD, merchant time
    period          TEXT NOT NULL CHECK (period IN ('month', 'week')),
    computed_at_us  BIGINT NOT NULL,
    report          TEXT NOT NULL   -- the metrics JSON
);
CREATE INDEX metric_snapshots_latest ON metric_snapshots (merchant_id, id);

CREATE TABLE customer_scores (
    merchant_id             TEXT NOT NULL REFERENCES merchants (id),
    customer_id             BIGINT NOT NULL REFERENCES customers (id),
    as_of                   TEXT NOT NULL,
    recency_days            BIGINT NOT NULL,
    frequency_days          BIGINT NOT NULL,
    monetary_minor          BIGINT NOT NULL,
    rfm_r                   BIGINT NOT NULL,
    rfm_f                   BIGINT NOT NULL,
    rfm_m                   BIGINT NOT NULL,
    segment                 TEXT NOT NULL,
    p_alive                 DOUBLE PRECISION,      -- NULL when the churn model could not be fitted
    expected_purchases_90d  DOUBLE PRECISION,
    clv_12m_minor           BIGINT,
    computed_at_us          BIGINT NOT NULL,
    PRIMARY KEY (merchant_id, customer_id)
);
CREATE INDEX customer_scores_at_risk ON customer_scores (merchant_id, p_alive);
