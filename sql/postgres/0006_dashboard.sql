-- The dashboard: login sessions, and indexes for what its pages filter and sort on.

-- A session is a random secret in an HttpOnly cookie; only its SHA-256 is stored, so a copy
-- of the database opens no session.
CREATE TABLE dashboard_sessions (
    token_hash      TEXT PRIMARY KEY,
    merchant_id     TEXT NOT NULL REFERENCES merchants (id),
    created_at_us   BIGINT NOT NULL,
    expires_at_us   BIGINT NOT NULL
);
CREATE INDEX dashboard_sessions_by_expiry ON dashboard_sessions (expires_at_us);

-- Customer list, newest first.
CREATE INDEX customers_by_merchant ON customers (merchant_id, id);
-- Customer search: any part of the external id, name or email (3 characters or more), by a
-- trigram index (pg_trgm ships with PostgreSQL and is a trusted extension).
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE INDEX customers_search ON customers
    USING gin ((lower(external_id || ' ' || coalesce(name, '') || ' ' || coalesce(email, ''))) gin_trgm_ops);
-- The at-risk list: repeat customers with P(alive) under 0.5, most valuable first.
CREATE INDEX customer_scores_at_risk_by_clv
    ON customer_scores (merchant_id, (COALESCE(clv_12m_minor, -1)) DESC, customer_id)
    WHERE p_alive < 0.5 AND frequency_days >= 2;
-- A segment's customers, most valuable first.
CREATE INDEX customer_scores_by_segment
    ON customer_scores (merchant_id, segment, (COALESCE(clv_12m_minor, -1)) DESC, customer_id);
-- Recent bank mutations, and the purchase each became.
CREATE INDEX mutations_by_merchant ON mutations (merchant_id, id);
CREATE INDEX purchases_by_mutation ON purchases (merchant_id, mutation_id) WHERE mutation_id IS NOT NULL;
-- A customer's emails; quarantined webhooks of one merchant.
CREATE INDEX outbox_by_customer ON outbox (merchant_id, customer_id, id) WHERE customer_id IS NOT NULL;
CREATE INDEX inbox_quarantined ON inbox (merchant_id, id) WHERE state = 'quarantined';
-- Snapshot history for trends: one period, newest first.
CREATE INDEX metric_snapshots_by_period ON metric_snapshots (merchant_id, period, id);
