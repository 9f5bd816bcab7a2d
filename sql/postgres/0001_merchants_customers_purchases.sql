-- Times are unix microseconds (UTC) in BIGINT columns named *_us, the same on both
-- databases, so one query text serves both and the analytics read is a plain integer scan.
-- Every table leads with merchant_id so a Citus-style deployment can shard on it.

CREATE TABLE merchants (
    id              TEXT PRIMARY KEY,
    name            TEXT NOT NULL,
    timezone        TEXT NOT NULL,
    webhook_secret  TEXT NOT NULL,
    api_token_hash  TEXT NOT NULL UNIQUE,
    report_emails   TEXT NOT NULL DEFAULT '[]', -- JSON array of addresses
    sandbox         BOOLEAN NOT NULL DEFAULT FALSE,
    created_at_us   BIGINT NOT NULL
);

CREATE TABLE customers (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    merchant_id     TEXT NOT NULL REFERENCES merchants (id),
    external_id     TEXT NOT NULL,
    name            TEXT,
    email           TEXT,
    birthday        TEXT,    -- YYYY-MM-DD or MM-DD
    virtual_account TEXT,
    consent         BOOLEAN NOT NULL DEFAULT TRUE,
    created_at_us   BIGINT NOT NULL,
    updated_at_us   BIGINT NOT NULL,
    UNIQUE (merchant_id, external_id)
);
CREATE UNIQUE INDEX customers_by_virtual_account
    ON customers (merchant_id, virtual_account) WHERE virtual_account IS NOT NULL;

CREATE TABLE customer_payer_names (
    merchant_id     TEXT NOT NULL REFERENCES merchants (id),
    customer_id     BIGINT NOT NULL REFERENCES customers (id),
    payer_name      TEXT NOT NULL, -- normalised: upper case, single spaces
    PRIMARY KEY (merchant_id, customer_id, payer_name)
);
CREATE INDEX customer_payer_names_by_name ON customer_payer_names (merchant_id, payer_name);

CREATE TABLE purchases (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    merchant_id     TEXT NOT NULL REFERENCES merchants (id),
    customer_id     BIGINT REFERENCES customers (id), -- NULL: not attributed yet
    occurred_at_us  BIGINT NOT NULL,
    amount_minor    BIGINT NOT NULL CHECK (amount_minor >= 0),
    source          TEXT NOT NULL CHECK (source IN ('import', 'moota')),
    source_key      TEXT NOT NULL, -- what makes a second delivery or import the same purchase
    attribution     TEXT,          -- how the customer was found; NULL while unattributed
    sandbox         BOOLEAN NOT NULL DEFAULT FALSE,
    created_at_us   BIGINT NOT NULL,
    UNIQUE (merchant_id, source_key)
);
CREATE INDEX purchases_by_customer ON purchases (merchant_id, customer_id, occurred_at_us);
