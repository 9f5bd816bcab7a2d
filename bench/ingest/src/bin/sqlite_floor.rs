//! The SQLite floor of a webhook group: the statements setia's webhook writer runs
//! (crates/setia-store/src/sqlite/webhooks.rs), on a database that `setia merchant create`
//! made (so with setia's real schema), with no HTTP and no hop between threads.
//!
//!     sqlite-floor --database DB --merchant ID [--group 32] [--calls 200000]
//!                  [--cache-kib 8192] [--synchronous FULL|NORMAL|THREAD]
//!                  [--checkpoint-ms 200] [--dedupe memory|unique|key] [--mmap-mib 0]
//!                  [--no-audit]
//!
//! A checkpoint runs every `--checkpoint-ms` on a second connection and thread, as setia's
//! background checkpointer does. Prints one JSON line: calls, seconds, microseconds per call,
//! milliseconds per group (with THREAD, until the last fsync has returned).

use std::time::{Duration, Instant};

use clap::Parser;
use rusqlite::{params, Connection, OptionalExtension};
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
    /// FULL (an fsync in every COMMIT), NORMAL (none: what the fsync costs), or THREAD:
    /// NORMAL with the WAL fsynced by a second thread after each COMMIT, while this one
    /// writes the next group.
    #[arg(long, default_value = "FULL")]
    synchronous: String,
    #[arg(long, default_value_t = 200)]
    checkpoint_ms: u64,
    /// SQLite's mmap_size in MiB (0: reads go through read(2)).
    #[arg(long, default_value_t = 0)]
    mmap_mib: i64,
    /// How a repeated body is found: `memory`, setia's way since migration 0007, a hash
    /// set of (merchant, digest) in the writer's memory and no index; `unique`, the
    /// `UNIQUE (merchant_id, body_sha256)` index and ON CONFLICT that setia had before;
    /// `key`, a plain index on an integer of the digest's first 8 bytes and a look-up before
    /// each insert.
    #[arg(long, default_value = "memory")]
    dedupe: Dedupe,
    /// Without the audit row of each accepted call: what that row costs the writer.
    #[arg(long)]
    no_audit: bool,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Dedupe {
    Memory,
    Unique,
    Key,
}

/// The first 8 bytes of the digest as one integer.
fn digest_key(digest: &[u8]) -> i64 {
    i64::from_be_bytes(digest[..8].try_into().expect("a sha256 has 32 bytes"))
}

