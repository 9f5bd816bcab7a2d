//! The customer scores' own file, `{database}-scores`, attached to every sqlx connection as
//! `scores`. A nightly run rewrites a million score rows; in the main file that held
//! SQLite's only writer (and so every webhook) for as long as it took, or, written in short
//! transactions, took 30–40 s. Here the run has a writer of its own: it builds the merchant's
//! new scores in one transaction while webhooks commit to the main file and readers keep
//! reading the previous scores (WAL), and the new ones appear at once when it commits.
//! Beside the scores it keeps the lists the dashboard pages through by value
//! (`customer_value_lists`), which the run writes in key order itself.
//!
//! Scores are derived data, rebuilt by every run, so the file is made by the store rather
//! than by the migrations: a file of an older schema version is upgraded in place, one of
//! an unknown version is emptied and made again, and `synchronous = NORMAL` may lose the last run's scores on a power cut
//! (the next run writes them again) but never corrupts the file.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rusqlite::{params, Connection, OpenFlags};

use super::{product_list_json, SCORE_COLUMNS};
use crate::analytics::ScoreRow;
use crate::dashboard::{ValueList, AT_RISK_P_ALIVE};

/// Bumped whenever the tables change: a file of an older version is brought up to date by
/// [`upgrade_from_1`] where it can be, and made again otherwise.
const SCHEMA_VERSION: i64 = 2;

/// The scores table under `name`. WITHOUT ROWID: the key is the table, so a row is one
/// B-tree entry, not two; and no secondary index (see [`lists_sql`]).
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

/// The lists the dashboard pages through by value (each segment, the at-risk list): one row
/// per customer and list, keyed in page order. `value_key` is minus the CLV (-1 for none), so
/// the most valuable come first in key order. A table the run fills in key order itself,
/// where indexes on the scores were built by SQLite sorting a million keys that all begin
/// with the same merchant: 2.1 s of a 3.7 s store, against about a third of a second now.
fn lists_sql(name: &str) -> String {
    format!(
        "CREATE TABLE {name} (
            merchant_id  TEXT NOT NULL,
            list         TEXT NOT NULL,    -- ValueList::key: 'at_risk', 'segment:loyal', …
            value_key    INTEGER NOT NULL, -- -COALESCE(clv_12m_minor, -1)
            customer_id  INTEGER NOT NULL,
            PRIMARY KEY (merchant_id, list, value_key, customer_id)
        ) WITHOUT ROWID"
    )
}

const LIST_COLUMNS: &str = "merchant_id, list, value_key, customer_id";

/// A run of at least this many scores that makes up at least half the file rebuilds the
/// tables (the other merchants' rows are copied across); a smaller one is upserted in place.
/// Appending a million rows in key order to new tables is several times faster than a
/// million upserts into existing ones; copying a few other rows costs less than it saves.
const REBUILD_MIN_ROWS: usize = 10_000;

/// The file's pages, SQLite's largest: the file is written a million rows at a time and read
/// a page of the dashboard at a time, both from the page cache. Against 4 KiB pages, a run
/// of a million scores stores in 2.0 s rather than 2.7 (fewer, fuller pages to write to the
/// WAL and to balance).
const PAGE_SIZE: i64 = 65_536;

/// The writer's page cache while it writes: a million scores and their list rows fit.
const WRITER_CACHE_KIB: i64 = 262_144;

#[derive(Debug, Clone)]
pub(super) struct ScoresFile {
    path: Arc<PathBuf>,
}

