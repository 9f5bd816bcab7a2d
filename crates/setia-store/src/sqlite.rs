//! The embedded default: one SQLite file in WAL mode.

use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};
use sqlx::ConnectOptions;

use crate::{CallOutcome, StoreError, StoreResult, WebhookCall};

mod scores;
mod webhooks;

pub use webhooks::WebhookQueue;

type Db = sqlx::Sqlite;
type ThisStore = SqliteStore;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../sql/sqlite");

pub struct SqliteStore {
    /// Readers: WAL lets them run beside the writer.
    pool: sqlx::SqlitePool,
    /// sqlx's one write connection. SQLite takes one writer at a time anyway; the worker,
    /// mail, imports and the API queue here, first come first served, instead of in SQLite's
    /// busy handler. Webhook groups have a connection of their own and go first
    /// (`webhooks`).
    writer: sqlx::SqlitePool,
    /// Writes webhook groups on a connection of its own, ahead of `writer`.
    webhooks: webhooks::WebhookWriter,
    /// The database file, for the bulk reads that bypass sqlx (`PurchaseReader`).
    path: Arc<PathBuf>,
    /// How every connection is opened, for the migrations' own.
    options: SqliteConnectOptions,
    checkpointer: Checkpointer,
    /// The customer scores' file, attached to every sqlx connection as `scores`.
    scores: scores::ScoresFile,
}

/// What every connection runs with, sqlx's and the webhook writer's alike.
const CONNECTION_PRAGMAS: [(&str, &str); 6] = [
    ("journal_mode", "WAL"),
    // FULL: a commit is on disk before it returns, so "committed" survives a power cut, not
    // only a crash of the process.
    ("synchronous", "FULL"),
    ("foreign_keys", "ON"),
    // A multi-row insert keeps a statement journal; in memory it costs no file I/O.
    ("temp_store", "MEMORY"),
    // The background checkpointer keeps the WAL short; a commit checkpoints itself only if
    // that falls 64 MiB behind.
    ("wal_autocheckpoint", "16000"),
    // What a write frees inside a page is zeroed, so an erased customer's old values do not
    // stay in the file's free space. FAST: only in pages the write changes anyway, no I/O.
    ("secure_delete", "FAST"),
];

/// sqlx's writer's page cache in KiB: the worker's reads and inserts land all over the
/// ledger's indexes.
const WRITER_CACHE_KIB: i64 = 65536;
/// The webhook writer's: it needs the indexes' upper levels, and SQLite walks its whole cache
/// at every commit (`pcache1TruncateUnsafe`), so 8 MiB wrote 5% more webhooks a second than
/// 64 MiB (bench/ingest/README.md).
const WEBHOOK_CACHE_KIB: i64 = 8192;

