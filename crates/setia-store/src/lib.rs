//! setia's storage: the only crate that speaks SQL.
//!
//! Architecture invariant: callers see one trait, [`Store`], and typed rows; no SQL, pool or
//! driver type leaks out. Both databases run the same query texts (written once in
//! `shared.rs`, included by each backend module) and differ only in how they connect,
//! migrate and claim work. Every query is scoped by `merchant_id`.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Serialize;
use setia_core::customer::{Birthday, CustomerEmail, CustomerName, ExternalId, VirtualAccount};
use setia_core::import::{CustomerRecord, RowError, TransactionRecord};
use setia_core::{
    CustomerId, MerchantId, MerchantName, MerchantTimezone, Money, TokenHash, WebhookSecret,
};

pub mod analytics;
pub mod campaign;
pub mod catalog;
pub mod dashboard;
pub mod engagement;
pub mod ledger;
pub mod mail;
pub mod perks;
mod postgres;
pub mod privacy;
pub mod reconcile;
pub mod referral;
mod sqlite;
#[cfg(feature = "testing")]
pub mod testing;
pub mod winback;

pub use analytics::Analytics;
pub use campaign::Campaigns;
pub use catalog::Catalog;
pub use dashboard::Dashboard;
pub use engagement::Engagement;
pub use ledger::Ledger;
pub use mail::Mail;
pub use perks::Perks;
pub use postgres::PostgresStore;
pub use privacy::Privacy;
pub use reconcile::Reconcile;
pub use referral::Referrals;
pub use sqlite::{SqliteStore, WebhookQueue};
pub use winback::Winback;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database URL {0:?} is neither sqlite:// nor postgres://")]
    UnsupportedUrl(String),
    #[error("cannot create the database folder {path}: {source}")]
    CreateFolder {
        path: String,
        source: std::io::Error,
    },
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// From what SQLite does through rusqlite: bulk reads and webhook groups.
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("cannot start the webhook writer thread: {0}")]
    StartWriter(std::io::Error),
    #[error("the webhook writer has stopped")]
    WriterStopped,
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("{0}")]
    Conflict(String),
    #[error("a stored value is invalid: {0}")]
    Corrupt(String),
    #[error("import stopped, nothing was written: {0}")]
    ImportAborted(RowError),
    /// A row that is valid alone but clashes with stored data (a virtual account that
    /// belongs to another customer).
    #[error("{0}")]
    RowConflict(RowError),
    #[error("the import's reader went away before it finished; nothing was written")]
    ImportInterrupted,
    /// A referral code a write carries that cannot be used: not this merchant's, or their
    /// program is off. The write fails whole.
    #[error("{0}")]
    BadReferral(String),
    /// A write to a customer who was erased at their request: their anonymous row takes no
    /// personal data again (a returning person is a new customer, under a new id).
    #[error(
        "customer {0} was erased at their request; an erased customer's record takes no new data"
    )]
    Erased(String),
    /// A value valid alone that the store cannot use (an order amount that leaves no room
    /// for its unique code): the caller's to change.
    #[error("{0}")]
    Invalid(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// A merchant as stored. The webhook secret is kept because signatures are checked with it;
/// the API token is not (only its hash).
#[derive(Debug, Clone, Serialize)]
pub struct Merchant {
    pub id: MerchantId,
    pub name: String,
    pub timezone: MerchantTimezone,
    #[serde(skip)]
    pub webhook_secret: WebhookSecret,
    pub report_emails: Vec<String>,
    pub sandbox: bool,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct NewMerchant {
    pub id: MerchantId,
    pub name: MerchantName,
    pub timezone: MerchantTimezone,
    pub webhook_secret: WebhookSecret,
    pub api_token_hash: TokenHash,
    pub report_emails: Vec<CustomerEmail>,
    pub sandbox: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Customer {
    pub id: CustomerId,
    pub external_id: ExternalId,
    pub name: Option<String>,
    pub email: Option<String>,
    pub birthday: Option<String>,
    pub virtual_account: Option<String>,
    pub payer_names: Vec<String>,
    pub consent: bool,
}

/// Customer fields to write; `None` leaves a stored value as it is.
#[derive(Debug, Clone, Default)]
pub struct CustomerPatch {
    pub name: Option<CustomerName>,
    pub email: Option<CustomerEmail>,
    pub birthday: Option<Birthday>,
    pub virtual_account: Option<VirtualAccount>,
    pub payer_names: Vec<setia_core::PayerName>,
    pub consent: Option<bool>,
    /// The advocate's code, when the store reports this customer as referred.
    pub referred_by: Option<referral::ReferredBy>,
}

impl From<&CustomerRecord> for CustomerPatch {
    fn from(record: &CustomerRecord) -> Self {
        CustomerPatch {
            name: record.name.clone(),
            email: record.email.clone(),
            birthday: record.birthday,
            virtual_account: record.virtual_account.clone(),
            payer_names: record.payer_names.clone(),
            consent: record.consent.map(|c| c.0),
            referred_by: record
                .referral_code
                .clone()
                .map(|code| referral::ReferredBy {
                    code,
                    via: referral::ReferralVia::Import,
                }),
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct CustomerImportCounts {
    pub inserted: u64,
    pub updated: u64,
    /// Rows that matched a stored customer exactly.
    pub unchanged: u64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct TransactionImportCounts {
    pub inserted: u64,
    /// Rows whose source key was already stored (or came earlier in the same file).
    pub skipped_duplicates: u64,
    pub customers_created: u64,
}

/// What one merchant's ledger holds, counted in the database.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct LedgerSummary {
    pub customers: u64,
    pub purchases: u64,
    pub revenue: Money,
    /// Bank mutations recorded, and how often Moota delivered them in all: equal when no
    /// mutation arrived (or was processed) twice.
    pub mutations: u64,
    pub mutation_deliveries: u64,
    pub points_entries: u64,
}

/// What an import's reader sends: rows in batches, so a file of any size is written in one
/// transaction without being held in memory, then `Finished`. The transaction commits only
/// on `Finished`; `Failed`, or a reader that goes away without finishing, rolls it back.
#[derive(Debug)]
pub enum ImportMessage<T> {
    Rows(Vec<T>),
    Failed(RowError),
    Finished,
}

pub type ImportBatches<T> = tokio::sync::mpsc::Receiver<ImportMessage<T>>;

/// From this many purchases on, an import that at least doubles the `purchases` table drops
/// its ordinary indexes and builds them again before it commits, on SQLite: row by row they
/// outgrow the page cache (ARCHITECTURE.md, "Large imports build the time indexes once").
/// Below it they are kept up as rows come.
pub const BULK_IMPORT_ROWS: u64 = 200_000;

/// One call to the webhook endpoint, to be written to the audit log and, when its signature
/// was good, its body to the inbox. Written in groups: one transaction for many calls.
#[derive(Debug, Clone)]
pub struct WebhookCall {
    /// The merchant id as the URL gave it; it may name no merchant.
    pub merchant: String,
    pub received_at: DateTime<Utc>,
    pub remote_addr: String,
    /// What a rejected call was answered; accepted calls are 200.
    pub status: u16,
    /// Why a call was rejected; accepted calls get `received` or `duplicate` from the store.
    pub reason: String,
    /// NULL when the body was not read (it was too large).
    pub body_sha256: Option<String>,
    pub body_size: u64,
    pub inbox: Option<InboxBody>,
}

/// A verified body and the headers kept with it.
#[derive(Debug, Clone)]
pub struct InboxBody {
    pub merchant: MerchantId,
    /// The request's bytes, shared rather than copied on their way to the writer.
    pub body: bytes::Bytes,
    pub user_agent: Option<String>,
    pub moota_user: Option<String>,
    pub moota_webhook: Option<String>,
}

/// The most webhook calls one group commit takes, whoever gathers the group; more wait for
/// the next.
pub const MAX_WEBHOOK_GROUP: usize = 512;

/// Where a queued webhook call's outcome goes once its group is committed.
pub type WebhookReply = tokio::sync::oneshot::Sender<StoreResult<CallOutcome>>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallOutcome {
    /// The body is committed to the inbox as a new row.
    Received { inbox_id: i64 },
    /// A byte-identical body was already in the merchant's inbox.
    Duplicate { inbox_id: i64 },
    /// A rejected call, written to the audit log only.
    Audited,
}

/// Rejected calls over the audit log's per-minute budget, counted rather than stored.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SuppressedCalls {
    pub merchant: String,
    pub minute_start: DateTime<Utc>,
    pub reason: String,
    pub count: u64,
}

/// A webhook call as the audit log keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct AuditEntry {
    pub id: i64,
    pub received_at: DateTime<Utc>,
    pub remote_addr: String,
    pub status: u16,
    pub reason: String,
    pub body_sha256: Option<String>,
    pub body_size: u64,
    pub inbox_id: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InboxEntry {
    pub id: i64,
    #[serde(skip)]
    pub body: Vec<u8>,
    pub body_sha256: String,
    pub body_size: u64,
    pub user_agent: Option<String>,
    pub moota_user: Option<String>,
    pub moota_webhook: Option<String>,
    pub remote_addr: String,
    pub received_at: DateTime<Utc>,
    pub state: String,
}

/// Newest-first paging: rows with an id below `before`, at most `limit` of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest {
    pub before: Option<i64>,
    pub limit: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// The `before` of the next page; None on the last page.
    pub next_cursor: Option<i64>,
}

#[async_trait]
pub trait Store:
    Ledger
    + Analytics
    + Catalog
    + Mail
    + Dashboard
    + Engagement
    + Reconcile
    + Winback
    + Referrals
    + Perks
    + Campaigns
    + Privacy
    + Send
    + Sync
    + 'static
{
    /// Applies every migration not yet applied.
    async fn migrate(&self) -> StoreResult<()>;
    /// True when the database answers and every migration this build knows is applied.
    async fn is_ready(&self) -> StoreResult<bool>;
    /// Closes every connection, waiting for those in use. On SQLite the last connection to
    /// close copies the write-ahead log into the database file and removes it: a command that
    /// wrote much (an import of millions of rows) leaves no log of gigabytes behind for the
    /// next process to read through.
    async fn close(&self);

    async fn create_merchant(&self, merchant: NewMerchant) -> StoreResult<Merchant>;
    async fn list_merchants(&self) -> StoreResult<Vec<Merchant>>;
    async fn merchant(&self, id: &MerchantId) -> StoreResult<Option<Merchant>>;
    async fn merchant_by_token(&self, token: &TokenHash) -> StoreResult<Option<Merchant>>;
    /// Replaces a merchant's API token and/or webhook secret, in one transaction. A new API
    /// token ends every dashboard session of the merchant (they were opened with the old
    /// one, which is also the dashboard's password); returns how many were ended. The old
    /// token stops working at once; the old secret as soon as each server's merchant cache
    /// renews (`setia_ingest`, 30 s).
    async fn rotate_credentials(
        &self,
        merchant: &MerchantId,
        api_token: Option<&TokenHash>,
        webhook_secret: Option<&WebhookSecret>,
    ) -> StoreResult<u64>;

    async fn customer(
        &self,
        merchant: &MerchantId,
        external_id: &ExternalId,
    ) -> StoreResult<Option<Customer>>;

    /// Upserts customers by external id in one transaction; all or nothing.
    async fn import_customers(
        &self,
        merchant: &MerchantId,
        batches: ImportBatches<CustomerRecord>,
    ) -> StoreResult<CustomerImportCounts>;

    /// Adds imported purchases in one transaction, skipping source keys already stored and
    /// creating customers it has not seen; all or nothing.
    async fn import_transactions(
        &self,
        merchant: &MerchantId,
        batches: ImportBatches<TransactionRecord>,
    ) -> StoreResult<TransactionImportCounts>;

    async fn ledger_summary(&self, merchant: &MerchantId) -> StoreResult<LedgerSummary>;

    /// Gets the webhook path ready before the first call, so that it does not wait: on
    /// SQLite, the webhook writer reads the digest of every inbox body (its duplicate check).
    /// Only a server needs this; without it the first group does the same.
    async fn prepare_for_webhooks(&self) -> StoreResult<()>;
    /// Writes a group of webhook calls in ONE transaction (group commit): audit rows for
    /// all, inbox rows for the verified ones. Returns an outcome per call, in order. The
    /// group is shared, not borrowed: SQLite's writer thread reads it without a copy.
    async fn record_webhook_calls(
        &self,
        calls: Arc<[WebhookCall]>,
    ) -> StoreResult<Vec<CallOutcome>>;
    /// The way straight to a writer that gathers webhook calls into group commits itself
    /// (SQLite's writer thread), so that no task stands between a request and its commit.
    /// `None` (PostgreSQL): the caller gathers groups and writes each with
    /// `record_webhook_calls`.
    fn webhook_queue(&self) -> Option<WebhookQueue>;
    async fn add_suppressed_calls(&self, counts: &[SuppressedCalls]) -> StoreResult<()>;
    /// How many rejected calls of a merchant (as the URL named it) were counted, not stored.
    async fn suppressed_call_count(&self, merchant: &str) -> StoreResult<u64>;
    async fn webhook_deliveries(
        &self,
        merchant: &MerchantId,
        page: PageRequest,
    ) -> StoreResult<Page<AuditEntry>>;
    async fn inbox_entries(
        &self,
        merchant: &MerchantId,
        page: PageRequest,
    ) -> StoreResult<Page<InboxEntry>>;
    /// Inbox rows of every merchant still waiting for the worker.
    async fn inbox_depth(&self) -> StoreResult<u64>;
    /// True when webhook groups wait for other write transactions to commit (SQLite has one
    /// write lock), so that a long worker batch holds up the 200s behind it.
    fn webhooks_wait_for_other_writers(&self) -> bool;
}

/// Opens the database a URL names (`sqlite://path` or `postgres://…`). A SQLite file and its
/// folder are created when missing. Does not migrate.
pub async fn connect(url: &str) -> StoreResult<Arc<dyn Store>> {
    if url.starts_with("sqlite:") {
        Ok(Arc::new(SqliteStore::connect(url).await?))
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Arc::new(PostgresStore::connect(url).await?))
    } else {
        Err(StoreError::UnsupportedUrl(url.to_owned()))
    }
}

/// A database URL with its password masked, for messages and logs.
pub fn redacted_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => match url[scheme + 3..at].split_once(':') {
            Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
            None => url.to_owned(),
        },
        _ => url.to_owned(),
    }
}

fn micros(at: DateTime<Utc>) -> i64 {
    at.timestamp_micros()
}

/// The span whose countable spend sets a customer's tier as of `now`: the year up to and
/// including `now`, as `[from, until)`. The profile, the mail context, campaign audiences and
/// the nudge selection all count this one span.
fn tier_year(now: DateTime<Utc>) -> (DateTime<Utc>, DateTime<Utc>) {
    (
        now - chrono::TimeDelta::days(365),
        now + chrono::TimeDelta::microseconds(1),
    )
}

fn from_micros(us: i64) -> StoreResult<DateTime<Utc>> {
    DateTime::from_timestamp_micros(us)
        .ok_or_else(|| StoreError::Corrupt(format!("timestamp {us}")))
}

#[cfg(test)]
mod tests {
    #[test]
    fn passwords_are_hidden_in_database_urls() {
        assert_eq!(
            super::redacted_url("postgres://setia:s3cret@db:5432/setia"),
            "postgres://setia:***@db:5432/setia"
        );
        assert_eq!(
            super::redacted_url("postgres://postgres@db/x"),
            "postgres://postgres@db/x"
        );
        assert_eq!(super::redacted_url("sqlite://./a.db"), "sqlite://./a.db");
    }
}
