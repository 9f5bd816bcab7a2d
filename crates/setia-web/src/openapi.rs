//! `GET /api/v1/openapi.json`: the JSON API described as OpenAPI 3.1 (utoipa).
//!
//! Schemas are derived from the types the handlers really serialise and parse (the store's
//! rows, the request bodies); lists and errors, whose shapes are generic, are spelled out
//! here. The paths are declared here, one documentation function per route, and a test
//! compares them with the routes the router really serves, both ways.

use std::sync::OnceLock;

use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use serde::Serialize;
use setia_store::campaign::{Campaign, CampaignDelivery, CampaignStatus, WaveCount};
use setia_store::catalog::{OrderLine, Product};
use setia_store::dashboard::{CustomerListRow, CustomerScores};
use setia_store::engagement::{Complaint, ComplaintStatus, FeedbackAnswer};
use setia_store::ledger::{CustomerProfile, Order, PointsEntry, PurchaseRow, QuarantinedRow};
use setia_store::privacy::Erasure;
use setia_store::referral::{Referral, ReferralParty};
use setia_store::winback::{Episode, Voucher};
use setia_store::AuditEntry;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

use crate::campaign_api::CampaignBody;
use crate::catalog_api::{
    ProductBody, Recommendations, RelatedProduct, RelatedProducts, UpsertedProducts,
};
use crate::feedback_api::ComplaintUpdate;
use crate::ledger_api::{
    AttributeBody, CustomerBody, ItemBody, OrderBody, Redemption, RedemptionBody,
};
use crate::referral_api::CustomerReferral;
use crate::winback_api::VoucherRedemptionBody;

pub const PATH: &str = "/api/v1/openapi.json";

pub fn router() -> Router {
    Router::new().route(PATH, get(document))
}

async fn document() -> impl IntoResponse {
    static TEXT: OnceLock<String> = OnceLock::new();
    let text = TEXT.get_or_init(|| {
        api_doc().to_pretty_json().unwrap_or_else(|e| {
            format!("{{\"error\":{{\"code\":\"internal\",\"message\":\"{e}\"}}}}")
        })
    });
    ([(header::CONTENT_TYPE, "application/json")], text.as_str())
}

/// The document, as served.
pub fn api_doc() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "setia",
        description = "Customer-retention analytics for Indonesian merchants paid by bank transfer and \
            virtual account. Every call takes the merchant's API token (`Authorization: Bearer stk_…`); \
            the token decides the merchant, and another merchant's customer, order or purchase is a 404. \
            Money is a decimal string (\"125000.00\"). Lists are newest first: \
            `{\"items\":[…],\"next_cursor\":string|null}`, with `?cursor=&limit=` (1–500, default 50)."
    ),
    paths(
        openapi_json,
        upsert_customer,
        list_customers,
        get_customer,
        erase_customer,
        export_customer,
        redeem_points,
        customer_recommendations,
        upsert_products,
        list_products,
        get_product,
        related_products,
        create_order,
        get_order,
        list_purchases,
        attribute_purchase,
        refund_purchase,
        latest_metrics,
        engagement_program,
        list_feedback,
        list_complaints,
        update_complaint,
        webhook_deliveries,
        webhook_quarantine,
        outbox,
        winback_results,
        winback_episodes,
        redeem_voucher,
        list_referrals,
        customer_referral,
        create_campaign,
        list_campaigns,
        show_campaign,
    ),
    components(schemas(
        ErrorBody, ErrorDetail, CustomerBody, CustomerProfile, Erasure, CustomerList, CustomerListRow,
        CustomerScores, RedemptionBody, Redemption,
        PointsEntry, OrderBody, Order, PurchaseRow, PurchaseList, AttributeBody, AuditEntry,
        AuditList, QuarantinedRow, QuarantineList, OutboxEntryDoc, OutboxList, MetricsDoc,
        ItemBody, OrderLine, ProductBody, Product, UpsertedProducts, ProductList, RelatedProduct,
        RelatedProducts, Recommendations, EngagementDoc, FeedbackDoc, WinbackSettingsDoc,
        WinbackStepDoc, FeedbackAnswer, FeedbackList,
        Complaint, ComplaintStatus, ComplaintList, ComplaintUpdate, WinbackResultsDoc,
        WinbackCohortDoc, WinbackGroupsDoc, WinbackWindowDoc, WinbackGroupWindowDoc,
        WinbackPerCustomerDoc, WinbackIncrementalDoc, DifferenceDoc, MoneyDifferenceDoc, Episode,
        Voucher, EpisodeList, VoucherRedemptionBody, ReferralSettingsDoc, PerksSettingsDoc, MemberPerksDoc, TierPerksDoc, Referral, ReferralParty,
        ReferralList, CustomerReferral,
        CampaignSettingsDoc, CampaignBody, Campaign,
        CampaignStatus, CampaignList, AudienceCountDoc, CreatedCampaignDoc, CampaignDelivery,
        WaveCount, CampaignReportDoc, CampaignResultsDoc,
    )),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
    tags(
        (name = "customers", description = "Customers, their points and redemptions"),
        (name = "orders", description = "Orders with a unique transfer amount and a payment code"),
        (name = "products", description = "The catalogue, recommendations and products bought together"),
        (name = "purchases", description = "The ledger: payments and their attribution"),
        (name = "metrics", description = "The latest metric snapshot (schema 1)"),
        (name = "engagement", description = "The engagement program: marketing cap, feedback, win-back, referrals and membership perks"),
        (name = "feedback", description = "Customers' feedback answers and the complaints queue"),
        (name = "winback", description = "The win-back flow: its result against the holdout, its episodes, and redeeming its vouchers"),
        (name = "referrals", description = "The referral program: customers' personal codes and links, and the referrals stores report with referral_code"),
        (name = "campaigns", description = "Campaigns: one-off emails to an audience with early access by tier, their delivery and their result against the holdout"),
        (name = "webhooks", description = "The Moota webhook audit log and quarantine"),
        (name = "email", description = "The lifecycle email outbox"),
        (name = "meta", description = "This document"),
    )
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}

/// `{"error":{"code","message"}}`
#[derive(Serialize, ToSchema)]
struct ErrorBody {
    error: ErrorDetail,
}

#[derive(Serialize, ToSchema)]
struct ErrorDetail {
    /// unauthorized, bad_request, not_found, conflict, insufficient_points,
    /// idempotency_key_reused, already_attributed, voucher_already_redeemed,
    /// voucher_expired, referral_program_off, payload_too_large, internal
    #[schema(example = "not_found")]
    code: String,
    message: String,
}

#[derive(Serialize, ToSchema)]
struct CustomerList {
    items: Vec<CustomerListRow>,
    next_cursor: Option<String>,
}

#[derive(Serialize, ToSchema)]
struct PurchaseList {
    items: Vec<PurchaseRow>,
    next_cursor: Option<String>,
}

#[derive(Serialize, ToSchema)]
struct ProductList {
    items: Vec<Product>,
    next_cursor: Option<String>,
}

