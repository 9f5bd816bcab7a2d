//! The worker: turns inbox rows into the customer ledger and the points ledger.
//!
//! Each step claims a batch of inbox rows under a lease, parses each body and applies the
//! batch in ONE transaction (per row: mutations, attribution, purchases, points, the thank-you
//! outbox row, the row marked done); if that fails, each row gets a transaction of its own.
//! A body that cannot be parsed is quarantined with its error; a database failure sends the
//! row back with a backoff. A crash mid-row leaves the row pending, and it
//! is claimed again when its lease runs out.
//!
//! Architecture invariant: the worker holds no transaction open across anything but the
//! store call that applies one row, and decides nothing itself: rules live in setia-core,
//! writes in setia-store. `run_once` is the single step tests drive.

pub mod supervise;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use setia_core::moota::parse_mutations_at;
use setia_core::moota::Mutation;
use setia_store::ledger::{Applied, ClaimedRow};
use setia_store::Store;
use tokio::sync::{watch, Notify};

use supervise::unless_panicked;

#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// How long a claimed row is this worker's; after that another worker may take it.
    pub lease: TimeDelta,
    /// Rows claimed per step; `Worker::new` caps it at [`SHORT_BATCH`] on SQLite.
    pub batch: u32,
    /// How long to wait when the inbox is empty.
    pub idle_wait: Duration,
    /// How often points past their expiry are written off.
    pub expiry_every: Duration,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        WorkerConfig {
            lease: TimeDelta::seconds(60),
            batch: 64,
            idle_wait: Duration::from_millis(200),
            expiry_every: Duration::from_secs(3600),
        }
    }
}

/// What one step did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Step {
    pub claimed: usize,
    pub applied: usize,
    pub quarantined: usize,
    pub retried: usize,
    /// Rows whose lease ran out before they were finished (another worker has them).
    pub lost: usize,
}

pub struct Worker {
    store: Arc<dyn Store>,
    config: WorkerConfig,
    wake: Option<Arc<Notify>>,
}

/// Rows per batch where a webhook that arrives during a batch waits for its commit (SQLite):
/// a batch is one transaction. At 1,000 webhooks/s while the worker drained a backlog, the
/// webhooks' p99 was 22 ms with batches of 64, 14 ms with 32 and 10 ms with 16; the drain ran
/// about 15% slower with 16 (bench/ingest/README.md).
pub const SHORT_BATCH: u32 = 16;

/// The wait before retrying a row that failed for a passing reason: 10 s, doubling, at most
/// an hour.
fn backoff(attempts: u32) -> TimeDelta {
    let seconds = 10i64.saturating_mul(1i64 << attempts.min(16).saturating_sub(1));
    TimeDelta::seconds(seconds.min(3600))
}

fn count_applied(row: &ClaimedRow, outcome: Option<Applied>, step: &mut Step) {
    match outcome {
        Some(applied) => {
            step.applied += 1;
            metrics::counter!("setia_mutations_applied_total")
                .increment(u64::from(applied.mutations));
            metrics::counter!("setia_purchases_recorded_total")
                .increment(u64::from(applied.purchases));
            tracing::debug!(inbox_id = row.inbox_id, ?applied, "inbox row applied");
        }
        None => step.lost += 1,
    }
}

impl Worker {
    /// On SQLite the batch is at most [`SHORT_BATCH`] rows: see there.
    pub fn new(store: Arc<dyn Store>, mut config: WorkerConfig) -> Worker {
        if store.webhooks_wait_for_other_writers() {
            config.batch = config.batch.min(SHORT_BATCH);
        }
        Worker {
            store,
            config,
            wake: None,
        }
    }

    /// Wakes the idle worker as soon as `wake` is notified (by the webhook writer of the
    /// same process), so a fresh payment reaches the ledger in milliseconds, not at the next
    /// poll.
    pub fn woken_by(mut self, wake: Arc<Notify>) -> Worker {
        self.wake = Some(wake);
        self
    }

