//! What the dashboard reads (and the one thing it writes: login sessions). Every list is a
//! page of a fixed size behind an index, so a page costs the same for a merchant with ten
//! purchases and one with a million.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Serialize;
use setia_core::{CustomerId, MerchantId, Money, PurchaseId};

use crate::analytics::Snapshot;
use crate::ledger::{PointsEntry, PurchaseRow};
use crate::mail::OutboxEntry;
use crate::{Merchant, Page, PageRequest, StoreResult};

/// P(alive) under which a repeat customer is at risk (DESIGN §4). The at-risk list is
/// stored (SQLite) or indexed (PostgreSQL) on this value, so it is a constant rather than a
/// parameter.
pub const AT_RISK_P_ALIVE: f64 = 0.5;

/// A list of customers the dashboard pages through by value (CLV, then customer id).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueList<'a> {
    /// Repeat customers with P(alive) under [`AT_RISK_P_ALIVE`].
    AtRisk,
    /// The customers of one RFM segment.
    Segment(&'a str),
}

impl ValueList<'_> {
    /// The name of the at-risk list where it is stored.
    pub const AT_RISK_KEY: &'static str = "at_risk";
    /// What a segment's list name begins with; the segment follows.
    pub const SEGMENT_KEY_PREFIX: &'static str = "segment:";

    /// Whether a customer with these scores is on the at-risk list.
    pub fn at_risk(frequency_days: i64, p_alive: Option<f64>) -> bool {
        frequency_days >= 2 && p_alive.is_some_and(|p| p < AT_RISK_P_ALIVE)
    }

    /// The list's name where it is stored (SQLite's `customer_value_lists.list`).
    pub fn key(&self) -> String {
        match self {
            ValueList::AtRisk => Self::AT_RISK_KEY.to_owned(),
            ValueList::Segment(segment) => format!("{}{segment}", Self::SEGMENT_KEY_PREFIX),
        }
    }
}

/// Search text needs this many characters to match inside names, emails and ids (a trigram
/// index serves it).
pub const SEARCH_MIN_CHARS: usize = 3;

/// A snapshot without its report: enough to choose which reports to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotHead {
    pub id: i64,
    pub as_of: String,
    pub period: String,
    pub computed_at: DateTime<Utc>,
}

/// Which customers a list shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CustomerFilter {
    /// Every customer, newest first.
    All,
    /// Name, email or external id containing the text (any case), newest first; a text
    /// shorter than [`SEARCH_MIN_CHARS`] matches an external id exactly.
    Search(String),
}

/// A customer in a list, with the latest scores when the analytics batch has scored them.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct CustomerListRow {
    #[schema(value_type = String, example = "cus_42")]
    pub id: CustomerId,
    pub external_id: String,
    pub name: Option<String>,
    pub email: Option<String>,
    /// Consent given and not withdrawn by an unsubscribe: the customer may be sent
    /// marketing, by setia or by whoever the list is exported to.
    pub marketing_consent: bool,
    pub scores: Option<CustomerScores>,
}

/// A customer's row of the latest analytics run.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct CustomerScores {
    /// The day of the run that scored them.
    pub as_of: String,
    /// Days from the last purchase day to `as_of`.
    pub recency_days: i64,
    /// Distinct purchase days.
    pub frequency_days: i64,
    /// Mean purchase amount.
    #[schema(value_type = String, example = "152000.00")]
    pub monetary: Money,
    pub r: i64,
    pub f: i64,
    pub m: i64,
    /// One of the ten RFM segments.
    pub segment: String,
    /// BG/NBD's probability that they still buy (repeat customers).
    pub p_alive: Option<f64>,
    pub expected_purchases_90d: Option<f64>,
    /// Gamma-Gamma CLV over the next 12 months (repeat customers).
    #[schema(value_type = Option<String>, example = "480000.00")]
    pub clv_12m: Option<Money>,
}

/// Where a list ordered by value (CLV, then customer id) goes on: the last row shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ValueCursor {
    /// The row's CLV in minor units, -1 when it has none.
    pub clv_minor: i64,
    pub customer: i64,
}

impl ValueCursor {
    /// `clv.customer`, as it travels in a URL.
    pub fn parse(text: &str) -> Option<ValueCursor> {
        let (clv, customer) = text.split_once('.')?;
        Some(ValueCursor {
            clv_minor: clv.parse().ok().filter(|v| *v >= -1)?,
            customer: customer.parse().ok().filter(|c| *c > 0)?,
        })
    }
}

