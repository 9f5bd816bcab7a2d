-- Referrals (DESIGN §8, `[referral]`): each customer's personal code, made on first use and
-- unique across the store (so `/r/{code}` names the merchant), and the referrals the stores
-- report, with what became of them. A referral is pending until the friend's first verified
-- payment, qualified when that payment passed the rules, rewarded after the hold (the
-- advocate's points are a 'bonus' entry whose source is `referral:{id}`), refused by a rule
-- or cancelled by a refund in the hold; the reason names the rule.

CREATE TABLE referral_codes (
    merchant_id     TEXT NOT NULL REFERENCES merchants (id),
    customer_id     BIGINT NOT NULL REFERENCES customers (id),
    code            TEXT NOT NULL UNIQUE,
    created_at_us   BIGINT NOT NULL,
    PRIMARY KEY (merchant_id, customer_id)
);

CREATE TABLE referrals (
    id               BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    merchant_id      TEXT NOT NULL REFERENCES merchants (id),
    advocate_id      BIGINT NOT NULL REFERENCES customers (id),
    friend_id        BIGINT NOT NULL REFERENCES customers (id),
    via              TEXT NOT NULL CHECK (via IN ('order', 'customer', 'import')),
    referred_at_us   BIGINT NOT NULL,
    status           TEXT NOT NULL CHECK (status IN ('pending', 'qualified', 'rewarded', 'refused', 'cancelled')),
    reason           TEXT,                 -- the rule that refused or cancelled it
    purchase_id      BIGINT REFERENCES purchases (id), -- the friend's first verified payment
    qualified_at_us  BIGINT,
    reward_due_at_us BIGINT,
    rewarded_at_us   BIGINT,
    points           BIGINT,              -- awarded to the advocate
    updated_at_us    BIGINT NOT NULL,
    UNIQUE (merchant_id, friend_id, advocate_id)
);
-- At most one referral per friend stands; later ones are recorded refused.
CREATE UNIQUE INDEX referrals_standing_by_friend ON referrals (merchant_id, friend_id)
    WHERE status <> 'refused';
CREATE INDEX referrals_by_advocate ON referrals (merchant_id, advocate_id, qualified_at_us);
CREATE INDEX referrals_by_status ON referrals (merchant_id, status, reward_due_at_us);
CREATE INDEX referrals_by_purchase ON referrals (merchant_id, purchase_id);