    /// Claims one batch and processes every row of it, as of `now`.
    pub async fn run_once(&self, now: DateTime<Utc>) -> Result<Step, setia_store::StoreError> {
        let rows = self
            .store
            .claim_inbox(now, self.config.lease, self.config.batch)
            .await?;
        let mut step = Step {
            claimed: rows.len(),
            ..Step::default()
        };
        let mut parsed = Vec::with_capacity(rows.len());
        for row in &rows {
            // A payment dated after tomorrow is implausible (a bank's clock is not a day
            // ahead of ours): quarantined with its reason like any bad payload.
            match parse_mutations_at(&row.body, now) {
                Ok(mutations) => parsed.push((row, mutations)),
                Err(error) => {
                    self.quarantine(row, &error.to_string(), now, &mut step)
                        .await
                }
            }
        }
        // One transaction for the batch: one commit (one fsync on SQLite) instead of one per
        // row. If it fails, each row is tried alone, so one bad row cannot hold back the rest.
        if parsed.len() > 1 {
            let batch: Vec<(&ClaimedRow, &[Mutation])> = parsed
                .iter()
                .map(|(row, mutations)| (*row, mutations.as_slice()))
                .collect();
            match unless_panicked(self.store.apply_batch(&batch, now)).await {
                Ok(Ok(outcomes)) => {
                    for ((row, _), outcome) in parsed.iter().zip(outcomes) {
                        count_applied(row, outcome, &mut step);
                    }
                    return Ok(step);
                }
                Ok(Err(error)) => {
                    tracing::warn!(rows = parsed.len(), %error, "batch failed; applying its rows one by one")
                }
                Err(panic) => {
                    tracing::error!(rows = parsed.len(), %panic, "batch panicked; applying its rows one by one")
                }
            }
        }
        for (row, mutations) in &parsed {
            self.apply_one(row, mutations, now, &mut step).await;
        }
        Ok(step)
    }

    async fn quarantine(&self, row: &ClaimedRow, error: &str, now: DateTime<Utc>, step: &mut Step) {
        tracing::warn!(inbox_id = row.inbox_id, merchant = %row.merchant, %error, "webhook body quarantined");
        match self.store.quarantine_inbox(row, error, now).await {
            Ok(true) => {
                step.quarantined += 1;
                metrics::counter!("setia_inbox_quarantined_total").increment(1);
            }
            Ok(false) => step.lost += 1,
            Err(error) => {
                tracing::error!(inbox_id = row.inbox_id, %error, "could not quarantine")
            }
        }
    }

    async fn apply_one(
        &self,
        row: &ClaimedRow,
        mutations: &[Mutation],
        now: DateTime<Utc>,
        step: &mut Step,
    ) {
        match unless_panicked(self.store.apply_mutations(row, mutations, now)).await {
            Ok(Ok(outcome)) => count_applied(row, outcome, step),
            // A bug, not a passing failure: it would panic again on every retry, and a row
            // that is retried forever holds up nothing else but is never seen. Quarantined,
            // it is on the dashboard's Payments page with its reason, and kept.
            Err(panic) => {
                let reason = format!("applying it hit a bug in setia: {panic}");
                self.quarantine(row, &reason, now, step).await
            }
            Ok(Err(error)) => {
                let retry_at = now + backoff(row.attempts);
                tracing::warn!(inbox_id = row.inbox_id, %error, %retry_at, "inbox row failed; will retry");
                match self
                    .store
                    .release_inbox(row, &error.to_string(), retry_at)
                    .await
                {
                    Ok(_) => step.retried += 1,
                    // The lease will run out and the row will be claimed again.
                    Err(error) => {
                        tracing::error!(inbox_id = row.inbox_id, %error, "could not release")
                    }
                }
            }
        }
    }

    /// Writes off expired points for every merchant.
    pub async fn expire_points(&self, now: DateTime<Utc>) -> Result<i64, setia_store::StoreError> {
        let mut expired = 0;
        for merchant in self.store.list_merchants().await? {
            // One merchant's program that hits a bug must not stop the others' expiry.
            match unless_panicked(self.store.expire_points(&merchant.id, now)).await {
                Ok(points) => expired += points?,
                Err(panic) => {
                    tracing::error!(merchant = %merchant.id, %panic, "points expiry panicked")
                }
            }
        }
        Ok(expired)
    }

    /// Steps until `stop` turns true, waiting when there is nothing to do.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        let mut last_expiry: Option<tokio::time::Instant> = None;
        while !*stop.borrow() {
            if last_expiry.is_none_or(|at| at.elapsed() >= self.config.expiry_every) {
                match self.expire_points(Utc::now()).await {
                    Ok(points) if points > 0 => {
                        tracing::info!(points, "expired points written off")
                    }
                    Ok(_) => {}
                    Err(error) => tracing::error!(%error, "points expiry failed"),
                }
                last_expiry = Some(tokio::time::Instant::now());
            }
            let idle = match self.run_once(Utc::now()).await {
                Ok(step) => step.claimed == 0,
                Err(error) => {
                    tracing::error!(%error, "claiming inbox rows failed");
                    true
                }
            };
            if idle {
                let woken = async {
                    match &self.wake {
                        Some(wake) => wake.notified().await,
                        None => std::future::pending().await,
                    }
                };
                tokio::select! {
                    _ = tokio::time::sleep(self.config.idle_wait) => {}
                    _ = woken => {}
                    _ = stop.changed() => {}
                }
            }
        }
        tracing::info!("worker stopped");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps() {
        let seconds: Vec<i64> = (1..=12).map(|a| backoff(a).num_seconds()).collect();
        assert_eq!(&seconds[..5], &[10, 20, 40, 80, 160]);
        assert_eq!(*seconds.last().unwrap(), 3600);
        assert_eq!(backoff(0).num_seconds(), 10);
    }
}
