//! What the analytics batch reads and writes: purchases as columns, the points ledger, the
//! metric snapshots and the latest per-customer scores.

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};
use setia_core::MerchantId;

use crate::StoreResult;

/// One merchant's countable purchases as parallel columns: attributed, not sandbox, not
/// refunded, at or before a cut-off. Columns, not rows, because a merchant may have millions.
/// `purchase` is each purchase's key, which order lines name (see `catalog::PurchaseOwners`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PurchaseColumns {
    pub purchase: Vec<i64>,
    pub customer: Vec<i64>,
    pub occurred_at_us: Vec<i64>,
    pub amount_minor: Vec<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PointsRow {
    pub customer: i64,
    pub occurred_at_us: i64,
    pub points: i64,
    pub kind: String,
}

/// A customer's scores from the latest run.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoreRow {
    pub customer: i64,
    pub recency_days: i64,
    pub frequency_days: i64,
    pub monetary_minor: i64,
    pub r: i64,
    pub f: i64,
    pub m: i64,
    pub segment: String,
    pub p_alive: Option<f64>,
    pub expected_purchases_90d: Option<f64>,
    pub clv_12m_minor: Option<i64>,
    /// Product keys recommended to the customer, best first; empty for none.
    pub recommended: Vec<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub id: i64,
    pub as_of: String,
    pub period: String,
    pub computed_at: DateTime<Utc>,
    /// The metrics JSON, schema 1, as computed.
    pub report: String,
}

#[async_trait]
pub trait Analytics: Send + Sync {
    async fn purchase_columns(
        &self,
        merchant: &MerchantId,
        until: DateTime<Utc>,
    ) -> StoreResult<PurchaseColumns>;
    /// `purchase_columns`, read `chunk` purchases per query where the backend pages its reads
    /// (PostgreSQL; `purchase_columns` uses a chunk size chosen for speed, a small one
    /// exercises the paging). SQLite streams each range in one statement and ignores it.
    async fn purchase_columns_in_chunks(
        &self,
        merchant: &MerchantId,
        until: DateTime<Utc>,
        chunk: usize,
    ) -> StoreResult<PurchaseColumns>;
    async fn points_rows(
        &self,
        merchant: &MerchantId,
        until: DateTime<Utc>,
    ) -> StoreResult<Vec<PointsRow>>;
    /// Stores a run: the scores that replace the previous run's (a reader sees the old ones
    /// or the new ones, never a mix), then the report.
    async fn save_snapshot(
        &self,
        merchant: &MerchantId,
        as_of: &str,
        period: &str,
        report: &str,
        scores: Vec<ScoreRow>,
        computed_at: DateTime<Utc>,
    ) -> StoreResult<i64>;
    async fn latest_snapshot(
        &self,
        merchant: &MerchantId,
        period: Option<&str>,
    ) -> StoreResult<Option<Snapshot>>;
    /// Claims the nightly run of `merchant` as of `as_of` for `lease`: true when the caller
    /// is to run it, because nobody claimed it yet or the holder's lease ran out before it
    /// finished. With several workers on one database, each run is computed once.
    async fn claim_nightly_run(
        &self,
        merchant: &MerchantId,
        as_of: &str,
        claim: &str,
        now: DateTime<Utc>,
        lease: TimeDelta,
    ) -> StoreResult<bool>;
    /// Extends a claimed run's lease to `now + lease` while it runs: false when the claim
    /// was lost (its lease ran out and another worker took it over).
    async fn renew_nightly_run(
        &self,
        merchant: &MerchantId,
        as_of: &str,
        claim: &str,
        now: DateTime<Utc>,
        lease: TimeDelta,
    ) -> StoreResult<bool>;
    /// Marks a claimed run done; false when the claim was lost (its lease ran out and
    /// another worker took it over).
    async fn finish_nightly_run(
        &self,
        merchant: &MerchantId,
        as_of: &str,
        claim: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<bool>;
}
