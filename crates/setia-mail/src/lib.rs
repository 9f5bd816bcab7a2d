//! setia's lifecycle email: the scheduler that enqueues thank-you notes' companions (the
//! birthday offer and the weekly churn report), and the delivery that renders each outbox
//! row with its merchant's templates and sends it over SMTP (or to `.eml` files).
//!
//! Architecture invariant: every email is enqueued at most once (the store's unique key on
//! kind, recipient and period) and sent at least once: a row is claimed under a lease, sent,
//! and only then marked sent, so a crash in between sends it again with the same
//! Message-ID. No SQL here (setia-store), no calendar rule outside [`schedule`], no
//! business rule in a template. `Mailer::run_due` is the single step tests drive.

pub mod campaign;
pub mod chart;
pub mod context;
pub mod feedback;
mod marketing;
pub mod message;
mod pass_clock;
pub mod perks;
pub mod referral;
pub mod report;
pub mod schedule;
pub mod templates;
pub mod transport;
pub mod winback;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Datelike, NaiveDate, TimeDelta, Utc};
use futures_util::StreamExt;
use lettre::message::Mailbox;
use lettre::{Address, Message};
use serde::Serialize;
use setia_core::campaign::{CampaignBody, CampaignSubject, Personal};
use setia_core::engagement::EngagementProgram;
use setia_core::loyalty::{LoyaltyProgram, Tier};
use setia_core::mail_token::{birthday_offer_code, UnsubscribeToken};
use setia_core::referral::ReferralCode;
use setia_core::{format_rupiah, CampaignId, CustomerId, ExternalId, MerchantId, Money};
use setia_store::campaign::Campaign;
use setia_store::catalog::Product;
use setia_store::mail::{
    ClaimedEmail, DeliveryOutcome, EmailLanguage, FinishedEmail, FollowUp, MailCustomer,
    MailMerchant, NewBirthdayOffer, OutboxKind,
};
use setia_store::{PageRequest, Store, StoreError};
use tokio::sync::watch;

use crate::context::{
    greeting_name, long_date, short_date, BirthdayContext, BirthdayPayload, Common, LoyaltyView,
    ProductCard, PurchaseView, ReportContext, ReportPayload, ThankYouContext, CHART_CID,
    EMAIL_RECOMMENDATIONS,
};
use crate::message::{InlineImage, Outgoing};
use crate::templates::{RenderedEmail, TemplateError, TemplateLoader, Templates};
use crate::transport::{SendFailure, Transport};

pub use crate::transport::TransportError;

#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error("SETIA_MAIL_FROM {0:?} is not an email address (e.g. \"Toko <noreply@toko.id>\")")]
    BadFrom(String),
    #[error("SETIA_PUBLIC_URL {0:?} is not an http:// or https:// URL")]
    BadPublicUrl(String),
    #[error(transparent)]
    Transport(#[from] TransportError),
    #[error(transparent)]
    Template(#[from] TemplateError),
    #[error("{0}")]
    NotFound(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("a delivery task stopped: {0}")]
    TaskStopped(String),
}

/// Where mail goes and how delivery behaves. Built once from the settings; every field is
/// already checked.
#[derive(Debug, Clone)]
pub struct MailConfig {
    /// `None`: write `.eml` files to `outbox_folder`.
    pub smtp_url: Option<String>,
    pub outbox_folder: PathBuf,
    pub from: Mailbox,
    /// Links in emails start with this (no trailing slash).
    pub public_url: String,
    /// Merchants' template overrides (see [`templates::TemplateLoader`]).
    pub templates: Option<PathBuf>,
    /// How long a claimed outbox row is this worker's.
    pub lease: TimeDelta,
    /// Rows claimed per step: enough that the connections stay busy while the other
    /// delivery lane writes its outcomes and claims its next batch (a batch is cut off at a
    /// third of the lease anyway, see [`MailConfig::send_timeout`]).
    pub batch: u32,
    /// SMTP connections kept open and messages in flight.
    pub connections: u32,
    /// How often the scheduler looks for due birthdays and reports.
    pub schedule_every: Duration,
    /// How long delivery waits when nothing is due.
    pub idle_wait: Duration,
}

pub const DEFAULT_FROM: &str = "setia <noreply@localhost>";
pub const DEFAULT_PUBLIC_URL: &str = "http://127.0.0.1:8080";

impl MailConfig {
    pub fn new(
        smtp_url: Option<&str>,
        from: Option<&str>,
        public_url: Option<&str>,
        templates: Option<PathBuf>,
        lease: TimeDelta,
    ) -> Result<MailConfig, MailError> {
        let from_text = from
            .map(str::trim)
            .filter(|f| !f.is_empty())
            .unwrap_or(DEFAULT_FROM);
        let from: Mailbox = from_text
            .parse()
            .map_err(|_| MailError::BadFrom(from_text.to_owned()))?;
        let public_url = public_url
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .unwrap_or(DEFAULT_PUBLIC_URL);
        let valid = (public_url.starts_with("http://") || public_url.starts_with("https://"))
            && !public_url.contains(char::is_whitespace)
            && public_url
                .split("://")
                .nth(1)
                .is_some_and(|rest| !rest.is_empty());
        if !valid {
            return Err(MailError::BadPublicUrl(public_url.to_owned()));
        }
        Ok(MailConfig {
            smtp_url: smtp_url
                .map(str::trim)
                .filter(|u| !u.is_empty())
                .map(str::to_owned),
            outbox_folder: PathBuf::from("./setia-data/outbox"),
            from,
            public_url: public_url.trim_end_matches('/').to_owned(),
            templates,
            lease: lease.max(TimeDelta::seconds(2)),
            batch: 500,
            connections: 16,
            schedule_every: Duration::from_secs(30),
            idle_wait: Duration::from_secs(1),
        })
    }

    /// How long one message may take: a third of the lease, so a batch started inside its
    /// lease is finished (or given up) before another worker may claim its rows.
    pub fn send_timeout(&self) -> Duration {
        let third = self.lease.to_std().unwrap_or(Duration::from_secs(60)) / 3;
        third.clamp(Duration::from_millis(500), Duration::from_secs(120))
    }

    /// How long each SMTP step (connect, a command, the message) may take: a quarter of
    /// [`MailConfig::send_timeout`], as a message on a pooled connection takes four (MAIL,
    /// RCPT, DATA, the content). lettre enforces it and drops a connection that timed out,
    /// so a send is never cut off half-way with its connection going back to the pool.
    pub fn command_timeout(&self) -> Duration {
        (self.send_timeout() / 4).clamp(Duration::from_millis(250), Duration::from_secs(30))
    }
}

/// Emails enqueued by one scheduler pass, by kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Enqueued {
    /// Always 0 here: thank-you emails are enqueued by the worker with their purchase.
    pub thank_you: u64,
    pub birthday_offer: u64,
    pub weekly_churn_report: u64,
    /// Feedback requests written, each with its email; a reminder is written when its
    /// request is sent. Alerts are enqueued with the answer that opens a complaint.
    pub feedback_request: u64,
    /// Referral rewards paid (points credited), each with its email.
    pub referral_reward: u64,
    /// Customers told how close their next tier is. Welcomes are enqueued by the worker
    /// with the purchase that reached the tier.
    pub tier_nudge: u64,
    /// Campaign emails of the waves that came due (the holdout gets none).
    pub campaign: u64,
}

