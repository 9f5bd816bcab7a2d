//! The engagement side of the store (DESIGN §8): each merchant's engagement program, and
//! what it acts on: feedback requests, the customers' answers and the complaints low answers
//! open.

use std::collections::HashSet;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use setia_core::engagement::{EngagementProgram, FeedbackKind};
use setia_core::feedback::{FeedbackComment, FeedbackScore};
use setia_core::{CustomerId, MerchantId, Money, PurchaseId};

use crate::{Page, PageRequest, StoreResult};

/// A feedback request to write: the purchase it asks about, on which scale, and when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewFeedbackRequest {
    pub customer: CustomerId,
    pub purchase: i64,
    pub kind: FeedbackKind,
    pub due_at: DateTime<Utc>,
}

/// A purchase that may earn a feedback request: attributed, not refunded, not asked about
/// yet, with what the request rules need of its customer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeedbackCandidate {
    pub purchase: i64,
    pub customer: CustomerId,
    pub occurred_at: DateTime<Utc>,
    pub sandbox: bool,
    /// An address, consent, and not unsubscribed.
    pub reachable: bool,
    /// When the customer's latest request was due, if ever asked.
    pub last_request_at: Option<DateTime<Utc>>,
}

/// A customer's answer as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct FeedbackAnswer {
    pub id: i64,
    pub request_id: i64,
    #[schema(value_type = String, example = "cus_7")]
    pub customer_id: CustomerId,
    pub customer_external_id: String,
    pub customer_name: Option<String>,
    /// csat (1–5) or nps (0–10)
    #[schema(value_type = String, example = "csat")]
    pub kind: FeedbackKind,
    pub score: u8,
    pub comment: Option<String>,
    pub answered_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A request with its customer and, once given, its answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedbackRequest {
    pub id: i64,
    pub customer: CustomerId,
    pub customer_external_id: String,
    pub customer_name: Option<String>,
    pub purchase: i64,
    pub purchase_amount: Money,
    pub purchased_at: DateTime<Utc>,
    pub kind: FeedbackKind,
    pub due_at: DateTime<Utc>,
    /// When its email went out (the first one, not the reminder); `None` before.
    pub asked_at: Option<DateTime<Utc>>,
    pub answer: Option<FeedbackAnswer>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ComplaintStatus {
    Open,
    InProgress,
    Resolved,
}

impl ComplaintStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ComplaintStatus::Open => "open",
            ComplaintStatus::InProgress => "in_progress",
            ComplaintStatus::Resolved => "resolved",
        }
    }

    pub fn parse(text: &str) -> Option<ComplaintStatus> {
        [
            ComplaintStatus::Open,
            ComplaintStatus::InProgress,
            ComplaintStatus::Resolved,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }
}

/// A complaint with the answer that opened it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Complaint {
    pub id: i64,
    pub status: ComplaintStatus,
    pub note: Option<String>,
    /// Who resolved it (the dashboard's session or the API), when it is resolved.
    pub resolved_by: Option<String>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub answer: FeedbackAnswer,
    /// The purchase the customer was asked about.
    #[schema(value_type = String, example = "pur_42")]
    pub purchase_id: PurchaseId,
    #[schema(value_type = String, example = "150000.00")]
    pub purchase_amount: Money,
    pub purchased_at: DateTime<Utc>,
}

/// An answer to record, with what it sets off.
#[derive(Debug, Clone, Copy)]
pub struct NewAnswer<'a> {
    pub request: i64,
    pub score: FeedbackScore,
    pub comment: Option<&'a FeedbackComment>,
    /// The score is at or below the program's alert level.
    pub opens_complaint: bool,
    /// Where the alert of a complaint it opens goes (the merchant's report addresses).
    pub alert_to: &'a [String],
}

/// What recording an answer did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedAnswer {
    pub answer: FeedbackAnswer,
    /// False when the request was answered before and this changed the answer.
    pub first: bool,
    /// The complaint this answer opened; `None` when it opened none (not low enough, or its
    /// request had opened one already).
    pub opened_complaint: Option<i64>,
}

/// Which answers to list: a customer's, a score, and answered in [from, until).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AnswerFilter {
    pub customer: Option<CustomerId>,
    pub score: Option<u8>,
    pub from: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
}

/// How many answers gave one score on one local day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DailyScores {
    pub day: NaiveDate,
    pub kind: FeedbackKind,
    pub score: u8,
    pub answers: u64,
}