impl SqliteStore {
    /// Opens (and creates, with its folder) the file a `sqlite://PATH` URL names.
    pub async fn connect(url: &str) -> StoreResult<SqliteStore> {
        let options = CONNECTION_PRAGMAS.iter().fold(
            SqliteConnectOptions::from_str(url)?
                .create_if_missing(true)
                .busy_timeout(Duration::from_secs(10)),
            |options, (name, value)| options.pragma(*name, *value),
        );
        if let Some(folder) = options.get_filename().parent() {
            if !folder.as_os_str().is_empty() {
                std::fs::create_dir_all(folder).map_err(|source| StoreError::CreateFolder {
                    path: folder.display().to_string(),
                    source,
                })?;
            }
        }
        let scores = scores::ScoresFile::beside(options.get_filename());
        {
            let scores = scores.clone();
            tokio::task::spawn_blocking(move || scores.prepare())
                .await
                .map_err(|error| {
                    sqlx::Error::Protocol(format!("preparing the scores file: {error}"))
                })?
                .map_err(StoreError::from)?;
        }
        // Page caches: see the constants; 16 MiB for each reader (SQLite's default is 2 MiB).
        let writer = attaching_scores(SqlitePoolOptions::new(), &scores)
            .max_connections(1)
            // A local file does not go stale; a ping would cost a hop to its thread.
            .test_before_acquire(false)
            .connect_with(
                options
                    .clone()
                    .pragma("cache_size", format!("-{WRITER_CACHE_KIB}"))
                    // Batch writes (an import's index build, a run's snapshot) take seconds by
                    // design; sqlx's warning stays for the readers, whose slowness users see.
                    .log_slow_statements(log::LevelFilter::Info, Duration::from_secs(1)),
            )
            .await?;
        let path = Arc::new(options.get_filename().to_path_buf());
        let webhooks = webhooks::WebhookWriter::start(&path, WEBHOOK_CACHE_KIB)?;
        let checkpoints = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options.clone())
            .await?;
        let pool = attaching_scores(SqlitePoolOptions::new(), &scores)
            .max_connections(8)
            .connect_with(options.clone().pragma("cache_size", "-16384"))
            .await?;
        Ok(SqliteStore {
            pool,
            writer,
            webhooks,
            path,
            options,
            checkpointer: Checkpointer::start(checkpoints),
            scores,
        })
    }

    /// The scores first, in their own file and one transaction of its own writer, so that
    /// neither webhooks nor readers wait for them; then the snapshot, which the dashboard
    /// reads as "the latest run", once every score is in.
    async fn save_run(
        &self,
        merchant: &MerchantId,
        as_of: &str,
        period: &str,
        report: &str,
        mut scores: Vec<ScoreRow>,
        computed_at: DateTime<Utc>,
    ) -> StoreResult<i64> {
        let file = self.scores.clone();
        let (merchant_text, as_of_text) = (merchant.as_str().to_owned(), as_of.to_owned());
        tokio::task::spawn_blocking(move || {
            file.replace(
                &merchant_text,
                &as_of_text,
                &mut scores,
                micros(computed_at),
            )
        })
        .await
        .map_err(|error| sqlx::Error::Protocol(format!("the scores writer stopped: {error}")))?
        .map_err(StoreError::from)?;
        let mut tx = self.begin_write().await?;
        let id = insert_snapshot(&mut tx, merchant, as_of, period, report, computed_at).await?;
        tx.commit().await?;
        Ok(id)
    }
}

/// A page of a value list: a range scan of the list's rows in `customer_value_lists` (the
/// scores file's; `value_key` is minus the CLV, so the most valuable come first), joined to
/// the scores and the customer by key. CROSS JOIN keeps that order of the loops.
fn value_list_page_sql(list: ValueList<'_>) -> (String, Option<String>) {
    let sql = format!(
        "SELECT {DASH_CUSTOMER_COLUMNS} \
         FROM customer_value_lists v CROSS JOIN customer_scores s CROSS JOIN customers c \
         WHERE v.merchant_id = $1 AND v.list = $4 \
         AND (v.value_key > -$2 OR (v.value_key = -$2 AND v.customer_id > $3)) \
         AND s.merchant_id = v.merchant_id AND s.customer_id = v.customer_id \
         AND c.merchant_id = v.merchant_id AND c.id = v.customer_id \
         ORDER BY v.value_key, v.customer_id LIMIT $5"
    );
    (sql, Some(list.key()))
}

/// Every sqlx connection but the checkpointer's sees the scores (`customer_scores` resolves
/// to the attached file's table, the main file having none).
fn attaching_scores(options: SqlitePoolOptions, scores: &scores::ScoresFile) -> SqlitePoolOptions {
    let path = scores.path().to_string_lossy().into_owned();
    options.after_connect(move |connection, _| {
        let path = path.clone();
        Box::pin(async move {
            sqlx::query("ATTACH DATABASE $1 AS scores")
                .bind(path)
                .execute(connection)
                .await?;
            Ok(())
        })
    })
}

/// Copies the WAL back into the database file in the background, on a connection of its
/// own, so that the writer's commits never stop to do it: a checkpoint inside a commit held
/// every webhook behind it for tens of milliseconds.
struct Checkpointer {
    task: tokio::task::JoinHandle<()>,
    connection: sqlx::SqlitePool,
}

const CHECKPOINT_EVERY: Duration = Duration::from_millis(200);