#[derive(Serialize, ToSchema)]
struct FeedbackList {
    items: Vec<FeedbackAnswer>,
    next_cursor: Option<String>,
}

#[derive(Serialize, ToSchema)]
struct ComplaintList {
    items: Vec<Complaint>,
    next_cursor: Option<String>,
}

#[derive(Serialize, ToSchema)]
struct EpisodeList {
    items: Vec<Episode>,
    next_cursor: Option<String>,
}

#[derive(Serialize, ToSchema)]
struct ReferralList {
    items: Vec<Referral>,
    next_cursor: Option<String>,
}

/// The win-back flow against its holdout (DESIGN §8 "Holdout"), for the episodes entered in
/// `[from, until)` and for each month's entrants. Each window (30 and 60 days after entry)
/// counts an episode once it has ended by `as_of`. Differences are treated − holdout with a
/// Welch interval (unequal variances, t with Welch–Satterthwaite degrees of freedom); no
/// interval (`low`, `high` null) when a group has fewer than two customers or neither
/// group varies, no estimate when a group is empty.
#[derive(Serialize, ToSchema)]
#[schema(as = WinbackResults)]
struct WinbackResultsDoc {
    from: chrono::DateTime<chrono::Utc>,
    until: chrono::DateTime<chrono::Utc>,
    as_of: chrono::DateTime<chrono::Utc>,
    /// The intervals' confidence
    #[schema(example = 0.95)]
    confidence: f64,
    total: WinbackGroupsDoc,
    /// By month of entry in the merchant's time zone, oldest first
    cohorts: Vec<WinbackCohortDoc>,
}

/// One month's entrants.
#[derive(Serialize, ToSchema)]
#[schema(as = WinbackCohort)]
struct WinbackCohortDoc {
    #[schema(example = "2026-11")]
    month: String,
    treated: u64,
    holdout: u64,
    vouchers_redeemed: u64,
    days_30: WinbackWindowDoc,
    days_60: WinbackWindowDoc,
}

/// Treated against holdout.
#[derive(Serialize, ToSchema)]
#[schema(as = WinbackGroups)]
struct WinbackGroupsDoc {
    /// Episodes in each group, whether or not their windows have ended
    treated: u64,
    holdout: u64,
    /// Vouchers the treated used (the holdout gets none)
    vouchers_redeemed: u64,
    days_30: WinbackWindowDoc,
    days_60: WinbackWindowDoc,
}

#[derive(Serialize, ToSchema)]
#[schema(as = WinbackWindow)]
struct WinbackWindowDoc {
    /// 30 or 60
    days: u32,
    treated: WinbackGroupWindowDoc,
    holdout: WinbackGroupWindowDoc,
    /// Treated − holdout, per customer
    difference: WinbackPerCustomerDoc,
    /// The per-customer differences times the treated n
    incremental: WinbackIncrementalDoc,
}

/// One group over one window.
#[derive(Serialize, ToSchema)]
#[schema(as = WinbackGroupWindow)]
struct WinbackGroupWindowDoc {
    /// Episodes whose window has ended: the ones counted
    n: u64,
    /// Episodes whose window has not ended yet
    pending: u64,
    /// How many of the n made a verified purchase in the window
    bought: u64,
    share_bought: Option<f64>,
    purchases_per_customer: Option<f64>,
    #[schema(example = "52000.00")]
    revenue_per_customer: Option<String>,
    /// Mean BG/NBD expected purchases in the window at entry, over with_expectation
    expected_purchases_per_customer: Option<f64>,
    with_expectation: u64,
}

#[derive(Serialize, ToSchema)]
#[schema(as = WinbackPerCustomer)]
struct WinbackPerCustomerDoc {
    share_bought: DifferenceDoc,
    purchases_per_customer: DifferenceDoc,
    revenue_per_customer: MoneyDifferenceDoc,
}

#[derive(Serialize, ToSchema)]
#[schema(as = WinbackIncremental)]
struct WinbackIncrementalDoc {
    /// Customers who bought beyond what the holdout's share would give
    customers: DifferenceDoc,
    purchases: DifferenceDoc,
    revenue: MoneyDifferenceDoc,
}

/// An estimate and its 95% interval.
#[derive(Serialize, ToSchema)]
#[schema(as = Difference)]
struct DifferenceDoc {
    estimate: Option<f64>,
    low: Option<f64>,
    high: Option<f64>,
}

/// An amount's estimate and its 95% interval, as decimal strings.
#[derive(Serialize, ToSchema)]
#[schema(as = MoneyDifference)]
struct MoneyDifferenceDoc {
    #[schema(example = "5000.00")]
    estimate: Option<String>,
    low: Option<String>,
    high: Option<String>,
}

#[derive(Serialize, ToSchema)]
struct AuditList {
    items: Vec<AuditEntry>,
    next_cursor: Option<String>,
}

#[derive(Serialize, ToSchema)]
struct QuarantineList {
    items: Vec<QuarantinedRow>,
    next_cursor: Option<String>,
}

/// An email in the outbox.
#[derive(Serialize, ToSchema)]
#[schema(as = OutboxEntry)]
struct OutboxEntryDoc {
    id: i64,
    /// thank_you, birthday_offer, weekly_churn_report, feedback_request, feedback_alert,
    /// winback, referral_reward, tier_welcome, tier_nudge or campaign
    kind: String,
    /// `cus_N` for customer mail, the address for a report or an alert
    recipient: String,
    /// The local day, year or ISO week the email is for; the feedback request (`42`, its
    /// reminder `42-reminder`) or the complaint (an alert)
    period_key: String,
    /// pending, deferred (held back by the marketing cap until next_attempt_at), sent,
    /// failed, held or suppressed
    status: String,
    attempts: u32,
    last_error: Option<String>,
    due_at: chrono::DateTime<chrono::Utc>,
    next_attempt_at: Option<chrono::DateTime<chrono::Utc>>,
    sent_at: Option<chrono::DateTime<chrono::Utc>>,
    created_at: chrono::DateTime<chrono::Utc>,
}

#[derive(Serialize, ToSchema)]
struct OutboxList {
    items: Vec<OutboxEntryDoc>,
    next_cursor: Option<String>,
}

/// The metrics JSON, schema 1 (DESIGN §4), exactly as `setia metrics` printed it.
#[derive(Serialize, ToSchema)]
#[schema(as = Metrics)]
struct MetricsDoc {
    #[schema(example = 1)]
    schema: u32,
    merchant_id: String,
    #[schema(example = "1997-09-30")]
    as_of: String,
    #[schema(example = "Asia/Jakarta")]
    timezone: String,
    /// month or week
    period: String,
    totals: MetricsTotals,
    cohorts: Vec<MetricsCohort>,
    rfm: MetricsRfm,
    churn: MetricsChurn,
    clv: MetricsClv,
    loyalty: MetricsLoyalty,
}

