//! Reconciliation through Moota's API V2: each merchant's token and watched banks, the
//! record of every sync, and the mutations a sync found that setia had not seen, which go
//! into the inbox as rows of source `api` for the worker to apply like webhook bodies.

use std::collections::HashSet;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use serde::Serialize;
use setia_core::moota_api::{MootaBankId, MootaToken, SyncWindow};
use setia_core::MerchantId;

use crate::{Page, PageRequest, StoreResult};

/// A merchant's Moota API settings. The token is only for the sync: it has no `Serialize`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MootaSettings {
    pub token: Option<MootaToken>,
    /// The banks to sync; empty: every bank of the token's account.
    pub banks: Vec<MootaBankId>,
}

/// What started a sync.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SyncStarter {
    /// `setia moota sync`.
    Command,
    /// The scheduled sync in `setia serve` / `setia worker`.
    Schedule,
}

impl SyncStarter {
    pub fn as_str(self) -> &'static str {
        match self {
            SyncStarter::Command => "command",
            SyncStarter::Schedule => "schedule",
        }
    }
}

/// What a sync counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct SyncCounts {
    pub pages: u64,
    /// Credit mutations in the pages.
    pub mutations: u64,
    /// Those setia had not seen: each is now an inbox row.
    pub new: u64,
    pub already_known: u64,
}

/// One sync as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MootaSync {
    pub id: i64,
    pub started_by: String,
    pub window: SyncWindow,
    pub started_at: DateTime<Utc>,
    /// None while it runs (or when its process died).
    pub finished_at: Option<DateTime<Utc>>,
    pub counts: SyncCounts,
    pub error: Option<String>,
}

/// A mutation a sync found, as its inbox row's body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundMutation {
    pub mutation_id: String,
    pub body: Vec<u8>,
}

#[async_trait]
pub trait Reconcile {
    /// Sets the token (when given) and the banks to watch (when given; an empty list is
    /// every bank). False when the merchant does not exist.
    async fn set_moota_settings(
        &self,
        merchant: &MerchantId,
        token: Option<&MootaToken>,
        banks: Option<&[MootaBankId]>,
    ) -> StoreResult<bool>;
    async fn moota_settings(&self, merchant: &MerchantId) -> StoreResult<MootaSettings>;
    /// Merchants with a Moota token, for the scheduled sync.
    async fn moota_merchants(&self) -> StoreResult<Vec<MerchantId>>;

    /// Which of `mutation_ids` setia has seen: in the ledger, or found by an earlier sync.
    async fn known_mutations(
        &self,
        merchant: &MerchantId,
        mutation_ids: &[String],
    ) -> StoreResult<HashSet<String>>;
    /// Puts each mutation not found before into the inbox (source `api`) with an audit row,
    /// all in one transaction; returns how many were new.
    async fn record_found_mutations(
        &self,
        merchant: &MerchantId,
        sync: i64,
        found: &[FoundMutation],
        now: DateTime<Utc>,
    ) -> StoreResult<u64>;

    async fn start_moota_sync(
        &self,
        merchant: &MerchantId,
        started_by: SyncStarter,
        window: SyncWindow,
        now: DateTime<Utc>,
    ) -> StoreResult<i64>;
    /// Records a sync's end: its counts, and its error when it failed.
    async fn finish_moota_sync(
        &self,
        merchant: &MerchantId,
        sync: i64,
        counts: SyncCounts,
        error: Option<&str>,
        now: DateTime<Utc>,
    ) -> StoreResult<()>;
    /// Syncs, newest first.
    async fn moota_syncs(
        &self,
        merchant: &MerchantId,
        page: PageRequest,
    ) -> StoreResult<Page<MootaSync>>;
    /// The last day of the latest window a sync finished without error, but no later than
    /// the day (in Moota's zone) that sync started: it covered nothing after that day.
    async fn last_synced_day(&self, merchant: &MerchantId) -> StoreResult<Option<NaiveDate>>;

    /// Claims the merchant's scheduled sync when it is due and no one holds it; true when
    /// this caller got it.
    async fn claim_moota_sync(
        &self,
        merchant: &MerchantId,
        claim: &str,
        now: DateTime<Utc>,
        lease: TimeDelta,
    ) -> StoreResult<bool>;
    /// Gives the claim back, with when the next scheduled sync is due.
    async fn release_moota_sync(
        &self,
        merchant: &MerchantId,
        claim: &str,
        next_due: DateTime<Utc>,
    ) -> StoreResult<()>;

    /// Credit mutations the ledger first learnt of from the API, not from a webhook,
    /// recorded in `[from, until)`: the payments the webhook missed.
    async fn missed_by_webhook(
        &self,
        merchant: &MerchantId,
        from: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> StoreResult<u64>;
}
