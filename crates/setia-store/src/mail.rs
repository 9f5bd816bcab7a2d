//! The email side of the store: the outbox queue (claims with leases, one transaction for a
//! batch's outcomes), what the scheduler enqueues, what the templates are filled with, and
//! unsubscribes.

use std::collections::HashMap;
use std::fmt;

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use setia_core::loyalty::Tier;
use setia_core::mail_token::MailSecret;
use setia_core::{CustomerId, MerchantId, Money, PurchaseId};

use crate::{Merchant, Page, PageRequest, StoreResult};

/// The kinds of email setia sends. The outbox's `kind` column holds [`OutboxKind::as_str`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OutboxKind {
    ThankYou,
    BirthdayOffer,
    WeeklyChurnReport,
    /// Asks a customer to score a purchase; its period is the request (`42`) or the request's
    /// reminder (`42-reminder`).
    FeedbackRequest,
    /// Tells the merchant's report addresses of a low score; its period is the complaint.
    FeedbackAlert,
    /// A step of a win-back episode; its period is `{episode}-{step}` (`12-0`).
    Winback,
    /// Tells an advocate that a friend's first payment earned them points; its period is the
    /// referral. Not marketing: it reports points already credited.
    ReferralReward,
    /// Welcomes a customer to the tier a verified purchase first reached; its period is the
    /// tier (`silver`). Not marketing: it reports a standing the customer earned.
    TierWelcome,
    /// Tells a customer how little is left to the next tier; its period is the tier and the
    /// merchant-local year (`gold-2027`). Marketing.
    TierNudge,
    /// A campaign's email to one recipient; its period is the campaign (`cmp_3`).
    Campaign,
}

impl OutboxKind {
    pub const ALL: [OutboxKind; 10] = [
        OutboxKind::ThankYou,
        OutboxKind::BirthdayOffer,
        OutboxKind::WeeklyChurnReport,
        OutboxKind::FeedbackRequest,
        OutboxKind::FeedbackAlert,
        OutboxKind::Winback,
        OutboxKind::ReferralReward,
        OutboxKind::TierWelcome,
        OutboxKind::TierNudge,
        OutboxKind::Campaign,
    ];

    /// The kinds the marketing cap counts and holds back (DESIGN §8); thank-you and birthday
    /// emails are exempt.
    pub const MARKETING: [OutboxKind; 4] = [
        OutboxKind::FeedbackRequest,
        OutboxKind::Winback,
        OutboxKind::TierNudge,
        OutboxKind::Campaign,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            OutboxKind::ThankYou => "thank_you",
            OutboxKind::BirthdayOffer => "birthday_offer",
            OutboxKind::WeeklyChurnReport => "weekly_churn_report",
            OutboxKind::FeedbackRequest => "feedback_request",
            OutboxKind::FeedbackAlert => "feedback_alert",
            OutboxKind::Winback => "winback",
            OutboxKind::ReferralReward => "referral_reward",
            OutboxKind::TierWelcome => "tier_welcome",
            OutboxKind::TierNudge => "tier_nudge",
            OutboxKind::Campaign => "campaign",
        }
    }

    pub fn is_marketing(self) -> bool {
        OutboxKind::MARKETING.contains(&self)
    }

    pub fn parse(text: &str) -> Option<OutboxKind> {
        OutboxKind::ALL.into_iter().find(|k| k.as_str() == text)
    }

    /// Whether the email goes to a customer (and so needs consent, an address and no
    /// unsubscribe) rather than to the merchant.
    pub fn is_customer_mail(self) -> bool {
        !matches!(
            self,
            OutboxKind::WeeklyChurnReport | OutboxKind::FeedbackAlert
        )
    }
}

impl fmt::Display for OutboxKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OutboxStatus {
    /// Waiting for its due time, a retry, or a worker.
    Pending,
    Sent,
    /// A permanent failure (5xx), or temporary ones until the retries ran out.
    Failed,
    /// Its template does not render; kept until the template changes.
    Held,
    /// The recipient may not be mailed any more (unsubscribed, no consent, no address, an
    /// open complaint for marketing).
    Suppressed,
    /// Held back by the marketing cap (or a reminder's wait) until its next slot.
    Deferred,
}

impl OutboxStatus {
    pub const ALL: [OutboxStatus; 6] = [
        OutboxStatus::Pending,
        OutboxStatus::Sent,
        OutboxStatus::Failed,
        OutboxStatus::Held,
        OutboxStatus::Suppressed,
        OutboxStatus::Deferred,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            OutboxStatus::Pending => "pending",
            OutboxStatus::Sent => "sent",
            OutboxStatus::Failed => "failed",
            OutboxStatus::Held => "held",
            OutboxStatus::Suppressed => "suppressed",
            OutboxStatus::Deferred => "deferred",
        }
    }

    pub fn parse(text: &str) -> Option<OutboxStatus> {
        OutboxStatus::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

/// The language of a merchant's emails: Indonesian unless the merchant chose English.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize)]
pub enum EmailLanguage {
    #[default]
    #[serde(rename = "id")]
    Indonesian,
    #[serde(rename = "en")]
    English,
}

impl EmailLanguage {
    pub fn as_str(self) -> &'static str {
        match self {
            EmailLanguage::Indonesian => "id",
            EmailLanguage::English => "en",
        }
    }

    pub fn parse(text: &str) -> Option<EmailLanguage> {
        match text.trim() {
            "id" => Some(EmailLanguage::Indonesian),
            "en" => Some(EmailLanguage::English),
            _ => None,
        }
    }
}