/// The engagement program in force (DESIGN §8), as `setia merchant engagement` sets it.
#[derive(Serialize, ToSchema)]
#[schema(as = EngagementProgram)]
struct EngagementDoc {
    /// At most one marketing email per customer per this many days; 0: no cap
    #[schema(example = 3)]
    marketing_cap_days: u32,
    feedback: FeedbackDoc,
    winback: WinbackSettingsDoc,
    referral: ReferralSettingsDoc,
    perks: PerksSettingsDoc,
    campaigns: CampaignSettingsDoc,
}

/// `[perks]`: what each loyalty tier gives besides its points multiplier, the welcome when a
/// verified purchase first reaches a tier, and the nudge when the next one is near.
#[derive(Serialize, ToSchema)]
#[schema(as = PerksSettings)]
struct PerksSettingsDoc {
    /// Welcome emails, entry awards and nudges (the perks are shown either way)
    enabled: bool,
    /// Nudge a customer whose trailing spend is within this percent below the next threshold; 0: off
    #[schema(example = 20)]
    nudge_within_percent: u32,
    member: MemberPerksDoc,
    silver: TierPerksDoc,
    gold: TierPerksDoc,
}

/// `[perks.member]`: the first tier (the loyalty program's bronze), where every customer
/// starts; it has no entry award.
#[derive(Serialize, ToSchema)]
#[schema(as = MemberPerks)]
struct MemberPerksDoc {
    #[schema(example = "Member")]
    title: String,
    /// Lines shown to the customer (at most 10, each at most 200 characters)
    perks: Vec<String>,
}

/// `[perks.silver]` and `[perks.gold]`.
#[derive(Serialize, ToSchema)]
#[schema(as = TierPerks)]
struct TierPerksDoc {
    #[schema(example = "Silver")]
    title: String,
    /// Lines shown to the customer (at most 10, each at most 200 characters)
    #[schema(example = json!(["Gratis ongkir", "Akses awal koleksi baru"]))]
    perks: Vec<String>,
    /// Points awarded once when a verified purchase first reaches the tier
    #[schema(example = 100)]
    entry_points: u32,
    /// A personal voucher in the welcome email, 1 to 100 percent; null: none
    #[schema(example = 10)]
    entry_voucher_percent: Option<u32>,
}

/// `[campaigns]`: each campaign's holdout and the window its result counts over.
#[derive(Serialize, ToSchema)]
#[schema(as = CampaignSettings)]
struct CampaignSettingsDoc {
    /// Share of a campaign's audience held out (mailed nothing, recorded)
    #[schema(example = 10)]
    holdout_percent: u32,
    /// Days after a recipient's wave in which verified purchases count in the result
    #[schema(example = 14)]
    result_days: u32,
}

#[derive(Serialize, ToSchema)]
struct CampaignList {
    items: Vec<Campaign>,
    next_cursor: Option<String>,
}

/// Whom a campaign reaches now: customers of the audience who may be mailed.
#[derive(Serialize, ToSchema)]
#[schema(as = AudienceCount)]
struct AudienceCountDoc {
    recipients: u64,
    /// Held out by the campaign's seeded draw (exact once the campaign is written)
    holdout: u64,
    /// Gold, silver, everyone else
    by_wave: [u64; 3],
    holdout_exact: bool,
}

/// A written campaign and whom it reaches now.
#[derive(Serialize, ToSchema)]
#[schema(as = CreatedCampaign)]
struct CreatedCampaignDoc {
    #[serde(flatten)]
    campaign: Campaign,
    recipients: AudienceCountDoc,
}

/// A campaign with its delivery and its result.
#[derive(Serialize, ToSchema)]
#[schema(as = CampaignReport)]
struct CampaignReportDoc {
    #[serde(flatten)]
    campaign: Campaign,
    delivery: CampaignDelivery,
    results: CampaignResultsDoc,
}

/// Verified purchases in the result window after each recipient's wave, treated against
/// holdout, with 95% intervals and group sizes (none without enough data).
#[derive(Serialize, ToSchema)]
#[schema(as = CampaignResults)]
struct CampaignResultsDoc {
    as_of: chrono::DateTime<chrono::Utc>,
    #[schema(example = 0.95)]
    confidence: f64,
    /// The result window (`result_days`)
    days: u32,
    treated: WinbackGroupWindowDoc,
    holdout: WinbackGroupWindowDoc,
    difference: WinbackPerCustomerDoc,
    incremental: WinbackIncrementalDoc,
}

/// `[referral]`: customers bring friends with a personal code, and are rewarded once the
/// friend's first bank transfer has stood for the hold.
#[derive(Serialize, ToSchema)]
#[schema(as = ReferralSettings)]
struct ReferralSettingsDoc {
    /// Off unless the merchant turns it on
    enabled: bool,
    /// Points the advocate earns per rewarded referral
    #[schema(example = 200)]
    advocate_points: u32,
    /// The friend's discount on their first order (the store applies it; setia shows it)
    #[schema(example = 10)]
    friend_voucher_percent: u32,
    /// The friend's first payment must be at least this many whole Rupiah
    #[schema(example = 100000)]
    min_first_order_rupiah: u64,
    /// Rewards an advocate may earn in one calendar month (merchant time)
    #[schema(example = 10)]
    max_rewards_per_month: u32,
    /// Days a qualified referral waits before its reward; a refund meanwhile cancels it
    #[schema(example = 7)]
    hold_days: u32,
}

/// `[winback]`: emails to customers the churn model says are slipping away, with a random
/// holdout that shows what they earned.
#[derive(Serialize, ToSchema)]
#[schema(as = WinbackSettings)]
struct WinbackSettingsDoc {
    /// Off unless the merchant turns it on
    enabled: bool,
    /// A repeat customer whose P(alive) is under this enters (0: off)
    #[schema(example = 0.5)]
    p_alive_below: f64,
    /// A customer whose days since the last purchase reach this many times their median gap enters (0: off)
    #[schema(example = 2.0)]
    overdue_factor: f64,
    min_purchases: u32,
    /// The emails of an episode, by day after entry
    steps: Vec<WinbackStepDoc>,
    voucher_percent: u32,
    /// Days a voucher is valid from its email's day
    voucher_days: u32,
    /// Days after an episode ends before the customer can enter again
    cooldown_days: u32,
    /// Share of entered customers held out (mailed nothing), to measure the effect
    #[schema(example = 10)]
    holdout_percent: u32,
}

#[derive(Serialize, ToSchema)]
#[schema(as = WinbackStep)]
struct WinbackStepDoc {
    day: u32,
    /// Carries a personal voucher code
    voucher: bool,
}

#[derive(Serialize, ToSchema)]
#[schema(as = FeedbackSettings)]
struct FeedbackDoc {
    enabled: bool,
    /// csat (1–5) or nps (0–10)
    #[schema(example = "csat")]
    kind: String,
    delay_days: u32,
    resurvey_days: u32,
    reminder: bool,
    /// An answer at or below this score opens a complaint
    alert_at_or_below: u8,
}