impl Checkpointer {
    fn start(connection: sqlx::SqlitePool) -> Checkpointer {
        let task = tokio::spawn({
            let connection = connection.clone();
            async move {
                let mut tick = tokio::time::interval(CHECKPOINT_EVERY);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    tick.tick().await;
                    // PASSIVE: copies what it can without waiting for the writer or blocking it.
                    if let Err(error) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
                        .execute(&connection)
                        .await
                    {
                        tracing::warn!(%error, "WAL checkpoint failed");
                    }
                }
            }
        });
        Checkpointer { task, connection }
    }

    async fn stop(&self) {
        self.task.abort();
        close_every_connection(&self.connection).await;
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Closes the pool and waits until none of its connections is open. sqlx's `close` can
/// return while a connection is still on its way back to the pool (a spawned task pings it
/// first), and that connection then stays open in the closed pool. An open connection keeps
/// the writer from being the last one, which is what checkpoints and removes the log.
async fn close_every_connection(pool: &sqlx::SqlitePool) {
    for _ in 0..500 {
        pool.close().await;
        if pool.size() == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tracing::warn!(
        open = pool.size(),
        "SQLite connections still open after 5 s of closing"
    );
}

/// For the few queries whose text or tuning differs by backend.
const IS_SQLITE: bool = true;

/// SQLite has one writer: a write transaction takes the lock when it begins, so two writers
/// queue on the busy timeout instead of failing when a reader upgrades.
const FOR_UPDATE: &str = "";

/// Drops the ordinary indexes of `purchases` (not unique, not partial: the unique key stays
/// for the import's ON CONFLICT) inside an import's transaction, and returns the statements
/// that build them again, read from the schema so that they are the migrated ones. An import
/// adds its rows to each index in the file's order; for `purchases_by_time` that order is
/// random when the file is sorted by customer, and at a few million rows every insert missed
/// the page cache (3 M purchases: 115 s with the index kept, 46 s without it). Building the
/// index once, sorted, before the commit costs a few seconds. Readers keep their snapshot,
/// index included, until the import commits.
async fn set_purchase_indexes_aside(tx: &mut DbTx<'_>) -> StoreResult<Vec<String>> {
    let indexes: Vec<(String, String)> = sqlx::query_as(
        "SELECT i.name, m.sql FROM pragma_index_list('purchases') AS i \
         JOIN sqlite_master AS m ON m.type = 'index' AND m.name = i.name \
         WHERE i.origin = 'c' AND i.\"unique\" = 0 AND i.partial = 0 ORDER BY i.name",
    )
    .fetch_all(&mut **tx)
    .await?;
    for (name, _) in &indexes {
        sqlx::query(&format!("DROP INDEX \"{}\"", name.replace('"', "\"\"")))
            .execute(&mut **tx)
            .await?;
    }
    Ok(indexes.into_iter().map(|(_, create)| create).collect())
}

const CLAIM_INBOX_SQL: &str =
    "UPDATE inbox SET claim_id = $1, lease_until_us = $2, attempts = attempts + 1 \
     WHERE id IN (SELECT id FROM inbox WHERE state = 'pending' AND next_attempt_at_us <= $3 \
     AND (lease_until_us IS NULL OR lease_until_us < $3) ORDER BY id LIMIT $4) \
     RETURNING id, merchant_id, body, attempts";

/// `INDEXED BY`: left to itself SQLite filters on `outbox_due` and sorts every waiting row
/// for each claim; in due order a claim reads little more than its batch.
const CLAIM_OUTBOX_SQL: &str =
    "UPDATE outbox SET claim_id = $1, lease_until_us = $2, attempts = attempts + 1, status = 'pending' \
     WHERE id IN (SELECT id FROM outbox INDEXED BY outbox_claim_order \
     WHERE status IN ('pending', 'deferred') AND due_at_us <= $3 \
     AND next_attempt_at_us <= $3 AND (lease_until_us IS NULL OR lease_until_us < $3) \
     ORDER BY due_at_us, id LIMIT $4) \
     RETURNING id, merchant_id, kind, recipient, customer_id, period_key, due_at_us, attempts, payload";

impl SqliteStore {
    /// Migrations run on a connection of their own with foreign keys off, which SQLite asks
    /// for when a table that others reference is rebuilt (0007), and which cannot be switched
    /// inside the transaction sqlx wraps each migration in. The check afterwards makes sure
    /// no rebuild left a reference dangling.
    async fn run_migrations(&self) -> StoreResult<()> {
        // A pool of one: `Migrator::run` on a bare connection is not `Send` enough for the
        // trait's futures.
        let connection = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(self.options.clone().pragma("foreign_keys", "OFF"))
            .await?;
        let checked = async {
            let before = applied_migrations(&connection).await;
            MIGRATOR.run(&connection).await?;
            // The check reads every reference in the file (2.7 s with a million inbox rows),
            // so only after a migration ran.
            if applied_migrations(&connection).await == before {
                return Ok(Vec::new());
            }
            Ok::<_, StoreError>(
                sqlx::query("PRAGMA foreign_key_check")
                    .fetch_all(&connection)
                    .await?,
            )
        }
        .await;
        close_every_connection(&connection).await;
        let dangling = checked?;
        if !dangling.is_empty() {
            return Err(StoreError::Corrupt(format!(
                "after the migrations, {} rows refer to rows that do not exist \
                 (PRAGMA foreign_key_check)",
                dangling.len()
            )));
        }
        Ok(())
    }

    async fn prepare_webhook_writer(&self) -> StoreResult<()> {
        self.webhooks.read_known_bodies().await
    }

    /// The writer closes last, so that it is the last connection and checkpoints on close.
    async fn close_connections(&self) {
        self.checkpointer.stop().await;
        close_every_connection(&self.pool).await;
        self.webhooks.stop().await;
        close_every_connection(&self.writer).await;
    }

    async fn write_webhook_group(
        &self,
        calls: Arc<[WebhookCall]>,
    ) -> StoreResult<Vec<CallOutcome>> {
        self.webhooks.write(calls).await
    }

    fn queue_for_webhooks(&self) -> Option<WebhookQueue> {
        self.webhooks.queue()
    }

    fn purchase_reader(&self) -> PurchaseReader {
        PurchaseReader {
            path: Arc::clone(&self.path),
        }
    }

    async fn begin_write(&self) -> StoreResult<sqlx::Transaction<'static, Db>> {
        Ok(self.writer.begin_with("BEGIN IMMEDIATE").await?)
    }
}

/// How many migrations the file has had applied; none before the first.
async fn applied_migrations(connection: &sqlx::SqlitePool) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations")
        .fetch_one(connection)
        .await
        .unwrap_or(0)
}

