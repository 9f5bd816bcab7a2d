-- Moota webhooks: the raw bodies that were verified (the inbox) and every call, accepted or
-- not (the audit log).

CREATE TABLE inbox (
    id              INTEGER PRIMARY KEY,
    merchant_id     TEXT NOT NULL REFERENCES merchants (id),
    body            BLOB NOT NULL, -- the bytes exactly as signed
    body_sha256     TEXT NOT NULL,
    body_size       INTEGER NOT NULL,
    user_agent      TEXT,
    moota_user      TEXT,           -- X-MOOTA-USER
    moota_webhook   TEXT,           -- X-MOOTA-WEBHOOK
    remote_addr     TEXT NOT NULL,
    received_at_us  INTEGER NOT NULL,
    state           TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'done', 'quarantined')),
    UNIQUE (merchant_id, body_sha256)
);
CREATE INDEX inbox_by_state ON inbox (state, id);

CREATE TABLE webhook_audit (
    id              INTEGER PRIMARY KEY,
    merchant_id     TEXT NOT NULL,  -- as the URL gave it: it may name no merchant
    received_at_us  INTEGER NOT NULL,
    remote_addr     TEXT NOT NULL,
    status          INTEGER NOT NULL,  -- the HTTP status answered
    reason          TEXT NOT NULL,
    body_sha256     TEXT,           -- NULL when the body was not read (too large)
    body_size       INTEGER NOT NULL,
    inbox_id        INTEGER            -- the inbox row an accepted or duplicate call refers to
);
CREATE INDEX webhook_audit_by_merchant ON webhook_audit (merchant_id, id);

-- Rejected calls beyond the per-minute row budget are only counted, so a flood of bad
-- calls cannot fill the disk.
CREATE TABLE webhook_audit_suppressed (
    merchant_id     TEXT NOT NULL,
    minute_us       INTEGER NOT NULL,
    reason          TEXT NOT NULL,
    count           INTEGER NOT NULL,
    PRIMARY KEY (merchant_id, minute_us, reason)
);
