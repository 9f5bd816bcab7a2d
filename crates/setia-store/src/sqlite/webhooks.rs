//! Webhook groups on SQLite, written by rusqlite on a thread of their own.
//!
//! A group commit is the front door's whole cost, and through sqlx it was mostly not SQLite:
//! every statement, and every row an `INSERT … RETURNING` gives back, is a hop between a
//! tokio task and the connection's thread, and a multi-row insert of a new size is parsed
//! anew. Here the thread runs BEGIN, one cached statement per row and COMMIT back to back.
//!
//! The thread gathers its own groups: each request puts its call straight on the thread's
//! queue (`WebhookQueue`), and the thread takes whatever has queued, writes it in one
//! transaction and answers each caller. Nothing stands between a commit and the next group;
//! a gathering task on the tokio runtime left the thread idle while that task waited for a
//! busy worker to run it (bench/ingest/README.md).
//!
//! The thread's connection is the second writer beside sqlx's, and the webhooks go first:
//! when sqlx's writer holds SQLite's write lock, this connection retries every
//! [`RETRY_EVERY`], while sqlx's connections wait on SQLite's own busy timeout, which backs
//! off from 1 ms to 100 ms. A worker batch therefore waits for a gap between webhook groups,
//! never the other way round, and a flood of webhooks delays the ledger, not the 200s.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::Path;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rusqlite::{params, Connection, OptionalExtension};
use tokio::sync::oneshot;

use crate::MAX_WEBHOOK_GROUP as MAX_GROUP;
use crate::{CallOutcome, StoreError, StoreResult, WebhookCall, WebhookReply};

/// What the thread is asked to do, in the order asked.
enum Job {
    /// One call for the next group (`WebhookQueue::send`).
    Queued(WebhookCall, Option<WebhookReply>),
    /// Writes a given group in one transaction (`Store::record_webhook_calls`).
    Write(
        Arc<[WebhookCall]>,
        oneshot::Sender<rusqlite::Result<Vec<CallOutcome>>>,
    ),
    /// Answered once every job before it is done.
    Barrier(oneshot::Sender<()>),
    /// Reads the inbox rows the writer does not know yet (`Store::prepare_for_webhooks`).
    ReadKnownBodies(oneshot::Sender<rusqlite::Result<()>>),
    /// Ends the thread once the jobs before it are done; later ones are dropped unanswered.
    Stop,
}

/// The way from a request to the webhook writer thread, with no task between: the thread
/// gathers whatever calls have queued into its next group commit.
///
/// The queue has no bound of its own. Accepted calls each wait for their answer, so they are
/// as many as the requests in flight; rejected calls' audit rows are limited by the audit
/// budget per merchant and minute before they get here.
#[derive(Clone)]
pub struct WebhookQueue {
    jobs: mpsc::Sender<Job>,
}

impl WebhookQueue {
    /// Queues a call for the next group. Its outcome goes to `reply` once the group is
    /// committed; `None` for calls whose outcome nobody waits for (rejected calls).
    pub fn send(&self, call: WebhookCall, reply: Option<WebhookReply>) -> StoreResult<()> {
        self.jobs
            .send(Job::Queued(call, reply))
            .map_err(|_| StoreError::WriterStopped)
    }

    /// Waits until every call queued before it is written (or has failed).
    pub async fn written(&self) -> StoreResult<()> {
        let (done, finished) = oneshot::channel();
        self.jobs
            .send(Job::Barrier(done))
            .map_err(|_| StoreError::WriterStopped)?;
        finished.await.map_err(|_| StoreError::WriterStopped)
    }
}

/// The thread that writes webhook groups, and the way to it.
pub(super) struct WebhookWriter {
    /// The way in and the thread; `None` once stopped.
    running: Mutex<Option<(mpsc::Sender<Job>, JoinHandle<()>)>>,
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
        let (jobs, received) = mpsc::channel::<Job>();
        let thread = std::thread::Builder::new()
            .name("setia-webhook-writer".into())
            .spawn(move || work(&connection, &received))
            .map_err(StoreError::StartWriter)?;
        Ok(WebhookWriter {
            running: Mutex::new(Some((jobs, thread))),
        })
    }

    /// The queue requests put their calls on; `None` once stopped.
    pub(super) fn queue(&self) -> Option<WebhookQueue> {
        let running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        running
            .as_ref()
            .map(|(jobs, _)| WebhookQueue { jobs: jobs.clone() })
    }

    /// Writes the group in one transaction.
    pub(super) async fn write(&self, calls: Arc<[WebhookCall]>) -> StoreResult<Vec<CallOutcome>> {
        self.ask(|reply| Job::Write(calls, reply)).await
    }

    /// Reads every inbox body the writer does not know yet. Each group catches up by itself
    /// too; a server does this before it listens, so that its first webhook does not wait.
    pub(super) async fn read_known_bodies(&self) -> StoreResult<()> {
        self.ask(Job::ReadKnownBodies).await
    }

    async fn ask<T>(
        &self,
        job: impl FnOnce(oneshot::Sender<rusqlite::Result<T>>) -> Job,
    ) -> StoreResult<T> {
        let (reply, answer) = oneshot::channel();
        let sent = match &*self.running.lock().unwrap_or_else(|e| e.into_inner()) {
            Some((jobs, _)) => jobs.send(job(reply)).is_ok(),
            None => false,
        };
        if !sent {
            return Err(StoreError::WriterStopped);
        }
        Ok(answer.await.map_err(|_| StoreError::WriterStopped)??)
    }

    /// Stops the thread and closes its connection; jobs already sent are done first. Queues
    /// handed out may outlive the writer: what they send after this fails.
    pub(super) async fn stop(&self) {
        let running = self
            .running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some((jobs, thread)) = running {
            let _ = jobs.send(Job::Stop);
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
    }
}

