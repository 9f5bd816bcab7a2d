//! Win-back episodes (DESIGN §8, `[winback]`): who entered when and why, in which group,
//! the steps' outbox rows and vouchers, how episodes end, and the verified purchases after
//! entry from which setia-analytics computes the result.

use std::collections::HashMap;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use setia_core::winback::EntryReason;
use setia_core::{CustomerId, MerchantId, Money};

use crate::StoreResult;

/// What the entry rule needs of a customer from the store.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WinbackState {
    /// An address, consent, and not unsubscribed.
    pub reachable: bool,
    pub open_complaint: bool,
    /// Episodes so far (the next is number `episodes + 1`).
    pub episodes: u32,
    /// The latest episode has neither ended early nor reached its last step.
    pub in_episode: bool,
    /// When the latest episode ended (early, or at its last step).
    pub last_ended: Option<DateTime<Utc>>,
}

/// A voucher to create with its step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewVoucher {
    pub code: String,
    pub percent: u32,
    pub valid_until: NaiveDate,
}

/// A step to enqueue for a treated customer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewStep {
    pub due_at: DateTime<Utc>,
    pub voucher: Option<NewVoucher>,
}

/// An episode to start. A held-out episode gets no steps.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEpisode {
    pub customer: CustomerId,
    pub number: u32,
    pub reason: EntryReason,
    pub holdout: bool,
    pub entered_at: DateTime<Utc>,
    /// Midnight of the entry day in the merchant's zone: purchases from then end the
    /// episode and count in its result (a bank may date a payment 00:00).
    pub counts_from: DateTime<Utc>,
    pub last_step_at: DateTime<Utc>,
    pub p_alive: Option<f64>,
    pub expected_30d: Option<f64>,
    pub expected_60d: Option<f64>,
    pub steps: Vec<NewStep>,
}

/// A voucher as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Voucher {
    pub code: String,
    #[schema(value_type = String)]
    pub customer_id: CustomerId,
    pub episode_id: i64,
    /// The step of the episode whose email carries it (0 for the first).
    pub step: u32,
    pub percent: u32,
    /// The last day it is valid, in the merchant's time zone.
    pub valid_until: NaiveDate,
    pub redeemed_at: Option<DateTime<Utc>>,
    pub redeemed_order: Option<String>,
}

/// An episode as stored.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Episode {
    pub id: i64,
    #[schema(value_type = String)]
    pub customer_id: CustomerId,
    pub customer_external_id: String,
    pub customer_name: Option<String>,
    pub number: u32,
    /// `p_alive` or `overdue`.
    pub reason: String,
    pub holdout: bool,
    pub entered_at: DateTime<Utc>,
    pub last_step_at: DateTime<Utc>,
    pub p_alive: Option<f64>,
    pub expected_30d: Option<f64>,
    pub expected_60d: Option<f64>,
    pub ended_at: Option<DateTime<Utc>>,
    /// `purchase` or `unsubscribed` when it ended early.
    pub end_reason: Option<String>,
    pub vouchers: Vec<Voucher>,
}

/// What one episode led to: its customer's verified purchases after entry.
#[derive(Debug, Clone, PartialEq)]
pub struct EpisodeOutcome {
    pub id: i64,
    pub entered_at: DateTime<Utc>,
    pub holdout: bool,
    pub expected_30d: Option<f64>,
    pub expected_60d: Option<f64>,
    /// Verified purchases in the 30 and 60 days from the entry day, and their amounts.
    pub purchases_30d: u32,
    pub revenue_30d: Money,
    pub purchases_60d: u32,
    pub revenue_60d: Money,
    pub vouchers_redeemed: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RedeemError {
    #[error("no voucher {0} for this merchant")]
    Unknown(String),
    #[error("voucher {code} was already redeemed{}", order.as_deref().map(|o| format!(" on order {o}")).unwrap_or_default())]
    AlreadyRedeemed { code: String, order: Option<String> },
    #[error("voucher {code} expired after {valid_until}")]
    Expired {
        code: String,
        valid_until: NaiveDate,
    },
}

#[async_trait]
pub trait Winback {
    /// The entry rule's view of these customers at `now` (chunked; missing customers are
    /// absent).
    async fn winback_states(
        &self,
        merchant: &MerchantId,
        customers: &[CustomerId],
        now: DateTime<Utc>,
    ) -> StoreResult<HashMap<CustomerId, WinbackState>>;
    /// Starts the episodes, with each treated one's step rows and vouchers, in one
    /// transaction; an episode already started (same customer and number) is skipped.
    /// Returns the ids of the episodes written.
    async fn start_winback_episodes(
        &self,
        merchant: &MerchantId,
        episodes: &[NewEpisode],
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<i64>>;
    /// Ends the open episodes of customers who unsubscribed or withdrew consent.
    async fn end_unsubscribed_episodes(
        &self,
        merchant: &MerchantId,
        now: DateTime<Utc>,
    ) -> StoreResult<u64>;
    async fn winback_episode(
        &self,
        merchant: &MerchantId,
        episode: i64,
    ) -> StoreResult<Option<Episode>>;
    /// Episodes, newest first (entered at or after `since` when given).
    async fn winback_episodes(
        &self,
        merchant: &MerchantId,
        open_only: bool,
        page: crate::PageRequest,
    ) -> StoreResult<crate::Page<Episode>>;
    /// Every episode entered in `[from, until)` with what followed it, for the results.
    async fn winback_outcomes(
        &self,
        merchant: &MerchantId,
        from: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> StoreResult<Vec<EpisodeOutcome>>;
    /// Marks a voucher used. The same order redeeming it again answers the first result;
    /// another order, or none, is refused.
    async fn redeem_voucher(
        &self,
        merchant: &MerchantId,
        code: &str,
        order: Option<&str>,
        today: NaiveDate,
        now: DateTime<Utc>,
    ) -> StoreResult<Result<Voucher, RedeemError>>;
}
