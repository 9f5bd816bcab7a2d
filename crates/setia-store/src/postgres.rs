//! PostgreSQL, for several stateless nodes and workers sharing one database.

use std::time::Duration;

use sqlx::postgres::PgPoolOptions;

use crate::StoreResult;

type Db = sqlx::Postgres;
type ThisStore = PostgresStore;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../sql/postgres");

pub struct PostgresStore {
    pool: sqlx::PgPool,
    /// The same pool: PostgreSQL runs writers side by side.
    writer: sqlx::PgPool,
}

impl PostgresStore {
    pub async fn connect(url: &str) -> StoreResult<PostgresStore> {
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(10))
            .connect(url)
            .await?;
        Ok(PostgresStore {
            writer: pool.clone(),
            pool,
        })
    }
}

/// For the few queries whose text or tuning differs by backend.
const IS_SQLITE: bool = false;

const FOR_UPDATE: &str = " FOR UPDATE";

/// SKIP LOCKED: workers on several machines each take different rows without waiting.
const CLAIM_INBOX_SQL: &str = "UPDATE inbox SET claim_id = $1, lease_until_us = $2, attempts = attempts + 1 \
     WHERE id IN (SELECT id FROM inbox WHERE state = 'pending' AND next_attempt_at_us <= $3 \
     AND (lease_until_us IS NULL OR lease_until_us < $3) ORDER BY id LIMIT $4 FOR UPDATE SKIP LOCKED) \
     RETURNING id, merchant_id, body, attempts";

/// SKIP LOCKED: delivery workers on several machines each take different emails.
const CLAIM_OUTBOX_SQL: &str = "UPDATE outbox SET claim_id = $1, lease_until_us = $2, attempts = attempts + 1 \
     WHERE id IN (SELECT id FROM outbox WHERE status = 'pending' AND due_at_us <= $3 \
     AND next_attempt_at_us <= $3 AND (lease_until_us IS NULL OR lease_until_us < $3) \
     ORDER BY due_at_us, id LIMIT $4 FOR UPDATE SKIP LOCKED) \
     RETURNING id, merchant_id, kind, recipient, customer_id, period_key, due_at_us, attempts, payload";

impl PostgresStore {
    async fn begin_write(&self) -> StoreResult<sqlx::Transaction<'static, Db>> {
        Ok(self.writer.begin().await?)
    }
}

include!("shared.rs");
include!("ledger_sql.rs");
include!("mail_sql.rs");
include!("analytics_sql.rs");
include!("dashboard_sql.rs");