/// Feedback requests due on one local day (asked then, or a little later when the marketing
/// cap deferred them), and how many of them were answered (at any time since).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DailyRequests {
    pub day: NaiveDate,
    pub asked: u64,
    pub answered: u64,
}

/// The complaints queue at a glance.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ComplaintCounts {
    /// Opened in the window asked about.
    pub opened: u64,
    /// Open or in progress now.
    pub unresolved: u64,
}

#[async_trait]
pub trait Engagement: Send + Sync {
    /// Replaces the merchant's program (kept as its TOML).
    async fn set_engagement_program(
        &self,
        merchant: &MerchantId,
        program: &EngagementProgram,
    ) -> StoreResult<()>;
    /// The program in force: the stored one, or the defaults when none was set.
    async fn engagement_program(&self, merchant: &MerchantId) -> StoreResult<EngagementProgram>;

    /// Purchases made in `[from, until)` that may earn a feedback request, oldest first,
    /// after the `(occurred_at, purchase)` cursor `after`, at most `limit`.
    async fn feedback_candidates(
        &self,
        merchant: &MerchantId,
        from: DateTime<Utc>,
        until: DateTime<Utc>,
        after: Option<(DateTime<Utc>, i64)>,
        limit: u32,
    ) -> StoreResult<Vec<FeedbackCandidate>>;
    /// Writes requests with their `feedback_request` emails in one transaction, skipping
    /// purchases already asked about; returns the keys of the requests written, ascending.
    /// A reminder is the request email's follow-up ([`crate::mail::FollowUp`]), written
    /// when the request is sent.
    async fn create_feedback_requests(
        &self,
        merchant: &MerchantId,
        requests: &[NewFeedbackRequest],
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<i64>>;
    /// A request of this merchant, with its answer; `None` for another merchant's, or one of
    /// an erased customer.
    async fn feedback_request(
        &self,
        merchant: &MerchantId,
        request: i64,
    ) -> StoreResult<Option<FeedbackRequest>>;
    /// Records (or changes) the answer to a request, and opens a complaint when
    /// `opens_complaint` and the request has none yet, enqueuing a `feedback_alert` to each
    /// of `alert_to`, in one transaction. The score must be on the request's scale (the
    /// caller parsed it with the request's kind). `None` when the merchant has no such
    /// request, or its customer was erased (a form posted after the erasure records nothing).
    async fn record_feedback_answer(
        &self,
        merchant: &MerchantId,
        answer: NewAnswer<'_>,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<RecordedAnswer>>;
    /// Answers, newest first.
    async fn feedback_answers(
        &self,
        merchant: &MerchantId,
        filter: AnswerFilter,
        page: PageRequest,
    ) -> StoreResult<Page<FeedbackAnswer>>;
    /// One complaint of this merchant.
    async fn complaint(
        &self,
        merchant: &MerchantId,
        complaint: i64,
    ) -> StoreResult<Option<Complaint>>;
    /// Complaints, newest first, of one status or all.
    async fn complaints(
        &self,
        merchant: &MerchantId,
        status: Option<ComplaintStatus>,
        page: PageRequest,
    ) -> StoreResult<Page<Complaint>>;
    /// Moves a complaint to `status`, with a note when given (kept otherwise); resolving
    /// records who and when, reopening clears them. `None` for another merchant's.
    async fn update_complaint(
        &self,
        merchant: &MerchantId,
        complaint: i64,
        status: ComplaintStatus,
        note: Option<&str>,
        by: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<Complaint>>;
    /// Answers given in `[from, until)` counted per local day (days start at UTC +
    /// `utc_offset_seconds`), scale and score; oldest day first.
    async fn daily_scores(
        &self,
        merchant: &MerchantId,
        from: DateTime<Utc>,
        until: DateTime<Utc>,
        utc_offset_seconds: i32,
    ) -> StoreResult<Vec<DailyScores>>;
    /// Requests due in `[from, until)` per local day, with how many were answered.
    async fn daily_requests(
        &self,
        merchant: &MerchantId,
        from: DateTime<Utc>,
        until: DateTime<Utc>,
        utc_offset_seconds: i32,
    ) -> StoreResult<Vec<DailyRequests>>;
    /// Complaints opened in `[from, until)`, and those not resolved now.
    async fn complaint_counts(
        &self,
        merchant: &MerchantId,
        from: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> StoreResult<ComplaintCounts>;
    /// Which of these customers have a complaint not yet resolved: they get no marketing
    /// email.
    async fn customers_with_open_complaints(
        &self,
        merchant: &MerchantId,
        customers: &[CustomerId],
    ) -> StoreResult<HashSet<CustomerId>>;
}