impl ScoresFile {
    /// The scores file of the database at `database`.
    pub(super) fn beside(database: &Path) -> ScoresFile {
        ScoresFile {
            path: Arc::new(suffixed(database, "-scores")),
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
        // The writer checkpoints itself, paced (`checkpoint_paced`), never inside a commit.
        connection.pragma_update(None, "wal_autocheckpoint", 0)?;
        // Takes effect when the file is made (a no-op on an existing one).
        connection.pragma_update(None, "page_size", PAGE_SIZE)?;
        connection.pragma_update(None, "journal_mode", "WAL")?;
        connection.pragma_update(None, "synchronous", "NORMAL")?;
        connection.pragma_update(None, "temp_store", "MEMORY")?;
        Ok(connection)
    }

    /// Makes the file, or brings it up to date, or makes it again when its schema is
    /// neither this build's nor one it can upgrade.
    pub(super) fn prepare(&self) -> rusqlite::Result<()> {
        let mut connection = self.open()?;
        let version: i64 = connection.pragma_query_value(None, "user_version", |row| row.get(0))?;
        if version == SCHEMA_VERSION {
            return Ok(());
        }
        let tx = connection.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let upgraded = version == 1;
        if upgraded {
            upgrade_from_1(&tx)?;
        } else {
            tx.execute_batch(
                "DROP TABLE IF EXISTS customer_scores; DROP TABLE IF EXISTS customer_value_lists;",
            )?;
            tx.execute_batch(&table_sql("customer_scores"))?;
            tx.execute_batch(&lists_sql("customer_value_lists"))?;
        }
        tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
        tx.commit()?;
        if upgraded {
            repage(&connection)?;
        }
        Ok(())
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
        let lists = list_rows(scores);
        phases.mark("lists");
        if scores.len() >= REBUILD_MIN_ROWS && others <= scores.len() as i64 {
            tx.execute_batch(&table_sql("customer_scores_next"))?;
            tx.execute_batch(&lists_sql("customer_value_lists_next"))?;
            // The other merchants' rows before and after this one's, each copied in key order.
            let copy = |side: &str| {
                tx.execute(
                    &format!(
                        "INSERT INTO customer_scores_next ({SCORE_COLUMNS}) SELECT {SCORE_COLUMNS} \
                         FROM customer_scores WHERE merchant_id {side} ?1 ORDER BY merchant_id, customer_id"
                    ),
                    [merchant],
                )?;
                tx.execute(
                    &format!(
                        "INSERT INTO customer_value_lists_next ({LIST_COLUMNS}) SELECT {LIST_COLUMNS} \
                         FROM customer_value_lists WHERE merchant_id {side} ?1 \
                         ORDER BY merchant_id, list, value_key, customer_id"
                    ),
                    [merchant],
                )
            };
            copy("<")?;
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
            insert_lists(&tx, "customer_value_lists_next", merchant, &lists)?;
            phases.mark("insert_lists");
            copy(">")?;
            phases.mark("copy_after");
            tx.execute_batch(
                "DROP TABLE customer_scores; \
                 ALTER TABLE customer_scores_next RENAME TO customer_scores; \
                 DROP TABLE customer_value_lists; \
                 ALTER TABLE customer_value_lists_next RENAME TO customer_value_lists;",
            )?;
            phases.mark("swap");
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
            tx.execute(
                "DELETE FROM customer_value_lists WHERE merchant_id = ?1",
                [merchant],
            )?;
            insert_lists(&tx, "customer_value_lists", merchant, &lists)?;
            phases.mark("upsert");
        }
        tx.commit()?;
        phases.mark("commit");
        // The scores are committed: a checkpoint that cannot run now (the write lock busy for
        // 10 s, a failed flush) leaves them in the WAL for the next run to copy.
        if let Err(error) = self.checkpoint_paced(&connection) {
            tracing::warn!(merchant, %error, "the scores file was not checkpointed");
        }
        phases.mark("checkpoint");
        tracing::debug!(merchant, rows = scores.len(), phases = %phases, "scores stored");
        Ok(())
    }
}

impl ScoresFile {
    /// Copies the run's pages from the WAL into the file and makes both durable, a few
    /// megabytes at a time. One fsync of a run's 200–400 MB made every webhook's fsync on the
    /// same disk wait up to 100 ms behind it; flushed in small waited-for chunks, webhooks
    /// commit between them. The WAL keeps its size (no TRUNCATE): the next run rewrites
    /// blocks already allocated, which costs the webhooks' journal nothing.
    ///
    /// SQLite's own fsyncs are off for the checkpoint (this flushes instead), and a second
    /// connection holds the write lock until the file is durable, so no writer restarts the
    /// WAL while its frames are the only durable copy of the run. Readers still on the old
    /// scores can hold part of the checkpoint back; the next run copies the rest.
    fn checkpoint_paced(&self, connection: &Connection) -> rusqlite::Result<()> {
        flush_paced(&suffixed(&self.path, "-wal"))?;
        let guard = self.open()?;
        guard.execute_batch("BEGIN IMMEDIATE")?;
        connection.pragma_update(None, "synchronous", "OFF")?;
        let checkpointed = connection.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
        connection.pragma_update(None, "synchronous", "NORMAL")?;
        checkpointed?;
        flush_paced(self.path.as_path())?;
        guard.execute_batch("ROLLBACK")
    }
}

/// `path` with `suffix` added to its file name, as SQLite names the files beside a database.
fn suffixed(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// Bytes written back per waited-for step of [`flush_paced`].
const FLUSH_STEP: i64 = 8 << 20;

/// Writes a file's dirty pages to disk a step at a time, waiting for each, then syncs it.
fn flush_paced(path: &Path) -> rusqlite::Result<()> {
    let io_error = |error: std::io::Error| {
        rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_IOERR),
            Some(format!("flushing {}: {error}", path.display())),
        )
    };
    let file = match std::fs::OpenOptions::new().write(true).open(path) {
        Ok(file) => file,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(error) => return Err(io_error(error)),
    };
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        let size = file.metadata().map_err(io_error)?.len() as i64;
        let flags = libc::SYNC_FILE_RANGE_WAIT_BEFORE
            | libc::SYNC_FILE_RANGE_WRITE
            | libc::SYNC_FILE_RANGE_WAIT_AFTER;
        let mut offset = 0;
        while offset < size {
            // SAFETY: a valid descriptor of an open file; the range is plain integers.
            let done =
                unsafe { libc::sync_file_range(file.as_raw_fd(), offset, FLUSH_STEP, flags) };
            if done != 0 {
                return Err(io_error(std::io::Error::last_os_error()));
            }
            offset += FLUSH_STEP;
        }
    }
    file.sync_data().map_err(io_error)
}