impl std::ops::AddAssign for Enqueued {
    fn add_assign(&mut self, other: Enqueued) {
        self.thank_you += other.thank_you;
        self.birthday_offer += other.birthday_offer;
        self.weekly_churn_report += other.weekly_churn_report;
        self.feedback_request += other.feedback_request;
        self.referral_reward += other.referral_reward;
        self.tier_nudge += other.tier_nudge;
        self.campaign += other.campaign;
    }
}

/// What delivery did with the rows it claimed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Delivered {
    #[serde(skip)]
    pub claimed: u64,
    pub sent: u64,
    pub failed: u64,
    pub retrying: u64,
    pub held: u64,
    pub suppressed: u64,
    /// Held back by the marketing cap (or a reminder's wait) until a later slot.
    pub deferred: u64,
}

impl std::ops::AddAssign for Delivered {
    fn add_assign(&mut self, other: Delivered) {
        self.claimed += other.claimed;
        self.sent += other.sent;
        self.failed += other.failed;
        self.retrying += other.retrying;
        self.held += other.held;
        self.suppressed += other.suppressed;
        self.deferred += other.deferred;
    }
}

/// `setia mail run-due`'s answer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct RunReport {
    pub enqueued: Enqueued,
    #[serde(flatten)]
    pub delivered: Delivered,
}

/// Cheap to clone: the clones share the store, the SMTP pool, the templates and the scans.
#[derive(Clone)]
pub struct Mailer {
    store: Arc<dyn Store>,
    config: MailConfig,
    transport: Transport,
    templates: Arc<TemplateLoader>,
    /// When this process last looked for each merchant's due feedback requests and nudges.
    feedback_scans: Arc<pass_clock::PassClock>,
    nudge_scans: Arc<pass_clock::PassClock>,
    /// One permit per SMTP connection, shared by the delivery lanes.
    send_slots: Arc<tokio::sync::Semaphore>,
}

/// Delivery batches in flight at once: while one lane writes its batch's outcomes, claims
/// the next and starts rendering it, the others' messages keep the connections busy (two
/// lanes delivered 100,000 emails in 17.9 s, four in 16.4 s, four as tasks of their own in
/// 12.2 s; bench/mail).
const DELIVERY_LANES: usize = 4;

/// What a delivery round goes by: a fixed instant (`run-due --now`) or the wall clock, and
/// when it hands back to the scheduler or stops.
#[derive(Clone)]
struct DeliveryRound {
    at: Option<DateTime<Utc>>,
    until: Option<tokio::time::Instant>,
    stop: Option<watch::Receiver<bool>>,
}

impl DeliveryRound {
    fn now(&self) -> DateTime<Utc> {
        self.at.unwrap_or_else(Utc::now)
    }

    fn keep_going(&self) -> bool {
        let stopped = self.stop.as_ref().is_some_and(|stop| *stop.borrow());
        !stopped
            && self
                .until
                .is_none_or(|until| tokio::time::Instant::now() < until)
    }
}

/// Where rendered rows go, in the order they are ready.
type PreparedSender = tokio::sync::mpsc::UnboundedSender<(ClaimedEmail, Prepared)>;

/// What preparing one claimed row came to: a message to send, or its outcome already
/// (suppressed, held on a template, failed).
pub enum Prepared {
    /// The message, and the email its sending schedules.
    Send(Box<Message>, Option<FollowUp>),
    Done(DeliveryOutcome),
}

fn suppressed(reason: &str) -> Prepared {
    Prepared::Done(DeliveryOutcome::Suppressed {
        reason: reason.to_owned(),
    })
}

/// The recommendations block of one email.
fn cards(products: &[Product], kind: OutboxKind) -> Vec<ProductCard> {
    products
        .iter()
        .take(EMAIL_RECOMMENDATIONS)
        .map(|product| ProductCard::of(product, kind))
        .collect()
}

fn failed(error: impl std::fmt::Display) -> Prepared {
    Prepared::Done(DeliveryOutcome::Failed {
        error: error.to_string(),
    })
}

impl Mailer {
    pub fn new(store: Arc<dyn Store>, config: MailConfig) -> Result<Mailer, MailError> {
        let transport = match &config.smtp_url {
            Some(url) => Transport::smtp(url, config.connections, config.command_timeout())?,
            None => Transport::files(config.outbox_folder.clone())?,
        };
        let templates = TemplateLoader::new(config.templates.clone());
        let send_slots = tokio::sync::Semaphore::new(config.connections.max(1) as usize);
        Ok(Mailer {
            store,
            config,
            transport,
            templates: Arc::new(templates),
            feedback_scans: Arc::new(pass_clock::PassClock::every(feedback::FEEDBACK_SCAN_EVERY)),
            nudge_scans: Arc::new(pass_clock::PassClock::every(perks::NUDGE_SCAN_EVERY)),
            send_slots: Arc::new(send_slots),
        })
    }

    pub fn config(&self) -> &MailConfig {
        &self.config
    }

    /// Enqueues everything due at `now` and delivers every row due then, once each: what
    /// `setia mail run-due` does.
    pub async fn run_due(&self, now: DateTime<Utc>) -> Result<RunReport, MailError> {
        let enqueued = self.schedule(now).await?;
        let delivered = self
            .deliver_until_idle(DeliveryRound {
                at: Some(now),
                until: None,
                stop: None,
            })
            .await?;
        Ok(RunReport {
            enqueued,
            delivered,
        })
    }

    /// Enqueues the birthday offers and weekly reports due at `now`, for every merchant.
    pub async fn schedule(&self, now: DateTime<Utc>) -> Result<Enqueued, MailError> {
        let mut enqueued = Enqueued::default();
        for merchant in self.store.list_merchants().await? {
            enqueued += self.schedule_merchant(&merchant.id, now).await?;
        }
        Ok(enqueued)
    }

