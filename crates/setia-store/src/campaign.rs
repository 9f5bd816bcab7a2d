//! Campaigns (issue 25): a merchant's one-off emails to an audience, their recipients
//! (written when the first wave is due, each with its holdout flag and wave), the outbox rows
//! of kind `campaign` each wave enqueues, and what the result page reads.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Serialize;
use setia_core::campaign::{Audience, CampaignDraft, Wave};
use setia_core::loyalty::Tier;
use setia_core::{CampaignId, CustomerId, MerchantId, Money};

use crate::{Page, PageRequest, StoreResult};

/// Where a campaign is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CampaignStatus {
    /// Its first wave is not due yet; nobody is chosen.
    Scheduled,
    /// Its recipients are chosen (or being chosen) and its waves go out as they come due.
    Sending,
    /// Every wave is enqueued.
    Sent,
}

impl CampaignStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CampaignStatus::Scheduled => "scheduled",
            CampaignStatus::Sending => "sending",
            CampaignStatus::Sent => "sent",
        }
    }

    pub fn parse(text: &str) -> Option<CampaignStatus> {
        [
            CampaignStatus::Scheduled,
            CampaignStatus::Sending,
            CampaignStatus::Sent,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }
}

/// A campaign as stored.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Campaign {
    #[schema(value_type = String, example = "cmp_1")]
    pub id: CampaignId,
    pub name: String,
    /// The audience as setia reads it (`tier:gold+segment:loyal`).
    pub audience: String,
    pub subject: String,
    /// Markdown.
    pub body: String,
    pub send_at: DateTime<Utc>,
    pub early_access_days: Option<u32>,
    pub holdout_percent: u32,
    pub result_days: u32,
    pub status: CampaignStatus,
    pub created_at: DateTime<Utc>,
}

impl Campaign {
    /// The campaign's outbox period: its id.
    pub fn period_key(&self) -> String {
        self.id.to_string()
    }
}

/// A customer of an audience, with the tier their wave follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AudienceMember {
    pub customer: CustomerId,
    pub tier: Tier,
}

/// One chunk of an audience, read in customer order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AudienceChunk {
    pub members: Vec<AudienceMember>,
    /// The last customer this chunk looked at; `None` when there was none left.
    pub scanned_to: Option<CustomerId>,
}

/// A recipient to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewRecipient {
    pub customer: CustomerId,
    pub wave: Wave,
    pub holdout: bool,
    pub due_at: DateTime<Utc>,
}

/// What one wave step of the campaign pass wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WaveStep {
    /// Recipients whose wave came due in this step (treated and held out).
    pub due: u64,
    /// Outbox rows written for the treated among them.
    pub enqueued: u64,
}

/// Recipients of one wave.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct WaveCount {
    /// 0 gold, 1 silver, 2 everyone else.
    pub wave: u32,
    pub due_at: DateTime<Utc>,
    pub treated: u64,
    pub holdout: u64,
}

/// How a campaign's emails went.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct CampaignDelivery {
    pub recipients: u64,
    pub treated: u64,
    pub holdout: u64,
    pub waves: Vec<WaveCount>,
    /// Outbox rows by status.
    pub pending: u64,
    pub sent: u64,
    pub failed: u64,
    pub deferred: u64,
    pub suppressed: u64,
    pub held: u64,
    /// Treated recipients who unsubscribed after their campaign email was sent.
    pub unsubscribed: u64,
}

/// One recipient and what followed their wave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecipientOutcome {
    pub holdout: bool,
    /// Their wave's due time: the window counts from here for both groups.
    pub due_at: DateTime<Utc>,
    /// Verified purchases in the `result_days` from `due_at`, and their amount.
    pub purchases: u32,
    pub revenue: Money,
}

#[async_trait]
pub trait Campaigns {
    async fn create_campaign(
        &self,
        merchant: &MerchantId,
        campaign: &CampaignDraft,
        now: DateTime<Utc>,
    ) -> StoreResult<Campaign>;
    async fn campaign(
        &self,
        merchant: &MerchantId,
        id: CampaignId,
    ) -> StoreResult<Option<Campaign>>;
    /// Newest first.
    async fn campaigns(
        &self,
        merchant: &MerchantId,
        page: PageRequest,
    ) -> StoreResult<Page<Campaign>>;
    /// Campaigns whose first wave is due at `now` and that still have work: recipients to
    /// choose or waves to enqueue.
    async fn due_campaigns(
        &self,
        merchant: &MerchantId,
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<Campaign>>;
    /// The members of `audience` among the next `limit` customers after `after`, in
    /// customer order: customers who may be mailed (an address, consent, not unsubscribed),
    /// with their tier as of `now` (spend in the 365 days before, as every email computes
    /// it), segments and P(alive) from the latest analytics run.
    async fn audience_chunk(
        &self,
        merchant: &MerchantId,
        audience: &Audience,
        after: CustomerId,
        limit: u32,
        now: DateTime<Utc>,
    ) -> StoreResult<AudienceChunk>;
    /// Writes recipients (a customer already written is left as it is) and moves the
    /// campaign's audience cursor to `scanned_to`, in one transaction; with `None`, the
    /// audience is complete and the campaign is `sending`.
    async fn add_campaign_recipients(
        &self,
        merchant: &MerchantId,
        campaign: CampaignId,
        recipients: &[NewRecipient],
        scanned_to: Option<CustomerId>,
    ) -> StoreResult<u64>;
    /// Where the audience cursor of a campaign stands (customers up to it are written).
    async fn campaign_audience_cursor(
        &self,
        merchant: &MerchantId,
        campaign: CampaignId,
    ) -> StoreResult<CustomerId>;
    /// Passes the next `limit` recipients whose wave is due at `now`: the treated get their
    /// outbox row (due at their wave), all are marked; one transaction. When none is left
    /// waiting at all, the campaign becomes `sent`.
    async fn enqueue_campaign_wave(
        &self,
        merchant: &MerchantId,
        campaign: CampaignId,
        now: DateTime<Utc>,
        limit: u32,
    ) -> StoreResult<WaveStep>;
    async fn campaign_delivery(
        &self,
        merchant: &MerchantId,
        campaign: CampaignId,
    ) -> StoreResult<CampaignDelivery>;
    /// Every recipient with their verified purchases in the campaign's result window.
    async fn campaign_outcomes(
        &self,
        merchant: &MerchantId,
        campaign: CampaignId,
    ) -> StoreResult<Vec<RecipientOutcome>>;
}
