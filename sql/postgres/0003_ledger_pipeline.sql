-- The inbox → ledger pipeline: claims on inbox rows, bank mutations, orders, the points
-- ledger and the outbox.

-- A worker claims a row by writing a fresh claim id and a lease expiry; a worker whose lease
-- ran out cannot finish the row, because finishing checks the claim id.
ALTER TABLE inbox ADD COLUMN claim_id TEXT;
ALTER TABLE inbox ADD COLUMN lease_until_us BIGINT;
ALTER TABLE inbox ADD COLUMN attempts BIGINT NOT NULL DEFAULT 0;
ALTER TABLE inbox ADD COLUMN next_attempt_at_us BIGINT NOT NULL DEFAULT 0;
ALTER TABLE inbox ADD COLUMN last_error TEXT;
ALTER TABLE inbox ADD COLUMN processed_at_us BIGINT;

ALTER TABLE merchants ADD COLUMN loyalty_program TEXT; -- TOML; NULL: the default program

-- Every bank mutation Moota reported, once per (merchant, mutation_id).
CREATE TABLE mutations (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    merchant_id     TEXT NOT NULL REFERENCES merchants (id),
    mutation_id     TEXT NOT NULL,
    inbox_id        BIGINT NOT NULL REFERENCES inbox (id),
    account_number  TEXT NOT NULL,
    occurred_at_us  BIGINT NOT NULL,
    description     TEXT NOT NULL,
    amount_minor    BIGINT NOT NULL,
    direction       TEXT NOT NULL CHECK (direction IN ('CR', 'DB')),
    note            TEXT,
    bank_type       TEXT,
    sandbox         BOOLEAN NOT NULL DEFAULT FALSE,
    deliveries      BIGINT NOT NULL DEFAULT 1, -- how often Moota sent it
    created_at_us   BIGINT NOT NULL,
    UNIQUE (merchant_id, mutation_id)
);

ALTER TABLE purchases ADD COLUMN mutation_id TEXT;   -- Moota's id, for purchases from a mutation
ALTER TABLE purchases ADD COLUMN payer_name TEXT;    -- parsed from the description
ALTER TABLE purchases ADD COLUMN refunded_at_us BIGINT;
CREATE INDEX purchases_unattributed ON purchases (merchant_id, id) WHERE customer_id IS NULL;

CREATE TABLE orders (
    id                    BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    merchant_id           TEXT NOT NULL REFERENCES merchants (id),
    external_id           TEXT NOT NULL,
    customer_id           BIGINT REFERENCES customers (id),
    amount_minor          BIGINT NOT NULL CHECK (amount_minor > 0),
    unique_code           BIGINT NOT NULL CHECK (unique_code BETWEEN 1 AND 999),
    transfer_amount_minor BIGINT NOT NULL,
    payment_code          TEXT NOT NULL,
    bank_account_number   TEXT,
    status                TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'paid', 'ambiguous')),
    expires_at_us         BIGINT NOT NULL,
    purchase_id           BIGINT REFERENCES purchases (id),
    created_at_us         BIGINT NOT NULL,
    UNIQUE (merchant_id, external_id),
    UNIQUE (merchant_id, payment_code)
);
CREATE INDEX orders_by_transfer_amount ON orders (merchant_id, transfer_amount_minor, status);

-- Append-only. Each entry says why (reason) and from what (source); (kind, source) is
-- unique, so an award cannot be paid twice.
CREATE TABLE points_ledger (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    merchant_id     TEXT NOT NULL REFERENCES merchants (id),
    customer_id     BIGINT NOT NULL REFERENCES customers (id),
    occurred_at_us  BIGINT NOT NULL,
    points          BIGINT NOT NULL,
    kind            TEXT NOT NULL CHECK (kind IN ('earn', 'bonus', 'birthday', 'redeem', 'expire', 'reverse')),
    reason          TEXT NOT NULL,
    source          TEXT NOT NULL,
    created_at_us   BIGINT NOT NULL,
    UNIQUE (merchant_id, kind, source)
);
CREATE INDEX points_ledger_by_customer ON points_ledger (merchant_id, customer_id, occurred_at_us);

-- Emails to send. (kind, recipient, period_key) is unique: an email is enqueued at most once.
CREATE TABLE outbox (
    id                 BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    merchant_id        TEXT NOT NULL REFERENCES merchants (id),
    kind               TEXT NOT NULL,
    recipient          TEXT NOT NULL, -- a customer id (cus_N) or a report address
    customer_id        BIGINT REFERENCES customers (id),
    period_key         TEXT NOT NULL, -- the local day, year or ISO week the email is for
    due_at_us          BIGINT NOT NULL,
    status             TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'failed', 'held')),
    attempts           BIGINT NOT NULL DEFAULT 0,
    next_attempt_at_us BIGINT NOT NULL DEFAULT 0,
    last_error         TEXT,
    claim_id           TEXT,
    lease_until_us     BIGINT,
    created_at_us      BIGINT NOT NULL,
    sent_at_us         BIGINT,
    UNIQUE (merchant_id, kind, recipient, period_key)
);
CREATE INDEX outbox_due ON outbox (status, due_at_us);
