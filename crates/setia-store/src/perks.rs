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
use setia_core::{CustomerId, MerchantId};

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
    /// Enqueues a `tier_nudge` (period `period_key`, e.g. `gold-2027`) for every customer
    /// who may be mailed (an address, consent, not unsubscribed) and whose countable spend in
    /// `[spend_from, spend_until)` lies in `window`, in one statement; a customer nudged for
    /// the period before is left alone. Returns how many were added.
    #[allow(clippy::too_many_arguments)]
    async fn enqueue_tier_nudges(
        &self,
        merchant: &MerchantId,
        window: &NudgeWindow,
        period_key: &str,
        spend_from: DateTime<Utc>,
        spend_until: DateTime<Utc>,
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
