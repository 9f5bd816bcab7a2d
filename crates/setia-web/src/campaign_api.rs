//! Campaigns in the JSON API (issue 25): write one, list them, and read one with its
//! delivery and its result against the holdout. The result is setia-analytics'
//! [`holdout_window`] over the campaign's recipients, the same computation as win-back's
//! windows, so the API, the CLI and the dashboard show one set of numbers.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use setia_analytics::winback::{WindowComparison, CONFIDENCE};
use setia_analytics::{holdout_window, WindowOutcome};
use setia_core::campaign::{CampaignError, CampaignInput};
use setia_core::{CampaignId, MerchantId};
use setia_mail::campaign::AudienceCount;
use setia_mail::MailError;
use setia_store::campaign::{Campaign, CampaignDelivery};
use setia_store::{Store, StoreError};

use crate::api::{ApiMerchant, ListResponse, PageQuery};
use crate::feedback_api::instant;
use crate::ledger_api::json_body;
use crate::{ApiError, AppState};

/// A campaign's JSON: a body of 100 KB of Markdown, escaped, with room to spare.
pub const CAMPAIGN_BODY_LIMIT: usize = 512 * 1024;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/campaigns",
            get(list)
                .post(create)
                .layer(DefaultBodyLimit::max(CAMPAIGN_BODY_LIMIT)),
        )
        .route("/campaigns/{id}", get(show))
}

/// A campaign to write.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CampaignBody {
    #[schema(example = "Lebaran early access", pattern = "\\S")]
    name: String,
    /// `tier:member|silver|gold`, `segment:NAME` (an RFM segment), `at_risk`, `all`, joined
    /// with `+`
    #[schema(example = "tier:gold+tier:silver+segment:loyal")]
    audience: String,
    /// One line; may use {{name}}, {{tier}} and {{points}}
    #[schema(
        example = "{{name}}, the Lebaran collection is open for you first",
        pattern = "\\S"
    )]
    subject: String,
    /// Markdown, at most 100 KB; raw HTML is shown as text, only http, https and mailto
    /// links are kept; may use {{name}}, {{tier}} and {{points}}
    #[schema(pattern = "\\S")]
    body: String,
    /// When the first (gold) wave goes: an RFC 3339 instant or a day (merchant time);
    /// default now; not in the past
    send_at: Option<String>,
    /// Gold first, silver this many days later, everyone else as many days after that
    #[schema(maximum = 90)]
    early_access_days: Option<u32>,
}

/// A written campaign and how many it reaches.
#[derive(Debug, Serialize)]
pub struct CreatedCampaign {
    #[serde(flatten)]
    pub campaign: Campaign,
    pub recipients: AudienceCount,
}

/// A campaign with its delivery and its result.
#[derive(Debug, Serialize)]
pub struct CampaignReport {
    #[serde(flatten)]
    pub campaign: Campaign,
    pub delivery: CampaignDelivery,
    pub results: CampaignResults,
}

/// Verified purchases in the `days` after each recipient's wave, treated against holdout.
#[derive(Debug, Serialize)]
pub struct CampaignResults {
    pub as_of: DateTime<Utc>,
    pub confidence: f64,
    #[serde(flatten)]
    pub window: WindowComparison,
}

/// Why a campaign was not written: the input's fault, or the store's.
#[derive(Debug, thiserror::Error)]
pub enum CreateError {
    #[error("{0}")]
    Invalid(#[from] CampaignError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<MailError> for CreateError {
    fn from(error: MailError) -> Self {
        match error {
            MailError::Store(error) => CreateError::Store(error),
            other => CreateError::Store(StoreError::Corrupt(other.to_string())),
        }
    }
}

impl From<CreateError> for ApiError {
    fn from(error: CreateError) -> Self {
        match error {
            CreateError::Invalid(error) => ApiError::BadRequest(error.to_string()),
            CreateError::Store(error) => ApiError::Store(error),
        }
    }
}

/// Parses, writes and counts a campaign: what the API, the CLI and the dashboard's form
/// share. Bad input writes nothing.
pub async fn create_campaign(
    store: &dyn Store,
    merchant: &MerchantId,
    input: &CampaignInput<'_>,
    now: DateTime<Utc>,
) -> Result<CreatedCampaign, CreateError> {
    let (campaign, recipients) = setia_mail::campaign::create(store, merchant, input, now)
        .await?
        .map_err(CreateError::Invalid)?;
    Ok(CreatedCampaign {
        campaign,
        recipients,
    })
}

/// A campaign's delivery and result as of `now`.
pub async fn report(
    store: &dyn Store,
    merchant: &MerchantId,
    campaign: Campaign,
    now: DateTime<Utc>,
) -> Result<CampaignReport, StoreError> {
    let delivery = store.campaign_delivery(merchant, campaign.id).await?;
    let outcomes = store.campaign_outcomes(merchant, campaign.id).await?;
    let window = holdout_window(
        campaign.result_days,
        outcomes.iter().map(|o| WindowOutcome {
            started_at: o.due_at,
            holdout: o.holdout,
            purchases: o.purchases,
            revenue_minor: o.revenue.minor(),
        }),
        now,
    );
    Ok(CampaignReport {
        campaign,
        delivery,
        results: CampaignResults {
            as_of: now,
            confidence: CONFIDENCE,
            window,
        },
    })
}

async fn create(
    State(state): State<AppState>,
    ApiMerchant(merchant): ApiMerchant,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<CreatedCampaign>), ApiError> {
    let body = body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::TooLarge(format!(
                "request body: over {CAMPAIGN_BODY_LIMIT} bytes (a campaign's body is at most 100 KB)"
            ))
        } else {
            ApiError::BadRequest(format!("request body: {}", rejection.body_text()))
        }
    })?;
    let request: CampaignBody = json_body(&body)?;
    let send_at = instant("send_at", request.send_at.as_deref(), merchant.timezone)?;
    let input = CampaignInput {
        name: &request.name,
        audience: &request.audience,
        subject: &request.subject,
        body: &request.body,
        send_at,
        early_access_days: request.early_access_days,
    };
    let created = create_campaign(&*state.store, &merchant.id, &input, Utc::now()).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

async fn list(
    State(state): State<AppState>,
    ApiMerchant(merchant): ApiMerchant,
    Query(page): Query<PageQuery>,
) -> Result<Json<ListResponse<Campaign>>, ApiError> {
    let page = state.store.campaigns(&merchant.id, page.parse()?).await?;
    Ok(Json(page.into()))
}

/// `cmp_N` of this merchant, or a 404 for anything else.
pub(crate) async fn find(
    store: &Arc<dyn Store>,
    merchant: &MerchantId,
    id: &str,
) -> Result<Campaign, ApiError> {
    let id = CampaignId::parse(id).map_err(|_| ApiError::NotFound("campaign"))?;
    store
        .campaign(merchant, id)
        .await?
        .ok_or(ApiError::NotFound("campaign"))
}

async fn show(
    State(state): State<AppState>,
    ApiMerchant(merchant): ApiMerchant,
    Path(id): Path<String>,
) -> Result<Json<CampaignReport>, ApiError> {
    let campaign = find(&state.store, &merchant.id, &id).await?;
    Ok(Json(
        report(&*state.store, &merchant.id, campaign, Utc::now()).await?,
    ))
}
