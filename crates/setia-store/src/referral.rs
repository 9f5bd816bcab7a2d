//! Referrals (DESIGN §8, `[referral]`): personal codes, the referrals stores report (written
//! in the transaction of the order or customer that carries the code), their qualification by
//! the friend's first verified payment (in the ledger's transaction), the rewards paid after
//! the hold, and what the dashboard and the API show of them. Who stands and who qualifies is
//! `setia_core::referral`'s rule.

use std::collections::HashMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Serialize;
use setia_core::mail_token::MailSecret;
use setia_core::referral::{ReferralCode, ReferralReason, ReferralStatus};
use setia_core::{CustomerId, MerchantId, Money};

use crate::{Page, PageRequest, StoreResult};

/// How a store reported a referral.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ReferralVia {
    Order,
    Customer,
    Import,
}

impl ReferralVia {
    pub fn as_str(self) -> &'static str {
        match self {
            ReferralVia::Order => "order",
            ReferralVia::Customer => "customer",
            ReferralVia::Import => "import",
        }
    }
}

/// A referral code a write carries: the friend is the customer written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReferredBy {
    pub code: ReferralCode,
    pub via: ReferralVia,
}

/// Whose code a `/r/{code}` link is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReferralLink {
    pub merchant: MerchantId,
    pub merchant_name: String,
    pub sandbox: bool,
    pub advocate: CustomerId,
    pub advocate_name: Option<String>,
    /// Consented and not unsubscribed: a customer who withdrew has no live link.
    pub advocate_active: bool,
}

/// A customer as a referral names them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ReferralParty {
    #[schema(value_type = String, example = "cus_7")]
    pub id: CustomerId,
    pub external_id: String,
    pub name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Referral {
    pub id: i64,
    pub advocate: ReferralParty,
    pub friend: ReferralParty,
    /// order, customer or import.
    #[schema(value_type = String, example = "order")]
    pub via: ReferralVia,
    pub referred_at: DateTime<Utc>,
    /// pending, qualified, rewarded, refused or cancelled.
    #[schema(value_type = String, example = "qualified")]
    pub status: &'static str,
    /// The rule that refused or cancelled it: existing_customer, existing_account,
    /// self_same_customer, self_same_email, self_same_virtual_account, self_same_payer_name,
    /// already_referred, monthly_cap, below_minimum or refunded.
    #[schema(value_type = Option<String>, example = "monthly_cap")]
    pub reason: Option<&'static str>,
    /// The friend's first verified payment.
    #[schema(value_type = Option<String>, example = "pur_42")]
    pub purchase_id: Option<setia_core::PurchaseId>,
    #[schema(value_type = Option<String>, example = "150000.00")]
    pub purchase_amount: Option<Money>,
    pub qualified_at: Option<DateTime<Utc>>,
    /// When the reward is paid unless the payment is refunded before.
    pub reward_due_at: Option<DateTime<Utc>>,
    pub rewarded_at: Option<DateTime<Utc>>,
    /// Points the advocate got.
    pub points: Option<i64>,
}

/// A count of referrals by status and reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReferralCount {
    pub status: &'static str,
    pub reason: Option<&'static str>,
    pub count: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TopAdvocate {
    pub advocate: ReferralParty,
    pub rewarded: u64,
    /// Qualified and waiting for the hold.
    pub qualified: u64,
    pub points: i64,
    /// Verified payments of the friends they brought.
    pub friends_revenue: Money,
}

/// The referral section of the Loyalty page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReferralSummary {
    pub counts: Vec<ReferralCount>,
    pub top_advocates: Vec<TopAdvocate>,
    /// Referred customers (qualified or rewarded) and their verified, unrefunded payments.
    pub referred_customers: u64,
    pub referred_revenue: Money,
    pub referred_payments: u64,
}

/// A customer's side of the program: who brought them, whom they brought.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CustomerReferrals {
    pub code: Option<String>,
    pub referred_by: Option<Referral>,
    pub referred: Vec<Referral>,
}

/// A reward paid by [`Referrals::reward_due_referrals`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PaidReward {
    pub referral: i64,
    pub advocate: CustomerId,
    pub points: i64,
}

#[async_trait]
pub trait Referrals: Send + Sync {
    /// The personal codes of these customers, made on first use from the merchant's mail
    /// secret (so a code is the same whoever asks first), unique across the store.
    async fn referral_codes(
        &self,
        merchant: &MerchantId,
        secret: &MailSecret,
        customers: &[CustomerId],
        now: DateTime<Utc>,
    ) -> StoreResult<HashMap<CustomerId, ReferralCode>>;
    /// Whose code this is, of any merchant: what the link page shows. `None` for an unknown
    /// code or an erased advocate's.
    async fn referral_link(&self, code: &ReferralCode) -> StoreResult<Option<ReferralLink>>;
    /// Newest first, of one status if asked.
    async fn referrals(
        &self,
        merchant: &MerchantId,
        status: Option<ReferralStatus>,
        page: PageRequest,
    ) -> StoreResult<Page<Referral>>;
    async fn referral_summary(
        &self,
        merchant: &MerchantId,
        top: u32,
    ) -> StoreResult<ReferralSummary>;
    async fn customer_referrals(
        &self,
        merchant: &MerchantId,
        customer: CustomerId,
    ) -> StoreResult<CustomerReferrals>;
    /// Pays the qualified referrals whose hold is over at `now`: the advocate's points
    /// (idempotent, source `referral:{id}`) and a `referral_reward` email, in one
    /// transaction per referral batch. A referral is paid once however often this runs.
    async fn reward_due_referrals(
        &self,
        merchant: &MerchantId,
        points: u32,
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<PaidReward>>;
    /// A referral of this merchant (the reward email's context).
    async fn referral(&self, merchant: &MerchantId, id: i64) -> StoreResult<Option<Referral>>;
}

pub(crate) fn status_str(text: &str) -> Option<&'static str> {
    ReferralStatus::parse(text).map(ReferralStatus::as_str)
}

pub(crate) fn reason_str(text: &str) -> Option<&'static str> {
    ReferralReason::parse(text).map(ReferralReason::as_str)
}