#[derive(Serialize, ToSchema)]
struct MetricsTotals {
    customers: u64,
    purchases: u64,
    #[schema(example = "2500315.63")]
    revenue: String,
    repeat_customers: u64,
    repeat_purchase_rate: f64,
    median_days_between_purchases: Option<f64>,
}

#[derive(Serialize, ToSchema)]
struct MetricsCohort {
    #[schema(example = "1997-01")]
    cohort: String,
    size: u64,
    /// Share of the cohort with a purchase in period cohort+k
    retention: Vec<f64>,
    /// Share of the cohort with a purchase in any period ≥ cohort+k
    retention_unbounded: Vec<f64>,
    revenue: Vec<String>,
}

#[derive(Serialize, ToSchema)]
struct MetricsRfm {
    /// Customers per segment: champions, loyal, potential_loyalists, new_customers,
    /// promising, need_attention, about_to_sleep, at_risk, cant_lose, hibernating
    segments: std::collections::BTreeMap<String, u64>,
}

#[derive(Serialize, ToSchema)]
struct MetricsChurn {
    #[schema(example = "bg_nbd")]
    model: String,
    params: MetricsChurnParams,
    log_likelihood: Option<f64>,
    converged: bool,
    customers_at_risk: u64,
    p_alive_threshold: f64,
    expected_purchases_next_90d: Option<f64>,
}

#[derive(Serialize, ToSchema)]
struct MetricsChurnParams {
    r: Option<f64>,
    alpha: Option<f64>,
    a: Option<f64>,
    b: Option<f64>,
}

#[derive(Serialize, ToSchema)]
struct MetricsClv {
    #[schema(example = "gamma_gamma")]
    model: String,
    params: MetricsClvParams,
    expected_12m_total: Option<String>,
}

#[derive(Serialize, ToSchema)]
struct MetricsClvParams {
    p: Option<f64>,
    q: Option<f64>,
    v: Option<f64>,
}

#[derive(Serialize, ToSchema)]
struct MetricsLoyalty {
    points_issued: i64,
    points_redeemed: i64,
    points_expired: i64,
    points_outstanding: i64,
    /// bronze, silver, gold
    members_by_tier: std::collections::BTreeMap<String, u64>,
}

// One documentation function per route. `tests::the_document_matches_the_router` keeps
// them and the router in step.

#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "meta", security(()),
    responses((status = 200, description = "This OpenAPI document")))]
#[allow(dead_code)]
fn openapi_json() {}

#[utoipa::path(post, path = "/api/v1/customers", tag = "customers",
    request_body = CustomerBody,
    responses(
        (status = 200, description = "The customer after the upsert (by external_id; a field left out keeps its value)", body = CustomerProfile),
        (status = 400, description = "A field is invalid", body = ErrorBody),
        (status = 401, description = "No valid API token", body = ErrorBody),
        (status = 409, description = "conflict: the virtual account belongs to another customer; erased: the external_id is an erased customer's (erased-cus_N), whose row takes no new data", body = ErrorBody),
    ))]
#[allow(dead_code)]
fn upsert_customer() {}

#[utoipa::path(get, path = "/api/v1/customers", tag = "customers",
    params(
        ("q" = Option<String>, Query, max_length = 100, description = "Customers whose name, email or external id contains this (3 characters or more; shorter matches an external id exactly), newest first"),
        ("segment" = Option<String>, Query, pattern = "^(champions|loyal|potential_loyalists|new_customers|promising|need_attention|about_to_sleep|at_risk|cant_lose|hibernating)$", description = "An RFM segment's customers, highest 12-month CLV first"),
        ("at_risk" = Option<bool>, Query, description = "true: repeat customers whose P(alive) is under 0.5, highest 12-month CLV first"),
        ("cursor" = Option<String>, Query, description = "The next_cursor of the page before, of the same list"),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 500, description = "1–500, default 50"),
    ),
    responses(
        (status = 200, description = "Every customer newest first, or the list q, segment or at_risk names; each with marketing_consent (consent given, not unsubscribed) and the latest run's scores (null before the first run scores them)", body = CustomerList),
        (status = 400, description = "An unknown segment, more than one of q, segment and at_risk=true, a cursor of another list, a bad limit", body = ErrorBody),
        (status = 401, description = "No valid API token", body = ErrorBody),
    ))]
#[allow(dead_code)]
fn list_customers() {}

#[utoipa::path(get, path = "/api/v1/customers/{external_id}", tag = "customers",
    params(("external_id" = String, Path, description = "The merchant's own customer id")),
    responses(
        (status = 200, description = "Tier, points balance, purchases, total spent, first and last purchase, RFM segment and P(alive)", body = CustomerProfile),
        (status = 401, description = "No valid API token", body = ErrorBody),
        (status = 404, description = "No such customer of this merchant", body = ErrorBody),
    ))]
#[allow(dead_code)]
fn get_customer() {}

#[utoipa::path(delete, path = "/api/v1/customers/{external_id}", tag = "customers",
    params(("external_id" = String, Path, description = "The merchant's own customer id")),
    responses(
        (status = 200, description = "The customer is erased at their request (Indonesia's UU PDP): name, email, birthday, virtual account, payer names, the payer text of their transfers, feedback comments and complaint notes are gone, pending emails cancelled, points forfeited. Purchases stay, anonymous, under external_id erased-cus_N; the old id is free for a new customer. The answer counts what was taken out", body = Erasure),
        (status = 401, description = "No valid API token", body = ErrorBody),
        (status = 404, description = "No such customer of this merchant (an erased one included: a repeated call changes nothing)", body = ErrorBody),
    ))]
#[allow(dead_code)]
fn erase_customer() {}

#[utoipa::path(get, path = "/api/v1/customers/{external_id}/export", tag = "customers",
    params(("external_id" = String, Path, description = "The merchant's own customer id")),
    responses(
        (status = 200, description = "The customer's right of access (UU PDP): everything setia holds about them, as one document: exported_at, merchant, customer (name, email, birthday, virtual account, payer names, consent), unsubscribed_at, profile (as GET /customers/{external_id}), scores (the latest run's segment, R, F, M, P(alive), CLV, or null), purchases (each with its items), points, emails (as GET /outbox), feedback (as GET /feedback), complaints (as GET /complaints) and referrals (code, referred_by, referred)", body = Object),
        (status = 401, description = "No valid API token", body = ErrorBody),
        (status = 404, description = "No such customer of this merchant (an erased customer's old id included)", body = ErrorBody),
    ))]
#[allow(dead_code)]
fn export_customer() {}