    /// Enqueues the latest weekly report for `merchant` now: this week's if it is due, else
    /// last week's (what `setia demo` shows at once, whatever the hour). Returns how many
    /// report emails were enqueued; none for an address that already has that week's.
    pub async fn enqueue_latest_report(
        &self,
        merchant: &MerchantId,
        now: DateTime<Utc>,
    ) -> Result<u64, MailError> {
        let Some(mail) = self.store.mail_merchant(merchant).await? else {
            return Ok(0);
        };
        let Some(window) = report::preview_window(mail.merchant.timezone, now) else {
            return Ok(0);
        };
        self.enqueue_reports(&mail, &window, now).await
    }

    /// The weekly report of `window` for each report address that does not have it yet.
    async fn enqueue_reports(
        &self,
        mail: &MailMerchant,
        window: &schedule::ReportWindow,
        now: DateTime<Utc>,
    ) -> Result<u64, MailError> {
        let id = &mail.merchant.id;
        let recipients = &mail.merchant.report_emails;
        if recipients.is_empty() {
            return Ok(0);
        }
        let missing = self
            .store
            .missing_reports(id, &window.period_key, recipients)
            .await?;
        if missing.is_empty() {
            return Ok(0);
        }
        let payload = report::compute(&*self.store, id, mail.merchant.timezone, window).await?;
        let payload = serde_json::to_string(&payload).expect("a report payload serialises");
        let mut enqueued = 0;
        for recipient in &missing {
            if self
                .store
                .enqueue_report(
                    id,
                    recipient,
                    &window.period_key,
                    window.due_at,
                    &payload,
                    now,
                )
                .await?
            {
                enqueued += 1;
            }
        }
        Ok(enqueued)
    }

    async fn schedule_merchant(
        &self,
        id: &MerchantId,
        now: DateTime<Utc>,
    ) -> Result<Enqueued, MailError> {
        let mut enqueued = Enqueued::default();
        let Some(mail) = self.store.mail_merchant(id).await? else {
            return Ok(enqueued);
        };
        // Emails held on a broken template go back to the queue once it changed.
        let templates = self.templates.load(id, mail.language);
        let released = self
            .store
            .release_held(id, templates.fingerprint(), now)
            .await?;
        if released > 0 {
            tracing::info!(merchant = %id, released, "templates changed: held emails retried");
        }
        let zone = mail.merchant.timezone;

        // Sandbox merchants never mail their customers.
        if let (false, Some(window)) = (mail.merchant.sandbox, schedule::birthday_window(zone, now))
        {
            let program = self.store.loyalty_program(id).await?;
            let mut after = CustomerId::from_key(0);
            const PAGE: u32 = 1_000;
            loop {
                let customers = self
                    .store
                    .birthday_candidates(id, &window.month_days, window.year, after, PAGE)
                    .await?;
                let Some(last) = customers.last().copied() else {
                    break;
                };
                let offers = customers
                    .iter()
                    .map(|customer| {
                        let payload = BirthdayPayload {
                            offer_code: birthday_offer_code(
                                &mail.secret,
                                id,
                                *customer,
                                window.year,
                            ),
                            offer_expires_on: window.offer_expires_on,
                            birthday_points: program.birthday_points,
                        };
                        NewBirthdayOffer {
                            customer: *customer,
                            payload: serde_json::to_string(&payload)
                                .expect("a birthday payload serialises"),
                        }
                    })
                    .collect::<Vec<_>>();
                enqueued.birthday_offer += self
                    .store
                    .enqueue_birthday_offers(
                        id,
                        window.year,
                        window.due_at,
                        program.birthday_points,
                        &offers,
                        now,
                    )
                    .await?;
                if customers.len() < PAGE as usize {
                    break;
                }
                after = last;
            }
        }

        if let Some(window) = schedule::report_window(zone, now) {
            enqueued.weekly_churn_report += self.enqueue_reports(&mail, &window, now).await?;
        }
        let engagement = self.store.engagement_program(id).await?;
        enqueued.feedback_request += self.schedule_feedback(&mail, &engagement, now).await?;
        enqueued.referral_reward += self
            .schedule_referral_rewards(&mail, &engagement, now)
            .await?;
        enqueued.tier_nudge += self.schedule_tier_nudges(&mail, &engagement, now).await?;
        enqueued.campaign += campaign::schedule(&*self.store, id, now).await?;
        if enqueued != Enqueued::default() {
            tracing::info!(merchant = %id, ?enqueued, "emails enqueued");
        }
        Ok(enqueued)
    }

    /// Delivers batch after batch in [`DELIVERY_LANES`] lanes, each a task of its own, until
    /// nothing is due or the round says stop (checked between batches).
    async fn deliver_until_idle(&self, round: DeliveryRound) -> Result<Delivered, MailError> {
        // One batch first: the lanes only start when there is more than a batch to send, so
        // an idle outbox costs one claim per round, not one per lane.
        let first = self.deliver_once(round.now()).await?;
        if first.claimed < u64::from(self.config.batch) || !round.keep_going() {
            return Ok(first);
        }
        let lanes = (0..DELIVERY_LANES).map(|_| {
            let (mailer, round) = (self.clone(), round.clone());
            tokio::spawn(async move {
                let mut delivered = Delivered::default();
                loop {
                    let step = mailer.deliver_once(round.now()).await?;
                    delivered += step;
                    if step.claimed == 0 || !round.keep_going() {
                        return Ok::<_, MailError>(delivered);
                    }
                }
            })
        });
        let mut total = first;
        let mut failure = None;
        for lane in futures_util::future::join_all(lanes).await {
            match lane.map_err(|stopped| MailError::TaskStopped(stopped.to_string())) {
                Ok(Ok(delivered)) => total += delivered,
                Ok(Err(error)) | Err(error) => failure = failure.or(Some(error)),
            }
        }
        failure.map_or(Ok(total), Err)
    }

