//! Membership perks (DESIGN §8, `[perks]`): the tier crossings a verified purchase makes
//! (written in the ledger's transaction, with their entry points and welcome email), the
//! bulk selection of customers to nudge towards their next tier, and what the member page
//! `/m/{token}` shows. Who crosses and who is nudged are `setia_core::perks`'s rules.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use setia_core::loyalty::Tier;
use setia_core::perks::NudgeWindow;
use setia_core::referral::ReferralCode;
use setia_core::{CustomerId, MerchantId, Money};

use crate::mail::{EmailLanguage, MailCustomer};
use crate::StoreResult;

/// What a `tier_welcome` row carries, frozen when the purchase crossed: the tier as the
/// program described it then.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TierWelcomePayload {
    /// `silver` or `gold`.
    pub tier: String,
    pub title: String,
    pub perks: Vec<String>,
    /// The entry points of every tier the purchase entered (bronze to gold in one purchase
    /// earns silver's and gold's).
    pub entry_points: i64,
    /// The personal voucher's discount; the code is derived from the merchant's secret.
    pub voucher_percent: Option<u32>,
}

/// A crossing as the ledger recorded it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TierCrossingRow {
    pub id: i64,
    pub tier: &'static str,
    pub purchase_id: i64,
    pub reached_at: DateTime<Utc>,
    pub points: i64,
    /// When a refund of its purchase took it back.
    pub reversed_at: Option<DateTime<Utc>>,
}

/// A customer's countable spend over some span of time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CustomerSpend {
    pub customer: CustomerId,
    pub spent: Money,
}

/// Customers per nudge write: one statement and transaction each, so the writer is held
/// for a moment however many customers are nudged.
pub const NUDGES_PER_WRITE: usize = 1_000;

/// What the member page shows of a customer (and nothing more).
#[derive(Debug, Clone, PartialEq)]
pub struct MemberPage {
    pub merchant_name: String,
    pub language: EmailLanguage,
    pub customer: MailCustomer,
    /// The customer's referral code, if one was made (the page never makes one: a GET
    /// changes nothing).
    pub referral_code: Option<ReferralCode>,
}

#[async_trait]
pub trait Perks: Send + Sync {
    /// The customers whose countable spend of the year up to `now` (what the tier counts, as
    /// `mail_customers` reads it) lies in one of `windows`, with that spend. A read of the
    /// purchases alone (by their time index),
    /// outside any write: on SQLite the webhooks' writer never waits for it, and on
    /// PostgreSQL its plan does not hang on a join whose sizes the planner may not know.
    async fn spend_in_windows(
        &self,
        merchant: &MerchantId,
        windows: &[NudgeWindow],
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<CustomerSpend>>;
    /// Enqueues a `tier_nudge` (period `period_key`, e.g. `gold-2027`) for each of
    /// `customers` who may be mailed (an address, consent, not unsubscribed); a customer
    /// nudged for the period before is left alone. Short transactions of at most
    /// [`NUDGES_PER_WRITE`] customers. Returns how many were added.
    async fn enqueue_tier_nudges(
        &self,
        merchant: &MerchantId,
        period_key: &str,
        customers: &[CustomerId],
        due_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> StoreResult<u64>;
    /// The customer's crossings, oldest first.
    async fn tier_crossings(
        &self,
        merchant: &MerchantId,
        customer: CustomerId,
    ) -> StoreResult<Vec<TierCrossingRow>>;
    /// Whether the customer holds a standing crossing into `tier`.
    async fn holds_tier_entry(
        &self,
        merchant: &MerchantId,
        customer: CustomerId,
        tier: Tier,
    ) -> StoreResult<bool>;
    /// The member page of a customer; `None` when there is no such customer. Reads only.
    async fn member_page(
        &self,
        merchant: &MerchantId,
        customer: CustomerId,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<MemberPage>>;
}
