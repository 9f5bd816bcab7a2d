-- A customer erased at their request (Indonesia's UU PDP): the row stays, without a name,
-- email, birthday, virtual account or payer name, so the anonymous ledger and the metrics
-- keep their purchases; every lookup that serves a person (unsubscribe, member, feedback and
-- referral links) passes it by (ARCHITECTURE.md, "Erasure").
ALTER TABLE customers ADD COLUMN erased_at_us BIGINT;