    /// Claims one batch of due rows and delivers it: render, send, and write every outcome
    /// in one transaction.
    pub async fn deliver_once(&self, now: DateTime<Utc>) -> Result<Delivered, MailError> {
        let rows = self
            .store
            .claim_outbox(now, self.config.lease, self.config.batch)
            .await?;
        let mut delivered = Delivered {
            claimed: rows.len() as u64,
            ..Delivered::default()
        };
        if rows.is_empty() {
            return Ok(delivered);
        }
        // A message is only started in the first third of the lease and cut off after
        // another third, so the outcomes are written with a third of the lease to spare,
        // before any other worker may claim these rows.
        let send_timeout = self.config.send_timeout();
        let lease = self.config.lease.to_std().unwrap_or(send_timeout * 3);
        let deadline = tokio::time::Instant::now() + lease.saturating_sub(send_timeout * 2);

        // Rendering and sending overlap: a task of its own renders the rows (on another core
        // when there is one) while the messages rendered so far are being sent.
        let (prepared_tx, mut prepared_rx) = tokio::sync::mpsc::unbounded_channel();
        let renderer = tokio::spawn({
            let mailer = self.clone();
            async move { mailer.prepare_into(rows, now, &prepared_tx).await }
        });
        let finished = futures_util::stream::poll_fn(|cx| prepared_rx.poll_recv(cx))
            .map(|(row, prepared)| async move {
                let (message, follow_up) = match prepared {
                    Prepared::Done(outcome) => return (row, outcome, None),
                    Prepared::Send(message, follow_up) => (message, follow_up),
                };
                // Closed only when the mailer is gone, and then nothing is sent.
                let Ok(_slot) = self.send_slots.acquire().await else {
                    return (
                        row,
                        DeliveryOutcome::Retry {
                            at: now,
                            error: "the mailer stopped".into(),
                        },
                        None,
                    );
                };
                if tokio::time::Instant::now() >= deadline {
                    let outcome = DeliveryOutcome::Retry {
                        at: now,
                        error: "not started: the claim's lease was running out".into(),
                    };
                    return (row, outcome, None);
                }
                let file_name = format!("{}-{}-{}.eml", row.merchant, row.id, row.kind);
                let outcome = match self.transport.send(&message, &file_name).await {
                    Ok(()) => DeliveryOutcome::Sent,
                    Err(SendFailure::Permanent(error)) => DeliveryOutcome::Failed { error },
                    Err(SendFailure::Temporary(error)) => match schedule::retry_delay(row.attempts)
                    {
                        Some(delay) => DeliveryOutcome::Retry {
                            at: now + delay,
                            error,
                        },
                        None => DeliveryOutcome::Failed {
                            error: format!("gave up after {} attempts: {error}", row.attempts),
                        },
                    },
                };
                (row, outcome, follow_up)
            })
            .buffer_unordered(self.config.connections.max(1) as usize)
            .collect::<Vec<_>>()
            .await;
        // A rendering failure still lets the outcomes of what went out be written first.
        let rendered = renderer
            .await
            .unwrap_or_else(|stopped| Err(MailError::TaskStopped(stopped.to_string())));

        let mut writes = Vec::with_capacity(finished.len());
        for (row, outcome, follow_up) in finished {
            let kind = row.kind.as_str();
            match &outcome {
                DeliveryOutcome::Sent => {
                    delivered.sent += 1;
                    metrics::counter!("setia_emails_sent_total", "kind" => kind).increment(1);
                }
                DeliveryOutcome::Retry { error, .. } => {
                    delivered.retrying += 1;
                    tracing::warn!(outbox_id = row.id, kind, %error, "email will be retried");
                }
                DeliveryOutcome::Failed { error } => {
                    delivered.failed += 1;
                    metrics::counter!("setia_emails_failed_total", "kind" => kind).increment(1);
                    tracing::warn!(outbox_id = row.id, kind, %error, "email failed");
                }
                DeliveryOutcome::Held { error, .. } => {
                    delivered.held += 1;
                    tracing::error!(outbox_id = row.id, kind, %error, "email held: its template does not render");
                }
                // Expected by the rules, row by row (a campaign's cap can defer thousands):
                // debug here, the outbox row keeps the reason, the round logs the count.
                DeliveryOutcome::Suppressed { reason } => {
                    delivered.suppressed += 1;
                    tracing::debug!(outbox_id = row.id, kind, %reason, "email not sent");
                }
                DeliveryOutcome::Deferred { until, reason } => {
                    delivered.deferred += 1;
                    tracing::debug!(outbox_id = row.id, kind, %until, %reason, "email deferred");
                }
            }
            writes.push(FinishedEmail {
                id: row.id,
                merchant: row.merchant,
                claim_id: row.claim_id,
                outcome,
                follow_up,
            });
        }
        let written = self.store.finish_outbox(&writes, now).await?;
        if written < writes.len() as u64 {
            tracing::warn!(
                lost = writes.len() as u64 - written,
                "claims ran out before their outcome was written; those emails will be tried again"
            );
        }
        rendered?;
        Ok(delivered)
    }

    /// Renders claimed rows into messages (or decides their outcome), merchant by merchant,
    /// without sending anything.
    pub async fn prepare_claimed(
        &self,
        rows: Vec<ClaimedEmail>,
        now: DateTime<Utc>,
    ) -> Result<Vec<(ClaimedEmail, Prepared)>, MailError> {
        let (prepared_tx, mut prepared_rx) = tokio::sync::mpsc::unbounded_channel();
        self.prepare_into(rows, now, &prepared_tx).await?;
        drop(prepared_tx);
        let mut prepared = Vec::new();
        while let Some(item) = prepared_rx.recv().await {
            prepared.push(item);
        }
        Ok(prepared)
    }

    /// [`Mailer::prepare_claimed`], handing each row to `out` as soon as it is ready.
    async fn prepare_into(
        &self,
        rows: Vec<ClaimedEmail>,
        now: DateTime<Utc>,
        out: &PreparedSender,
    ) -> Result<(), MailError> {
        let mut by_merchant: BTreeMap<MerchantId, Vec<ClaimedEmail>> = BTreeMap::new();
        for row in rows {
            by_merchant
                .entry(row.merchant.clone())
                .or_default()
                .push(row);
        }
        for (merchant, rows) in by_merchant {
            self.prepare(&merchant, rows, now, out).await?;
        }
        Ok(())
    }

    /// Renders one merchant's claimed rows into messages, or decides their outcome.
    async fn prepare(
        &self,
        merchant: &MerchantId,
        rows: Vec<ClaimedEmail>,
        now: DateTime<Utc>,
        out: &PreparedSender,
    ) -> Result<(), MailError> {
        let Some(mail) = self.store.mail_merchant(merchant).await? else {
            for row in rows {
                // A closed channel means nobody waits for the outcome any more.
                let _ = out.send((row, failed("the merchant no longer exists")));
            }
            return Ok(());
        };
        let program = self.store.loyalty_program(merchant).await?;
        let engagement = self.store.engagement_program(merchant).await?;
        let templates = self.templates.load(merchant, mail.language);
        let customer_ids: Vec<CustomerId> = rows.iter().filter_map(|r| r.customer).collect();
        let customers: HashMap<CustomerId, MailCustomer> = self
            .store
            .mail_customers(merchant, &customer_ids, now)
            .await?
            .into_iter()
            .map(|c| (c.id, c))
            .collect();
        let recommendations = self
            .store
            .recommendations_for(merchant, &customer_ids, EMAIL_RECOMMENDATIONS)
            .await?;
        let referral_codes = self
            .batch_referral_codes(&mail, &engagement, &rows, &customers, now)
            .await?;
        let marketing = marketing::MarketingGate::load(
            &*self.store,
            merchant,
            engagement.marketing_cap_days,
            mail.merchant.timezone,
            &rows,
        )
        .await?;
        let mut batch = Batch {
            mail: &mail,
            program: &program,
            engagement: &engagement,
            templates: &templates,
            customers,
            recommendations,
            referral_codes,
            marketing,
            campaigns: HashMap::new(),
        };
        for row in rows {
            let outcome = self.prepare_row(&mut batch, &row, now).await?;
            let _ = out.send((row, outcome));
        }
        Ok(())
    }