#[utoipa::path(post, path = "/api/v1/customers/{external_id}/redemptions", tag = "customers",
    params(("external_id" = String, Path)),
    request_body = RedemptionBody,
    responses(
        (status = 201, description = "Points spent (oldest first)", body = Redemption),
        (status = 200, description = "The idempotency key was used before: the first answer", body = Redemption),
        (status = 400, description = "points, idempotency_key or reason is invalid", body = ErrorBody),
        (status = 401, description = "No valid API token", body = ErrorBody),
        (status = 404, description = "No such customer", body = ErrorBody),
        (status = 409, description = "insufficient_points, or idempotency_key_reused", body = ErrorBody),
    ))]
#[allow(dead_code)]
fn redeem_points() {}

#[utoipa::path(get, path = "/api/v1/customers/{external_id}/recommendations", tag = "products",
    params(
        ("external_id" = String, Path),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 50, description = "1–50, default 10"),
    ),
    responses(
        (status = 200, description = "Products for the customer, best first: from the nightly run's list, then best-sellers; only in stock, never one the customer bought", body = Recommendations),
        (status = 400, description = "A bad limit", body = ErrorBody),
        (status = 401, description = "No valid API token", body = ErrorBody),
        (status = 404, description = "No such customer of this merchant", body = ErrorBody),
    ))]
#[allow(dead_code)]
fn customer_recommendations() {}

#[utoipa::path(post, path = "/api/v1/products", tag = "products",
    request_body(content = ProductBody, description = "One product (an object) or 1 to 1,000 (an array of them), upserted by SKU in one transaction"),
    responses(
        (status = 200, description = "What changed, and every product as now stored, in the order sent", body = UpsertedProducts),
        (status = 400, description = "A field is invalid (an array names the index)", body = ErrorBody),
        (status = 401, description = "No valid API token", body = ErrorBody),
    ))]
#[allow(dead_code)]
fn upsert_products() {}

#[utoipa::path(get, path = "/api/v1/products", tag = "products",
    params(("cursor" = Option<String>, Query), ("limit" = Option<u32>, Query, minimum = 1, maximum = 500, description = "1–500, default 50")),
    responses(
        (status = 200, description = "Products, newest first", body = ProductList),
        (status = 400, description = "A bad cursor or limit", body = ErrorBody),
        (status = 401, description = "No valid API token", body = ErrorBody),
    ))]
#[allow(dead_code)]
fn list_products() {}

#[utoipa::path(get, path = "/api/v1/products/{sku}", tag = "products",
    params(("sku" = String, Path)),
    responses(
        (status = 200, description = "The product", body = Product),
        (status = 401, description = "No valid API token", body = ErrorBody),
        (status = 404, description = "No such product of this merchant", body = ErrorBody),
    ))]
#[allow(dead_code)]
fn get_product() {}

#[utoipa::path(get, path = "/api/v1/products/{sku}/related", tag = "products",
    params(
        ("sku" = String, Path),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 50, description = "1–50, default 10"),
    ),
    responses(
        (status = 200, description = "Bought together: in-stock products most often bought by the same customers, by cosine similarity of their buyers, from the nightly run", body = RelatedProducts),
        (status = 400, description = "A bad limit", body = ErrorBody),
        (status = 401, description = "No valid API token", body = ErrorBody),
        (status = 404, description = "No such product of this merchant", body = ErrorBody),
    ))]
#[allow(dead_code)]
fn related_products() {}

#[utoipa::path(post, path = "/api/v1/orders", tag = "orders",
    request_body = OrderBody,
    responses(
        (status = 201, description = "The order with its transfer_amount (amount + unique code) and payment_code", body = Order),
        (status = 400, description = "A field is invalid", body = ErrorBody),
        (status = 401, description = "No valid API token", body = ErrorBody),
        (status = 409, description = "The external id exists, or every unique code of the amount is taken", body = ErrorBody),
    ))]
#[allow(dead_code)]
fn create_order() {}

#[utoipa::path(get, path = "/api/v1/orders/{external_id}", tag = "orders",
    params(("external_id" = String, Path)),
    responses(
        (status = 200, description = "The order; status is pending, paid, expired or ambiguous", body = Order),
        (status = 401, description = "No valid API token", body = ErrorBody),
        (status = 404, description = "No such order of this merchant", body = ErrorBody),
    ))]
#[allow(dead_code)]
fn get_order() {}

#[utoipa::path(get, path = "/api/v1/purchases", tag = "purchases",
    params(
        ("attributed" = Option<bool>, Query, description = "false: the unattributed queue; true: attributed only"),
        ("cursor" = Option<String>, Query),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 500, description = "1–500, default 50"),
    ),
    responses(
        (status = 200, description = "Purchases, newest first", body = PurchaseList),
        (status = 400, description = "A bad filter, cursor or limit", body = ErrorBody),
        (status = 401, description = "No valid API token", body = ErrorBody),
    ))]
#[allow(dead_code)]
fn list_purchases() {}

#[utoipa::path(post, path = "/api/v1/purchases/{id}/attribute", tag = "purchases",
    params(("id" = String, Path, example = "pur_42")),
    request_body = AttributeBody,
    responses(
        (status = 200, description = "Attributed by hand: points awarded as of the purchase, the payer name learned", body = PurchaseRow),
        (status = 401, description = "No valid API token", body = ErrorBody),
        (status = 400, description = "A field is invalid", body = ErrorBody),
        (status = 404, description = "No such purchase, customer or order of this merchant", body = ErrorBody),
        (status = 409, description = "already_attributed, order_not_pending or order_of_another_customer", body = ErrorBody),
    ))]
#[allow(dead_code)]
fn attribute_purchase() {}

#[utoipa::path(post, path = "/api/v1/purchases/{id}/refund", tag = "purchases",
    params(("id" = String, Path, example = "pur_42")),
    responses(
        (status = 200, description = "Marked refunded; its points are taken back", body = PurchaseRow),
        (status = 401, description = "No valid API token", body = ErrorBody),
        (status = 404, description = "No such purchase of this merchant", body = ErrorBody),
    ))]
#[allow(dead_code)]
fn refund_purchase() {}

#[utoipa::path(get, path = "/api/v1/engagement", tag = "engagement",
    responses(
        (status = 200, description = "The program in force, defaults included", body = EngagementDoc),
        (status = 401, description = "No valid API token", body = ErrorBody),
    ))]
#[allow(dead_code)]
fn engagement_program() {}

#[utoipa::path(get, path = "/api/v1/feedback", tag = "feedback",
    params(
        ("score" = Option<u8>, Query, minimum = 0, maximum = 10, description = "only answers with this score (1–5 for CSAT, 0–10 for NPS)"),
        ("from" = Option<String>, Query, description = "answered at or after: a day (merchant time) or an RFC 3339 instant"),
        ("until" = Option<String>, Query, description = "answered before: a day (merchant time) or an RFC 3339 instant"),
        ("cursor" = Option<String>, Query),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 500, description = "1–500, default 50"),
    ),
    responses(
        (status = 200, description = "Answers, newest first", body = FeedbackList),
        (status = 400, description = "A bad score, date, cursor or limit", body = ErrorBody),
        (status = 401, description = "No valid API token", body = ErrorBody),
    ))]
