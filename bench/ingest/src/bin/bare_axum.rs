//! The peer of the ingest benchmark: a bare axum 0.8 handler on setia's webhook route shape
//! (`POST /webhooks/moota/{merchant_id}`) that reads the whole body and answers 200
//! `{"status":"received"}`. No signature check, no storage: the ceiling that setia's
//! endpoint is compared against.
//!
//! Runs on the same runtime setup as `setia serve` (tokio multi-thread, one worker per core,
//! axum with `http1` only) and prints the same `{"listening":"http://ADDR"}` line when ready.
//!
//! With `--fsync-log FILE` it is the durable floor instead: each 200 waits until its body is
//! on disk, written by a thread that gathers whatever bodies have queued, writes them to a
//! preallocated file in one `pwrite` and `fdatasync`s it, the cheapest group commit there is
//! (no database, no checksum, no signature check). What any endpoint that answers 200 only
//! once the body is durable can reach at most on this machine and with this generator.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::mpsc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::post;
use axum::Router;
use clap::Parser;

#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(about = "A bare axum webhook handler: reads the body, answers 200 received")]
struct Args {
    /// Address to listen on (port 0 picks a free one).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: String,
    /// Answer each 200 only once its body is fdatasynced to this file (the durable floor).
    #[arg(long)]
    fsync_log: Option<std::path::PathBuf>,
    /// The file's size, written with zeros before listening so that the load overwrites
    /// allocated blocks (an append would also write the inode at every fdatasync). Writing
    /// wraps around at the end.
    #[arg(long, default_value_t = 1024)]
    fsync_log_mib: u64,
    /// Answer each 200 only once its body is committed to this SQLite file (the SQLite floor).
    #[arg(long, conflicts_with = "fsync_log")]
    sqlite_inbox: Option<std::path::PathBuf>,
}

/// The 200 both handlers answer.
fn received() -> axum::response::Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        r#"{"status":"received"}"#,
    )
        .into_response()
}

async fn receive(Path(_merchant_id): Path<String>, body: Bytes) -> axum::response::Response {
    // The body is read to the end (the extractor collects it); its bytes are not used.
    std::hint::black_box(body.len());
    received()
}

type Durable = (Bytes, tokio::sync::oneshot::Sender<()>);

async fn receive_durably(
    State(log): State<mpsc::Sender<Durable>>,
    Path(_merchant_id): Path<String>,
    body: Bytes,
) -> axum::response::Response {
    let (written, on_disk) = tokio::sync::oneshot::channel();
    if log.send((body, written)).is_err() || on_disk.await.is_err() {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    received()
}

/// Zero-fills the log and starts its writer thread.
fn start_log(path: &std::path::Path, mib: u64) -> std::io::Result<mpsc::Sender<Durable>> {
    let file = File::create(path)?;
    let zeros = vec![0u8; 1 << 20];
    for mib_index in 0..mib {
        file.write_all_at(&zeros, mib_index << 20)?;
    }
    file.sync_all()?;
    let (bodies, queued) = mpsc::channel::<Durable>();
    std::thread::Builder::new()
        .name("fsync-log".into())
        .spawn(move || write_log(&file, mib << 20, &queued))?;
    Ok(bodies)
}

/// Writes whatever has queued in one `pwrite` and one `fdatasync`, then answers it.
fn write_log(file: &File, size: u64, queued: &mpsc::Receiver<Durable>) {
    let mut at = 0u64;
    let mut group = Vec::new();
    let mut waiting = Vec::new();
    while let Ok(first) = queued.recv() {
        group.clear();
        for (body, written) in std::iter::once(first).chain(queued.try_iter()) {
            group.extend_from_slice(&(body.len() as u32).to_le_bytes());
            group.extend_from_slice(&body);
            waiting.push(written);
        }
        if at + group.len() as u64 > size {
            at = 0;
        }
        if let Err(error) = file
            .write_all_at(&group, at)
            .and_then(|()| file.sync_data())
        {
            eprintln!("the fsync log failed: {error}");
            return;
        }
        at += group.len() as u64;
        for written in waiting.drain(..) {
            let _ = written.send(());
        }
    }
}

/// Opens the SQLite floor's database and starts its writer and checkpointer threads.
fn start_sqlite_inbox(
    path: &std::path::Path,
) -> Result<mpsc::Sender<Durable>, Box<dyn std::error::Error>> {
    let open = || -> rusqlite::Result<rusqlite::Connection> {
        let connection = rusqlite::Connection::open(path)?;
        connection.busy_timeout(std::time::Duration::from_secs(10))?;
        connection.execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; \
             PRAGMA wal_autocheckpoint = 16000;",
        )?;
        Ok(connection)
    };
    let writer = open()?;
    writer.execute_batch(
        "CREATE TABLE IF NOT EXISTS inbox (id INTEGER PRIMARY KEY, body BLOB NOT NULL)",
    )?;
    let checkpointer = open()?;
    std::thread::Builder::new()
        .name("sqlite-checkpoint".into())
        .spawn(move || loop {
            std::thread::sleep(std::time::Duration::from_millis(200));
            if let Err(error) =
                checkpointer.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
            {
                eprintln!("the SQLite checkpoint failed: {error}");
            }
        })?;
    let (bodies, queued) = mpsc::channel::<Durable>();
    std::thread::Builder::new()
        .name("sqlite-inbox".into())
        .spawn(move || {
            if let Err(error) = write_sqlite_inbox(&writer, &queued) {
                eprintln!("the SQLite inbox failed: {error}");
            }
        })?;
    Ok(bodies)
}

