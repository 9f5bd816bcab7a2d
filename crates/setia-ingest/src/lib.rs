//! The front door: `POST /webhooks/moota/{merchant_id}`.
//!
//! Checks, in order: merchant known (404), body at most 1 MiB without reading past the limit
//! (413), source address allowed (403), signature (401). A verified body is committed to the
//! inbox, byte for byte, before the 200 goes out; parsing is the worker's job. Every call
//! lands in the audit log, within a per-minute budget for rejected ones.
//!
//! The back door, `reconcile`, pulls what Moota's webhooks may have missed from its API V2
//! into the same inbox (rows of source `api`).
//!
//! Architecture invariant: the webhook path never parses the JSON it receives, and never
//! answers 200 before the store has committed the body; reconciliation reads pages only
//! through setia-core's Moota API types and writes nothing but inbox rows and their audit.

mod audit_budget;
mod client_addr;
mod handler;
mod merchants;
pub mod reconcile;
mod writer;

use std::sync::Arc;
use std::time::Duration;

use axum::routing::post;
use axum::Router;
use setia_store::Store;

pub use client_addr::{client_address, AddressList, AddressListError};
pub use writer::InboxWriter;

/// The most a webhook body may be: Moota's are a few kilobytes.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

#[derive(Debug, Clone, Default)]
pub struct IngestConfig {
    /// Moota's source addresses; `None` turns the allowlist off.
    pub allowed: Option<AddressList>,
    /// Proxies whose X-Forwarded-For is believed.
    pub trusted_proxies: AddressList,
    /// Rejected calls written to the audit log per merchant per minute; the rest are counted.
    pub rejected_rows_per_minute: u32,
    /// Woken after each group commit that added inbox rows: a worker in the same process
    /// starts on them at once instead of at its next poll.
    pub new_inbox_rows: Option<Arc<tokio::sync::Notify>>,
}

impl IngestConfig {
    pub fn new(allowed: Option<AddressList>, trusted_proxies: AddressList) -> IngestConfig {
        IngestConfig {
            allowed,
            trusted_proxies,
            rejected_rows_per_minute: 100,
            new_inbox_rows: None,
        }
    }
}

/// Everything the webhook route needs, shared by all requests.
pub struct Ingest {
    config: IngestConfig,
    merchants: merchants::MerchantCache,
    writer: InboxWriter,
    budget: audit_budget::AuditBudget,
}

impl Ingest {
    /// Starts the group-commit writer on the current runtime.
    pub fn start(store: Arc<dyn Store>, config: IngestConfig) -> Arc<Ingest> {
        let budget = audit_budget::AuditBudget::new(config.rejected_rows_per_minute);
        Arc::new(Ingest {
            merchants: merchants::MerchantCache::new(store.clone(), Duration::from_secs(30)),
            writer: InboxWriter::start(store, budget.clone(), config.new_inbox_rows.clone()),
            budget,
            config,
        })
    }

    /// Waits until every call so far, rejected ones included, is in the audit log: the
    /// single step tests use instead of sleeping.
    pub async fn flush(&self) {
        self.writer.flush().await;
    }

    /// Waits until every call handed to the writer is committed, and writes the counts of
    /// suppressed audit rows. Call after the server has stopped accepting requests.
    pub async fn shutdown(&self) {
        self.writer.shutdown().await;
    }
}

pub fn router(ingest: Arc<Ingest>) -> Router {
    Router::new()
        .route("/webhooks/moota/{merchant_id}", post(handler::receive))
        .with_state(ingest)
}