impl std::fmt::Display for ValueCursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.clv_minor, self.customer)
    }
}

/// A page of a list ordered by value.
#[derive(Debug, Clone, PartialEq)]
pub struct ValuePage {
    pub items: Vec<CustomerListRow>,
    pub next_cursor: Option<ValueCursor>,
}

/// A bank mutation as the payments page shows it: what Moota reported, and what became of
/// it (the purchase, and how its customer was found).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MutationRow {
    pub id: i64,
    pub mutation_id: String,
    pub occurred_at: DateTime<Utc>,
    pub account_number: String,
    pub description: String,
    pub amount: Money,
    /// CR or DB.
    pub direction: String,
    pub note: Option<String>,
    pub bank_type: Option<String>,
    pub sandbox: bool,
    /// How often Moota delivered it.
    pub deliveries: i64,
    pub purchase: Option<PurchaseId>,
    /// The attribution method; None while the purchase waits in the unattributed queue.
    pub attribution: Option<String>,
    pub customer_id: Option<CustomerId>,
    pub customer_external_id: Option<String>,
    pub refunded: bool,
    /// Found by reconciliation through Moota's API: the webhook never brought it.
    pub reconciled: bool,
}

/// Counts that ask for attention, shown in the navigation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct AttentionCounts {
    pub unattributed: u64,
    pub quarantined: u64,
    pub failed_emails: u64,
}

#[async_trait]
pub trait Dashboard: Send + Sync {
    /// Stores a new session (by the hash of its secret) and forgets expired ones.
    async fn create_dashboard_session(
        &self,
        merchant: &MerchantId,
        token_hash: &str,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> StoreResult<()>;
    /// The merchant of a session that has not expired.
    async fn dashboard_session(
        &self,
        token_hash: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<Merchant>>;
    async fn delete_dashboard_session(&self, token_hash: &str) -> StoreResult<()>;

    /// The merchant's snapshots of one period ("month" or "week"), newest first.
    async fn snapshot_heads(
        &self,
        merchant: &MerchantId,
        period: &str,
        limit: u32,
    ) -> StoreResult<Vec<SnapshotHead>>;
    /// The snapshots with these ids (of this merchant only), in no particular order.
    async fn snapshots_by_id(
        &self,
        merchant: &MerchantId,
        ids: &[i64],
    ) -> StoreResult<Vec<Snapshot>>;

    async fn customer_list(
        &self,
        merchant: &MerchantId,
        filter: &CustomerFilter,
        page: PageRequest,
    ) -> StoreResult<Page<CustomerListRow>>;
    /// Repeat customers with P(alive) under [`AT_RISK_P_ALIVE`], highest CLV first.
    async fn at_risk_by_value(
        &self,
        merchant: &MerchantId,
        after: Option<ValueCursor>,
        limit: u32,
    ) -> StoreResult<ValuePage>;
    /// The customers of one RFM segment, highest CLV first.
    async fn segment_by_value(
        &self,
        merchant: &MerchantId,
        segment: &str,
        after: Option<ValueCursor>,
        limit: u32,
    ) -> StoreResult<ValuePage>;
    /// One customer of this merchant by key, with the latest scores.
    async fn customer_by_key(
        &self,
        merchant: &MerchantId,
        customer: CustomerId,
    ) -> StoreResult<Option<CustomerListRow>>;
    /// A customer's purchases, newest first, with how each was attributed.
    async fn customer_purchases(
        &self,
        merchant: &MerchantId,
        customer: CustomerId,
        page: PageRequest,
    ) -> StoreResult<Page<PurchaseRow>>;
    /// A customer's points ledger, newest first.
    async fn customer_points(
        &self,
        merchant: &MerchantId,
        customer: CustomerId,
        page: PageRequest,
    ) -> StoreResult<Page<PointsEntry>>;
    /// The emails queued or sent to a customer, newest first.
    async fn customer_emails(
        &self,
        merchant: &MerchantId,
        customer: CustomerId,
        page: PageRequest,
    ) -> StoreResult<Page<OutboxEntry>>;

    /// Bank mutations, newest first, with the purchase each became.
    async fn recent_mutations(
        &self,
        merchant: &MerchantId,
        page: PageRequest,
    ) -> StoreResult<Page<MutationRow>>;
    async fn attention_counts(&self, merchant: &MerchantId) -> StoreResult<AttentionCounts>;
}