/// Reads a range of customers for `purchase_columns` with rusqlite, on a blocking thread and
/// a read-only connection of its own. A million-row read is all per-row cost: here SQLite
/// steps the rows and three integers are copied out of each, with neither sqlx's hop between
/// threads per row nor decimal text to build and parse (which made chunked `string_agg`
/// reads cost about 0.5 µs a purchase). SQLite reads it all in one statement, so the chunk
/// size, which pages PostgreSQL's reads, does not apply.
struct PurchaseReader {
    path: Arc<PathBuf>,
}

impl PurchaseReader {
    async fn read(
        self,
        merchant: String,
        until_us: i64,
        after_customer: i64,
        upto_customer: i64,
        _chunk: i64,
    ) -> StoreResult<crate::analytics::PurchaseColumns> {
        tokio::task::spawn_blocking(move || {
            self.read_blocking(&merchant, until_us, after_customer, upto_customer)
        })
        .await
        .map_err(|error| sqlx::Error::Protocol(format!("a purchase reader stopped: {error}")))?
        .map_err(StoreError::from)
    }

    fn read_blocking(
        &self,
        merchant: &str,
        until_us: i64,
        after_customer: i64,
        upto_customer: i64,
    ) -> rusqlite::Result<crate::analytics::PurchaseColumns> {
        let connection = read_only(self.path.as_path())?;
        let mut statement = connection.prepare(
            "SELECT id, customer_id, occurred_at_us, amount_minor FROM purchases \
             WHERE merchant_id = ?1 AND customer_id > ?3 AND customer_id <= ?4 \
             AND sandbox = (SELECT m.sandbox FROM merchants m WHERE m.id = ?1) \
             AND refunded_at_us IS NULL AND occurred_at_us <= ?2 \
             ORDER BY customer_id, occurred_at_us, id",
        )?;
        let mut rows = statement.query(rusqlite::params![
            merchant,
            until_us,
            after_customer,
            upto_customer
        ])?;
        let mut columns = crate::analytics::PurchaseColumns::default();
        while let Some(row) = rows.next()? {
            columns.purchase.push(row.get(0)?);
            columns.customer.push(row.get(1)?);
            columns.occurred_at_us.push(row.get(2)?);
            columns.amount_minor.push(row.get(3)?);
        }
        Ok(columns)
    }
}

