//! PostgreSQL, for several stateless nodes and workers sharing one database.

use std::time::Duration;

use sqlx::postgres::PgPoolOptions;

use crate::StoreResult;

type Db = sqlx::Postgres;
type ThisStore = PostgresStore;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../sql/postgres");

pub struct PostgresStore {
    pool: sqlx::PgPool,
}

impl PostgresStore {
    pub async fn connect(url: &str) -> StoreResult<PostgresStore> {
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(10))
            .connect(url)
            .await?;
        Ok(PostgresStore { pool })
    }
}

include!("shared.rs");
