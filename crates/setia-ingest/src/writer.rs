//! Group commit: webhook calls from all requests queue here, and one task writes whatever
//! has gathered in ONE transaction, then answers each request. One fsync serves many
//! webhooks, and a 200 still means the body is on disk.

use std::sync::Arc;
use std::time::Duration;

use setia_store::{CallOutcome, Store, WebhookCall};
use tokio::sync::{mpsc, oneshot, Mutex, Notify};
use tokio::task::JoinHandle;

use crate::audit_budget::AuditBudget;

/// The most calls one transaction takes; more wait for the next.
const MAX_GROUP: usize = 512;
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

pub struct InboxWriter {
    sender: Mutex<Option<mpsc::Sender<Job>>>,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl InboxWriter {
    pub(crate) fn start(
        store: Arc<dyn Store>,
        budget: AuditBudget,
        notify: Option<Arc<Notify>>,
    ) -> InboxWriter {
        let (sender, receiver) = mpsc::channel(16 * MAX_GROUP);
        let task = tokio::spawn(run(store, budget, receiver, notify));
        InboxWriter {
            sender: Mutex::new(Some(sender)),
            task: Mutex::new(Some(task)),
        }
    }

    async fn sender(&self) -> Option<mpsc::Sender<Job>> {
        self.sender.lock().await.clone()
    }

    /// Stores a verified call and waits until it is committed.
    pub(crate) async fn commit(&self, call: WebhookCall) -> Result<CallOutcome, NotStored> {
        let (reply, answer) = oneshot::channel();
        let sender = self.sender().await.ok_or(NotStored)?;
        sender
            .send(Job::Call {
                call,
                reply: Some(reply),
            })
            .await
            .map_err(|_| NotStored)?;
        answer.await.map_err(|_| NotStored)?
    }

    /// Queues the audit row of a rejected call without waiting for it.
    pub(crate) async fn audit(&self, call: WebhookCall) {
        if let Some(sender) = self.sender().await {
            if sender.try_send(Job::Call { call, reply: None }).is_err() {
                tracing::warn!("webhook audit queue full; a rejected call was not logged");
            }
        }
    }

    /// Waits until every call queued so far is written, with the suppressed counts.
    pub(crate) async fn flush(&self) {
        let (done, finished) = oneshot::channel();
        if let Some(sender) = self.sender().await {
            if sender.send(Job::Flush(done)).await.is_ok() {
                let _ = finished.await;
            }
        }
    }

    pub(crate) async fn shutdown(&self) {
        self.sender.lock().await.take();
        if let Some(task) = self.task.lock().await.take() {
            let _ = task.await;
        }
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
    let counts = budget.take_suppressed();
    if counts.is_empty() {
        return;
    }
    if let Err(error) = store.add_suppressed_calls(&counts).await {
        tracing::error!(%error, "could not write the counts of suppressed audit rows");
    }
}
