//! A customer's right of access (Indonesia's UU PDP): everything setia holds about one
//! customer, in one JSON document, for the merchant to hand over. Shared by
//! `GET /api/v1/customers/{external_id}/export`, the customer page's download and
//! `setia customers export`.

use chrono::{DateTime, Utc};
use serde::Serialize;
use setia_core::customer::ExternalId;
use setia_core::{CustomerId, MerchantId};
use setia_store::catalog::OrderLine;
use setia_store::dashboard::CustomerScores;
use setia_store::engagement::{AnswerFilter, Complaint, FeedbackAnswer};
use setia_store::ledger::{CustomerProfile, PointsEntry, PurchaseRow};
use setia_store::mail::OutboxEntry;
use setia_store::referral::CustomerReferrals;
use setia_store::{Customer, Page, PageRequest, Store, StoreResult};

/// Rows read per page while the document is gathered.
const ROWS_PER_READ: u32 = 500;

/// Everything setia holds about one customer.
#[derive(Debug, Clone, Serialize)]
pub struct CustomerData {
    pub exported_at: DateTime<Utc>,
    pub merchant: MerchantId,
    /// What the merchant told setia (name, email, birthday, virtual account, payer names,
    /// consent) and when the customer unsubscribed, if they did.
    pub customer: Customer,
    pub unsubscribed_at: Option<DateTime<Utc>>,
    /// Tier, points balance and totals as of `exported_at`.
    pub profile: CustomerProfile,
    /// The latest nightly run's scores about them (segment, R, F, M, P(alive), CLV):
    /// profiling the customer may ask to see.
    pub scores: Option<CustomerScores>,
    /// Every purchase, newest first, with the payer name read from the transfer and what
    /// was bought.
    pub purchases: Vec<PurchaseData>,
    /// Every points entry, newest first.
    pub points: Vec<PointsEntry>,
    /// Every email queued or sent to them, newest first.
    pub emails: Vec<OutboxEntry>,
    /// Their feedback answers, newest first.
    pub feedback: Vec<FeedbackAnswer>,
    /// The complaints their low scores opened, newest first, with the merchant's status and
    /// note.
    pub complaints: Vec<Complaint>,
    /// Their referral code, who referred them and whom they referred.
    pub referrals: CustomerReferrals,
}

#[derive(Debug, Clone, Serialize)]
pub struct PurchaseData {
    #[serde(flatten)]
    pub purchase: PurchaseRow,
    pub items: Vec<OrderLine>,
}

/// The document for a customer of this merchant; `None` when there is none by that id (an
/// erased customer's old id included).
pub async fn gather(
    store: &dyn Store,
    merchant: &MerchantId,
    external_id: &ExternalId,
    now: DateTime<Utc>,
) -> StoreResult<Option<CustomerData>> {
    let Some(customer) = store.customer(merchant, external_id).await? else {
        return Ok(None);
    };
    let Some(profile) = store.customer_profile(merchant, external_id, now).await? else {
        return Ok(None);
    };
    let id = customer.id;
    let scores = store
        .customer_by_key(merchant, id)
        .await?
        .and_then(|row| row.scores);
    let unsubscribed_at = store
        .subscription(merchant, id)
        .await?
        .and_then(|s| s.unsubscribed_at);
    let mut purchases = Vec::new();
    for purchase in every_page(|page| store.customer_purchases(merchant, id, page)).await? {
        let items = store.purchase_lines(merchant, purchase.id.key()).await?;
        purchases.push(PurchaseData { purchase, items });
    }
    let points = every_page(|page| store.customer_points(merchant, id, page)).await?;
    let emails = every_page(|page| store.customer_emails(merchant, id, page)).await?;
    let feedback = every_page(|page| {
        store.feedback_answers(
            merchant,
            AnswerFilter {
                customer: Some(id),
                ..AnswerFilter::default()
            },
            page,
        )
    })
    .await?;
    // A merchant's complaints are few beside its purchases: read them all, keep theirs.
    let complaints = every_page(|page| store.complaints(merchant, None, page))
        .await?
        .into_iter()
        .filter(|complaint| complaint.answer.customer_id == id)
        .collect();
    let referrals = store.customer_referrals(merchant, id).await?;
    Ok(Some(CustomerData {
        exported_at: now,
        merchant: merchant.clone(),
        customer,
        unsubscribed_at,
        profile,
        scores,
        purchases,
        points,
        emails,
        feedback,
        complaints,
        referrals,
    }))
}

/// Every row of a newest-first list, page after page.
async fn every_page<T, F, Fut>(mut read: F) -> StoreResult<Vec<T>>
where
    F: FnMut(PageRequest) -> Fut,
    Fut: std::future::Future<Output = StoreResult<Page<T>>>,
{
    let mut rows = Vec::new();
    let mut before = None;
    loop {
        let page = read(PageRequest {
            before,
            limit: ROWS_PER_READ,
        })
        .await?;
        rows.extend(page.items);
        match page.next_cursor {
            Some(cursor) => before = Some(cursor),
            None => return Ok(rows),
        }
    }
}

/// A file name for the download: the customer's key, never their external id (which may be
/// an email or a phone number, and need not be a safe file name).
pub fn file_name(customer: CustomerId) -> String {
    format!("setia-{customer}.json")
}