/// Commits whatever has queued in one transaction, then answers it.
fn write_sqlite_inbox(
    connection: &rusqlite::Connection,
    queued: &mpsc::Receiver<Durable>,
) -> rusqlite::Result<()> {
    let mut waiting = Vec::new();
    while let Ok(first) = queued.recv() {
        connection.execute_batch("BEGIN IMMEDIATE")?;
        {
            let mut insert = connection.prepare_cached("INSERT INTO inbox (body) VALUES (?1)")?;
            for (body, written) in std::iter::once(first).chain(queued.try_iter()) {
                insert.execute([body.as_ref()])?;
                waiting.push(written);
            }
        }
        connection.execute_batch("COMMIT")?;
        for written in waiting.drain(..) {
            let _ = written.send(());
        }
    }
    Ok(())
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    runtime.block_on(async move {
        let listener = match tokio::net::TcpListener::bind(&args.listen).await {
            Ok(listener) => listener,
            Err(error) => {
                eprintln!("cannot listen on {}: {error}", args.listen);
                return std::process::ExitCode::from(2);
            }
        };
        let bound = listener.local_addr().expect("the listening address");
        let route = "/webhooks/moota/{merchant_id}";
        // Where a durable 200 waits, if anywhere: the fsync log or the SQLite inbox.
        let durable = match (&args.fsync_log, &args.sqlite_inbox) {
            (None, None) => None,
            (_, Some(path)) => Some(
                start_sqlite_inbox(path)
                    .map_err(|e| format!("cannot open {}: {e}", path.display())),
            ),
            (Some(path), None) => Some(
                start_log(path, args.fsync_log_mib)
                    .map_err(|e| format!("cannot prepare {}: {e}", path.display())),
            ),
        };
        let app = match durable {
            None => Router::new().route(route, post(receive)),
            Some(Ok(queue)) => Router::new()
                .route(route, post(receive_durably))
                .with_state(queue),
            Some(Err(message)) => {
                eprintln!("{message}");
                return std::process::ExitCode::from(2);
            }
        };
        println!(
            "{}",
            serde_json::json!({"listening": format!("http://{bound}")})
        );
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(shutdown_signal())
            .await;
        match served {
            Ok(()) => std::process::ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("the HTTP server failed: {error}");
                std::process::ExitCode::FAILURE
            }
        }
    })
}

async fn shutdown_signal() {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("a SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        _ = terminate.recv() => {},
    }
}