/// A read-only rusqlite connection of its own, for the bulk reads that bypass sqlx.
fn read_only(path: &std::path::Path) -> rusqlite::Result<rusqlite::Connection> {
    use rusqlite::OpenFlags;
    let connection = rusqlite::Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    connection.busy_timeout(Duration::from_secs(10))?;
    Ok(connection)
}

/// Every line of the merchant's purchases as (purchase, product), in purchase-key order, for
/// the recommender: read with rusqlite for the reason `PurchaseReader` is (ten million lines
/// are all per-row cost), from the lines' purchase index alone. Which purchases count is
/// known from `purchase_columns`; joining the purchases here looked each line's purchase up
/// by key, one B-tree descent per line, and took twice as long as this read at 10 M lines.
fn read_basket_blocking(
    path: &std::path::Path,
    merchant: &str,
) -> rusqlite::Result<(Vec<i64>, Vec<i64>)> {
    let connection = read_only(path)?;
    let mut statement = connection.prepare(
        "SELECT purchase_id, product_id FROM order_lines \
         WHERE merchant_id = ?1 AND purchase_id IS NOT NULL ORDER BY purchase_id",
    )?;
    let mut rows = statement.query([merchant])?;
    let (mut purchases, mut products) = (Vec::new(), Vec::new());
    while let Some(row) = rows.next()? {
        purchases.push(row.get(0)?);
        products.push(row.get(1)?);
    }
    Ok((purchases, products))
}

impl SqliteStore {
    async fn read_basket_lines(&self, merchant: &MerchantId) -> StoreResult<(Vec<i64>, Vec<i64>)> {
        let path = Arc::clone(&self.path);
        let merchant = merchant.as_str().to_owned();
        tokio::task::spawn_blocking(move || read_basket_blocking(&path, &merchant))
            .await
            .map_err(|error| sqlx::Error::Protocol(format!("the basket reader stopped: {error}")))?
            .map_err(StoreError::from)
    }
}

include!("shared.rs");
include!("ledger_sql.rs");
include!("mail_sql.rs");
include!("analytics_sql.rs");
include!("dashboard_sql.rs");
include!("catalog_sql.rs");
include!("engagement_sql.rs");
include!("reconcile_sql.rs");
include!("winback_sql.rs");
include!("referral_sql.rs");
include!("perks_sql.rs");
include!("campaign_sql.rs");
include!("privacy_sql.rs");

#[cfg(test)]
mod tests {
    use super::*;

    /// A migrated store in a folder of its own, which lives as long as the returned guard.
    async fn migrated_store() -> (tempfile::TempDir, SqliteStore) {
        let folder = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", folder.path().join("setia.db").display());
        let store = SqliteStore::connect(&url).await.unwrap();
        store.migrate().await.unwrap();
        (folder, store)
    }

    async fn purchase_indexes(store: &SqliteStore) -> Vec<(String, String)> {
        sqlx::query_as(
            "SELECT name, COALESCE(sql, '') FROM sqlite_master \
             WHERE type = 'index' AND tbl_name = 'purchases' ORDER BY name",
        )
        .fetch_all(&store.pool)
        .await
        .unwrap()
    }

