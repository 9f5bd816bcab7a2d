-- Reconciliation through Moota's API V2: a merchant's personal token and the banks to watch,
-- each sync run with its window and counts, every mutation a sync found that setia had not
-- seen (put into the inbox as a row of source 'api'), and who runs a merchant's scheduled
-- sync (claimed under a lease, like nightly runs).

ALTER TABLE inbox ADD COLUMN source TEXT NOT NULL DEFAULT 'webhook'
    CHECK (source = 'webhook' OR source = 'api');

ALTER TABLE merchants ADD COLUMN moota_token TEXT;      -- never shown, logged or returned
ALTER TABLE merchants ADD COLUMN moota_bank_ids TEXT;   -- a JSON array; NULL: every bank

CREATE TABLE moota_syncs (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    merchant_id     TEXT NOT NULL REFERENCES merchants (id),
    started_by      TEXT NOT NULL CHECK (started_by = 'command' OR started_by = 'schedule'),
    since_day       TEXT NOT NULL,   -- YYYY-MM-DD, Asia/Jakarta as Moota's dates
    until_day       TEXT NOT NULL,
    started_at_us   BIGINT NOT NULL,
    finished_at_us  BIGINT,
    pages           BIGINT NOT NULL DEFAULT 0,
    mutations       BIGINT NOT NULL DEFAULT 0,
    new_mutations   BIGINT NOT NULL DEFAULT 0,
    already_known   BIGINT NOT NULL DEFAULT 0,
    error           TEXT             -- why the sync failed; NULL when it succeeded
);
CREATE INDEX moota_syncs_by_merchant ON moota_syncs (merchant_id, id);

CREATE TABLE moota_found (
    merchant_id     TEXT NOT NULL REFERENCES merchants (id),
    mutation_id     TEXT NOT NULL,
    inbox_id        BIGINT REFERENCES inbox (id),
    sync_id         BIGINT NOT NULL REFERENCES moota_syncs (id),
    found_at_us     BIGINT NOT NULL,
    PRIMARY KEY (merchant_id, mutation_id)
);

CREATE TABLE moota_sync_schedule (
    merchant_id     TEXT PRIMARY KEY REFERENCES merchants (id),
    claim_id        TEXT,
    lease_until_us  BIGINT NOT NULL DEFAULT 0,
    next_due_us     BIGINT NOT NULL DEFAULT 0
);
