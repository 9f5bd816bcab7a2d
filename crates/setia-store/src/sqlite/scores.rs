//! The customer scores' own file, `{database}-scores`, attached to every sqlx connection as
//! `scores`. A nightly run rewrites a million score rows; in the main file that held
//! SQLite's only writer (and so every webhook) for as long as it took, or, written in short
//! transactions, took 30–40 s. Here the run has a writer of its own: it builds the merchant's
//! new scores in one transaction while webhooks commit to the main file and readers keep
//! reading the previous scores (WAL), and the new ones appear at once when it commits.
//!
//! Scores are derived data, rebuilt by every run, so the file is made by the store rather
//! than by the migrations: a file whose schema version is not [`SCHEMA_VERSION`] is emptied
//! and made again, and `synchronous = NORMAL` may lose the last run's scores on a power cut
//! (the next run writes them again) but never corrupts the file.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rusqlite::{params, Connection, OpenFlags};

use super::product_list_json;
use crate::analytics::ScoreRow;

/// Bumped whenever the table or its indexes change: the file is then made again.
const SCHEMA_VERSION: i64 = 1;

/// The scores table under `name`, without its indexes (a rebuild adds them once the rows
/// are in). WITHOUT ROWID: the key is the table, so a row is one B-tree entry, not two.
fn table_sql(name: &str) -> String {
    format!(
        "CREATE TABLE {name} (
            merchant_id             TEXT NOT NULL,
            customer_id             INTEGER NOT NULL,
            as_of                   TEXT NOT NULL,
            recency_days            INTEGER NOT NULL,
            frequency_days          INTEGER NOT NULL,
            monetary_minor          INTEGER NOT NULL,
            rfm_r                   INTEGER NOT NULL,
            rfm_f                   INTEGER NOT NULL,
            rfm_m                   INTEGER NOT NULL,
            segment                 TEXT NOT NULL,
            p_alive                 REAL,      -- NULL when the churn model could not be fitted
            expected_purchases_90d  REAL,
            clv_12m_minor           INTEGER,
            computed_at_us          INTEGER NOT NULL,
            recommended             TEXT,      -- product keys, best first; NULL for none
            PRIMARY KEY (merchant_id, customer_id)
        ) WITHOUT ROWID"
    )
}

/// What the dashboard and the reports page and count by.
const INDEXES: [&str; 3] = [
    // The weekly report's at-risk count, under a threshold of the merchant's choosing.
    "CREATE INDEX customer_scores_at_risk ON customer_scores (merchant_id, p_alive)",
    // The at-risk list: repeat customers with P(alive) under 0.5, most valuable first.
    "CREATE INDEX customer_scores_at_risk_by_clv \
     ON customer_scores (merchant_id, (COALESCE(clv_12m_minor, -1)) DESC, customer_id) \
     WHERE p_alive < 0.5 AND frequency_days >= 2",
    // A segment's customers, most valuable first.
    "CREATE INDEX customer_scores_by_segment \
     ON customer_scores (merchant_id, segment, (COALESCE(clv_12m_minor, -1)) DESC, customer_id)",
];

const COLUMNS: &str = "merchant_id, customer_id, as_of, recency_days, frequency_days, \
    monetary_minor, rfm_r, rfm_f, rfm_m, segment, p_alive, expected_purchases_90d, \
    clv_12m_minor, computed_at_us, recommended";

/// A run of at least this many scores that makes up at least half the file rebuilds the
/// table (the other merchants' rows are copied across); a smaller one is upserted in place.
/// Inserting a million rows in key order and then building the indexes by sorting is several
/// times faster than a million upserts into four B-trees; copying a few other rows costs
/// less than it saves.
const REBUILD_MIN_ROWS: usize = 10_000;

/// The writer's page cache while it writes: the indexes of a million scores fit.
const WRITER_CACHE_KIB: i64 = 262_144;

#[derive(Debug, Clone)]
pub(super) struct ScoresFile {
    path: Arc<PathBuf>,
}

impl ScoresFile {
    /// The scores file of the database at `database`.
    pub(super) fn beside(database: &Path) -> ScoresFile {
        let mut name = database.as_os_str().to_owned();
        name.push("-scores");
        ScoresFile {
            path: Arc::new(PathBuf::from(name)),
        }
    }

    pub(super) fn path(&self) -> &Path {
        &self.path
    }