/// The merchant's rows of `customer_value_lists`, in key order.
struct ListRows {
    /// The lists' names, sorted: a row's list is its index here, so ordering rows by index
    /// orders them by name.
    names: Vec<String>,
    /// (list, value_key, customer), sorted.
    rows: Vec<(u32, i64, i64)>,
}

fn list_rows(scores: &[ScoreRow]) -> ListRows {
    // Each list's name beside its segment (none for the at-risk list), in name order.
    let segments: std::collections::BTreeSet<&str> =
        scores.iter().map(|score| score.segment.as_str()).collect();
    let mut lists: Vec<(String, Option<&str>)> = segments
        .into_iter()
        .map(|segment| (ValueList::Segment(segment).key(), Some(segment)))
        .chain([(ValueList::AtRisk.key(), None)])
        .collect();
    lists.sort_unstable();
    let mut segments = std::collections::HashMap::new();
    let mut at_risk = 0;
    for (rank, (_, segment)) in lists.iter().enumerate() {
        match segment {
            Some(segment) => {
                segments.insert(*segment, rank as u32);
            }
            None => at_risk = rank as u32,
        }
    }
    let names = lists.into_iter().map(|(name, _)| name).collect();
    let mut rows = Vec::with_capacity(scores.len() * 3 / 2);
    for score in scores {
        let value_key = -score.clv_12m_minor.unwrap_or(-1);
        rows.push((segments[score.segment.as_str()], value_key, score.customer));
        if ValueList::at_risk(score.frequency_days, score.p_alive) {
            rows.push((at_risk, value_key, score.customer));
        }
    }
    rows.sort_unstable();
    ListRows { names, rows }
}

