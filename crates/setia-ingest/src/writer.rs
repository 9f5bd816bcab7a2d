//! Group commit: webhook calls from all requests are written in groups, whatever has gathered
//! in ONE transaction, and each request is answered after its group's commit. One fsync
//! serves many webhooks, and a 200 still means the body is on disk.
//!
//! Where the store gathers groups itself (SQLite's writer thread), requests hand their calls
//! straight to it; otherwise (PostgreSQL) a task here gathers them and writes each group.

use std::sync::Arc;
use std::time::Duration;

use setia_store::{CallOutcome, Store, WebhookCall, WebhookQueue, MAX_WEBHOOK_GROUP as MAX_GROUP};
use tokio::sync::{mpsc, oneshot, Mutex, Notify};
use tokio::task::JoinHandle;

use crate::audit_budget::AuditBudget;

/// How often counts of suppressed audit rows are written.
const SUPPRESSED_FLUSH_EVERY: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the webhook could not be stored; the sender should retry")]
pub struct NotStored;

enum Job {
    Call {
        call: WebhookCall,
        /// None for rejected calls: nobody waits for their audit row.
        reply: Reply,
    },
    /// Answered once everything queued before it is written.
    Flush(oneshot::Sender<()>),
}

/// How calls reach the store.
pub struct InboxWriter {
    way: Way,
    store: Arc<dyn Store>,
    budget: AuditBudget,
    notify: Option<Arc<Notify>>,
}

enum Way {
    /// The store gathers groups itself (SQLite's writer thread): each request hands its call
    /// straight to it, and a small task writes the suppressed counts now and then.
    Direct {
        queue: WebhookQueue,
        suppressed: JoinHandle<()>,
    },
    /// A task here gathers whatever has queued and writes it as one group.
    Gathered {
        sender: Mutex<Option<mpsc::Sender<Job>>>,
        task: Mutex<Option<JoinHandle<()>>>,
    },
}

impl InboxWriter {
    pub(crate) fn start(
        store: Arc<dyn Store>,
        budget: AuditBudget,
        notify: Option<Arc<Notify>>,
    ) -> InboxWriter {
        let way = match store.webhook_queue() {
            Some(queue) => Way::Direct {
                queue,
                suppressed: tokio::spawn(write_suppressed_every(store.clone(), budget.clone())),
            },
            None => {
                let (sender, receiver) = mpsc::channel(16 * MAX_GROUP);
                let task =
                    tokio::spawn(run(store.clone(), budget.clone(), receiver, notify.clone()));
                Way::Gathered {
                    sender: Mutex::new(Some(sender)),
                    task: Mutex::new(Some(task)),
                }
            }
        };
        InboxWriter {
            way,
            store,
            budget,
            notify,
        }
    }

    /// Stores a verified call and waits until it is committed.
    pub(crate) async fn commit(&self, call: WebhookCall) -> Result<CallOutcome, NotStored> {
        match &self.way {
            Way::Direct { queue, .. } => {
                let (reply, answer) = oneshot::channel();
                queue.send(call, Some(reply)).map_err(|_| NotStored)?;
                // The store has logged why a call failed.
                let outcome = answer
                    .await
                    .map_err(|_| NotStored)?
                    .map_err(|_| NotStored)?;
                if let (CallOutcome::Received { .. }, Some(notify)) = (outcome, &self.notify) {
                    notify.notify_one();
                }
                Ok(outcome)
            }
            Way::Gathered { sender, .. } => {
                let (reply, answer) = oneshot::channel();
                let sender = sender.lock().await.clone().ok_or(NotStored)?;
                sender
                    .send(Job::Call {
                        call,
                        reply: Some(reply),
                    })
                    .await
                    .map_err(|_| NotStored)?;
                answer.await.map_err(|_| NotStored)?
            }
        }
    }

    /// Queues the audit row of a rejected call without waiting for it.
    pub(crate) async fn audit(&self, call: WebhookCall) {
        let queued = match &self.way {
            Way::Direct { queue, .. } => queue.send(call, None).is_ok(),
            Way::Gathered { sender, .. } => match sender.lock().await.as_ref() {
                Some(sender) => sender.try_send(Job::Call { call, reply: None }).is_ok(),
                None => false,
            },
        };
        if !queued {
            tracing::warn!("webhook audit queue full or closed; a rejected call was not logged");
        }
    }

    /// Waits until every call queued so far is written, with the suppressed counts.
    pub(crate) async fn flush(&self) {
        match &self.way {
            Way::Direct { queue, .. } => {
                let _ = queue.written().await;
                write_suppressed(&*self.store, &self.budget).await;
            }
            Way::Gathered { sender, .. } => {
                let (done, finished) = oneshot::channel();
                let sender = sender.lock().await.clone();
                if let Some(sender) = sender {
                    if sender.send(Job::Flush(done)).await.is_ok() {
                        let _ = finished.await;
                    }
                }
            }
        }
    }