    async fn prepare_row(
        &self,
        batch: &mut Batch<'_>,
        row: &ClaimedEmail,
        now: DateTime<Utc>,
    ) -> Result<Prepared, MailError> {
        let mail = batch.mail;
        let merchant = &mail.merchant;
        let from = Mailbox::new(Some(merchant.name.clone()), self.config.from.email.clone());
        let message_id = message::message_id(
            merchant.id.as_str(),
            row.id,
            self.config.from.email.domain(),
        );
        let templates = batch.templates;
        let mut follow_up = None;
        let (to, rendered, unsubscribe_url, image) = if row.kind.is_customer_mail() {
            if merchant.sandbox {
                return Ok(suppressed("a sandbox merchant's customers get no email"));
            }
            let Some(customer) = row.customer.and_then(|id| batch.customers.get(&id)) else {
                return Ok(suppressed("the customer no longer exists"));
            };
            if customer.unsubscribed {
                return Ok(suppressed("the customer unsubscribed"));
            }
            if !customer.consent {
                return Ok(suppressed("the customer has not consented to email"));
            }
            let Some(email) = &customer.email else {
                return Ok(suppressed("the customer has no email address"));
            };
            let Ok(address) = email.parse::<Address>() else {
                return Ok(failed(format!("{email:?} is not a deliverable address")));
            };
            let to = Mailbox::new(customer.name.clone(), address);
            let unsubscribe_url = self.unsubscribe_url(mail, customer.id);
            let common = self.customer_common(
                mail,
                customer.id,
                cards(
                    batch
                        .recommendations
                        .get(&customer.id)
                        .map_or(&[], Vec::as_slice),
                    row.kind,
                ),
            );
            let customer_name = greeting_name(mail.language, customer.name.as_deref());
            let rendered = match row.kind {
                OutboxKind::ThankYou => {
                    let Ok(day) = NaiveDate::parse_from_str(&row.period_key, "%Y-%m-%d") else {
                        return Ok(failed(format!("period {:?} is not a day", row.period_key)));
                    };
                    let offer =
                        self.referral_offer(batch.engagement, &batch.referral_codes, customer.id);
                    let Some(context) = self
                        .thank_you_context(mail, batch.program, customer, day, offer, common)
                        .await?
                    else {
                        return Ok(suppressed("no purchase of that day is left (refunded)"));
                    };
                    templates.render(row.kind, &context)
                }
                OutboxKind::BirthdayOffer => {
                    let payload: BirthdayPayload =
                        match serde_json::from_str(row.payload.as_deref().unwrap_or_default()) {
                            Ok(payload) => payload,
                            Err(error) => return Ok(failed(format!("birthday payload: {error}"))),
                        };
                    templates.render(
                        row.kind,
                        &birthday_context(mail.language, batch.program, customer, &payload, common),
                    )
                }
                OutboxKind::FeedbackRequest => {
                    let Some((key, reminder)) = feedback::parse_period(&row.period_key) else {
                        return Ok(failed(format!(
                            "period {:?} is not a feedback request",
                            row.period_key
                        )));
                    };
                    let Some(request) = self.store.feedback_request(&merchant.id, key).await?
                    else {
                        return Ok(suppressed("the feedback request no longer exists"));
                    };
                    let hold = feedback::request_hold(
                        batch.engagement,
                        merchant.timezone,
                        &request,
                        reminder,
                        now,
                    )
                    .or_else(|| batch.marketing.hold(customer.id, now));
                    if let Some(outcome) = hold {
                        return Ok(Prepared::Done(outcome));
                    }
                    if !reminder {
                        follow_up = feedback::reminder_of(
                            batch.engagement,
                            merchant.timezone,
                            &request,
                            now,
                        );
                    }
                    let context = self.feedback_request_context(
                        mail,
                        &request,
                        reminder,
                        customer_name,
                        common,
                        now,
                    );
                    templates.render(row.kind, &context)
                }
                OutboxKind::Winback => {
                    let Some((key, step)) = winback::parse_period(&row.period_key) else {
                        return Ok(failed(format!(
                            "period {:?} is not a win-back step",
                            row.period_key
                        )));
                    };
                    let Some(episode) = self.store.winback_episode(&merchant.id, key).await? else {
                        return Ok(suppressed("the win-back episode no longer exists"));
                    };
                    let hold = winback::step_hold(&episode)
                        .or_else(|| batch.marketing.hold(customer.id, now));
                    if let Some(outcome) = hold {
                        return Ok(Prepared::Done(outcome));
                    }
                    let context =
                        winback::context(mail.language, &episode, step, customer_name, common);
                    templates.render(row.kind, &context)
                }
                OutboxKind::ReferralReward => {
                    let Some(key) = referral::parse_period(&row.period_key) else {
                        return Ok(failed(format!(
                            "period {:?} is not a referral",
                            row.period_key
                        )));
                    };
                    let found = self.store.referral(&merchant.id, key).await?;
                    let found = match referral::rewarded(found.as_ref(), customer.id) {
                        Ok(found) => found,
                        Err(reason) => return Ok(suppressed(reason)),
                    };
                    let offer =
                        self.referral_offer(batch.engagement, &batch.referral_codes, customer.id);
                    let context = referral::reward_context(
                        found,
                        customer_name,
                        LoyaltyView::of(customer, batch.program),
                        offer,
                        common,
                    );
                    templates.render(row.kind, &context)
                }
                OutboxKind::TierWelcome => {
                    let (tier, payload) =
                        match perks::parse_welcome(&row.period_key, row.payload.as_deref()) {
                            Ok(welcome) => welcome,
                            Err(error) => return Ok(failed(error)),
                        };
                    if !self
                        .store
                        .holds_tier_entry(&merchant.id, customer.id, tier)
                        .await?
                    {
                        return Ok(suppressed("a refund took the tier's entry back"));
                    }
                    let context = perks::welcome_context(
                        mail,
                        batch.program,
                        customer,
                        &payload,
                        tier,
                        customer_name,
                        common,
                    );
                    templates.render(row.kind, &context)
                }
                OutboxKind::TierNudge => {
                    let context = match perks::nudge_context(
                        mail.language,
                        &batch.engagement.perks,
                        batch.program,
                        customer,
                        &row.period_key,
                        customer_name,
                        common,
                    ) {
                        Ok(context) => context,
                        Err(reason) => return Ok(suppressed(&reason)),
                    };
                    if let Some(outcome) = batch.marketing.hold(customer.id, now) {
                        return Ok(Prepared::Done(outcome));
                    }
                    templates.render(row.kind, &context)
                }
                OutboxKind::Campaign => {
                    let Some(id) = campaign::parse_period(&row.period_key) else {
                        return Ok(failed(format!(
                            "period {:?} is not a campaign",
                            row.period_key
                        )));
                    };
                    if let std::collections::hash_map::Entry::Vacant(slot) =
                        batch.campaigns.entry(id)
                    {
                        slot.insert(self.store.campaign(&merchant.id, id).await?);
                    }
                    let Some(Some(found)) = batch.campaigns.get(&id) else {
                        return Ok(suppressed("the campaign no longer exists"));
                    };
                    if let Some(outcome) = batch.marketing.hold(customer.id, now) {
                        return Ok(Prepared::Done(outcome));
                    }
                    let personal =
                        personal(customer_name, &LoyaltyView::of(customer, batch.program));
                    let context = campaign::context(&found.subject, &found.body, &personal, common);
                    templates.render(row.kind, &context)
                }
                OutboxKind::WeeklyChurnReport | OutboxKind::FeedbackAlert => {
                    return Ok(failed(format!("{} is not a customer email", row.kind)))
                }
            };
            if rendered.is_ok() && row.kind.is_marketing() {
                batch.marketing.sending(customer.id, now);
            }
            (to, rendered, Some(unsubscribe_url), None)
        } else {
            let Ok(address) = row.recipient.parse::<Address>() else {
                return Ok(failed(format!(
                    "{:?} is not a deliverable address",
                    row.recipient
                )));
            };
            let common = Common {
                merchant_name: merchant.name.clone(),
                language: mail.language.as_str(),
                unsubscribe_url: None,
                member_url: None,
                recommendations: Vec::new(),
            };
            let (rendered, image) = match row.kind {
                OutboxKind::WeeklyChurnReport => {
                    let payload: ReportPayload =
                        match serde_json::from_str(row.payload.as_deref().unwrap_or_default()) {
                            Ok(payload) => payload,
                            Err(error) => return Ok(failed(format!("report payload: {error}"))),
                        };
                    let rendered = templates.render(
                        row.kind,
                        &ReportContext::of(common, &payload, mail.language),
                    );
                    let image = match report_chart(mail.language, &payload) {
                        Ok(png) => Some(InlineImage {
                            content_id: CHART_CID.to_owned(),
                            png,
                        }),
                        Err(error) => {
                            tracing::warn!(%error, "the report goes without its chart");
                            None
                        }
                    };
                    (rendered, image)
                }
                OutboxKind::FeedbackAlert => {
                    let Ok(key) = row.period_key.parse::<i64>() else {
                        return Ok(failed(format!(
                            "period {:?} is not a complaint",
                            row.period_key
                        )));
                    };
                    let Some(complaint) = self.store.complaint(&merchant.id, key).await? else {
                        return Ok(suppressed("the complaint no longer exists"));
                    };
                    let context = self.feedback_alert_context(mail, &complaint, common);
                    (templates.render(row.kind, &context), None)
                }
                OutboxKind::ThankYou
                | OutboxKind::BirthdayOffer
                | OutboxKind::FeedbackRequest
                | OutboxKind::Winback
                | OutboxKind::ReferralReward
                | OutboxKind::TierWelcome
                | OutboxKind::TierNudge
                | OutboxKind::Campaign => {
                    return Ok(failed(format!(
                        "{} is not an email to the merchant",
                        row.kind
                    )))
                }
            };
            (Mailbox::new(None, address), rendered, None, image)
        };
        let rendered = match rendered {
            Ok(rendered) => rendered,
            Err(error) => {
                return Ok(Prepared::Done(DeliveryOutcome::Held {
                    error: error.to_string(),
                    fingerprint: templates.fingerprint().to_owned(),
                }))
            }
        };
        match message::build(Outgoing {
            from,
            to,
            message_id,
            rendered,
            unsubscribe_url,
            image,
        }) {
            Ok(message) => Ok(Prepared::Send(Box::new(message), follow_up)),
            Err(error) => Ok(failed(error)),
        }
    }

