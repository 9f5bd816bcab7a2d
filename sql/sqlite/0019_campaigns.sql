-- Campaigns (issue 25): a one-off email a merchant writes to an audience. The campaign keeps
-- its parsed input and the holdout share and result window in force when it was written;
-- its recipients are written when its first wave is due (the audience evaluated then), each
-- with its holdout flag and its wave's due time before anything is sent. The emails are
-- outbox rows of kind 'campaign' (period: the campaign id, cmp_N).

CREATE TABLE campaigns (
    id                 INTEGER PRIMARY KEY,
    merchant_id        TEXT NOT NULL REFERENCES merchants (id),
    name               TEXT NOT NULL,
    audience           TEXT NOT NULL,        -- canonical audience text: tier:gold+segment:loyal
    subject            TEXT NOT NULL,
    body               TEXT NOT NULL,        -- Markdown
    send_at_us         INTEGER NOT NULL,     -- the first (gold) wave
    early_access_days  INTEGER,              -- NULL: every wave at send_at
    holdout_percent    INTEGER NOT NULL CHECK (holdout_percent BETWEEN 0 AND 100),
    result_days        INTEGER NOT NULL CHECK (result_days BETWEEN 1 AND 365),
    status             TEXT NOT NULL DEFAULT 'scheduled'
        CHECK (status = 'scheduled' OR status = 'sending' OR status = 'sent'),
    audience_cursor    INTEGER NOT NULL DEFAULT 0, -- customers up to this key are written
    created_at_us      INTEGER NOT NULL
);
CREATE INDEX campaigns_by_merchant ON campaigns (merchant_id, id);
CREATE INDEX campaigns_due ON campaigns (merchant_id, status, send_at_us);

CREATE TABLE campaign_recipients (
    merchant_id     TEXT NOT NULL REFERENCES merchants (id),
    campaign_id     INTEGER NOT NULL REFERENCES campaigns (id),
    customer_id     INTEGER NOT NULL REFERENCES customers (id),
    wave            INTEGER NOT NULL CHECK (wave BETWEEN 0 AND 2), -- 0 gold, 1 silver, 2 the rest
    holdout         INTEGER NOT NULL CHECK (holdout = 0 OR holdout = 1),
    due_at_us       INTEGER NOT NULL,
    enqueued_at_us  INTEGER,             -- its wave was passed: the outbox row written (treated)
    PRIMARY KEY (campaign_id, customer_id)
);
CREATE INDEX campaign_recipients_waiting ON campaign_recipients (campaign_id, customer_id)
    WHERE enqueued_at_us IS NULL;