    fn open(&self) -> rusqlite::Result<Connection> {
        let connection = Connection::open_with_flags(
            self.path.as_path(),
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        connection.busy_timeout(Duration::from_secs(10))?;
        connection.pragma_update(None, "journal_mode", "WAL")?;
        connection.pragma_update(None, "synchronous", "NORMAL")?;
        connection.pragma_update(None, "temp_store", "MEMORY")?;
        Ok(connection)
    }

    /// Makes the file, or makes it again when its schema is not this build's.
    pub(super) fn prepare(&self) -> rusqlite::Result<()> {
        let mut connection = self.open()?;
        let version: i64 = connection.pragma_query_value(None, "user_version", |row| row.get(0))?;
        if version == SCHEMA_VERSION {
            return Ok(());
        }
        let tx = connection.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        tx.execute_batch("DROP TABLE IF EXISTS customer_scores")?;
        tx.execute_batch(&table_sql("customer_scores"))?;
        for index in INDEXES {
            tx.execute(index, [])?;
        }
        tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
        tx.commit()
    }

    /// Replaces `merchant`'s scores with `scores`, in one transaction of this file's own
    /// writer. Blocking: call it on a blocking thread.
    pub(super) fn replace(
        &self,
        merchant: &str,
        as_of: &str,
        scores: &mut [ScoreRow],
        computed_at_us: i64,
    ) -> rusqlite::Result<()> {
        let mut connection = self.open()?;
        connection.pragma_update(None, "cache_size", -WRITER_CACHE_KIB)?;
        let mut phases = Phases::start();
        // Key order: rows then land at the end of the B-tree, page after page.
        scores.sort_unstable_by_key(|score| score.customer);
        let tx = connection.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let others: i64 = tx.query_row(
            "SELECT count(*) FROM customer_scores WHERE merchant_id <> ?1",
            [merchant],
            |row| row.get(0),
        )?;
        if scores.len() >= REBUILD_MIN_ROWS && others <= scores.len() as i64 {
            tx.execute_batch(&table_sql("customer_scores_next"))?;
            let copy = |side: &str| {
                format!(
                    "INSERT INTO customer_scores_next ({COLUMNS}) SELECT {COLUMNS} \
                     FROM customer_scores WHERE merchant_id {side} ?1 ORDER BY merchant_id, customer_id"
                )
            };
            tx.execute(&copy("<"), [merchant])?;
            phases.mark("copy_before");
            insert(
                &tx,
                "customer_scores_next",
                merchant,
                as_of,
                scores,
                computed_at_us,
                false,
            )?;
            phases.mark("insert");
            tx.execute(&copy(">"), [merchant])?;
            phases.mark("copy_after");
            tx.execute_batch(
                "DROP TABLE customer_scores; \
                 ALTER TABLE customer_scores_next RENAME TO customer_scores;",
            )?;
            phases.mark("swap");
            for index in INDEXES {
                tx.execute(index, [])?;
                phases.mark("index");
            }
        } else {
            insert(
                &tx,
                "customer_scores",
                merchant,
                as_of,
                scores,
                computed_at_us,
                true,
            )?;
            tx.execute(
                "DELETE FROM customer_scores WHERE merchant_id = ?1 AND computed_at_us <> ?2",
                params![merchant, computed_at_us],
            )?;
            phases.mark("upsert");
        }
        tx.commit()?;
        phases.mark("commit");
        // A rebuild leaves the whole table in the WAL: copy it back and cut the WAL short now,
        // rather than leave it to whichever reader next passes the checkpoint threshold.
        // Readers still on the old scores can hold this back; the next run tries again.
        connection.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        phases.mark("checkpoint");
        tracing::debug!(merchant, rows = scores.len(), phases = %phases, "scores stored");
        Ok(())
    }
}

/// Seconds per step of a store, for the debug log the benchmark reads.
struct Phases {
    last: std::time::Instant,
    done: Vec<(&'static str, f64)>,
}

impl Phases {
    fn start() -> Phases {
        Phases {
            last: std::time::Instant::now(),
            done: Vec::new(),
        }
    }

    fn mark(&mut self, phase: &'static str) {
        let now = std::time::Instant::now();
        self.done.push((phase, (now - self.last).as_secs_f64()));
        self.last = now;
    }
}

impl std::fmt::Display for Phases {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (n, (phase, seconds)) in self.done.iter().enumerate() {
            write!(f, "{}{phase}={seconds:.3}", if n == 0 { "" } else { " " })?;
        }
        Ok(())
    }
}

/// Writes the rows into `table`, replacing a row of the same key when `upsert`.
fn insert(
    tx: &rusqlite::Transaction<'_>,
    table: &str,
    merchant: &str,
    as_of: &str,
    scores: &[ScoreRow],
    computed_at_us: i64,
    upsert: bool,
) -> rusqlite::Result<()> {
    let verb = if upsert {
        "INSERT OR REPLACE"
    } else {
        "INSERT"
    };
    let mut statement = tx.prepare(&format!(
        "{verb} INTO {table} ({COLUMNS}) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)"
    ))?;
    for score in scores {
        statement.execute(params![
            merchant,
            score.customer,
            as_of,
            score.recency_days,
            score.frequency_days,
            score.monetary_minor,
            score.r,
            score.f,
            score.m,
            score.segment,
            score.p_alive,
            score.expected_purchases_90d,
            score.clv_12m_minor,
            computed_at_us,
            product_list_json(&score.recommended),
        ])?;
    }
    Ok(())
}