#[allow(dead_code)]
fn list_feedback() {}

#[utoipa::path(get, path = "/api/v1/complaints", tag = "feedback",
    params(
        ("status" = Option<String>, Query, pattern = "^(open|in_progress|resolved)$", description = "open, in_progress or resolved"),
        ("cursor" = Option<String>, Query),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 500, description = "1–500, default 50"),
    ),
    responses(
        (status = 200, description = "Complaints with the answer that opened each, newest first", body = ComplaintList),
        (status = 400, description = "A bad status, cursor or limit", body = ErrorBody),
        (status = 401, description = "No valid API token", body = ErrorBody),
    ))]
#[allow(dead_code)]
fn list_complaints() {}

#[utoipa::path(post, path = "/api/v1/complaints/{id}", tag = "feedback",
    params(("id" = i64, Path)),
    request_body = ComplaintUpdate,
    responses(
        (status = 200, description = "The complaint after the change; resolving records who (api) and when", body = Complaint),
        (status = 400, description = "A bad status or note", body = ErrorBody),
        (status = 401, description = "No valid API token", body = ErrorBody),
        (status = 404, description = "No such complaint of this merchant", body = ErrorBody),
    ))]
#[allow(dead_code)]
fn update_complaint() {}

#[utoipa::path(get, path = "/api/v1/metrics", tag = "metrics",
    params(("period" = Option<String>, Query, pattern = "^(month|week)$", description = "month or week; the latest snapshot of either when left out")),
    responses(
        (status = 200, description = "The latest snapshot, the same JSON as `setia metrics`", body = MetricsDoc),
        (status = 400, description = "A bad period", body = ErrorBody),
        (status = 401, description = "No valid API token", body = ErrorBody),
        (status = 404, description = "No snapshot yet", body = ErrorBody),
    ))]
#[allow(dead_code)]
fn latest_metrics() {}

#[utoipa::path(get, path = "/api/v1/webhooks/deliveries", tag = "webhooks",
    params(("cursor" = Option<String>, Query), ("limit" = Option<u32>, Query, minimum = 1, maximum = 500, description = "1–500, default 50")),
    responses(
        (status = 200, description = "Every call to the merchant's webhook URL, accepted or not", body = AuditList),
        (status = 400, description = "A bad cursor or limit", body = ErrorBody),
        (status = 401, description = "No valid API token", body = ErrorBody),
    ))]
#[allow(dead_code)]
fn webhook_deliveries() {}

#[utoipa::path(get, path = "/api/v1/webhooks/quarantine", tag = "webhooks",
    params(("cursor" = Option<String>, Query), ("limit" = Option<u32>, Query, minimum = 1, maximum = 500, description = "1–500, default 50")),
    responses(
        (status = 200, description = "Signed bodies that could not be parsed, with the error", body = QuarantineList),
        (status = 400, description = "A bad cursor or limit", body = ErrorBody),
        (status = 401, description = "No valid API token", body = ErrorBody),
    ))]
#[allow(dead_code)]
fn webhook_quarantine() {}

#[utoipa::path(get, path = "/api/v1/outbox", tag = "email",
    params(
        ("status" = Option<String>, Query, pattern = "^(pending|deferred|sent|failed|held|suppressed)$", description = "pending, deferred, sent, failed, held or suppressed"),
        ("cursor" = Option<String>, Query),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 500, description = "1–500, default 50"),
    ),
    responses(
        (status = 200, description = "Emails, newest first, with status, attempts and last error", body = OutboxList),
        (status = 400, description = "A bad status, cursor or limit", body = ErrorBody),
        (status = 401, description = "No valid API token", body = ErrorBody),
    ))]
#[allow(dead_code)]
fn outbox() {}

#[utoipa::path(get, path = "/api/v1/winback/results", tag = "winback",
    params(
        ("from" = Option<String>, Query, description = "entered at or after: a day (merchant time) or an RFC 3339 instant; default 365 days before until"),
        ("until" = Option<String>, Query, description = "entered before: a day (merchant time) or an RFC 3339 instant; default now"),
    ),
    responses(
        (status = 200, description = "Incremental verified purchases and revenue per treated customer against the holdout, 30 and 60 days after entry, with 95% intervals, group sizes and the BG/NBD expectation of both groups", body = WinbackResultsDoc),
        (status = 400, description = "A bad date, or from not before until", body = ErrorBody),
        (status = 401, description = "No valid API token", body = ErrorBody),
    ))]
#[allow(dead_code)]
fn winback_results() {}

#[utoipa::path(get, path = "/api/v1/winback/episodes", tag = "winback",
    params(
        ("open" = Option<bool>, Query, description = "true: only episodes that have not ended"),
        ("cursor" = Option<String>, Query),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 500, description = "1–500, default 50"),
    ),
    responses(
        (status = 200, description = "Episodes, newest first, with their group and vouchers", body = EpisodeList),
        (status = 400, description = "A bad open, cursor or limit", body = ErrorBody),
        (status = 401, description = "No valid API token", body = ErrorBody),
    ))]
#[allow(dead_code)]
fn winback_episodes() {}

#[utoipa::path(post, path = "/api/v1/vouchers/{code}/redeem", tag = "winback",
    params(("code" = String, Path, example = "WB-7KQ2M9XA")),
    request_body(content = VoucherRedemptionBody, description = "Optional: an empty body redeems without an order"),
    responses(
        (status = 200, description = "Redeemed; a replay (the same order, or again without one) answers the same voucher", body = Voucher),
        (status = 400, description = "A bad body or order_external_id", body = ErrorBody),
        (status = 401, description = "No valid API token", body = ErrorBody),
        (status = 404, description = "No such voucher of this merchant", body = ErrorBody),
        (status = 409, description = "voucher_already_redeemed (on another order, or without one), or voucher_expired", body = ErrorBody),
        (status = 413, description = "payload_too_large: a body over 4 KiB", body = ErrorBody),
    ))]
#[allow(dead_code)]
fn redeem_voucher() {}

#[utoipa::path(post, path = "/api/v1/campaigns", tag = "campaigns",
    request_body = CampaignBody,
    responses(
        (status = 201, description = "Written and scheduled; with the recipients it reaches now and its holdout", body = CreatedCampaignDoc),
        (status = 400, description = "An unknown audience, tier, segment or placeholder, a send_at in the past or more than a year ahead, an empty or multi-line subject, a body over 100 KB; nothing is written", body = ErrorBody),
        (status = 401, description = "No valid API token", body = ErrorBody),
        (status = 413, description = "A request over 512 KB", body = ErrorBody),
    ))]
#[allow(dead_code)]
fn create_campaign() {}

#[utoipa::path(get, path = "/api/v1/campaigns", tag = "campaigns",
    params(("cursor" = Option<String>, Query), ("limit" = Option<u32>, Query, minimum = 1, maximum = 500, description = "1–500, default 50")),
    responses(
        (status = 200, description = "Campaigns, newest first, with their status", body = CampaignList),
        (status = 400, description = "A bad cursor or limit", body = ErrorBody),
        (status = 401, description = "No valid API token", body = ErrorBody),
    ))]