/// A merchant with what its email needs.
#[derive(Debug, Clone)]
pub struct MailMerchant {
    pub merchant: Merchant,
    pub language: EmailLanguage,
    /// Signs unsubscribe links and birthday offer codes; made on first use.
    pub secret: MailSecret,
}

/// An outbox row a worker holds under a lease. Finishing it checks `claim_id`.
#[derive(Debug, Clone)]
pub struct ClaimedEmail {
    pub id: i64,
    pub claim_id: String,
    pub merchant: MerchantId,
    pub kind: OutboxKind,
    /// `cus_N` for customer mail, the address for a report.
    pub recipient: String,
    pub customer: Option<CustomerId>,
    pub period_key: String,
    pub due_at: DateTime<Utc>,
    /// Delivery attempts so far, this one included.
    pub attempts: u32,
    pub payload: Option<String>,
    /// Until when the claim is this worker's.
    pub lease_until: DateTime<Utc>,
}

/// How one delivery attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryOutcome {
    Sent,
    /// A temporary failure: try again at `at`.
    Retry {
        at: DateTime<Utc>,
        error: String,
    },
    Failed {
        error: String,
    },
    /// A template does not render; `fingerprint` names the template set it failed with.
    Held {
        error: String,
        fingerprint: String,
    },
    Suppressed {
        reason: String,
    },
    /// Not yet: claimed again from `until` (the marketing cap's next slot).
    Deferred {
        until: DateTime<Utc>,
        reason: String,
    },
}

#[derive(Debug, Clone)]
pub struct FinishedEmail {
    pub id: i64,
    pub merchant: MerchantId,
    pub claim_id: String,
    pub outcome: DeliveryOutcome,
    /// Written with a [`DeliveryOutcome::Sent`] whose claim held, and only then.
    pub follow_up: Option<FollowUp>,
}

/// The email a sent email schedules for the same recipient (a feedback request's reminder):
/// it exists only once its predecessor went out, so nothing is queued for a request that
/// never will be, and its due time counts from the real sending.
#[derive(Debug, Clone, PartialEq)]
pub struct FollowUp {
    pub kind: OutboxKind,
    pub period_key: String,
    pub due_at: DateTime<Utc>,
}

/// A customer as their email sees them.
#[derive(Debug, Clone, PartialEq)]
pub struct MailCustomer {
    pub id: CustomerId,
    pub external_id: String,
    pub name: Option<String>,
    pub email: Option<String>,
    pub consent: bool,
    pub unsubscribed: bool,
    pub birthday: Option<String>,
    pub tier: Tier,
    pub points_balance: i64,
    /// What counts for the tier: spent in the 365 days before now.
    pub trailing_spend: Money,
    /// The points held that expire first: when, and how many.
    pub next_expiry: Option<PointsExpiry>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PointsExpiry {
    pub at: DateTime<Utc>,
    pub points: i64,
}

/// A purchase of the day a thank-you email is for, with the points it earned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DayPurchase {
    pub id: PurchaseId,
    pub occurred_at: DateTime<Utc>,
    pub amount: Money,
    pub points: i64,
}

#[derive(Debug, Clone)]
pub struct NewBirthdayOffer {
    pub customer: CustomerId,
    /// JSON frozen with the row (the offer code and its expiry).
    pub payload: String,
}

/// A countable purchase in a report's window, with the customer's first purchase ever.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowPurchase {
    pub customer: i64,
    pub occurred_at: DateTime<Utc>,
    pub amount: Money,
    pub first_purchase_at: DateTime<Utc>,
}

/// A repeat customer whose P(alive) in the latest analytics run is under the threshold.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AtRiskCustomer {
    pub customer: CustomerId,
    pub external_id: String,
    pub name: Option<String>,
    pub p_alive: f64,
    pub clv_12m: Option<Money>,
    pub monetary: Money,
    pub recency_days: i64,
    pub frequency_days: i64,
    pub as_of: String,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoyaltyTotals {
    /// The ledger's sum before the window's end: points customers hold.
    pub outstanding: i64,
    pub issued: i64,
    pub redeemed: i64,
    pub expired: i64,
}

/// An outbox row as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OutboxEntry {
    pub id: i64,
    pub kind: String,
    pub recipient: String,
    pub period_key: String,
    pub status: String,
    pub attempts: u32,
    pub last_error: Option<String>,
    pub due_at: DateTime<Utc>,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub sent_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

/// A customer as the unsubscribe page shows them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    pub merchant_name: String,
    pub language: EmailLanguage,
    pub customer_name: Option<String>,
    pub unsubscribed_at: Option<DateTime<Utc>>,
}

