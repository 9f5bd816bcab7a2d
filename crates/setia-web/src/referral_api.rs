//! Referrals in the JSON API (DESIGN §8, `[referral]`): the merchant's referrals, newest
//! first and by status, and one customer's side of the program (their personal code, made
//! on first use, their link, who referred them and whom they referred). Scoped by the
//! token's merchant like the rest: another merchant's customer is a 404.

use axum::extract::{Path, Query, State};
use axum::routing::get;
use axum::{Json, Router};
use chrono::Utc;
use serde::{Deserialize, Serialize};
use setia_core::referral::ReferralStatus;
use setia_core::ExternalId;
use setia_store::referral::Referral;
use setia_store::StoreError;

use crate::api::{ApiMerchant, ListResponse, PageQuery};
use crate::{ApiError, AppState};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/referrals", get(referrals))
        .route("/customers/{external_id}/referral", get(customer_referral))
}

/// The statuses `?status=` takes, as the 400 names them.
fn allowed_statuses() -> String {
    ReferralStatus::ALL
        .iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// `?status=`: one of the statuses, or nothing for all of them.
pub(crate) fn status_filter(text: Option<&str>) -> Result<Option<ReferralStatus>, ApiError> {
    match text.map(str::trim) {
        None | Some("") => Ok(None),
        Some(text) => ReferralStatus::parse(text).map(Some).ok_or_else(|| {
            // The input is not repeated: the allowed values say all there is to say.
            ApiError::BadRequest(format!(
                "status: must be one of {} (or left out for all)",
                allowed_statuses()
            ))
        }),
    }
}

#[derive(Debug, Deserialize)]
struct ReferralsQuery {
    status: Option<String>,
    #[serde(flatten)]
    page: PageQuery,
}

async fn referrals(
    State(state): State<AppState>,
    ApiMerchant(merchant): ApiMerchant,
    Query(query): Query<ReferralsQuery>,
) -> Result<Json<ListResponse<Referral>>, ApiError> {
    let status = status_filter(query.status.as_deref())?;
    let page = state
        .store
        .referrals(&merchant.id, status, query.page.parse()?)
        .await?;
    Ok(Json(page.into()))
}

/// A customer's side of the referral program.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct CustomerReferral {
    #[schema(example = "C001")]
    pub(crate) external_id: String,
    /// The customer's personal code (8 letters and digits), made on first use and the same
    /// ever after.
    #[schema(example = "7K3QX9ZD")]
    pub(crate) code: String,
    /// The page that tells a friend the offer: `{SETIA_PUBLIC_URL}/r/{code}`.
    #[schema(example = "https://setia.example/r/7K3QX9ZD")]
    pub(crate) link: String,
    /// The referral that brought this customer (the one that stands, or the latest refused
    /// one when none does); null when nobody referred them.
    pub(crate) referred_by: Option<Referral>,
    /// The friends this customer referred, newest first.
    pub(crate) referred: Vec<Referral>,
}

/// Why a program that is off answers 409: the request is sound, the shop's settings refuse
/// it. No code is made for a program that is off.
pub(crate) fn program_off() -> ApiError {
    ApiError::Conflict {
        code: "referral_program_off",
        message: "this shop's referral program is off: set [referral] enabled = true with \
                  `setia merchant engagement`"
            .into(),
    }
}

async fn customer_referral(
    State(state): State<AppState>,
    ApiMerchant(merchant): ApiMerchant,
    Path(id): Path<String>,
) -> Result<Json<CustomerReferral>, ApiError> {
    let external = ExternalId::parse(&id).map_err(|_| ApiError::NotFound("customer"))?;
    let customer = state
        .store
        .customer(&merchant.id, &external)
        .await?
        .ok_or(ApiError::NotFound("customer"))?;
    let program = state.store.engagement_program(&merchant.id).await?;
    if !program.referral.enabled {
        return Err(program_off());
    }
    let mail = state
        .store
        .mail_merchant(&merchant.id)
        .await?
        .ok_or_else(|| StoreError::Corrupt(format!("merchant {} vanished", merchant.id)))?;
    let code = state
        .store
        .referral_codes(&merchant.id, &mail.secret, &[customer.id], Utc::now())
        .await?
        .remove(&customer.id)
        // Deleted between the two calls: as unknown as any other.
        .ok_or(ApiError::NotFound("customer"))?;
    let referrals = state
        .store
        .customer_referrals(&merchant.id, customer.id)
        .await?;
    Ok(Json(CustomerReferral {
        external_id: customer.external_id.as_str().to_owned(),
        link: code.link(&state.public_url),
        code: code.to_string(),
        referred_by: referrals.referred_by,
        referred: referrals.referred,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_status_names_the_allowed_ones_and_not_the_input() {
        assert_eq!(status_filter(None).unwrap(), None);
        assert_eq!(status_filter(Some("")).unwrap(), None);
        assert_eq!(
            status_filter(Some("refused")).unwrap(),
            Some(ReferralStatus::Refused)
        );
        let message = status_filter(Some("<b>paid</b>")).unwrap_err().to_string();
        assert_eq!(
            message,
            "status: must be one of pending, qualified, rewarded, refused, cancelled (or left out for all)"
        );
    }
}