#[allow(dead_code)]
fn list_campaigns() {}

#[utoipa::path(get, path = "/api/v1/campaigns/{id}", tag = "campaigns",
    params(("id" = String, Path, example = "cmp_1")),
    responses(
        (status = 200, description = "The campaign, its delivery (sent, failed, deferred, suppressed, unsubscribes, recipients by wave) and its result against the holdout", body = CampaignReportDoc),
        (status = 401, description = "No valid API token", body = ErrorBody),
        (status = 404, description = "No such campaign for this merchant", body = ErrorBody),
    ))]
#[allow(dead_code)]
fn show_campaign() {}

#[utoipa::path(get, path = "/api/v1/referrals", tag = "referrals",
    params(
        ("status" = Option<String>, Query, pattern = "^(pending|qualified|rewarded|refused|cancelled)$", description = "pending, qualified, rewarded, refused or cancelled"),
        ("cursor" = Option<String>, Query),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 500, description = "1–500, default 50"),
    ),
    responses(
        (status = 200, description = "Referrals, newest first: advocate, friend, how the store reported it, status and the reason of a refusal or cancellation, the friend's first verified payment and the reward", body = ReferralList),
        (status = 400, description = "A bad status (the message names the allowed ones), cursor or limit", body = ErrorBody),
        (status = 401, description = "No valid API token", body = ErrorBody),
    ))]
#[allow(dead_code)]
fn list_referrals() {}

#[utoipa::path(get, path = "/api/v1/customers/{external_id}/referral", tag = "referrals",
    params(("external_id" = String, Path, description = "The merchant's own customer id")),
    responses(
        (status = 200, description = "The customer's personal code (made on first use), their link to share, who referred them and whom they referred", body = CustomerReferral),
        (status = 401, description = "No valid API token", body = ErrorBody),
        (status = 404, description = "No such customer of this merchant", body = ErrorBody),
        (status = 409, description = "referral_program_off: the merchant's [referral] program is off (no code is made)", body = ErrorBody),
    ))]
