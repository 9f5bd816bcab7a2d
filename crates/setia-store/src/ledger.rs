//! The ledger side of the store: inbox claims, mutations, attribution, orders, purchases,
//! points and the outbox rows the pipeline writes.

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;
use setia_core::customer::ExternalId;
use setia_core::loyalty::LoyaltyProgram;
use setia_core::moota::Mutation;
use setia_core::{CustomerId, MerchantId, Money, PurchaseId};

use crate::{CustomerPatch, Page, PageRequest, StoreResult};

/// An inbox row a worker holds under a lease. Finishing it checks `claim_id`, so a worker
/// whose lease ran out (and whose row another worker took) cannot write anything.
#[derive(Debug, Clone)]
pub struct ClaimedRow {
    pub inbox_id: i64,
    pub claim_id: String,
    pub merchant: MerchantId,
    pub body: Vec<u8>,
    pub attempts: u32,
}

/// What applying one inbox row did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Applied {
    pub mutations: u32,
    /// Mutations seen before (Moota resent them): recorded once, counted, nothing else.
    pub repeated: u32,
    pub purchases: u32,
    pub attributed: u32,
    pub points_awarded: i64,
    pub emails_enqueued: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct QuarantinedRow {
    pub inbox_id: i64,
    pub received_at: DateTime<Utc>,
    pub body_sha256: String,
    pub body_size: u64,
    pub error: Option<String>,
}

