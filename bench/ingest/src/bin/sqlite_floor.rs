//! The SQLite floor of a webhook group: the statements setia's webhook writer runs
//! (crates/setia-store/src/sqlite/webhooks.rs), on a database that `setia merchant create`
//! made (so with setia's real schema), with no HTTP and no hop between threads.
//!
//!     sqlite-floor --database DB --merchant ID [--group 32] [--calls 200000]
//!                  [--cache-kib 8192] [--synchronous FULL] [--checkpoint-ms 200]
//!                  [--without-digest-index]
//!
//! A checkpoint runs every `--checkpoint-ms` on a second connection and thread, as setia's
//! background checkpointer does. Prints one JSON line: calls, seconds, microseconds per call,
//! milliseconds per group.

use std::time::{Duration, Instant};

use clap::Parser;
use rusqlite::{params, Connection};
use sha2::{Digest, Sha256};

#[derive(Parser)]
struct Args {
    #[arg(long)]
    database: String,
    #[arg(long)]
    merchant: String,
    /// Calls per transaction.
    #[arg(long, default_value_t = 32)]
    group: usize,
    #[arg(long, default_value_t = 200_000)]
    calls: usize,
    #[arg(long, default_value_t = 8192)]
    cache_kib: i64,
    /// FULL as setia runs it, or NORMAL (no fsync per commit) to see what the fsync costs.
    #[arg(long, default_value = "FULL")]
    synchronous: String,
    #[arg(long, default_value_t = 200)]
    checkpoint_ms: u64,
    /// Rebuild the inbox without `UNIQUE (merchant_id, body_sha256)` first and insert without
    /// the duplicate check: what that index costs a call. Not something setia may do.
    #[arg(long)]
    without_digest_index: bool,
}

/// Rebuilds the (empty) inbox table without its body-digest unique constraint.
fn drop_digest_index(connection: &Connection) -> rusqlite::Result<()> {
    let ddl: String = connection.query_row(
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'inbox'",
        [],
        |row| row.get(0),
    )?;
    let plain = ddl.replace(",\n    UNIQUE (merchant_id, body_sha256)", "");
    assert_ne!(plain, ddl, "the inbox's unique constraint was not found");
    let indexes: Vec<String> = connection
        .prepare("SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'inbox' AND sql IS NOT NULL")?
        .query_map([], |row| row.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    connection.execute_batch(&format!(
        "PRAGMA foreign_keys = OFF; BEGIN; DROP TABLE inbox; {plain}; {}; COMMIT; PRAGMA foreign_keys = ON;",
        indexes.join("; ")
    ))
}

fn main() -> rusqlite::Result<()> {
    let args = Args::parse();
    let connection = Connection::open(&args.database)?;
    connection.execute_batch(&format!(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = {}; PRAGMA foreign_keys = ON; \
         PRAGMA temp_store = MEMORY; PRAGMA wal_autocheckpoint = 16000; PRAGMA cache_size = -{};",
        args.synchronous, args.cache_kib
    ))?;
    if args.without_digest_index {
        drop_digest_index(&connection)?;
    }
    let insert_sql = if args.without_digest_index {
        "INSERT INTO inbox (merchant_id, body, body_sha256, body_size, user_agent, moota_user, \
         moota_webhook, remote_addr, received_at_us) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
    } else {
        "INSERT INTO inbox (merchant_id, body, body_sha256, body_size, user_agent, moota_user, \
         moota_webhook, remote_addr, received_at_us) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) \
         ON CONFLICT (merchant_id, body_sha256) DO NOTHING"
    };
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let checkpointer = {
        let (stop, database, every) = (stop.clone(), args.database.clone(), args.checkpoint_ms);
        std::thread::spawn(move || -> rusqlite::Result<()> {
            let connection = Connection::open(database)?;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(every));
                connection.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))?;
            }
            Ok(())
        })
    };
    // About 900 bytes, like a one-mutation Moota body; each call's is different.
    let template = format!(
        r#"[{{"bank_id":"VLRG8qaw","amount":{{}},"description":"TRSF E-BANKING CR {}","type":"CR"}}]"#,
        "x".repeat(780)
    );
    let started = Instant::now();
    let mut done = 0;
    while done < args.calls {
        connection.execute_batch("BEGIN IMMEDIATE")?;
        {
            let mut insert = connection.prepare_cached(insert_sql)?;
            let mut audit = connection.prepare_cached(
                "INSERT INTO webhook_audit (merchant_id, received_at_us, remote_addr, status, reason, \
                 body_sha256, body_size, inbox_id) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?;
            for _ in 0..args.group {
                let body = template.replacen("{}", &done.to_string(), 1).into_bytes();
                let sha256 = hex::encode(Sha256::digest(&body));
                let now = 1_790_000_000_000_000i64 + done as i64;
                insert.execute(params![
                    args.merchant,
                    body,
                    sha256,
                    body.len() as i64,
                    "MootaBot/1.5",
                    "u1",
                    "w1",
                    "127.0.0.1",
                    now
                ])?;
                let id = connection.last_insert_rowid();
                audit.execute(params![
                    args.merchant,
                    now,
                    "127.0.0.1",
                    200,
                    "received",
                    sha256,
                    body.len() as i64,
                    id
                ])?;
                done += 1;
            }
        }
        connection.execute_batch("COMMIT")?;
    }
    let seconds = started.elapsed().as_secs_f64();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    checkpointer.join().expect("the checkpointer thread")?;
    println!(
        "{}",
        serde_json::json!({
            "calls": done,
            "group": args.group,
            "cache_kib": args.cache_kib,
            "synchronous": args.synchronous,
            "digest_index": !args.without_digest_index,
            "seconds": seconds,
            "us_per_call": seconds * 1e6 / done as f64,
            "ms_per_group": seconds * 1e3 * args.group as f64 / done as f64,
        })
    );
    Ok(())
}