/// The thread's loop: jobs in order, queued calls gathered into groups.
fn work(connection: &Connection, jobs: &mpsc::Receiver<Job>) {
    let mut known = KnownBodies::default();
    let mut next = None;
    loop {
        let job = match next.take() {
            Some(job) => job,
            None => match jobs.recv() {
                Ok(job) => job,
                Err(_) => return,
            },
        };
        match job {
            Job::Queued(call, reply) => {
                let (group, after) = gather((call, reply), jobs);
                next = after;
                write_queued(connection, &mut known, group);
            }
            Job::Write(calls, reply) => {
                let _ = reply.send(write_group(connection, &mut known, &calls));
            }
            Job::Barrier(done) => {
                let _ = done.send(());
            }
            Job::ReadKnownBodies(reply) => {
                let _ = reply.send(known.catch_up(connection));
            }
            Job::Stop => return,
        }
    }
}

type Queued = (WebhookCall, Option<WebhookReply>);

/// The first call and whatever calls have queued behind it, up to [`MAX_GROUP`] or the first
/// job of another kind, which comes back to be done after the group.
fn gather(first: Queued, jobs: &mpsc::Receiver<Job>) -> (Vec<Queued>, Option<Job>) {
    let mut group = vec![first];
    while group.len() < MAX_GROUP {
        match jobs.try_recv() {
            Ok(Job::Queued(call, reply)) => group.push((call, reply)),
            Ok(other) => return (group, Some(other)),
            Err(_) => break,
        }
    }
    (group, None)
}

/// Writes gathered calls in one transaction and answers each caller. When the group fails,
/// each call is written alone, so that one bad call cannot fail its neighbours.
fn write_queued(connection: &Connection, known: &mut KnownBodies, group: Vec<Queued>) {
    let started = Instant::now();
    let size = group.len();
    let (calls, replies): (Vec<WebhookCall>, Vec<Option<WebhookReply>>) = group.into_iter().unzip();
    let outcomes: Vec<rusqlite::Result<CallOutcome>> = match write_group(connection, known, &calls)
    {
        Ok(outcomes) => outcomes.into_iter().map(Ok).collect(),
        Err(error) if size == 1 => vec![Err(error)],
        Err(error) => {
            tracing::warn!(%error, calls = size, "group commit failed; retrying one by one");
            calls
                .iter()
                .map(|call| write_alone(connection, known, call))
                .collect()
        }
    };
    for ((call, reply), outcome) in calls.iter().zip(replies).zip(outcomes) {
        if let Err(error) = &outcome {
            tracing::error!(%error, merchant = %call.merchant, "a webhook call could not be stored");
        }
        answer(reply, outcome.map_err(StoreError::from));
    }
    metrics::histogram!("setia_inbox_group_calls").record(size as f64);
    metrics::histogram!("setia_inbox_group_seconds").record(started.elapsed().as_secs_f64());
}

fn write_alone(
    connection: &Connection,
    known: &mut KnownBodies,
    call: &WebhookCall,
) -> rusqlite::Result<CallOutcome> {
    // One call, one outcome.
    Ok(write_group(connection, known, std::slice::from_ref(call))?[0])
}

fn answer(reply: Option<WebhookReply>, outcome: StoreResult<CallOutcome>) {
    if let Some(reply) = reply {
        // The request may have gone (client hung up); its row is committed all the same.
        let _ = reply.send(outcome);
    }
}