/// Binds only what changes from row to row: SQLite keeps a parameter's value until it is
/// bound again.
fn insert_lists(
    tx: &rusqlite::Transaction<'_>,
    table: &str,
    merchant: &str,
    lists: &ListRows,
) -> rusqlite::Result<()> {
    let mut statement = tx.prepare(&format!(
        "INSERT INTO {table} ({LIST_COLUMNS}) VALUES (?1, ?2, ?3, ?4)"
    ))?;
    statement.raw_bind_parameter(1, merchant)?;
    let mut bound = None;
    for &(list, value_key, customer) in &lists.rows {
        if bound != Some(list) {
            statement.raw_bind_parameter(2, &lists.names[list as usize])?;
            bound = Some(list);
        }
        statement.raw_bind_parameter(3, value_key)?;
        statement.raw_bind_parameter(4, customer)?;
        statement.raw_execute()?;
    }
    Ok(())
}

/// Rewrites a file made with smaller pages into pages of [`PAGE_SIZE`], which needs it out of
/// WAL mode for a moment: when another process has the file open, it keeps its pages (it
/// works, only slower) and this is tried again at the next upgrade.
fn repage(connection: &Connection) -> rusqlite::Result<()> {
    let size: i64 = connection.pragma_query_value(None, "page_size", |row| row.get(0))?;
    if size == PAGE_SIZE {
        return Ok(());
    }
    let mode: String =
        connection.pragma_update_and_check(None, "journal_mode", "DELETE", |row| row.get(0))?;
    if mode.eq_ignore_ascii_case("delete") {
        connection.pragma_update(None, "page_size", PAGE_SIZE)?;
        connection.execute_batch("VACUUM")?;
    } else {
        tracing::warn!(
            size,
            "the scores file is open elsewhere: it keeps its pages of this size"
        );
    }
    connection.pragma_update(None, "journal_mode", "WAL")
}

