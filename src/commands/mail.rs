//! `setia mail run-due|preview|language`, and the mail loop `serve` and `worker` run.

use std::path::PathBuf;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use setia_core::ExternalId;
use setia_mail::{MailConfig, MailError, Mailer};
use setia_store::mail::{EmailLanguage, OutboxKind};
use setia_store::Store;

use super::{find_merchant, print_json};
use crate::cli::{MailCommand, MailKind, MailLanguageArgs, MailPreviewArgs, MailRunDueArgs};
use crate::config::Settings;
use crate::exit::CliError;

/// The mailer the settings describe: a bad SMTP URL, From address or public URL is the
/// user's to fix (exit 2), and is found before anything runs.
pub fn mailer(store: Arc<dyn Store>, settings: &Settings) -> Result<Mailer, CliError> {
    let config = MailConfig::new(
        settings.smtp_url.as_deref(),
        settings.mail_from.as_deref(),
        settings.public_url.as_deref(),
        settings
            .email_templates
            .as_deref()
            .filter(|t| !t.trim().is_empty())
            .map(PathBuf::from),
        chrono::TimeDelta::seconds(i64::from(settings.worker_lease_seconds.max(1))),
    )
    .map_err(mail_error)?;
    let config = MailConfig {
        connections: settings.smtp_connections.clamp(1, 256),
        ..config
    };
    Mailer::new(store, config).map_err(mail_error)
}

fn mail_error(error: MailError) -> CliError {
    match error {
        MailError::Store(error) => error.into(),
        other => CliError::BadInput(other.to_string()),
    }
}

pub async fn run(
    store: Arc<dyn Store>,
    settings: &Settings,
    command: MailCommand,
) -> Result<(), CliError> {
    match command {
        MailCommand::RunDue(args) => run_due(store, settings, args).await,
        MailCommand::Preview(args) => preview(store, settings, args).await,
        MailCommand::Language(args) => language(&*store, args).await,
    }
}

async fn run_due(
    store: Arc<dyn Store>,
    settings: &Settings,
    args: MailRunDueArgs,
) -> Result<(), CliError> {
    let now = match &args.now {
        None => Utc::now(),
        Some(text) => DateTime::parse_from_rfc3339(text.trim())
            .map_err(|_| {
                CliError::BadInput(format!(
                    "--now: {text:?} is not an RFC 3339 instant (e.g. 2027-02-28T09:00:00+07:00)"
                ))
            })?
            .to_utc(),
    };
    let report = mailer(store, settings)?
        .run_due(now)
        .await
        .map_err(mail_error)?;
    print_json(&report)
}

async fn preview(
    store: Arc<dyn Store>,
    settings: &Settings,
    args: MailPreviewArgs,
) -> Result<(), CliError> {
    let merchant = find_merchant(&*store, &args.merchant).await?;
    let customer = args
        .customer
        .as_deref()
        .map(|text| {
            ExternalId::parse(text).map_err(|e| CliError::BadInput(format!("--customer: {e}")))
        })
        .transpose()?;
    let kind = match args.kind {
        MailKind::ThankYou => OutboxKind::ThankYou,
        MailKind::BirthdayOffer => OutboxKind::BirthdayOffer,
        MailKind::WeeklyChurnReport => OutboxKind::WeeklyChurnReport,
        MailKind::FeedbackRequest => OutboxKind::FeedbackRequest,
        MailKind::FeedbackAlert => OutboxKind::FeedbackAlert,
        MailKind::Winback => OutboxKind::Winback,
        MailKind::ReferralReward => OutboxKind::ReferralReward,
        MailKind::TierWelcome => OutboxKind::TierWelcome,
        MailKind::TierNudge => OutboxKind::TierNudge,
        MailKind::Campaign => OutboxKind::Campaign,
    };
    let rendered = mailer(store, settings)?
        .preview(&merchant.id, kind, customer.as_ref(), Utc::now())
        .await
        .map_err(|error| match error {
            MailError::NotFound(message) => CliError::BadInput(format!("--customer: {message}")),
            other => mail_error(other),
        })?;
    println!("Subject: {}\n", rendered.subject);
    println!("--- text ---\n{}", rendered.text.trim_end());
    println!("--- html ---\n{}", rendered.html.trim_end());
    Ok(())
}

async fn language(store: &dyn Store, args: MailLanguageArgs) -> Result<(), CliError> {
    let merchant = find_merchant(store, &args.merchant).await?;
    let language = EmailLanguage::parse(&args.language).ok_or_else(|| {
        CliError::BadInput(format!(
            "language {:?}: use id (Indonesian) or en (English)",
            args.language
        ))
    })?;
    store.set_email_language(&merchant.id, language).await?;
    print_json(&serde_json::json!({"merchant": merchant.id, "email_language": language}))
}