    /// A large import sets the ordinary indexes of `purchases` aside and builds them again
    /// from the statements it read: afterwards the schema is the migrated one, and an import
    /// that fails leaves it untouched too.
    #[tokio::test]
    async fn indexes_set_aside_come_back_as_they_were() {
        let (_folder, store) = migrated_store().await;
        let migrated = purchase_indexes(&store).await;
        let names: Vec<&str> = migrated.iter().map(|(name, _)| name.as_str()).collect();
        assert!(names.contains(&"purchases_by_time"), "{names:?}");

        let mut tx = store.begin_write().await.unwrap();
        let statements = set_purchase_indexes_aside(&mut tx).await.unwrap();
        assert_eq!(
            statements,
            [
                "CREATE INDEX purchases_by_customer ON purchases (merchant_id, customer_id, occurred_at_us)",
                "CREATE INDEX purchases_by_time ON purchases (merchant_id, occurred_at_us)",
            ]
        );
        // Readers still see every index until the import commits.
        assert_eq!(purchase_indexes(&store).await, migrated);
        tx.rollback().await.unwrap();
        assert_eq!(purchase_indexes(&store).await, migrated);

        let mut tx = store.begin_write().await.unwrap();
        let statements = set_purchase_indexes_aside(&mut tx).await.unwrap();
        for create in &statements {
            sqlx::query(create).execute(&mut *tx).await.unwrap();
        }
        tx.commit().await.unwrap();
        assert_eq!(purchase_indexes(&store).await, migrated);
        store.close().await;
    }

    /// An import past `BULK_IMPORT_ROWS` into an empty table takes the bulk path: its counts,
    /// the duplicate check of a second run and the ledger are those of any import, and the
    /// indexes it set aside are back when it has committed.
    #[tokio::test]
    async fn a_bulk_import_builds_its_indexes_again() {
        use crate::{NewMerchant, TransactionImportCounts};
        use chrono::TimeZone;
        use setia_core::import::TransactionsCsv;

        let (_folder, store) = migrated_store().await;
        let migrated = purchase_indexes(&store).await;
        let merchant = store
            .create_merchant(NewMerchant {
                id: MerchantId::from_random_bytes([3; 20]),
                name: setia_core::MerchantName::parse("Toko Besar").unwrap(),
                timezone: MerchantTimezone::default(),
                webhook_secret: setia_core::WebhookSecret::parse("AElSnSQj").unwrap(),
                api_token_hash: setia_core::ApiToken::from_random_bytes([3; 32]).hash(),
                report_emails: Vec::new(),
                sandbox: false,
            })
            .await
            .unwrap()
            .id;

        let rows_total = crate::BULK_IMPORT_ROWS as i64 + 1_000;
        let start = chrono::Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap();
        let mut csv = String::from("customer_external_id,occurred_at,amount,reference\n");
        for i in 0..rows_total {
            // Customer by customer, their times spread over the year: the time index's
            // order is not the file's.
            let at = start + chrono::Duration::minutes((i * 7_919) % 500_000);
            csv.push_str(&format!(
                "C{},{},{},R{i}\n",
                i / 10,
                at.to_rfc3339(),
                1 + i % 50
            ));
        }
        let rows: Vec<_> = TransactionsCsv::new(csv.as_bytes(), MerchantTimezone::default())
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let import = |rows: Vec<_>| {
            let (sender, batches) = tokio::sync::mpsc::channel(4);
            tokio::spawn(async move {
                for chunk in rows.chunks(5_000) {
                    let _ = sender.send(ImportMessage::Rows(chunk.to_vec())).await;
                }
                let _ = sender.send(ImportMessage::Finished).await;
            });
            batches
        };

        let counts = store
            .import_transactions(&merchant, import(rows.clone()))
            .await
            .unwrap();
        assert_eq!(
            counts,
            TransactionImportCounts {
                inserted: rows_total as u64,
                skipped_duplicates: 0,
                customers_created: (rows_total as u64).div_ceil(10),
            }
        );
        assert_eq!(purchase_indexes(&store).await, migrated);
        let again = store
            .import_transactions(&merchant, import(rows[..10_000].to_vec()))
            .await
            .unwrap();
        assert_eq!((again.inserted, again.skipped_duplicates), (0, 10_000));
        let summary = store.ledger_summary(&merchant).await.unwrap();
        let expected: i64 = (0..rows_total).map(|i| (1 + i % 50) * 100).sum();
        assert_eq!(
            (summary.purchases, summary.revenue.minor()),
            (rows_total as u64, expected)
        );
        store.close().await;
    }
}