fn main() -> rusqlite::Result<()> {
    let args = Args::parse();
    let connection = Connection::open(&args.database)?;
    let sync_thread = args.synchronous.eq_ignore_ascii_case("THREAD");
    connection.execute_batch(&format!(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = {}; PRAGMA foreign_keys = ON; \
         PRAGMA temp_store = MEMORY; PRAGMA wal_autocheckpoint = 16000; PRAGMA cache_size = -{}; \
         PRAGMA mmap_size = {};",
        if sync_thread {
            "NORMAL"
        } else {
            &args.synchronous
        },
        args.cache_kib,
        args.mmap_mib << 20
    ))?;
    match args.dedupe {
        Dedupe::Memory => {}
        Dedupe::Unique => connection.execute_batch(
            "CREATE UNIQUE INDEX inbox_by_digest ON inbox (merchant_id, body_sha256)",
        )?,
        Dedupe::Key => connection.execute_batch(
            "ALTER TABLE inbox ADD COLUMN body_key INTEGER NOT NULL DEFAULT 0; \
             CREATE INDEX inbox_by_body_key ON inbox (body_key);",
        )?,
    }
    let (key_column, key_value, on_conflict) = match args.dedupe {
        Dedupe::Memory => ("", "", ""),
        Dedupe::Unique => ("", "", " ON CONFLICT (merchant_id, body_sha256) DO NOTHING"),
        Dedupe::Key => (", body_key", ", ?", ""),
    };
    // `memory`: the digest's first 8 bytes → row id, the shape of setia's `KnownBodies`.
    let mut known = std::collections::HashMap::<i64, i64>::new();
    let insert_sql = format!(
        "INSERT INTO inbox (merchant_id, body, body_sha256, body_size, user_agent, moota_user, \
         moota_webhook, remote_addr, received_at_us{key_column}) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?{key_value}){on_conflict}"
    );
    // THREAD: COMMIT writes the WAL without syncing it; this thread fsyncs it after each
    // commit (one fsync covers every commit before it), while the writer goes on.
    let (synced_tx, synced_rx) = std::sync::mpsc::sync_channel::<()>(1);
    let syncer = sync_thread.then(|| {
        let wal = format!("{}-wal", args.database);
        std::thread::spawn(move || -> std::io::Result<u64> {
            let mut syncs = 0;
            let mut file: Option<std::fs::File> = None;
            while synced_rx.recv().is_ok() {
                while synced_rx.try_recv().is_ok() {}
                let file = match &file {
                    Some(file) => file,
                    None => file.insert(std::fs::File::open(&wal)?),
                };
                file.sync_data()?;
                syncs += 1;
            }
            Ok(syncs)
        })
    });
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
            let mut insert = connection.prepare_cached(&insert_sql)?;
            let mut audit = connection.prepare_cached(
                "INSERT INTO webhook_audit (merchant_id, received_at_us, remote_addr, status, reason, \
                 body_sha256, body_size, inbox_id) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?;
            let mut existing = match args.dedupe {
                Dedupe::Key => Some(connection.prepare_cached(
                    "SELECT id FROM inbox WHERE body_key = ?1 AND merchant_id = ?2 AND body_sha256 = ?3",
                )?),
                _ => None,
            };
            for _ in 0..args.group {
                let body = template.replacen("{}", &done.to_string(), 1).into_bytes();
                let digest = Sha256::digest(&body);
                let sha256 = hex::encode(digest);
                let now = 1_790_000_000_000_000i64 + done as i64;
                let size = body.len() as i64;
                let key = digest_key(&digest);
                let mut values: Vec<&dyn rusqlite::ToSql> = vec![
                    &args.merchant,
                    &body,
                    &sha256,
                    &size,
                    &"MootaBot/1.5",
                    &"u1",
                    &"w1",
                    &"127.0.0.1",
                    &now,
                ];
                let found = match (args.dedupe, &mut existing) {
                    (Dedupe::Memory, _) => known.get(&key).copied(),
                    (Dedupe::Key, Some(existing)) => {
                        values.push(&key);
                        existing
                            .query_row(params![key, args.merchant, sha256], |row| row.get(0))
                            .optional()?
                    }
                    _ => None,
                };
                assert!(found.is_none(), "every body is new");
                insert.execute(values.as_slice())?;
                let id = connection.last_insert_rowid();
                if args.dedupe == Dedupe::Memory {
                    known.insert(key, id);
                }
                if !args.no_audit {
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
                }
                done += 1;
            }
        }
        connection.execute_batch("COMMIT")?;
        if sync_thread {
            // Waits only while the syncer holds an earlier, unsynced request.
            let _ = synced_tx.send(());
        }
    }
    drop(synced_tx);
    let syncs = syncer.map(|syncer| {
        syncer
            .join()
            .expect("the sync thread")
            .expect("fsync of the WAL")
    });
    let seconds = started.elapsed().as_secs_f64();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    checkpointer.join().expect("the checkpointer thread")?;
    println!(
        "{}",
        serde_json::json!({
            "calls": done,
            "group": args.group,
            "cache_kib": args.cache_kib,
            "mmap_mib": args.mmap_mib,
            "synchronous": args.synchronous,
            "dedupe": (["memory", "unique", "key"][args.dedupe as usize]),
            "wal_syncs_on_thread": syncs,
            "seconds": seconds,
            "us_per_call": seconds * 1e6 / done as f64,
            "ms_per_group": seconds * 1e3 * args.group as f64 / done as f64,
        })
    );
    Ok(())
}