    /// What every email to `customer` carries: the merchant, the language, the customer's
    /// unsubscribe and member links, and the recommendations block.
    fn customer_common(
        &self,
        mail: &MailMerchant,
        customer: CustomerId,
        recommendations: Vec<ProductCard>,
    ) -> Common {
        Common {
            merchant_name: mail.merchant.name.clone(),
            language: mail.language.as_str(),
            unsubscribe_url: Some(self.unsubscribe_url(mail, customer)),
            member_url: Some(self.member_url(mail, customer)),
            recommendations,
        }
    }

    fn unsubscribe_url(&self, mail: &MailMerchant, customer: CustomerId) -> String {
        let token = UnsubscribeToken::sign(&mail.secret, &mail.merchant.id, customer);
        format!("{}/u/{token}", self.config.public_url)
    }

    async fn thank_you_context(
        &self,
        mail: &MailMerchant,
        program: &LoyaltyProgram,
        customer: &MailCustomer,
        day: NaiveDate,
        referral: Option<referral::ReferralOffer>,
        common: Common,
    ) -> Result<Option<ThankYouContext>, MailError> {
        let zone = mail.merchant.timezone;
        let (from, until) = schedule::day_bounds(zone, day);
        let purchases = self
            .store
            .day_purchases(&mail.merchant.id, customer.id, from, until)
            .await?;
        if purchases.is_empty() {
            return Ok(None);
        }
        let total: Money = purchases.iter().map(|p| p.amount).sum();
        Ok(Some(ThankYouContext {
            common,
            customer_name: greeting_name(mail.language, customer.name.as_deref()),
            day: long_date(mail.language, day),
            purchases: purchases
                .iter()
                .map(|p| PurchaseView {
                    amount: format_rupiah(p.amount),
                    time: schedule::local_clock(zone, p.occurred_at),
                    points: p.points,
                })
                .collect(),
            total: format_rupiah(total),
            points_earned: purchases.iter().map(|p| p.points).sum(),
            loyalty: LoyaltyView::of(customer, program),
            referral,
        }))
    }

