-- Membership perks (DESIGN §8, `[perks]`): the tiers each customer entered through a
-- verified purchase. A crossing stands until a refund of the purchase that made it takes it
-- back (reversed_at_us); at most one crossing per customer and tier stands, so an entry
-- award is paid once per standing crossing. The entry points are a 'bonus' entry of the
-- points ledger whose source is `tier:{id}`; the welcome is the outbox's `tier_welcome` row
-- (period = the tier).
CREATE TABLE tier_crossings (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    merchant_id     TEXT NOT NULL REFERENCES merchants (id),
    customer_id     BIGINT NOT NULL REFERENCES customers (id),
    tier            TEXT NOT NULL CHECK (tier = 'silver' OR tier = 'gold'),
    purchase_id     BIGINT NOT NULL REFERENCES purchases (id),
    reached_at_us   BIGINT NOT NULL, -- the purchase's time
    points          BIGINT NOT NULL, -- the entry award
    created_at_us   BIGINT NOT NULL,
    reversed_at_us  BIGINT
);
CREATE UNIQUE INDEX tier_crossings_standing ON tier_crossings (merchant_id, customer_id, tier)
    WHERE reversed_at_us IS NULL;
CREATE INDEX tier_crossings_by_purchase ON tier_crossings (merchant_id, purchase_id);
