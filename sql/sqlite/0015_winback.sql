-- Win-back (DESIGN §8): an episode per customer the churn model says is slipping away, its
-- holdout group drawn and recorded at entry (before any send), the BG/NBD expectation of
-- its purchases then (so the groups can be compared), and the personal vouchers of its
-- steps. The steps themselves are outbox rows of kind 'winback' (period: episode-step).

CREATE TABLE winback_episodes (
    id               INTEGER PRIMARY KEY,
    merchant_id      TEXT NOT NULL REFERENCES merchants (id),
    customer_id      INTEGER NOT NULL REFERENCES customers (id),
    number           INTEGER NOT NULL,     -- the customer's 1st, 2nd, … episode
    reason           TEXT NOT NULL CHECK (reason = 'p_alive' OR reason = 'overdue'),
    holdout          INTEGER NOT NULL CHECK (holdout = 0 OR holdout = 1),
    entered_at_us    INTEGER NOT NULL,
    counts_from_us   INTEGER NOT NULL,     -- midnight of the entry day, merchant time: purchases
                                           -- from then count (Moota often dates a payment 00:00)
    last_step_at_us  INTEGER NOT NULL,     -- when its last step is due: it ends then at the latest
    p_alive          REAL,
    expected_30d     REAL,                 -- BG/NBD expected purchases in 30 and 60 days at entry
    expected_60d     REAL,
    ended_at_us      INTEGER,              -- ended early: a purchase, or an unsubscribe
    end_reason       TEXT CHECK (end_reason = 'purchase' OR end_reason = 'unsubscribed'),
    end_purchase_id  INTEGER REFERENCES purchases (id),
    UNIQUE (merchant_id, customer_id, number)
);
CREATE INDEX winback_by_customer ON winback_episodes (merchant_id, customer_id, number);
CREATE INDEX winback_by_entry ON winback_episodes (merchant_id, entered_at_us);

CREATE TABLE vouchers (
    id              INTEGER PRIMARY KEY,
    merchant_id     TEXT NOT NULL REFERENCES merchants (id),
    code            TEXT NOT NULL,
    customer_id     INTEGER NOT NULL REFERENCES customers (id),
    episode_id      INTEGER NOT NULL REFERENCES winback_episodes (id),
    step            INTEGER NOT NULL,
    percent         INTEGER NOT NULL CHECK (percent BETWEEN 1 AND 100),
    valid_until     TEXT NOT NULL,          -- YYYY-MM-DD in the merchant's zone, included
    created_at_us   INTEGER NOT NULL,
    redeemed_at_us  INTEGER,
    redeemed_order  TEXT,                   -- the store's order it was used on, if it said
    UNIQUE (merchant_id, code)
);
CREATE INDEX vouchers_by_episode ON vouchers (merchant_id, episode_id);