    /// What a preview renders with: the merchant, its loyalty program and its templates.
    async fn preview_setting(
        &self,
        merchant: &MerchantId,
    ) -> Result<(MailMerchant, LoyaltyProgram, Arc<Templates>), MailError> {
        let mail = self
            .store
            .mail_merchant(merchant)
            .await?
            .ok_or_else(|| MailError::NotFound(format!("no merchant {merchant}")))?;
        let program = self.store.loyalty_program(merchant).await?;
        let templates = self.templates.load(merchant, mail.language);
        Ok((mail, program, templates))
    }

    /// Renders an email for `setia mail preview`: with a customer's real data, or with a
    /// sample customer when none is named.
    pub async fn preview(
        &self,
        merchant: &MerchantId,
        kind: OutboxKind,
        customer: Option<&ExternalId>,
        now: DateTime<Utc>,
    ) -> Result<RenderedEmail, MailError> {
        let (mail, program, templates) = self.preview_setting(merchant).await?;
        let zone = mail.merchant.timezone;
        let customer = match customer {
            None => None,
            Some(external) => {
                let found = self
                    .store
                    .customer(merchant, external)
                    .await?
                    .ok_or_else(|| MailError::NotFound(format!("no customer {external}")))?;
                self.store
                    .mail_customers(merchant, &[found.id], now)
                    .await?
                    .into_iter()
                    .next()
            }
        };
        let sample = sample_customer();
        let who = customer.as_ref().unwrap_or(&sample);
        // A real customer sees their own list; the sample customer the newest products.
        let products = match (&customer, kind.is_customer_mail()) {
            (_, false) => Vec::new(),
            (Some(c), true) => self
                .store
                .recommendations_for(merchant, &[c.id], EMAIL_RECOMMENDATIONS)
                .await?
                .remove(&c.id)
                .unwrap_or_default(),
            (None, true) => {
                let newest = PageRequest {
                    before: None,
                    limit: EMAIL_RECOMMENDATIONS as u32 * 4,
                };
                let mut products = self.store.products(merchant, newest).await?.items;
                products.retain(|p| p.in_stock);
                products.truncate(EMAIL_RECOMMENDATIONS);
                products
            }
        };
        let common = Common {
            merchant_name: mail.merchant.name.clone(),
            language: mail.language.as_str(),
            unsubscribe_url: kind
                .is_customer_mail()
                .then(|| self.unsubscribe_url(&mail, who.id)),
            member_url: kind
                .is_customer_mail()
                .then(|| self.member_url(&mail, who.id)),
            recommendations: cards(&products, kind),
        };
        let today = zone.local_day(now);
        let rendered = match kind {
            OutboxKind::ThankYou => {
                let engagement = self.store.engagement_program(merchant).await?;
                let offer = self
                    .preview_referral_offer(&mail, &engagement, customer.as_ref(), now)
                    .await?;
                let real = match &customer {
                    Some(c) => {
                        self.thank_you_context(
                            &mail,
                            &program,
                            c,
                            today,
                            offer.clone(),
                            common.clone(),
                        )
                        .await?
                    }
                    None => None,
                };
                let context = real.unwrap_or_else(|| ThankYouContext {
                    common,
                    customer_name: greeting_name(mail.language, who.name.as_deref()),
                    day: long_date(mail.language, today),
                    purchases: vec![PurchaseView {
                        amount: format_rupiah(Money::from_minor(125_000_000)),
                        time: "14:05".into(),
                        points: 156,
                    }],
                    total: format_rupiah(Money::from_minor(125_000_000)),
                    points_earned: 156,
                    loyalty: LoyaltyView::of(who, &program),
                    referral: offer,
                });
                templates.render(kind, &context)?
            }
            OutboxKind::BirthdayOffer => {
                let window_day = today;
                let payload = BirthdayPayload {
                    offer_code: birthday_offer_code(
                        &mail.secret,
                        merchant,
                        who.id,
                        window_day.year(),
                    ),
                    offer_expires_on: window_day
                        + TimeDelta::days(schedule::OFFER_VALID_DAYS as i64 - 1),
                    birthday_points: program.birthday_points,
                };
                templates.render(
                    kind,
                    &birthday_context(mail.language, &program, who, &payload, common),
                )?
            }
            OutboxKind::WeeklyChurnReport => {
                let window = report::preview_window(zone, now).ok_or_else(|| {
                    MailError::NotFound("no report week before this instant".into())
                })?;
                let payload = report::compute(&*self.store, merchant, zone, &window).await?;
                templates.render(kind, &ReportContext::of(common, &payload, mail.language))?
            }
            OutboxKind::FeedbackRequest | OutboxKind::FeedbackAlert => {
                let engagement = self.store.engagement_program(merchant).await?;
                let sample = feedback::sample(&engagement, who, now);
                if kind == OutboxKind::FeedbackRequest {
                    let name = greeting_name(mail.language, who.name.as_deref());
                    let context = self.feedback_request_context(
                        &mail,
                        &sample.request,
                        false,
                        name,
                        common,
                        now,
                    );
                    templates.render(kind, &context)?
                } else {
                    let context = self.feedback_alert_context(&mail, &sample.complaint, common);
                    templates.render(kind, &context)?
                }
            }
            OutboxKind::Winback => {
                let engagement = self.store.engagement_program(merchant).await?;
                let (episode, step) = winback::sample(&engagement, who.id, zone, now);
                let name = greeting_name(mail.language, who.name.as_deref());
                templates.render(
                    kind,
                    &winback::context(mail.language, &episode, step, name, common),
                )?
            }
            OutboxKind::ReferralReward => {
                let engagement = self.store.engagement_program(merchant).await?;
                let offer = self
                    .preview_referral_offer(&mail, &engagement, customer.as_ref(), now)
                    .await?;
                let sample = referral::sample(&engagement, who, now);
                let name = greeting_name(mail.language, who.name.as_deref());
                let context = referral::reward_context(
                    &sample,
                    name,
                    LoyaltyView::of(who, &program),
                    offer,
                    common,
                );
                templates.render(kind, &context)?
            }
            OutboxKind::TierWelcome => {
                let engagement = self.store.engagement_program(merchant).await?;
                let (tier, payload) = perks::sample_welcome(&engagement.perks, who);
                let name = greeting_name(mail.language, who.name.as_deref());
                let context =
                    perks::welcome_context(&mail, &program, who, &payload, tier, name, common);
                templates.render(kind, &context)?
            }
            OutboxKind::TierNudge => {
                let engagement = self.store.engagement_program(merchant).await?;
                let name = greeting_name(mail.language, who.name.as_deref());
                let context = perks::sample_nudge(
                    mail.language,
                    &engagement.perks,
                    &program,
                    who,
                    name,
                    common,
                );
                templates.render(kind, &context)?
            }
            OutboxKind::Campaign => {
                // The merchant's latest campaign, or a sample one.
                let latest = self
                    .store
                    .campaigns(
                        merchant,
                        PageRequest {
                            before: None,
                            limit: 1,
                        },
                    )
                    .await?
                    .items
                    .into_iter()
                    .next();
                let (subject, body) = match &latest {
                    Some(found) => (found.subject.as_str(), found.body.as_str()),
                    None => campaign_sample(mail.language),
                };
                let name = greeting_name(mail.language, who.name.as_deref());
                let personal = personal(name, &LoyaltyView::of(who, &program));
                templates.render(kind, &campaign::context(subject, body, &personal, common))?
            }
        };
        Ok(rendered)
    }