/// Version 1 kept the lists as indexes on the scores: their rows go into the lists table.
fn upgrade_from_1(tx: &rusqlite::Transaction<'_>) -> rusqlite::Result<()> {
    tx.execute_batch(&lists_sql("customer_value_lists"))?;
    tx.execute(
        &format!(
            "INSERT INTO customer_value_lists ({LIST_COLUMNS}) \
             SELECT merchant_id, ?1 || segment, -COALESCE(clv_12m_minor, -1), customer_id \
             FROM customer_scores"
        ),
        [ValueList::SEGMENT_KEY_PREFIX],
    )?;
    // ValueList::at_risk, in SQL.
    tx.execute(
        &format!(
            "INSERT INTO customer_value_lists ({LIST_COLUMNS}) \
             SELECT merchant_id, ?1, -COALESCE(clv_12m_minor, -1), customer_id \
             FROM customer_scores WHERE frequency_days >= 2 AND p_alive < {AT_RISK_P_ALIVE}"
        ),
        [ValueList::AT_RISK_KEY],
    )?;
    tx.execute_batch(
        "DROP INDEX IF EXISTS customer_scores_at_risk; \
         DROP INDEX IF EXISTS customer_scores_at_risk_by_clv; \
         DROP INDEX IF EXISTS customer_scores_by_segment;",
    )
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

/// Writes the rows into `table`, replacing a row of the same key when `upsert`. The
/// columns every row shares are bound once.
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
        "{verb} INTO {table} ({SCORE_COLUMNS}) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)"
    ))?;
    statement.raw_bind_parameter(1, merchant)?;
    statement.raw_bind_parameter(3, as_of)?;
    statement.raw_bind_parameter(14, computed_at_us)?;
    for score in scores {
        statement.raw_bind_parameter(2, score.customer)?;
        statement.raw_bind_parameter(4, score.recency_days)?;
        statement.raw_bind_parameter(5, score.frequency_days)?;
        statement.raw_bind_parameter(6, score.monetary_minor)?;
        statement.raw_bind_parameter(7, score.r)?;
        statement.raw_bind_parameter(8, score.f)?;
        statement.raw_bind_parameter(9, score.m)?;
        statement.raw_bind_parameter(10, &score.segment)?;
        statement.raw_bind_parameter(11, score.p_alive)?;
        statement.raw_bind_parameter(12, score.expected_purchases_90d)?;
        statement.raw_bind_parameter(13, score.clv_12m_minor)?;
        statement.raw_bind_parameter(15, product_list_json(&score.recommended))?;
        statement.raw_execute()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(connection: &Connection, sql: &str) -> i64 {
        connection.query_row(sql, [], |row| row.get(0)).unwrap()
    }

    /// A file of the first version keeps its scores, and its indexes become the lists.
    #[test]
    fn an_older_file_is_upgraded_in_place() {
        let folder = tempfile::tempdir().unwrap();
        let file = ScoresFile::beside(&folder.path().join("setia.db"));
        {
            let connection = Connection::open(file.path()).unwrap();
            connection.pragma_update(None, "page_size", 4096).unwrap();
            connection
                .pragma_update(None, "journal_mode", "WAL")
                .unwrap();
            connection
                .execute_batch(&table_sql("customer_scores"))
                .unwrap();
            connection
                .execute_batch(
                    "CREATE INDEX customer_scores_at_risk ON customer_scores (merchant_id, p_alive); \
                     CREATE INDEX customer_scores_at_risk_by_clv \
                     ON customer_scores (merchant_id, (COALESCE(clv_12m_minor, -1)) DESC, customer_id) \
                     WHERE p_alive < 0.5 AND frequency_days >= 2; \
                     CREATE INDEX customer_scores_by_segment ON customer_scores \
                     (merchant_id, segment, (COALESCE(clv_12m_minor, -1)) DESC, customer_id);",
                )
                .unwrap();
            connection
                .execute_batch(&format!(
                    "INSERT INTO customer_scores ({SCORE_COLUMNS}) VALUES \
                     ('m', 1, '2026-01-01', 3, 2, 100, 5, 4, 3, 'loyal', 0.9, 1.5, 200, 1, NULL), \
                     ('m', 2, '2026-01-01', 90, 3, 100, 1, 4, 3, 'at_risk', 0.2, 0.1, NULL, 1, NULL)"
                ))
                .unwrap();
            connection.pragma_update(None, "user_version", 1).unwrap();
        }
        file.prepare().unwrap();
        let connection = file.open().unwrap();
        assert_eq!(
            count(&connection, "SELECT count(*) FROM customer_scores"),
            2
        );
        let lists: Vec<(String, i64, i64)> = connection
            .prepare("SELECT list, value_key, customer_id FROM customer_value_lists ORDER BY list, value_key")
            .unwrap()
            .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(
            lists,
            [
                ("at_risk".to_owned(), 1, 2),
                ("segment:at_risk".to_owned(), 1, 2),
                ("segment:loyal".to_owned(), -200, 1),
            ]
        );
        assert_eq!(
            count(
                &connection,
                "SELECT count(*) FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"
            ),
            0,
            "the old indexes are gone"
        );
        assert_eq!(count(&connection, "PRAGMA user_version"), SCHEMA_VERSION);
        assert_eq!(
            count(&connection, "PRAGMA page_size"),
            PAGE_SIZE,
            "rewritten in larger pages"
        );
        assert_eq!(
            connection
                .pragma_query_value(None, "journal_mode", |row| row.get::<_, String>(0))
                .unwrap(),
            "wal"
        );
        // Prepared again: nothing changes.
        file.prepare().unwrap();
        assert_eq!(
            count(&connection, "SELECT count(*) FROM customer_value_lists"),
            3
        );
    }

    #[test]
    fn list_rows_are_in_key_order_with_the_at_risk_list() {
        let score =
            |customer: i64, segment: &str, clv: Option<i64>, p_alive: f64, days: i64| ScoreRow {
                customer,
                recency_days: 1,
                frequency_days: days,
                monetary_minor: 1,
                r: 1,
                f: 1,
                m: 1,
                segment: segment.to_owned(),
                p_alive: Some(p_alive),
                expected_purchases_90d: None,
                clv_12m_minor: clv,
                recommended: Vec::new(),
            };
        let scores = [
            score(1, "loyal", Some(500), 0.9, 3),
            score(2, "loyal", Some(900), 0.3, 2),
            score(3, "champions", None, 0.1, 1),
            score(4, "loyal", Some(500), 0.4, 5),
        ];
        let lists = list_rows(&scores);
        let rows: Vec<(String, i64, i64)> = lists
            .rows
            .iter()
            .map(|&(list, value_key, customer)| {
                (lists.names[list as usize].clone(), value_key, customer)
            })
            .collect();
        assert_eq!(
            rows,
            [
                ("at_risk".to_owned(), -900, 2),
                ("at_risk".to_owned(), -500, 4),
                ("segment:champions".to_owned(), 1, 3),
                ("segment:loyal".to_owned(), -900, 2),
                ("segment:loyal".to_owned(), -500, 1),
                ("segment:loyal".to_owned(), -500, 4),
            ],
            "customer 3 buys on one day only, so is not at risk however low P(alive)"
        );
    }

    /// A large run rebuilds the tables, and its pages are all copied from the WAL into the
    /// file before `replace` returns; the WAL keeps its blocks for the next run.
    #[test]
    fn a_rebuild_is_checkpointed_and_the_wal_kept() {
        let folder = tempfile::tempdir().unwrap();
        let file = ScoresFile::beside(&folder.path().join("setia.db"));
        file.prepare().unwrap();
        let mut scores: Vec<ScoreRow> = (1..=REBUILD_MIN_ROWS as i64)
            .map(|customer| ScoreRow {
                customer,
                recency_days: 1,
                frequency_days: 2,
                monetary_minor: 100,
                r: 1,
                f: 2,
                m: 3,
                segment: "loyal".to_owned(),
                p_alive: Some(0.3),
                expected_purchases_90d: None,
                clv_12m_minor: Some(customer % 50),
                recommended: vec![7, 8],
            })
            .collect();
        // Another connection stays open, as the store's pool does: closing the last one
        // would checkpoint and delete the WAL whatever the writer did.
        let connection = file.open().unwrap();
        file.replace("m", "2026-01-01", &mut scores, 1).unwrap();
        // A million bytes of rows are in the file itself, not only in the WAL.
        let size = std::fs::metadata(file.path()).unwrap().len();
        assert!(size > 1_000_000, "checkpointed into the file: {size} bytes");
        let wal = std::fs::metadata(suffixed(file.path(), "-wal")).unwrap();
        assert!(wal.len() > 0, "the WAL keeps its blocks");
        assert_eq!(
            count(&connection, "SELECT count(*) FROM customer_scores"),
            REBUILD_MIN_ROWS as i64
        );
        assert_eq!(
            count(&connection, "SELECT count(*) FROM customer_value_lists"),
            2 * REBUILD_MIN_ROWS as i64,
            "each customer in its segment and on the at-risk list"
        );
    }

    /// A file of an unknown version is made again, empty.
    #[test]
    fn a_file_of_another_version_is_made_again() {
        let folder = tempfile::tempdir().unwrap();
        let file = ScoresFile::beside(&folder.path().join("setia.db"));
        {
            let connection = file.open().unwrap();
            connection
                .execute_batch("CREATE TABLE customer_scores (x INTEGER); INSERT INTO customer_scores VALUES (1);")
                .unwrap();
            connection.pragma_update(None, "user_version", 99).unwrap();
        }
        file.prepare().unwrap();
        let connection = file.open().unwrap();
        assert_eq!(
            count(&connection, "SELECT count(*) FROM customer_scores"),
            0
        );
        assert_eq!(
            count(&connection, "SELECT count(*) FROM customer_value_lists"),
            0
        );
        assert_eq!(count(&connection, "PRAGMA page_size"), PAGE_SIZE);
        assert_eq!(count(&connection, "PRAGMA user_version"), SCHEMA_VERSION);
    }
}
