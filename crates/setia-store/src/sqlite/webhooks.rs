//! Webhook groups on SQLite, written by rusqlite on a thread of their own.
//!
//! A group commit is the front door's whole cost, and through sqlx it was mostly not SQLite:
//! every statement, and every row an `INSERT … RETURNING` gives back, is a hop between a
//! tokio task and the connection's thread, and a multi-row insert of a new size is parsed
//! anew. Here the group is one message to a thread that runs BEGIN, one cached statement
//! per row and COMMIT back to back, and one message answers it.
//!
//! The thread's connection is the second writer beside sqlx's, and the webhooks go first:
//! when sqlx's writer holds SQLite's write lock, this connection retries every
//! [`RETRY_EVERY`], while sqlx's connections wait on SQLite's own busy timeout, which backs
//! off from 1 ms to 100 ms. A worker batch therefore waits for a gap between webhook groups,
//! never the other way round, and a flood of webhooks delays the ledger, not the 200s.

use std::path::Path;
use std::sync::mpsc;
use std::sync::Mutex;
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::{params, Connection};
use tokio::sync::oneshot;

use crate::{CallOutcome, StoreError, StoreResult, WebhookCall};

type Reply = oneshot::Sender<rusqlite::Result<Vec<CallOutcome>>>;

/// The thread that writes webhook groups, and the way to it.
pub(super) struct WebhookWriter {
    /// The way in and the thread; `None` once stopped.
    running: Mutex<Option<(mpsc::Sender<(Vec<WebhookCall>, Reply)>, JoinHandle<()>)>>,
}

impl WebhookWriter {
    /// Opens the connection (with the pragmas of sqlx's writer) and starts the thread.
    pub(super) fn start(path: &Path, cache_kib: i64) -> StoreResult<WebhookWriter> {
        let connection = Connection::open(path)?;
        connection.busy_handler(Some(retry_soon))?;
        // The same durability as every other connection's.
        for (name, value) in super::CONNECTION_PRAGMAS {
            connection.execute_batch(&format!("PRAGMA {name} = {value}"))?;
        }
        connection.execute_batch(&format!("PRAGMA cache_size = -{cache_kib}"))?;
        let (jobs, received) = mpsc::channel::<(Vec<WebhookCall>, Reply)>();
        let thread = std::thread::Builder::new()
            .name("setia-webhook-writer".into())
            .spawn(move || {
                for (calls, reply) in received {
                    let _ = reply.send(write_group(&connection, &calls));
                }
            })
            .map_err(StoreError::StartWriter)?;
        Ok(WebhookWriter {
            running: Mutex::new(Some((jobs, thread))),
        })
    }

    /// Writes the group in one transaction.
    pub(super) async fn write(&self, calls: Vec<WebhookCall>) -> StoreResult<Vec<CallOutcome>> {
        let (reply, answer) = oneshot::channel();
        let sent = match &*self.running.lock().unwrap_or_else(|e| e.into_inner()) {
            Some((jobs, _)) => jobs.send((calls, reply)).is_ok(),
            None => false,
        };
        if !sent {
            return Err(StoreError::WriterStopped);
        }
        Ok(answer.await.map_err(|_| StoreError::WriterStopped)??)
    }

    /// Stops the thread and closes its connection; groups already sent are written first.
    pub(super) async fn stop(&self) {
        let running = self
            .running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some((jobs, thread)) = running {
            // Without a sender the thread's loop ends, once it has written what was sent.
            drop(jobs);
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
    }
}

/// How often a webhook group retries SQLite's write lock while another connection holds it.
const RETRY_EVERY: Duration = Duration::from_micros(50);
/// How long it tries, counted in retries (sleeps overshoot, so it is at least this), before
/// the group fails and its callers get a 503 to retry later.
const GIVE_UP_AFTER: Duration = Duration::from_secs(10);

/// SQLite's busy handler: `attempt` counts the calls for this lock, from 0.
fn retry_soon(attempt: i32) -> bool {
    let waited = RETRY_EVERY * u32::try_from(attempt).unwrap_or(u32::MAX);
    if waited >= GIVE_UP_AFTER {
        return false;
    }
    std::thread::sleep(RETRY_EVERY);
    true
}

fn write_group(
    connection: &Connection,
    calls: &[WebhookCall],
) -> rusqlite::Result<Vec<CallOutcome>> {
    connection.execute_batch("BEGIN IMMEDIATE")?;
    let written = insert_group(connection, calls)
        .and_then(|outcomes| connection.execute_batch("COMMIT").map(|()| outcomes));
    // A failed insert, or a failed COMMIT, leaves the transaction open; the next group could
    // not begin on this connection.
    if written.is_err() && !connection.is_autocommit() {
        let _ = connection.execute_batch("ROLLBACK");
    }
    written
}

/// The first call of a new body receives it; every other call with that body, in this group
/// or before it, is a duplicate of the stored row. Every call gets its audit row.
fn insert_group(
    connection: &Connection,
    calls: &[WebhookCall],
) -> rusqlite::Result<Vec<CallOutcome>> {
    let mut insert = connection.prepare_cached(
        "INSERT INTO inbox (merchant_id, body, body_sha256, body_size, user_agent, moota_user, \
         moota_webhook, remote_addr, received_at_us) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) \
         ON CONFLICT (merchant_id, body_sha256) DO NOTHING",
    )?;
    let mut existing = connection
        .prepare_cached("SELECT id FROM inbox WHERE merchant_id = ?1 AND body_sha256 = ?2")?;
    let mut audit = connection.prepare_cached(
        "INSERT INTO webhook_audit (merchant_id, received_at_us, remote_addr, status, reason, \
         body_sha256, body_size, inbox_id) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?;
    let mut outcomes = Vec::with_capacity(calls.len());
    for call in calls {
        let received_at = call.received_at.timestamp_micros();
        let outcome = match &call.inbox {
            None => CallOutcome::Audited,
            Some(inbox) => {
                let sha256 = call.body_sha256.as_deref().unwrap_or_default();
                // No RETURNING: the changed-row count says whether the row went in (10%
                // fewer microseconds a call), and SQLite knows the rowid it gave it.
                let added = insert.execute(params![
                    inbox.merchant.as_str(),
                    inbox.body,
                    sha256,
                    inbox.body.len() as i64,
                    inbox.user_agent,
                    inbox.moota_user,
                    inbox.moota_webhook,
                    call.remote_addr,
                    received_at,
                ])?;
                if added == 1 {
                    CallOutcome::Received {
                        inbox_id: connection.last_insert_rowid(),
                    }
                } else {
                    CallOutcome::Duplicate {
                        inbox_id: existing
                            .query_row(params![inbox.merchant.as_str(), sha256], |row| {
                                row.get(0)
                            })?,
                    }
                }
            }
        };
        let (status, reason, inbox_id) = match outcome {
            CallOutcome::Received { inbox_id } => (200, "received", Some(inbox_id)),
            CallOutcome::Duplicate { inbox_id } => (200, "duplicate", Some(inbox_id)),
            CallOutcome::Audited => (i64::from(call.status), call.reason.as_str(), None),
        };
        audit.execute(params![
            call.merchant,
            received_at,
            call.remote_addr,
            status,
            reason,
            call.body_sha256,
            call.body_size as i64,
            inbox_id,
        ])?;
        outcomes.push(outcome);
    }
    Ok(outcomes)
}
