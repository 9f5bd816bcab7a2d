//! Win-back in the JSON API (DESIGN §8): the flow's result against its holdout, the
//! episodes, and the redemption of a win-back voucher by the merchant's shop. Scoped by the
//! token's merchant like the rest: another merchant's voucher is a 404.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use setia_analytics::{winback_results, WinbackOutcome, WinbackResults};
use setia_core::ExternalId;
use setia_store::winback::{Episode, EpisodeOutcome, RedeemError, Voucher};

use crate::api::{ApiMerchant, ListResponse, PageQuery};
use crate::feedback_api::instant;
use crate::ledger_api::{field, json_body};
use crate::{ApiError, AppState};

/// A redemption's body is one short field; anything much larger is not one.
pub const REDEEM_BODY_LIMIT: usize = 4 * 1024;
/// Results cover the episodes entered in this many days before `until` by default.
pub const DEFAULT_RESULTS_DAYS: i64 = 365;
/// Longer than any code setia gives out (`WB-` and eight characters).
const MAX_CODE_LEN: usize = 64;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/winback/results", get(results))
        .route("/winback/episodes", get(episodes))
        .route(
            "/vouchers/{code}/redeem",
            post(redeem).layer(DefaultBodyLimit::max(REDEEM_BODY_LIMIT)),
        )
}

#[derive(Debug, Deserialize)]
struct ResultsQuery {
    from: Option<String>,
    until: Option<String>,
}

/// The results and the range of entry they cover.
#[derive(Debug, Serialize)]
pub(crate) struct ResultsResponse {
    /// Episodes entered in `[from, until)`.
    from: DateTime<Utc>,
    until: DateTime<Utc>,
    #[serde(flatten)]
    results: WinbackResults,
}

/// What setia-analytics needs of a stored outcome.
pub(crate) fn outcome(stored: &EpisodeOutcome) -> WinbackOutcome {
    WinbackOutcome {
        entered_at: stored.entered_at,
        holdout: stored.holdout,
        purchases_30d: stored.purchases_30d,
        revenue_30d_minor: stored.revenue_30d.minor(),
        purchases_60d: stored.purchases_60d,
        revenue_60d_minor: stored.revenue_60d.minor(),
        expected_30d: stored.expected_30d,
        expected_60d: stored.expected_60d,
        vouchers_redeemed: stored.vouchers_redeemed,
    }
}

/// The range of entry the results cover, `[from, until)`; `from` is
/// [`DEFAULT_RESULTS_DAYS`] before `until` when not given.
fn results_range(
    from: Option<DateTime<Utc>>,
    until: DateTime<Utc>,
) -> Result<(DateTime<Utc>, DateTime<Utc>), ApiError> {
    let from = match from {
        Some(from) => from,
        // Checked: `until` comes from the query, and chrono panics below its first year.
        None => until
            .checked_sub_signed(TimeDelta::days(DEFAULT_RESULTS_DAYS))
            .ok_or_else(|| {
                ApiError::BadRequest(format!("until ({until}) is too early; give from as well"))
            })?,
    };
    if from >= until {
        return Err(ApiError::BadRequest(format!(
            "from ({from}) must be before until ({until})"
        )));
    }
    Ok((from, until))
}

async fn results(
    State(state): State<AppState>,
    ApiMerchant(merchant): ApiMerchant,
    Query(query): Query<ResultsQuery>,
) -> Result<Json<ResultsResponse>, ApiError> {
    let now = Utc::now();
    let zone = merchant.timezone;
    let until = instant("until", query.until.as_deref(), zone)?.unwrap_or(now);
    let from = instant("from", query.from.as_deref(), zone)?;
    let (from, until) = results_range(from, until)?;
    let outcomes: Vec<WinbackOutcome> = state
        .store
        .winback_outcomes(&merchant.id, from, until)
        .await?
        .iter()
        .map(outcome)
        .collect();
    // One pass over the episodes and a few dozen t quantiles: cheap enough to run inline,
    // even for a merchant with a hundred thousand episodes.
    let results = winback_results(&outcomes, now, zone.tz());
    Ok(Json(ResultsResponse {
        from,
        until,
        results,
    }))
}

#[derive(Debug, Deserialize)]
struct EpisodesQuery {
    open: Option<String>,
    #[serde(flatten)]
    page: PageQuery,
}

