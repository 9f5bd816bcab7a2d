//! Emails: the outbox with each email's status and last error, and previews of the
//! merchant's templates rendered by setia-mail with a sample customer.

use axum::extract::{Path, Query, State};
use axum::response::Response;
use chrono::Utc;
use minijinja::context;
use serde::Deserialize;
use setia_mail::templates::RenderedEmail;
use setia_store::mail::{OutboxKind, OutboxStatus};
use setia_store::PageRequest;

use super::auth::Session;
use super::customers::{id_cursor, PAGE_SIZE};
use super::render::{foreign_html, ser, PageError};
use super::Dash;

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct EmailsQuery {
    status: String,
    cursor: String,
}

const STATUSES: [&str; 6] = [
    "pending",
    "deferred",
    "sent",
    "failed",
    "held",
    "suppressed",
];
const KINDS: [&str; 8] = [
    "thank_you",
    "birthday_offer",
    "weekly_churn_report",
    "feedback_request",
    "feedback_alert",
    "referral_reward",
    "tier_welcome",
    "tier_nudge",
];

pub async fn emails(
    State(dash): State<Dash>,
    session: Session,
    Query(query): Query<EmailsQuery>,
) -> Result<Response, PageError> {
    let status = match query.status.as_str() {
        "" => None,
        text => {
            Some(OutboxStatus::parse(text).ok_or_else(|| PageError::BadRequest("status".into()))?)
        }
    };
    let page = dash
        .store
        .outbox_entries(
            &session.merchant.id,
            status,
            PageRequest {
                before: id_cursor(&query.cursor)?,
                limit: PAGE_SIZE,
            },
        )
        .await?;
    let context = context! {
        status => status.map(OutboxStatus::as_str),
        statuses => STATUSES,
        kinds => KINDS,
        items => ser(&page.items),
        next_cursor => page.next_cursor,
        previews => dash.config.mailer.is_some(),
    };
    dash.page(&session, "emails", "emails.html", context).await
}

async fn rendered(
    dash: &Dash,
    session: &Session,
    kind: &str,
) -> Result<Option<RenderedEmail>, PageError> {
    let kind = OutboxKind::parse(kind).ok_or(PageError::NotFound)?;
    let Some(mailer) = &dash.config.mailer else {
        return Ok(None);
    };
    match mailer
        .preview(&session.merchant.id, kind, None, Utc::now())
        .await
    {
        Ok(email) => Ok(Some(email)),
        Err(setia_mail::MailError::Store(error)) => Err(PageError::Store(error)),
        // A template that does not render is what the merchant needs to see.
        Err(error) => Ok(Some(RenderedEmail {
            subject: String::new(),
            text: error.to_string(),
            html: String::new(),
        })),
    }
}

pub async fn preview(
    State(dash): State<Dash>,
    session: Session,
    Path(kind): Path<String>,
) -> Result<Response, PageError> {
    let email = rendered(&dash, &session, &kind).await?;
    let context = context! {
        kind => kind,
        kinds => KINDS,
        email => ser(&email),
    };
    dash.page(&session, "emails", "email_preview.html", context)
        .await
}

/// The preview's HTML on its own, for the sandboxed frame on the preview page.
pub async fn preview_html(
    State(dash): State<Dash>,
    session: Session,
    Path(kind): Path<String>,
) -> Result<Response, PageError> {
    let email = rendered(&dash, &session, &kind)
        .await?
        .ok_or(PageError::NotFound)?;
    Ok(foreign_html(email.html))
}