/// Every inbox body's (merchant, digest), in memory: the duplicate check.
///
/// A UNIQUE index on the two put a random page of its B-tree into the WAL for every new
/// body, about 40% of the writer's cost (bench/ingest/README.md). The invariant that makes
/// memory enough: only webhook writers add inbox rows, each inside `BEGIN IMMEDIATE`, and
/// nothing deletes them. So a writer that, once it holds the write lock, reads the rows above
/// the highest id it knows, knows every body in the inbox, even when another process writes
/// the same file.
#[derive(Default)]
struct KnownBodies {
    /// A hash of (merchant, digest) → the row that has it. Different bodies can share a
    /// hash, so a match is checked against the row.
    rows: HashMap<u64, i64>,
    /// The other rows whose hash is already in `rows` (rare).
    colliding: HashMap<u64, Vec<i64>>,
    /// Every inbox row up to this id is known.
    through_id: i64,
}

impl KnownBodies {
    fn key(merchant: &str, sha256: &str) -> u64 {
        let mut hasher = DefaultHasher::new();
        (merchant, sha256).hash(&mut hasher);
        hasher.finish()
    }

    fn rows_with(&self, key: u64) -> impl Iterator<Item = i64> + '_ {
        let first = self.rows.get(&key).copied();
        let others = self.colliding.get(&key).into_iter().flatten().copied();
        first.into_iter().chain(others)
    }

    fn add(&mut self, key: u64, id: i64) {
        // Ids are unique, so a different one already under the key means a collision.
        if *self.rows.entry(key).or_insert(id) != id {
            self.colliding.entry(key).or_default().push(id);
        }
        self.through_id = self.through_id.max(id);
    }

    /// Adds the rows committed since the last call, by this connection or any other.
    fn catch_up(&mut self, connection: &Connection) -> rusqlite::Result<()> {
        let mut newer = connection.prepare_cached(
            "SELECT id, merchant_id, body_sha256 FROM inbox WHERE id > ?1 ORDER BY id",
        )?;
        let mut rows = newer.query([self.through_id])?;
        while let Some(row) = rows.next()? {
            let id: i64 = row.get(0)?;
            let key = Self::key(row.get_ref(1)?.as_str()?, row.get_ref(2)?.as_str()?);
            self.add(key, id);
        }
        Ok(())
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
    known: &mut KnownBodies,
    calls: &[WebhookCall],
) -> rusqlite::Result<Vec<CallOutcome>> {
    connection.execute_batch("BEGIN IMMEDIATE")?;
    let mut added = Vec::new();
    let written = known
        .catch_up(connection)
        .and_then(|()| insert_group(connection, known, &mut added, calls))
        .and_then(|outcomes| connection.execute_batch("COMMIT").map(|()| outcomes));
    match &written {
        // Only committed rows become known: a rolled-back body may come again.
        Ok(_) => added.into_iter().for_each(|(key, id)| known.add(key, id)),
        // A failed insert, or a failed COMMIT, leaves the transaction open; the next group
        // could not begin on this connection.
        Err(_) if !connection.is_autocommit() => {
            let _ = connection.execute_batch("ROLLBACK");
        }
        Err(_) => {}
    }
    written
}