    /// Renders a campaign not yet written (the dashboard's preview) for a customer of the
    /// merchant, or for the sample customer when there is none.
    pub async fn preview_campaign(
        &self,
        merchant: &MerchantId,
        subject: &CampaignSubject,
        body: &CampaignBody,
        customer: Option<CustomerId>,
        now: DateTime<Utc>,
    ) -> Result<RenderedEmail, MailError> {
        let (mail, program, templates) = self.preview_setting(merchant).await?;
        let found = match customer {
            None => None,
            Some(id) => self
                .store
                .mail_customers(merchant, &[id], now)
                .await?
                .into_iter()
                .next(),
        };
        let who = found.unwrap_or_else(sample_customer);
        let products = self
            .store
            .recommendations_for(merchant, &[who.id], EMAIL_RECOMMENDATIONS)
            .await?
            .remove(&who.id)
            .unwrap_or_default();
        let common = self.customer_common(&mail, who.id, cards(&products, OutboxKind::Campaign));
        let name = greeting_name(mail.language, who.name.as_deref());
        let personal = personal(name, &LoyaltyView::of(&who, &program));
        Ok(templates.render(
            OutboxKind::Campaign,
            &campaign::context(subject.as_str(), body.as_str(), &personal, common),
        )?)
    }

    /// Schedules and delivers until `stop` turns true: the loop inside `setia serve` and
    /// `setia worker`.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        let mut last_schedule: Option<tokio::time::Instant> = None;
        while !*stop.borrow() {
            if last_schedule.is_none_or(|at| at.elapsed() >= self.config.schedule_every) {
                if let Err(error) = self.schedule(Utc::now()).await {
                    tracing::error!(%error, "the email scheduler failed");
                }
                last_schedule = Some(tokio::time::Instant::now());
            }
            // Back to the scheduler when it is due again, or at once when asked to stop.
            let round = DeliveryRound {
                at: None,
                until: Some(tokio::time::Instant::now() + self.config.schedule_every),
                stop: Some(stop.clone()),
            };
            let idle = match self.deliver_until_idle(round).await {
                Ok(step) => {
                    if step.claimed > 0 {
                        tracing::info!(
                            sent = step.sent,
                            retrying = step.retrying,
                            failed = step.failed,
                            held = step.held,
                            not_sent = step.suppressed,
                            deferred = step.deferred,
                            "emails delivered"
                        );
                    }
                    step.claimed == 0
                }
                Err(error) => {
                    tracing::error!(%error, "email delivery failed");
                    true
                }
            };
            if idle {
                tokio::select! {
                    _ = tokio::time::sleep(self.config.idle_wait) => {}
                    _ = stop.changed() => {}
                }
            }
        }
        tracing::info!("email delivery stopped");
    }
}

/// What rendering one merchant's claimed rows needs besides each row.
struct Batch<'a> {
    mail: &'a MailMerchant,
    program: &'a LoyaltyProgram,
    engagement: &'a EngagementProgram,
    templates: &'a Templates,
    customers: HashMap<CustomerId, MailCustomer>,
    recommendations: HashMap<CustomerId, Vec<Product>>,
    /// Personal codes of the batch's thank-you and reward recipients, while `[referral]` is on.
    referral_codes: HashMap<CustomerId, ReferralCode>,
    marketing: marketing::MarketingGate,
    /// The campaigns of the batch's campaign rows, read once each.
    campaigns: HashMap<CampaignId, Option<Campaign>>,
}

/// The customer previews show when none is named. Key 0 is no customer's (keys start at 1,
/// and a link token never names 0), so the preview's unsubscribe and member links look
/// real but lead to the invalid-link page, not to a real customer's.
fn sample_customer() -> MailCustomer {
    MailCustomer {
        id: CustomerId::from_key(0),
        external_id: "CONTOH-1".into(),
        name: Some("Siti Rahayu".into()),
        email: Some("siti@example.co.id".into()),
        consent: true,
        unsubscribed: false,
        birthday: Some("1990-03-14".into()),
        tier: Tier::Silver,
        points_balance: 1_240,
        trailing_spend: Money::from_minor(350_000_000),
        next_expiry: None,
    }
}

/// A campaign's placeholders for one customer.
fn personal(name: String, loyalty: &LoyaltyView) -> Personal {
    Personal {
        name,
        tier: loyalty.tier.to_owned(),
        points: templates::thousands(loyalty.points_balance),
    }
}

/// The campaign `mail preview --kind campaign` shows before the merchant wrote one.
fn campaign_sample(language: EmailLanguage) -> (&'static str, &'static str) {
    match language {
        EmailLanguage::Indonesian => (
            "{{name}}, akses lebih awal untuk member {{tier}}",
            "Halo **{{name}}**,\n\nSebagai member {{tier}} dengan {{points}} poin, Anda belanja koleksi baru lebih dulu.\n",
        ),
        EmailLanguage::English => (
            "{{name}}, early access for {{tier}} members",
            "Hello **{{name}}**,\n\nAs a {{tier}} member with {{points}} points, you shop the new collection first.\n",
        ),
    }
}

fn birthday_context(
    language: EmailLanguage,
    program: &LoyaltyProgram,
    customer: &MailCustomer,
    payload: &BirthdayPayload,
    common: Common,
) -> BirthdayContext {
    BirthdayContext {
        common,
        customer_name: greeting_name(language, customer.name.as_deref()),
        offer_code: payload.offer_code.clone(),
        offer_expires: long_date(language, payload.offer_expires_on),
        birthday_points: payload.birthday_points,
        loyalty: LoyaltyView::of(customer, program),
    }
}

fn report_chart(
    language: EmailLanguage,
    payload: &ReportPayload,
) -> Result<Vec<u8>, chart::ChartError> {
    let labels: Vec<String> = payload
        .days
        .iter()
        .skip(7)
        .map(|day| short_date(language, *day))
        .collect();
    let legend = match language {
        EmailLanguage::Indonesian => ("7 hari terakhir", "7 hari sebelumnya"),
        EmailLanguage::English => ("last 7 days", "7 days before"),
    };
    chart::weekly_revenue_png(&payload.daily_revenue_minor, &labels, legend)
}