    pub(crate) async fn shutdown(&self) {
        match &self.way {
            Way::Direct { suppressed, .. } => {
                suppressed.abort();
                // What is left is what a flush does: the queued calls, then the counts.
                self.flush().await;
            }
            Way::Gathered { sender, task } => {
                sender.lock().await.take();
                if let Some(task) = task.lock().await.take() {
                    let _ = task.await;
                }
            }
        }
    }
}

impl Drop for InboxWriter {
    /// The suppressed counts' task holds the store: it ends with the writer.
    fn drop(&mut self) {
        if let Way::Direct { suppressed, .. } = &self.way {
            suppressed.abort();
        }
    }
}

/// Beside a store that gathers its own groups: the counts of suppressed audit rows.
async fn write_suppressed_every(store: Arc<dyn Store>, budget: AuditBudget) {
    let mut tick = tokio::time::interval(SUPPRESSED_FLUSH_EVERY);
    loop {
        tick.tick().await;
        write_suppressed(&*store, &budget).await;
    }
}

async fn run(
    store: Arc<dyn Store>,
    budget: AuditBudget,
    mut receiver: mpsc::Receiver<Job>,
    notify: Option<Arc<Notify>>,
) {
    let mut flush = tokio::time::interval(SUPPRESSED_FLUSH_EVERY);
    loop {
        let first = tokio::select! {
            job = receiver.recv() => match job {
                Some(job) => job,
                None => break,
            },
            _ = flush.tick() => {
                write_suppressed(&*store, &budget).await;
                continue;
            }
        };
        let mut group = Vec::new();
        let mut flushes = Vec::new();
        let mut next = Some(first);
        while let Some(job) = next.take() {
            match job {
                Job::Call { call, reply } => group.push((call, reply)),
                Job::Flush(done) => flushes.push(done),
            }
            if group.len() < MAX_GROUP {
                next = receiver.try_recv().ok();
            }
        }
        let size = group.len();
        let started = std::time::Instant::now();
        if !group.is_empty() && write_group(&*store, group).await {
            if let Some(notify) = &notify {
                notify.notify_one();
            }
        }
        if size > 0 {
            metrics::histogram!("setia_inbox_group_calls").record(size as f64);
            metrics::histogram!("setia_inbox_group_seconds")
                .record(started.elapsed().as_secs_f64());
        }
        if !flushes.is_empty() {
            write_suppressed(&*store, &budget).await;
            for done in flushes {
                let _ = done.send(());
            }
        }
    }
    write_suppressed(&*store, &budget).await;
}

/// Writes a group and answers its callers; true when it added an inbox row.
async fn write_group(store: &dyn Store, group: Vec<(WebhookCall, Reply)>) -> bool {
    let (calls, replies): (Vec<WebhookCall>, Vec<Reply>) = group.into_iter().unzip();
    let calls: Arc<[WebhookCall]> = calls.into();
    match store.record_webhook_calls(calls.clone()).await {
        Ok(outcomes) => {
            let received = outcomes
                .iter()
                .any(|o| matches!(o, CallOutcome::Received { .. }));
            for (reply, outcome) in replies.into_iter().zip(outcomes) {
                answer(reply, Ok(outcome));
            }
            received
        }
        Err(error) if calls.len() > 1 => {
            // One bad call must not fail its neighbours: write them one by one.
            tracing::warn!(%error, calls = calls.len(), "group commit failed; retrying one by one");
            let mut received = false;
            for (call, reply) in calls.iter().zip(replies) {
                let outcome = store.record_webhook_calls([call.clone()].into()).await;
                received |= matches!(outcome.as_deref(), Ok([CallOutcome::Received { .. }]));
                answer(
                    reply,
                    outcome
                        .map(|mut o| o.remove(0))
                        .map_err(|e| failed(call, e)),
                );
            }
            received
        }
        Err(error) => {
            for (call, reply) in calls.iter().zip(replies) {
                answer(reply, Err(failed(call, &error)));
            }
            false
        }
    }
}

type Reply = Option<oneshot::Sender<Result<CallOutcome, NotStored>>>;

fn failed(call: &WebhookCall, error: impl std::fmt::Display) -> NotStored {
    tracing::error!(%error, merchant = %call.merchant, "a webhook call could not be stored");
    NotStored
}

fn answer(reply: Reply, outcome: Result<CallOutcome, NotStored>) {
    if let Some(reply) = reply {
        // The request may have gone (client hung up); its row is committed all the same.
        let _ = reply.send(outcome);
    }
}

async fn write_suppressed(store: &dyn Store, budget: &AuditBudget) {
    let _writing = budget.writing.lock().await;
    let counts = budget.take_suppressed();
    if counts.is_empty() {
        return;
    }
    if let Err(error) = store.add_suppressed_calls(&counts).await {
        tracing::error!(%error, "could not write the counts of suppressed audit rows");
    }
}