#[async_trait]
pub trait Mail: Send + Sync {
    /// The merchant with its email language and mail secret (made and stored on first use).
    async fn mail_merchant(&self, merchant: &MerchantId) -> StoreResult<Option<MailMerchant>>;
    async fn set_email_language(
        &self,
        merchant: &MerchantId,
        language: EmailLanguage,
    ) -> StoreResult<bool>;

    /// Customers whose birthday is on one of `month_days` (`MM-DD`), who may be mailed
    /// (an address, consent, not unsubscribed) and have no birthday offer for `year` yet;
    /// ids above `after`, in id order, at most `limit`.
    async fn birthday_candidates(
        &self,
        merchant: &MerchantId,
        month_days: &[String],
        year: i32,
        after: CustomerId,
        limit: u32,
    ) -> StoreResult<Vec<CustomerId>>;
    /// Enqueues birthday offers and awards each customer's birthday points in the same
    /// transaction; an offer enqueued before adds nothing. Returns how many were added.
    async fn enqueue_birthday_offers(
        &self,
        merchant: &MerchantId,
        year: i32,
        due_at: DateTime<Utc>,
        points: i64,
        offers: &[NewBirthdayOffer],
        now: DateTime<Utc>,
    ) -> StoreResult<u64>;
    /// The recipients among `recipients` that have no report for `period_key` yet.
    async fn missing_reports(
        &self,
        merchant: &MerchantId,
        period_key: &str,
        recipients: &[String],
    ) -> StoreResult<Vec<String>>;
    /// Enqueues one report; false when it was enqueued before.
    async fn enqueue_report(
        &self,
        merchant: &MerchantId,
        recipient: &str,
        period_key: &str,
        due_at: DateTime<Utc>,
        payload: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<bool>;
    /// The payload of a report enqueued for `period_key` (any recipient).
    async fn report_payload(
        &self,
        merchant: &MerchantId,
        period_key: &str,
    ) -> StoreResult<Option<String>>;
    /// Attributed, non-sandbox, non-refunded purchases in `[from, until)`.
    async fn window_purchases(
        &self,
        merchant: &MerchantId,
        from: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> StoreResult<Vec<WindowPurchase>>;
    /// Repeat customers under the P(alive) threshold in the latest analytics run, most
    /// valuable first: (how many in all, the first `limit`). Erased customers are left out:
    /// nobody can win them back.
    async fn at_risk_customers(
        &self,
        merchant: &MerchantId,
        threshold: f64,
        limit: u32,
    ) -> StoreResult<(u64, Vec<AtRiskCustomer>)>;
    async fn loyalty_totals(
        &self,
        merchant: &MerchantId,
        from: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> StoreResult<LoyaltyTotals>;

    /// Claims up to `limit` pending rows (any merchant) that are due at `now`, whose retry
    /// time has come and whose lease (if any) has run out.
    async fn claim_outbox(
        &self,
        now: DateTime<Utc>,
        lease: TimeDelta,
        limit: u32,
    ) -> StoreResult<Vec<ClaimedEmail>>;
    /// Writes the outcomes of a batch, with the follow-ups of the rows sent, in ONE
    /// transaction. Rows whose claim was lost are left alone; returns how many were written.
    async fn finish_outbox(
        &self,
        finished: &[FinishedEmail],
        now: DateTime<Utc>,
    ) -> StoreResult<u64>;
    /// Puts held rows back in the queue when the templates changed since they were held.
    async fn release_held(
        &self,
        merchant: &MerchantId,
        fingerprint: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<u64>;
    async fn mail_customers(
        &self,
        merchant: &MerchantId,
        customers: &[CustomerId],
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<MailCustomer>>;
    /// The customer's countable purchases in `[from, until)`, oldest first.
    async fn day_purchases(
        &self,
        merchant: &MerchantId,
        customer: CustomerId,
        from: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> StoreResult<Vec<DayPurchase>>;
    /// When each of these customers was last sent a marketing email
    /// ([`OutboxKind::MARKETING`]); customers never sent one are absent.
    async fn last_marketing_sent(
        &self,
        merchant: &MerchantId,
        customers: &[CustomerId],
    ) -> StoreResult<HashMap<CustomerId, DateTime<Utc>>>;
    /// Newest first, optionally one status only.
    async fn outbox_entries(
        &self,
        merchant: &MerchantId,
        status: Option<OutboxStatus>,
        page: PageRequest,
    ) -> StoreResult<Page<OutboxEntry>>;

    /// What the unsubscribe and member pages show; `None` when there is no such customer or
    /// they were erased.
    async fn subscription(
        &self,
        merchant: &MerchantId,
        customer: CustomerId,
    ) -> StoreResult<Option<Subscription>>;
    /// Marks the customer unsubscribed (the first time counts); `None` when there is no such
    /// customer (or they were erased).
    async fn unsubscribe(
        &self,
        merchant: &MerchantId,
        customer: CustomerId,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<Subscription>>;
}
