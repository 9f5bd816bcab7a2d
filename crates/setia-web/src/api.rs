//! `/api/v1/*`: the token decides the merchant; another merchant's rows do not exist.

use std::sync::Arc;

use axum::extract::{FromRequestParts, Query, State};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use setia_core::ApiToken;
use setia_store::{AuditEntry, Merchant, Page, PageRequest};

use crate::{ApiError, AppState};

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/webhooks/deliveries", get(deliveries))
        .route("/metrics", get(latest_metrics))
        .route("/engagement", get(engagement))
        .merge(crate::ledger_api::router())
        .merge(crate::catalog_api::router())
        .merge(crate::feedback_api::router())
        .merge(crate::outbox_api::router())
        .merge(crate::winback_api::router())
        .merge(crate::referral_api::router())
        .merge(crate::campaign_api::router())
        .with_state(state)
}

/// The merchant whose API token came with the request.
pub struct ApiMerchant(pub Arc<Merchant>);

impl FromRequestParts<AppState> for ApiMerchant {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let token = parts
            .headers
            .get(AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer "))
            .ok_or(ApiError::Unauthorized)?;
        let merchant = state
            .store
            .merchant_by_token(&ApiToken::presented(token).hash())
            .await?
            .ok_or(ApiError::Unauthorized)?;
        Ok(ApiMerchant(Arc::new(merchant)))
    }
}

const DEFAULT_LIMIT: u32 = 50;
const MAX_LIMIT: u32 = 500;

#[derive(Debug, Deserialize)]
pub struct PageQuery {
    cursor: Option<String>,
    limit: Option<String>,
}

impl PageQuery {
    pub fn parse(&self) -> Result<PageRequest, ApiError> {
        let before = match self.cursor.as_deref().filter(|c| !c.is_empty()) {
            None => None,
            Some(cursor) => Some(cursor.parse::<i64>().ok().filter(|id| *id > 0).ok_or_else(
                || ApiError::BadRequest(format!("cursor {cursor:?} is not one this API gave out")),
            )?),
        };
        let limit = limit(self.limit.as_deref().unwrap_or(""))?;
        Ok(PageRequest { before, limit })
    }
}

/// A list in the API's shape: `{"items":[…],"next_cursor":string|null}`.
#[derive(Debug, Serialize)]
pub struct ListResponse<T> {
    items: Vec<T>,
    next_cursor: Option<String>,
}

impl<T> ListResponse<T> {
    pub fn new(items: Vec<T>, next_cursor: Option<String>) -> Self {
        ListResponse { items, next_cursor }
    }
}

/// A list's `limit` parameter: empty is the default, otherwise 1 to [`MAX_LIMIT`].
pub fn limit(text: &str) -> Result<u32, ApiError> {
    if text.is_empty() {
        return Ok(DEFAULT_LIMIT);
    }
    text.parse::<u32>()
        .ok()
        .filter(|l| (1..=MAX_LIMIT).contains(l))
        .ok_or_else(|| {
            ApiError::BadRequest(format!(
                "limit must be a whole number from 1 to {MAX_LIMIT}"
            ))
        })
}

impl<T> From<Page<T>> for ListResponse<T> {
    fn from(page: Page<T>) -> Self {
        ListResponse {
            items: page.items,
            next_cursor: page.next_cursor.map(|c| c.to_string()),
        }
    }
}

async fn deliveries(
    State(state): State<AppState>,
    ApiMerchant(merchant): ApiMerchant,
    Query(query): Query<PageQuery>,
) -> Result<Json<ListResponse<AuditEntry>>, ApiError> {
    let page = state
        .store
        .webhook_deliveries(&merchant.id, query.parse()?)
        .await?;
    Ok(Json(page.into()))
}

/// The merchant's engagement program in force, defaults included.
async fn engagement(
    State(state): State<AppState>,
    ApiMerchant(merchant): ApiMerchant,
) -> Result<Json<setia_core::engagement::EngagementProgram>, ApiError> {
    Ok(Json(state.store.engagement_program(&merchant.id).await?))
}

#[derive(Debug, Deserialize)]
pub struct MetricsQuery {
    period: Option<String>,
}

/// The latest snapshot, exactly the JSON `setia metrics` printed when it computed it.
async fn latest_metrics(
    State(state): State<AppState>,
    ApiMerchant(merchant): ApiMerchant,
    Query(query): Query<MetricsQuery>,
) -> Result<axum::response::Response, ApiError> {
    use axum::response::IntoResponse;
    let period = match query.period.as_deref() {
        None | Some("") => None,
        Some(p @ ("month" | "week")) => Some(p),
        Some(other) => {
            return Err(ApiError::BadRequest(format!(
                "period: {other:?} is not month or week"
            )))
        }
    };
    let snapshot = state
        .store
        .latest_snapshot(&merchant.id, period)
        .await?
        .ok_or(ApiError::NotFound(
            "metrics snapshot (run `setia metrics` or wait for the nightly run)",
        ))?;
    Ok((
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        snapshot.report,
    )
        .into_response())
}