/// The first call of a new body receives it; every other call with that body, in this group
/// or before it, is a duplicate of the stored row. Every call gets its audit row. The rows
/// this group adds go to `added`, as (key, id), for `known` once they are committed.
fn insert_group(
    connection: &Connection,
    known: &KnownBodies,
    added: &mut Vec<(u64, i64)>,
    calls: &[WebhookCall],
) -> rusqlite::Result<Vec<CallOutcome>> {
    let mut insert = connection.prepare_cached(
        "INSERT INTO inbox (merchant_id, body, body_sha256, body_size, user_agent, moota_user, \
         moota_webhook, remote_addr, received_at_us) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?;
    let mut same_body = connection.prepare_cached(
        "SELECT 1 FROM inbox WHERE id = ?1 AND merchant_id = ?2 AND body_sha256 = ?3",
    )?;
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
                let merchant = inbox.merchant.as_str();
                let sha256 = call.body_sha256.as_deref().unwrap_or_default();
                let key = KnownBodies::key(merchant, sha256);
                let in_group = added.iter().filter(|(k, _)| *k == key).map(|(_, id)| *id);
                let candidates = known.rows_with(key).chain(in_group);
                match stored_row(&mut same_body, candidates, merchant, sha256)? {
                    Some(inbox_id) => CallOutcome::Duplicate { inbox_id },
                    None => {
                        // No RETURNING: SQLite knows the rowid it gave the row.
                        insert.execute(params![
                            merchant,
                            inbox.body.as_ref(),
                            sha256,
                            inbox.body.len() as i64,
                            inbox.user_agent,
                            inbox.moota_user,
                            inbox.moota_webhook,
                            call.remote_addr,
                            received_at,
                        ])?;
                        let inbox_id = connection.last_insert_rowid();
                        added.push((key, inbox_id));
                        CallOutcome::Received { inbox_id }
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

/// The first of `candidates` (rows whose hash matches) that holds this very body.
fn stored_row(
    same_body: &mut rusqlite::CachedStatement<'_>,
    candidates: impl Iterator<Item = i64>,
    merchant: &str,
    sha256: &str,
) -> rusqlite::Result<Option<i64>> {
    for id in candidates {
        let same = same_body
            .query_row(params![id, merchant, sha256], |_| Ok(()))
            .optional()?;
        if same.is_some() {
            return Ok(Some(id));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::*;
    use crate::InboxBody;

    fn inbox() -> Connection {
        let connection = Connection::open_in_memory().unwrap();
        connection
            .execute_batch(
                "CREATE TABLE inbox (id INTEGER PRIMARY KEY, merchant_id TEXT, body BLOB, \
                 body_sha256 TEXT, body_size INTEGER, user_agent TEXT, moota_user TEXT, \
                 moota_webhook TEXT, remote_addr TEXT, received_at_us INTEGER); \
                 CREATE TABLE webhook_audit (merchant_id TEXT, received_at_us INTEGER, \
                 remote_addr TEXT, status INTEGER, reason TEXT, body_sha256 TEXT, \
                 body_size INTEGER, inbox_id INTEGER);",
            )
            .unwrap();
        connection
    }

    fn call(body: &str) -> WebhookCall {
        let merchant = setia_core::MerchantId::from_random_bytes([7; 20]);
        WebhookCall {
            merchant: merchant.to_string(),
            received_at: Utc::now(),
            remote_addr: "10.0.0.1".into(),
            status: 200,
            reason: String::new(),
            // Not a real digest: the check compares whatever the call carries.
            body_sha256: Some(format!("digest-of-{body}")),
            body_size: body.len() as u64,
            inbox: Some(InboxBody {
                merchant,
                body: bytes::Bytes::copy_from_slice(body.as_bytes()),
                user_agent: None,
                moota_user: None,
                moota_webhook: None,
            }),
        }
    }

    /// The writer takes every call queued behind the first into its group, and stops at a job
    /// of another kind, which must wait until the calls before it are written.
    #[test]
    fn a_group_is_what_has_queued_up_to_another_job() {
        let (jobs, queue) = mpsc::channel();
        for body in ["b", "c"] {
            jobs.send(Job::Queued(call(body), None)).unwrap();
        }
        let (barrier, _) = oneshot::channel();
        jobs.send(Job::Barrier(barrier)).unwrap();
        jobs.send(Job::Queued(call("d"), None)).unwrap();

        let (group, next) = gather((call("a"), None), &queue);
        let bodies: Vec<_> = group
            .iter()
            .map(|(call, _)| call.body_sha256.clone().unwrap())
            .collect();
        assert_eq!(bodies, ["digest-of-a", "digest-of-b", "digest-of-c"]);
        assert!(matches!(next, Some(Job::Barrier(_))));

        let (group, next) = match queue.try_recv().unwrap() {
            Job::Queued(call, reply) => gather((call, reply), &queue),
            _ => panic!("the call after the barrier was not next"),
        };
        assert_eq!(group.len(), 1);
        assert!(next.is_none());
    }

    /// A group never grows past MAX_GROUP; the rest wait for the next one.
    #[test]
    fn a_group_stops_at_its_largest() {
        let (jobs, queue) = mpsc::channel();
        for _ in 0..MAX_GROUP + 3 {
            jobs.send(Job::Queued(call("x"), None)).unwrap();
        }
        let (group, next) = gather((call("first"), None), &queue);
        assert_eq!(group.len(), MAX_GROUP);
        assert!(next.is_none());
        assert_eq!(queue.try_iter().count(), 4);
    }

    /// Two bodies whose hashes collide are told apart by the row, and each is then found.
    #[test]
    fn bodies_whose_hashes_collide_stay_apart() {
        let connection = inbox();
        let mut known = KnownBodies::default();
        let first = write_group(&connection, &mut known, &[call("a")]).unwrap();
        let [CallOutcome::Received { inbox_id: a }] = first[..] else {
            panic!("{first:?}")
        };
        // Pretend that body b hashes like body a.
        let b = call("b");
        let b_key = KnownBodies::key(b.merchant.as_str(), b.body_sha256.as_deref().unwrap());
        known.rows.insert(b_key, a);

        let second = write_group(&connection, &mut known, &[b.clone(), b.clone()]).unwrap();
        let [CallOutcome::Received { inbox_id: b_id }, CallOutcome::Duplicate { inbox_id }] =
            second[..]
        else {
            panic!("{second:?}")
        };
        assert_eq!(inbox_id, b_id);
        assert_eq!(known.colliding.get(&b_key), Some(&vec![b_id]));

        let third = write_group(&connection, &mut known, &[b, call("a")]).unwrap();
        assert_eq!(
            third,
            vec![
                CallOutcome::Duplicate { inbox_id: b_id },
                CallOutcome::Duplicate { inbox_id: a }
            ]
        );
    }
}
