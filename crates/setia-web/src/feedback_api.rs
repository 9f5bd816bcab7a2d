//! Feedback in the JSON API: the answers customers gave, and the complaints queue the low
//! ones open. Scoped by the token's merchant like the rest: another merchant's complaint is
//! a 404.

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use setia_core::feedback::FeedbackComment;
use setia_core::time::TimeError;
use setia_core::MerchantTimezone;
use setia_store::engagement::{AnswerFilter, Complaint, ComplaintStatus, FeedbackAnswer};

use crate::api::{ApiMerchant, ListResponse, PageQuery};
use crate::ledger_api::json_body;
use crate::{ApiError, AppState};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/feedback", get(answers))
        .route("/complaints", get(complaints))
        .route("/complaints/{id}", post(update_complaint))
}

#[derive(Debug, Deserialize)]
struct AnswersQuery {
    score: Option<String>,
    from: Option<String>,
    until: Option<String>,
    #[serde(flatten)]
    page: PageQuery,
}

/// A day (`2026-12-01`, the merchant's midnight) or an RFC 3339 instant, in a year from
/// 1970 to 9999 ([`MerchantTimezone::parse_day_or_instant`]): callers do date
/// arithmetic on the result (win-back's `until - 365 days`).
pub(crate) fn instant(
    name: &str,
    text: Option<&str>,
    zone: MerchantTimezone,
) -> Result<Option<DateTime<Utc>>, ApiError> {
    let Some(text) = text.filter(|t| !t.is_empty()) else {
        return Ok(None);
    };
    zone.parse_day_or_instant(text)
        .map(Some)
        .map_err(|error| match error {
            TimeError::BadDayOrInstant(_) => ApiError::BadRequest(format!(
                "{name}: {text:?} is neither a day (YYYY-MM-DD) nor an RFC 3339 instant"
            )),
            refused => ApiError::BadRequest(format!("{name}: {refused}")),
        })
}

async fn answers(
    State(state): State<AppState>,
    ApiMerchant(merchant): ApiMerchant,
    Query(query): Query<AnswersQuery>,
) -> Result<Json<ListResponse<FeedbackAnswer>>, ApiError> {
    let score = match query.score.as_deref().filter(|s| !s.is_empty()) {
        None => None,
        Some(text) => Some(
            text.parse::<u8>()
                .ok()
                .filter(|s| *s <= 10)
                .ok_or_else(|| {
                    ApiError::BadRequest(format!("score: {text:?} is not a whole number 0–10"))
                })?,
        ),
    };
    let zone = merchant.timezone;
    let filter = AnswerFilter {
        customer: None,
        score,
        from: instant("from", query.from.as_deref(), zone)?,
        until: instant("until", query.until.as_deref(), zone)?,
    };
    let page = state
        .store
        .feedback_answers(&merchant.id, filter, query.page.parse()?)
        .await?;
    Ok(Json(page.into()))
}

#[derive(Debug, Deserialize)]
struct ComplaintsQuery {
    status: Option<String>,
    #[serde(flatten)]
    page: PageQuery,
}

fn status(text: &str) -> Result<ComplaintStatus, ApiError> {
    ComplaintStatus::parse(text).ok_or_else(|| {
        ApiError::BadRequest(format!(
            "status: {text:?} is not open, in_progress or resolved"
        ))
    })
}

async fn complaints(
    State(state): State<AppState>,
    ApiMerchant(merchant): ApiMerchant,
    Query(query): Query<ComplaintsQuery>,
) -> Result<Json<ListResponse<Complaint>>, ApiError> {
    let status = query
        .status
        .as_deref()
        .filter(|s| !s.is_empty())
        .map(status)
        .transpose()?;
    let page = state
        .store
        .complaints(&merchant.id, status, query.page.parse()?)
        .await?;
    Ok(Json(page.into()))
}

/// A complaint's new status, and a note (kept as it was when left out).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ComplaintUpdate {
    /// open, in_progress or resolved
    #[schema(example = "resolved", pattern = "^(open|in_progress|resolved)$")]
    status: String,
    /// Up to 2,000 characters
    #[schema(example = "Dikirim ulang dengan kurir lain", max_length = 2000)]
    note: Option<String>,
}

async fn update_complaint(
    State(state): State<AppState>,
    ApiMerchant(merchant): ApiMerchant,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<Complaint>, ApiError> {
    let id = id
        .parse::<i64>()
        .ok()
        .filter(|id| *id > 0)
        .ok_or(ApiError::NotFound("complaint"))?;
    let update: ComplaintUpdate = json_body(&body)?;
    let status = status(&update.status)?;
    // A note follows the rules of a customer's comment: bounded, printable.
    let note = match update.note.as_deref() {
        None => None,
        Some(text) => Some(
            FeedbackComment::parse(text)
                .map_err(|e| ApiError::BadRequest(format!("note: {e}")))?
                .map(|note| note.as_str().to_owned())
                .unwrap_or_default(),
        ),
    };
    state
        .store
        .update_complaint(&merchant.id, id, status, note.as_deref(), "api", Utc::now())
        .await?
        .map(Json)
        .ok_or(ApiError::NotFound("complaint"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> Result<Option<DateTime<Utc>>, String> {
        instant("until", Some(text), MerchantTimezone::default()).map_err(|e| match e {
            ApiError::BadRequest(message) => message,
            other => panic!("not a 400: {other:?}"),
        })
    }

    #[test]
    fn days_and_instants_in_1970_to_9999() {
        assert_eq!(
            read("2026-12-01").unwrap().unwrap().to_rfc3339(),
            "2026-11-30T17:00:00+00:00"
        );
        assert_eq!(
            read("2026-12-01T10:00:00+07:00")
                .unwrap()
                .unwrap()
                .to_rfc3339(),
            "2026-12-01T03:00:00+00:00"
        );
        assert!(read("1970-01-01").is_ok() && read("9999-12-31").is_ok());
        assert_eq!(
            instant("until", Some(""), MerchantTimezone::default()).unwrap(),
            None
        );
    }

    #[test]
    fn signed_and_out_of_range_years_are_a_400() {
        // This `until` once panicked win-back's `until - 365 days`.
        for bad in [
            "-262143-03-01",
            "+200000-01-01",
            "+2026-01-01",
            "1969-12-31",
            "0001-01-01",
            "0000-01-01T00:00:00Z",
        ] {
            let message = read(bad).unwrap_err();
            assert!(
                message.starts_with("until: ") && message.contains("1970 to 9999"),
                "{bad}: {message}"
            );
        }
        assert!(read("01/12/2026").unwrap_err().contains("neither a day"));
    }
}