#[derive(Debug, Clone)]
pub struct NewOrder {
    pub external_id: ExternalId,
    pub customer: ExternalId,
    pub amount: Money,
    pub expires_at: DateTime<Utc>,
    pub bank_account_number: Option<String>,
    /// The order's lines; unknown SKUs become products.
    pub items: Vec<setia_core::product::LineItem>,
    /// The code of the customer who referred the buyer, if the store passed one.
    pub referral_code: Option<setia_core::referral::ReferralCode>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Order {
    pub external_id: String,
    pub customer_external_id: Option<String>,
    #[schema(value_type = String, example = "125000.00")]
    pub amount: Money,
    pub unique_code: i64,
    /// What the buyer transfers: the amount plus the unique code in whole Rupiah.
    #[schema(value_type = String, example = "125123.00")]
    pub transfer_amount: Money,
    pub payment_code: String,
    pub bank_account_number: Option<String>,
    /// pending, paid, expired or ambiguous.
    pub status: String,
    pub expires_at: DateTime<Utc>,
    #[schema(value_type = Option<String>, example = "pur_42")]
    pub purchase_id: Option<PurchaseId>,
    pub created_at: DateTime<Utc>,
    pub items: Vec<crate::catalog::OrderLine>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct PurchaseRow {
    #[schema(value_type = String, example = "pur_42")]
    pub id: PurchaseId,
    pub customer_external_id: Option<String>,
    pub occurred_at: DateTime<Utc>,
    #[schema(value_type = String, example = "125000.00")]
    pub amount: Money,
    pub source: String,
    pub attribution: Option<String>,
    pub payer_name: Option<String>,
    pub mutation_id: Option<String>,
    pub sandbox: bool,
    pub refunded_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct PointsEntry {
    pub id: i64,
    pub occurred_at: DateTime<Utc>,
    pub points: i64,
    pub kind: String,
    pub reason: String,
    pub source: String,
}

/// A customer with what the ledger knows of them (the customer API's answer).
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct CustomerProfile {
    #[schema(value_type = String, example = "cus_7")]
    pub id: CustomerId,
    pub external_id: String,
    pub name: Option<String>,
    pub email: Option<String>,
    pub birthday: Option<String>,
    pub consent: bool,
    /// bronze, silver or gold.
    #[schema(value_type = String, example = "silver")]
    pub tier: &'static str,
    pub points_balance: i64,
    pub purchases: u64,
    #[schema(value_type = String, example = "3500000.00")]
    pub total_spent: Money,
    pub first_purchase_at: Option<DateTime<Utc>>,
    pub last_purchase_at: Option<DateTime<Utc>>,
    pub segment: Option<String>,
    pub p_alive: Option<f64>,
    /// When the customer was erased at their request (`erased-cus_N`); null otherwise.
    pub erased_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RedemptionOutcome {
    Redeemed {
        entry: PointsEntry,
        balance: i64,
    },
    /// The same idempotency key was used before: its first answer.
    Replayed {
        entry: PointsEntry,
        balance: i64,
    },
    InsufficientPoints {
        balance: i64,
    },
    /// The key was used before for a different number of points.
    KeyReused,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ManualAttribution {
    Attributed(PurchaseRow),
    AlreadyAttributed,
    /// The order named does not exist.
    UnknownOrder,
    /// The order named is paid already (only pending or ambiguous orders can be).
    OrderNotPending,
    /// The order named belongs to another customer than the one named.
    OrderOfAnotherCustomer,
}

#[async_trait]
pub trait Ledger: Send + Sync {
    /// Claims up to `limit` pending inbox rows whose retry time has come and whose lease (if
    /// any) has run out; each gets a new claim id and a lease until `now + lease`.
    async fn claim_inbox(
        &self,
        now: DateTime<Utc>,
        lease: TimeDelta,
        limit: u32,
    ) -> StoreResult<Vec<ClaimedRow>>;
    /// Applies a claimed row's mutations in ONE transaction and marks it done. `None` when
    /// the claim was lost (the lease ran out and another worker took the row).
    async fn apply_mutations(
        &self,
        row: &ClaimedRow,
        mutations: &[Mutation],
        now: DateTime<Utc>,
    ) -> StoreResult<Option<Applied>>;
    /// Applies several claimed rows in ONE transaction: all of them or none, with one commit
    /// (one fsync on SQLite) for the lot. Each row is all or nothing as in
    /// [`Ledger::apply_mutations`]; `None` for a row whose claim was lost.
    async fn apply_batch(
        &self,
        rows: &[(&ClaimedRow, &[Mutation])],
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<Option<Applied>>>;
    /// A body that cannot be parsed: kept, marked quarantined with the error.
    async fn quarantine_inbox(
        &self,
        row: &ClaimedRow,
        error: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<bool>;
    /// A transient failure: the row goes back to pending, to be tried at `retry_at`.
    async fn release_inbox(
        &self,
        row: &ClaimedRow,
        error: &str,
        retry_at: DateTime<Utc>,
    ) -> StoreResult<bool>;
    async fn quarantined(
        &self,
        merchant: &MerchantId,
        page: PageRequest,
    ) -> StoreResult<Page<QuarantinedRow>>;

    async fn set_loyalty_program(
        &self,
        merchant: &MerchantId,
        program: &LoyaltyProgram,
    ) -> StoreResult<()>;
    async fn loyalty_program(&self, merchant: &MerchantId) -> StoreResult<LoyaltyProgram>;

    async fn upsert_customer(
        &self,
        merchant: &MerchantId,
        external_id: &ExternalId,
        patch: &CustomerPatch,
    ) -> StoreResult<CustomerId>;
    async fn customer_profile(
        &self,
        merchant: &MerchantId,
        external_id: &ExternalId,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<CustomerProfile>>;
    async fn points_history(
        &self,
        merchant: &MerchantId,
        customer: CustomerId,
    ) -> StoreResult<Vec<PointsEntry>>;

    /// Creates an order with a unique code (1–999) that no other pending order's transfer
    /// amount shares. `Conflict` when the external id exists or every code is taken;
    /// `BadReferral` (the store's bad-input error, a 400) when the amount plus a code
    /// would not fit in i64.
    async fn create_order(
        &self,
        merchant: &MerchantId,
        order: &NewOrder,
        now: DateTime<Utc>,
    ) -> StoreResult<Order>;
    async fn order(
        &self,
        merchant: &MerchantId,
        external_id: &ExternalId,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<Order>>;

    async fn purchases(
        &self,
        merchant: &MerchantId,
        attributed: Option<bool>,
        page: PageRequest,
    ) -> StoreResult<Page<PurchaseRow>>;
    /// Attributes a purchase by hand, awards its points as of the purchase and learns the
    /// payer name for next time. `None` when the purchase or the customer does not exist.
    /// With an order (pending or ambiguous, of that customer), the order becomes paid by
    /// this purchase and the purchase inherits its lines, in the same transaction.
    async fn attribute_purchase(
        &self,
        merchant: &MerchantId,
        purchase: PurchaseId,
        customer: &ExternalId,
        order: Option<&ExternalId>,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<ManualAttribution>>;
    /// Marks a purchase refunded and reverses its points. `None` when it does not exist.
    async fn refund_purchase(
        &self,
        merchant: &MerchantId,
        purchase: PurchaseId,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<PurchaseRow>>;
    async fn redeem_points(
        &self,
        merchant: &MerchantId,
        customer: &ExternalId,
        points: i64,
        idempotency_key: &str,
        reason: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<RedemptionOutcome>>;
    /// Awards the points of every attributed purchase that has none yet (imported history),
    /// oldest first, as of each purchase. Idempotent: running it again awards nothing.
    /// Returns (purchases awarded, points). `Corrupt` for a purchase dated too close to
    /// chrono's first date to have a tier year before it, or points past i64.
    async fn award_missing_points(
        &self,
        merchant: &MerchantId,
        now: DateTime<Utc>,
    ) -> StoreResult<(u64, i64)>;
    /// Writes the expiry entries due at `now` for every customer of the merchant. Points whose
    /// expiry falls past the last date chrono holds never expire.
    async fn expire_points(&self, merchant: &MerchantId, now: DateTime<Utc>) -> StoreResult<i64>;
}