async fn episodes(
    State(state): State<AppState>,
    ApiMerchant(merchant): ApiMerchant,
    Query(query): Query<EpisodesQuery>,
) -> Result<Json<ListResponse<Episode>>, ApiError> {
    let open_only = match query.open.as_deref() {
        None | Some("") | Some("false") => false,
        Some("true") => true,
        Some(other) => {
            return Err(ApiError::BadRequest(format!(
                "open: {other:?} is not true or false"
            )))
        }
    };
    let page = state
        .store
        .winback_episodes(&merchant.id, open_only, query.page.parse()?)
        .await?;
    Ok(Json(page.into()))
}

/// The shop's order the voucher is used on, if it says.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct VoucherRedemptionBody {
    /// The merchant's own order id (up to 128 printable characters). A replay with the
    /// same order (or again without one) answers the first redemption.
    #[schema(
        example = "INV-2027-0042",
        min_length = 1,
        max_length = 128,
        pattern = "\\S"
    )]
    order_external_id: Option<String>,
}

async fn redeem(
    State(state): State<AppState>,
    ApiMerchant(merchant): ApiMerchant,
    Path(code): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Voucher>, ApiError> {
    let body = body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::TooLarge(format!(
                "request body: over {REDEEM_BODY_LIMIT} bytes (send {{\"order_external_id\": \"…\"}} or nothing)"
            ))
        } else {
            ApiError::BadRequest(format!("request body: {}", rejection.body_text()))
        }
    })?;
    // An empty body is a redemption without an order.
    let request: VoucherRedemptionBody = if body.iter().all(u8::is_ascii_whitespace) {
        VoucherRedemptionBody::default()
    } else {
        json_body(&body)?
    };
    let order = request
        .order_external_id
        .as_deref()
        .map(|text| field("order_external_id", ExternalId::parse(text)))
        .transpose()?;
    // Codes are given out in capitals; a clerk may type them in any case.
    let code = code.trim().to_ascii_uppercase();
    if code.is_empty() || code.len() > MAX_CODE_LEN {
        return Err(ApiError::NotFound("voucher"));
    }
    let now = Utc::now();
    let today = merchant.timezone.local_day(now);
    match state
        .store
        .redeem_voucher(
            &merchant.id,
            &code,
            order.as_ref().map(ExternalId::as_str),
            today,
            now,
        )
        .await?
    {
        Ok(voucher) => Ok(Json(voucher)),
        Err(RedeemError::Unknown(_)) => Err(ApiError::NotFound("voucher")),
        Err(error @ RedeemError::AlreadyRedeemed { .. }) => Err(ApiError::Conflict {
            code: "voucher_already_redeemed",
            message: error.to_string(),
        }),
        Err(error @ RedeemError::Expired { .. }) => Err(ApiError::Conflict {
            code: "voucher_expired",
            message: error.to_string(),
        }),
    }
}

/// A response from a few made-up episodes, for the OpenAPI document's shape test.
#[cfg(test)]
pub(crate) fn sample_response() -> ResultsResponse {
    let until = Utc::now();
    let outcomes: Vec<WinbackOutcome> = (0..6)
        .map(|i| WinbackOutcome {
            entered_at: until - TimeDelta::days(70),
            holdout: i % 3 == 0,
            purchases_30d: i % 2,
            revenue_30d_minor: i64::from(i % 2) * 10_000_000,
            purchases_60d: i % 2,
            revenue_60d_minor: i64::from(i % 2) * 10_000_000,
            expected_30d: Some(0.3),
            expected_60d: Some(0.5),
            vouchers_redeemed: 0,
        })
        .collect();
    ResultsResponse {
        from: until - TimeDelta::days(DEFAULT_RESULTS_DAYS),
        until,
        results: winback_results(&outcomes, until, chrono_tz::Asia::Jakarta),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_range_is_a_year_and_never_panics() {
        let until = DateTime::parse_from_rfc3339("2026-12-08T00:00:00Z")
            .unwrap()
            .to_utc();
        let (from, to) = results_range(None, until).unwrap();
        assert_eq!((until - from, to), (TimeDelta::days(365), until));
        // This once reached `until - 365 days` with chrono's first year.
        assert!(matches!(
            results_range(None, DateTime::<Utc>::MIN_UTC),
            Err(ApiError::BadRequest(_))
        ));
        assert!(matches!(
            results_range(Some(until), until),
            Err(ApiError::BadRequest(_))
        ));
    }
}
