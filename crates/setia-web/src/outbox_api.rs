//! `GET /api/v1/outbox?status=`: the merchant's emails, newest first, with their status,
//! attempts and last error.

use axum::extract::{Query, State};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use setia_store::mail::{OutboxEntry, OutboxStatus};

use crate::api::{ApiMerchant, ListResponse, PageQuery};
use crate::{ApiError, AppState};

pub fn router() -> Router<AppState> {
    Router::new().route("/outbox", get(outbox))
}

#[derive(Debug, Deserialize)]
struct StatusFilter {
    status: Option<String>,
}

async fn outbox(
    State(state): State<AppState>,
    ApiMerchant(merchant): ApiMerchant,
    Query(page): Query<PageQuery>,
    Query(filter): Query<StatusFilter>,
) -> Result<Json<ListResponse<OutboxEntry>>, ApiError> {
    let status = match filter.status.as_deref().filter(|s| !s.is_empty()) {
        None => None,
        Some(text) => Some(OutboxStatus::parse(text).ok_or_else(|| {
            ApiError::BadRequest(format!(
                "status must be one of pending, deferred, sent, failed, held, suppressed (got {text:?})"
            ))
        })?),
    };
    let page = state
        .store
        .outbox_entries(&merchant.id, status, page.parse()?)
        .await?;
    Ok(Json(page.into()))
}