#[allow(dead_code)]
fn customer_referral() {}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use axum::body::Body;
    use axum::http::{Method, Request, StatusCode};
    use setia_ingest::{Ingest, IngestConfig};
    use tower::ServiceExt;

    use super::*;

    const METHODS: [&str; 5] = ["GET", "POST", "PUT", "PATCH", "DELETE"];

    /// The document's (METHOD, path) pairs.
    fn documented() -> BTreeSet<(String, String)> {
        let doc = serde_json::to_value(api_doc()).unwrap();
        let mut out = BTreeSet::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for method in item.as_object().unwrap().keys() {
                let upper = method.to_ascii_uppercase();
                if METHODS.contains(&upper.as_str()) {
                    out.insert((upper, path.clone()));
                }
            }
        }
        out
    }

    /// The path patterns the router holds, read from its debug form (axum prints its route
    /// table there). Fails loudly rather than finding nothing if that ever changes.
    fn router_paths(router: &Router) -> BTreeSet<String> {
        let text = format!("{router:?}");
        let paths: BTreeSet<String> = text
            .split('"')
            .filter(|piece| piece.starts_with("/api/v1/") && !piece.contains(char::is_whitespace))
            .map(str::to_owned)
            .collect();
        assert!(
            paths.contains("/api/v1/customers") && paths.contains("/api/v1/openapi.json"),
            "could not read the router's paths from its debug output; found {paths:?}"
        );
        paths
    }

    #[tokio::test]
    async fn the_document_matches_the_router() {
        let database = setia_store::testing::TestDatabase::sqlite();
        let store = setia_store::connect(&database.url).await.unwrap();
        store.migrate().await.unwrap();
        let ingest = Ingest::start(store.clone(), IngestConfig::default());
        let app = crate::app(store.clone(), ingest);

        // Every (method, path) the router serves: its paths, each probed with every method.
        let mut served = BTreeSet::new();
        for path in router_paths(&app) {
            let concrete = path
                .split('/')
                .map(|part| if part.starts_with('{') { "probe" } else { part })
                .collect::<Vec<_>>()
                .join("/");
            for method in METHODS {
                let response = app
                    .clone()
                    .oneshot(
                        Request::builder()
                            .method(Method::from_bytes(method.as_bytes()).unwrap())
                            .uri(&concrete)
                            .body(Body::empty())
                            .unwrap(),
                    )
                    .await
                    .unwrap();
                if response.status() != StatusCode::METHOD_NOT_ALLOWED {
                    served.insert((method.to_owned(), path.clone()));
                }
            }
        }
        let documented = documented();
        let undocumented: Vec<_> = served.difference(&documented).collect();
        let not_served: Vec<_> = documented.difference(&served).collect();
        assert!(
            undocumented.is_empty(),
            "served but not in openapi.json: {undocumented:?}"
        );
        assert!(
            not_served.is_empty(),
            "in openapi.json but not served: {not_served:?}"
        );
        // DESIGN §3's API, by name.
        for route in [
            ("POST", "/api/v1/customers"),
            ("GET", "/api/v1/customers/{external_id}"),
            ("DELETE", "/api/v1/customers/{external_id}"),
            ("POST", "/api/v1/orders"),
            ("GET", "/api/v1/orders/{external_id}"),
            ("GET", "/api/v1/purchases"),
            ("POST", "/api/v1/purchases/{id}/attribute"),
            ("POST", "/api/v1/purchases/{id}/refund"),
            ("POST", "/api/v1/customers/{external_id}/redemptions"),
            ("GET", "/api/v1/metrics"),
            ("GET", "/api/v1/webhooks/deliveries"),
            ("GET", "/api/v1/webhooks/quarantine"),
            ("GET", "/api/v1/outbox"),
            ("GET", "/api/v1/openapi.json"),
            ("GET", "/api/v1/referrals"),
            ("GET", "/api/v1/customers/{external_id}/referral"),
        ] {
            assert!(
                documented.contains(&(route.0.to_owned(), route.1.to_owned())),
                "{route:?} is not documented"
            );
        }
    }

    /// The bounds the document gives request bodies are the rules' own.
    #[test]
    fn documented_bounds_are_the_rules() {
        let doc = serde_json::to_value(api_doc()).unwrap();
        let field = |schema: &str, field: &str| {
            doc["components"]["schemas"][schema]["properties"][field].clone()
        };
        assert_eq!(
            field("CampaignBody", "early_access_days")["maximum"].as_f64(),
            Some(f64::from(setia_core::campaign::MAX_EARLY_ACCESS_DAYS))
        );
        assert_eq!(
            field("ComplaintUpdate", "note")["maxLength"].as_u64(),
            Some(setia_core::feedback::MAX_COMMENT_CHARS as u64)
        );
        for (schema, name) in [
            ("CustomerBody", "external_id"),
            ("OrderBody", "external_id"),
            ("OrderBody", "customer_external_id"),
            ("AttributeBody", "customer_external_id"),
        ] {
            assert_eq!(
                field(schema, name)["maxLength"].as_u64(),
                Some(setia_core::ExternalId::MAX_LEN as u64),
                "{schema}.{name}"
            );
        }
        let sku = format!("^[A-Za-z0-9._/:#-]{{1,{}}}$", setia_core::Sku::MAX_LEN);
        assert_eq!(field("ProductBody", "sku")["pattern"], sku.as_str());
        assert_eq!(field("ItemBody", "sku")["pattern"], sku.as_str());
        // The pattern and the rule agree on these.
        for (text, ok) in [
            ("KOPI-GAYO-250", true),
            ("a/b:c#1", true),
            ("kopi gayo", false),
            ("Ù", false),
        ] {
            assert_eq!(setia_core::Sku::parse(text).is_ok(), ok, "{text}");
        }
    }

    #[tokio::test]
    async fn the_document_is_served_as_json() {
        let database = setia_store::testing::TestDatabase::sqlite();
        let store = setia_store::connect(&database.url).await.unwrap();
        store.migrate().await.unwrap();
        let app = crate::app(store.clone(), Ingest::start(store, IngestConfig::default()));
        let response = app
            .oneshot(Request::get(PATH).body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let body = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        let doc: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
        assert_eq!(
            doc["components"]["securitySchemes"]["bearer"]["scheme"],
            "bearer"
        );
        let profile = &doc["components"]["schemas"]["CustomerProfile"]["properties"];
        for field in [
            "external_id",
            "name",
            "email",
            "birthday",
            "tier",
            "points_balance",
            "purchases",
            "total_spent",
            "first_purchase_at",
            "last_purchase_at",
            "segment",
            "p_alive",
        ] {
            assert!(
                profile.get(field).is_some(),
                "CustomerProfile lacks {field}"
            );
        }
        assert_eq!(
            profile["total_spent"]["type"], "string",
            "money is a decimal string"
        );
    }

    /// The hand-written schemas list the same fields the real types serialise.
    #[test]
    fn documented_shapes_match_what_is_serialised() {
        let doc = serde_json::to_value(api_doc()).unwrap();
        let schemas = &doc["components"]["schemas"];
        let keys = |name: &str| -> BTreeSet<String> {
            schemas[name]["properties"]
                .as_object()
                .unwrap_or_else(|| panic!("no schema {name}"))
                .keys()
                .cloned()
                .collect()
        };
        let entry = setia_store::mail::OutboxEntry {
            id: 1,
            kind: "thank_you".into(),
            recipient: "cus_1".into(),
            period_key: "2025-01-01".into(),
            status: "sent".into(),
            attempts: 1,
            last_error: None,
            due_at: chrono::Utc::now(),
            next_attempt_at: None,
            sent_at: None,
            created_at: chrono::Utc::now(),
        };
        let real: BTreeSet<String> = serde_json::to_value(&entry)
            .unwrap()
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        assert_eq!(keys("OutboxEntry"), real);
        let program =
            serde_json::to_value(setia_core::engagement::EngagementProgram::standard()).unwrap();
        let real = |value: &serde_json::Value| -> BTreeSet<String> {
            value.as_object().unwrap().keys().cloned().collect()
        };
        assert_eq!(keys("EngagementProgram"), real(&program));
        assert_eq!(keys("FeedbackSettings"), real(&program["feedback"]));
        assert_eq!(keys("WinbackSettings"), real(&program["winback"]));
        assert_eq!(keys("WinbackStep"), real(&program["winback"]["steps"][0]));
        assert_eq!(keys("ReferralSettings"), real(&program["referral"]));
        assert_eq!(keys("PerksSettings"), real(&program["perks"]));
        assert_eq!(keys("MemberPerks"), real(&program["perks"]["member"]));
        assert_eq!(keys("TierPerks"), real(&program["perks"]["silver"]));
        assert_eq!(keys("CampaignSettings"), real(&program["campaigns"]));
        let list: BTreeSet<String> =
            serde_json::to_value(crate::api::ListResponse::from(setia_store::Page::<i64> {
                items: vec![],
                next_cursor: None,
            }))
            .unwrap()
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        for name in [
            "PurchaseList",
            "AuditList",
            "QuarantineList",
            "OutboxList",
            "ProductList",
            "FeedbackList",
            "ComplaintList",
            "EpisodeList",
            "ReferralList",
            "CampaignList",
        ] {
            assert_eq!(keys(name), list, "{name}");
        }
        // The win-back results at every level, from a real computation.
        let results = crate::winback_api::sample_response();
        let value = serde_json::to_value(&results).unwrap();
        let window = &value["total"]["days_30"];
        for (name, real_value) in [
            ("WinbackResults", &value),
            ("WinbackCohort", &value["cohorts"][0]),
            ("WinbackGroups", &value["total"]),
            ("WinbackWindow", window),
            ("WinbackGroupWindow", &window["treated"]),
            ("WinbackPerCustomer", &window["difference"]),
            ("WinbackIncremental", &window["incremental"]),
            ("Difference", &window["difference"]["share_bought"]),
            ("MoneyDifference", &window["incremental"]["revenue"]),
        ] {
            assert_eq!(keys(name), real(real_value), "{name}");
        }
        assert!(window["treated"]["revenue_per_customer"].is_string());
        // A campaign's result, from a real computation.
        let now = chrono::Utc::now();
        let campaign_results = serde_json::to_value(crate::campaign_api::CampaignResults {
            as_of: now,
            confidence: 0.95,
            window: setia_analytics::holdout_window(14, [], now),
        })
        .unwrap();
        assert_eq!(keys("CampaignResults"), real(&campaign_results));
        // A customer's referral answer, with a referral on each side.
        let party = |key: i64, external: &str| ReferralParty {
            id: setia_core::CustomerId::from_key(key),
            external_id: external.into(),
            name: None,
        };
        let referral = Referral {
            id: 1,
            advocate: party(1, "C1"),
            friend: party(2, "C2"),
            via: setia_store::referral::ReferralVia::Order,
            referred_at: chrono::Utc::now(),
            status: "refused",
            reason: Some("existing_customer"),
            purchase_id: None,
            purchase_amount: None,
            qualified_at: None,
            reward_due_at: None,
            rewarded_at: None,
            points: None,
        };
        let answer = serde_json::to_value(CustomerReferral {
            external_id: "C2".into(),
            code: "ABCD2345".into(),
            link: "http://127.0.0.1:8080/r/ABCD2345".into(),
            referred_by: Some(referral.clone()),
            referred: vec![],
        })
        .unwrap();
        assert_eq!(keys("CustomerReferral"), real(&answer));
        assert_eq!(keys("Referral"), real(&answer["referred_by"]));
        assert_eq!(
            keys("ReferralParty"),
            real(&answer["referred_by"]["friend"])
        );
    }
}
