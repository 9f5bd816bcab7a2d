//! The ledger's JSON API: customers, orders, purchases, redemptions and quarantined
//! webhooks. Every lookup is scoped by the token's merchant: another merchant's row is 404.

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, TimeDelta, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use setia_core::customer::{
    Birthday, Consent, CustomerEmail, CustomerName, ExternalId, PayerName, VirtualAccount,
};
use setia_core::product::{LineItem, ProductName, Quantity, Sku};
use setia_core::referral::ReferralCode;
use setia_core::{Money, PurchaseId};
use setia_store::dashboard::CustomerListRow;
use setia_store::ledger::{
    CustomerProfile, ManualAttribution, NewOrder, Order, PurchaseRow, QuarantinedRow,
    RedemptionOutcome,
};
use setia_store::privacy::Erasure;
use setia_store::referral::{ReferralVia, ReferredBy};
use setia_store::CustomerPatch;

use crate::api::{ApiMerchant, ListResponse, PageQuery};
use crate::customer_data::CustomerData;
use crate::customer_lists::{CustomerList, ListError};
use crate::{ApiError, AppState};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/customers", get(customers).post(upsert_customer))
        .route(
            "/customers/{external_id}",
            get(customer).delete(erase_customer),
        )
        .route("/customers/{external_id}/redemptions", post(redeem))
        .route("/customers/{external_id}/export", get(export_customer))
        .route("/orders", post(create_order))
        .route("/orders/{external_id}", get(order))
        .route("/purchases", get(purchases))
        .route("/purchases/{id}/attribute", post(attribute))
        .route("/purchases/{id}/refund", post(refund))
        .route("/webhooks/quarantine", get(quarantine))
}

/// Reads a JSON body, turning any problem into a 400 that says what is wrong.
pub(crate) fn json_body<T: DeserializeOwned>(body: &Bytes) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| ApiError::BadRequest(format!("request body: {e}")))
}

pub(crate) fn field<T, E: std::fmt::Display>(
    name: &str,
    parsed: Result<T, E>,
) -> Result<T, ApiError> {
    parsed.map_err(|e| ApiError::BadRequest(format!("{name}: {e}")))
}

fn external_id(text: &str) -> Result<ExternalId, ApiError> {
    ExternalId::parse(text).map_err(|_| ApiError::NotFound("customer"))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CustomerBody {
    #[schema(min_length = 1, max_length = 128, pattern = "\\S")]
    external_id: String,
    name: Option<String>,
    email: Option<String>,
    birthday: Option<String>,
    virtual_account: Option<String>,
    #[serde(default)]
    payer_names: Vec<String>,
    consent: Option<bool>,
    /// The personal code of the customer who referred this one (`[referral]`).
    referral_code: Option<String>,
}

async fn upsert_customer(
    State(state): State<AppState>,
    ApiMerchant(merchant): ApiMerchant,
    body: Bytes,
) -> Result<Json<CustomerProfile>, ApiError> {
    let body: CustomerBody = json_body(&body)?;
    let external = field("external_id", ExternalId::parse(&body.external_id))?;
    let patch = CustomerPatch {
        name: body
            .name
            .as_deref()
            .map(|v| field("name", CustomerName::parse(v)))
            .transpose()?,
        email: body
            .email
            .as_deref()
            .map(|v| field("email", CustomerEmail::parse(v)))
            .transpose()?,
        birthday: body
            .birthday
            .as_deref()
            .map(|v| field("birthday", Birthday::parse(v)))
            .transpose()?,
        virtual_account: body
            .virtual_account
            .as_deref()
            .map(|v| field("virtual_account", VirtualAccount::parse(v)))
            .transpose()?,
        payer_names: body
            .payer_names
            .iter()
            .map(|v| field("payer_names", PayerName::parse(v)))
            .collect::<Result<_, _>>()?,
        consent: body.consent.map(|c| Consent(c).0),
        referred_by: referral_code(body.referral_code.as_deref())?.map(|code| ReferredBy {
            code,
            via: ReferralVia::Customer,
        }),
    };
    state
        .store
        .upsert_customer(&merchant.id, &external, &patch)
        .await
        .map_err(ApiError::from_store)?;
    profile(&state, &merchant.id, &external).await.map(Json)
}

async fn profile(
    state: &AppState,
    merchant: &setia_core::MerchantId,
    external: &ExternalId,
) -> Result<CustomerProfile, ApiError> {
    state
        .store
        .customer_profile(merchant, external, Utc::now())
        .await?
        .ok_or(ApiError::NotFound("customer"))
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct CustomersQuery {
    q: String,
    segment: String,
    at_risk: String,
    cursor: String,
    limit: String,
}

/// `GET /customers`: every customer newest first, or a search (newest first), an RFM
/// segment or the at-risk list (highest CLV first), with their latest scores: the lists
/// of the dashboard's Customers page, for another tool to take in.
async fn customers(
    State(state): State<AppState>,
    ApiMerchant(merchant): ApiMerchant,
    Query(query): Query<CustomersQuery>,
) -> Result<Json<ListResponse<CustomerListRow>>, ApiError> {
    let otherwise = match query.at_risk.as_str() {
        "" | "false" => CustomerList::All,
        "true" => CustomerList::AtRisk,
        other => {
            return Err(ApiError::BadRequest(format!(
                "at_risk: {other:?} is not true or false"
            )))
        }
    };
    let list = CustomerList::named(&query.q, &query.segment, otherwise).map_err(list_error)?;
    let given = [
        !query.q.trim().is_empty(),
        !query.segment.trim().is_empty(),
        query.at_risk == "true",
    ];
    if given.iter().filter(|g| **g).count() > 1 {
        return Err(ApiError::BadRequest(
            "q, segment and at_risk=true each name a list: give one".into(),
        ));
    }
    let limit = crate::api::limit(&query.limit)?;
    let (items, next_cursor) = list
        .page(&*state.store, &merchant.id, query.cursor.trim(), limit)
        .await
        .map_err(list_error)?;
    Ok(Json(ListResponse::new(items, next_cursor)))
}

fn list_error(error: ListError) -> ApiError {
    match error {
        ListError::Store(error) => ApiError::from_store(error),
        bad => ApiError::BadRequest(bad.to_string()),
    }
}

async fn customer(
    State(state): State<AppState>,
    ApiMerchant(merchant): ApiMerchant,
    Path(id): Path<String>,
) -> Result<Json<CustomerProfile>, ApiError> {
    profile(&state, &merchant.id, &external_id(&id)?)
        .await
        .map(Json)
}

/// A customer's right of access: everything setia holds about them (`customer_data`).
async fn export_customer(
    State(state): State<AppState>,
    ApiMerchant(merchant): ApiMerchant,
    Path(id): Path<String>,
) -> Result<Json<CustomerData>, ApiError> {
    let data =
        crate::customer_data::gather(&*state.store, &merchant.id, &external_id(&id)?, Utc::now())
            .await
            .map_err(ApiError::from_store)?
            .ok_or(ApiError::NotFound("customer"))?;
    tracing::info!(merchant = %merchant.id, customer = %data.customer.id, "customer data exported");
    Ok(Json(data))
}

/// A customer's right to erasure: `setia_store::Privacy::erase_customer`. A second call finds
/// no customer by the old id: 404, nothing changes.
async fn erase_customer(
    State(state): State<AppState>,
    ApiMerchant(merchant): ApiMerchant,
    Path(id): Path<String>,
) -> Result<Json<Erasure>, ApiError> {
    let erasure = state
        .store
        .erase_customer(&merchant.id, &external_id(&id)?, Utc::now())
        .await
        .map_err(ApiError::from_store)?
        .ok_or(ApiError::NotFound("customer"))?;
    // The log names the anonymous row only: the old id may itself identify the person.
    tracing::info!(merchant = %merchant.id, customer = %erasure.customer, "customer erased");
    Ok(Json(erasure))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RedemptionBody {
    #[schema(minimum = 1)]
    points: i64,
    #[schema(min_length = 1, max_length = 200, pattern = "\\S")]
    idempotency_key: String,
    #[schema(min_length = 1, max_length = 500, pattern = "\\S")]
    reason: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct Redemption {
    entry: setia_store::ledger::PointsEntry,
    points_balance: i64,
}

async fn redeem(
    State(state): State<AppState>,
    ApiMerchant(merchant): ApiMerchant,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<(StatusCode, Json<Redemption>), ApiError> {
    let body: RedemptionBody = json_body(&body)?;
    if body.points <= 0 {
        return Err(ApiError::BadRequest(
            "points: must be a whole number above 0".into(),
        ));
    }
    let key = body.idempotency_key.trim();
    if key.is_empty() || key.chars().count() > 200 {
        return Err(ApiError::BadRequest(
            "idempotency_key: 1 to 200 characters".into(),
        ));
    }
    let reason = body.reason.trim();
    if reason.is_empty() || reason.chars().count() > 500 {
        return Err(ApiError::BadRequest("reason: 1 to 500 characters".into()));
    }
    let outcome = state
        .store
        .redeem_points(
            &merchant.id,
            &external_id(&id)?,
            body.points,
            key,
            reason,
            Utc::now(),
        )
        .await?
        .ok_or(ApiError::NotFound("customer"))?;
    match outcome {
        RedemptionOutcome::Redeemed { entry, balance } => Ok((
            StatusCode::CREATED,
            Json(Redemption {
                entry,
                points_balance: balance,
            }),
        )),
        RedemptionOutcome::Replayed { entry, balance } => Ok((
            StatusCode::OK,
            Json(Redemption {
                entry,
                points_balance: balance,
            }),
        )),
        RedemptionOutcome::InsufficientPoints { balance } => Err(ApiError::Conflict {
            code: "insufficient_points",
            message: format!(
                "the customer has {balance} points, fewer than {}",
                body.points
            ),
        }),
        RedemptionOutcome::KeyReused => Err(ApiError::Conflict {
            code: "idempotency_key_reused",
            message: "this idempotency key was used for a different redemption".into(),
        }),
    }
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct OrderBody {
    #[schema(min_length = 1, max_length = 128, pattern = "\\S")]
    external_id: String,
    #[schema(min_length = 1, max_length = 128, pattern = "\\S")]
    customer_external_id: String,
    /// Rupiah as a decimal string (at most 2 decimals), above 0 and at most
    /// 1000000000000.00.
    #[schema(value_type = String, example = "125000.00")]
    amount: Money,
    expires_at: Option<DateTime<Utc>>,
    bank_account_number: Option<String>,
    /// What the order holds; unknown SKUs become products named by the line. The lines pass
    /// to the purchase that pays the order.
    #[serde(default)]
    items: Vec<ItemBody>,
    /// The personal code of the customer who referred the buyer (`[referral]`).
    referral_code: Option<String>,
}

/// A line of an order.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ItemBody {
    #[schema(example = "KOPI-GAYO-250", pattern = "^[A-Za-z0-9._/:#-]{1,64}$")]
    sku: String,
    /// Names a product setia does not know yet; ignored for a known SKU.
    name: Option<String>,
    #[schema(example = 2)]
    quantity: i64,
    /// Rupiah as a decimal string (at most 2 decimals), from 0 to 1000000000000.00.
    #[schema(value_type = String, example = "89000.00")]
    unit_price: Money,
}

/// Lines per order: far beyond any basket, small enough for one request.
const MAX_ORDER_LINES: usize = 500;

fn line_items(items: &[ItemBody]) -> Result<Vec<LineItem>, ApiError> {
    if items.len() > MAX_ORDER_LINES {
        return Err(ApiError::BadRequest(format!(
            "items: at most {MAX_ORDER_LINES} lines per order, not {}",
            items.len()
        )));
    }
    items
        .iter()
        .enumerate()
        .map(|(index, item)| {
            let at = |name: &str| format!("items[{index}].{name}");
            if item.unit_price < Money::ZERO {
                return Err(ApiError::BadRequest(format!(
                    "{}: must not be negative",
                    at("unit_price")
                )));
            }
            Ok(LineItem {
                sku: field(&at("sku"), Sku::parse(&item.sku))?,
                name: item
                    .name
                    .as_deref()
                    .map(|v| field(&at("name"), ProductName::parse(v)))
                    .transpose()?,
                category: None,
                quantity: field(&at("quantity"), Quantity::new(item.quantity))?,
                unit_price: item.unit_price,
            })
        })
        .collect()
}

/// A referral code as the store passed it; whether it is one of the merchant's is the
/// store's to say, in the write's transaction.
fn referral_code(text: Option<&str>) -> Result<Option<ReferralCode>, ApiError> {
    text.map(|v| field("referral_code", ReferralCode::parse(v)))
        .transpose()
}

/// How long an order waits for its transfer when the store does not say.
const DEFAULT_ORDER_LIFETIME: TimeDelta = TimeDelta::hours(24);

async fn create_order(
    State(state): State<AppState>,
    ApiMerchant(merchant): ApiMerchant,
    body: Bytes,
) -> Result<(StatusCode, Json<Order>), ApiError> {
    let body: OrderBody = json_body(&body)?;
    let now = Utc::now();
    if body.amount <= Money::ZERO {
        return Err(ApiError::BadRequest("amount: must be above 0".into()));
    }
    let expires_at = body.expires_at.unwrap_or(now + DEFAULT_ORDER_LIFETIME);
    if expires_at <= now {
        return Err(ApiError::BadRequest(
            "expires_at: must be in the future".into(),
        ));
    }
    let bank_account_number = body
        .bank_account_number
        .as_deref()
        .map(|v| {
            field("bank_account_number", VirtualAccount::parse(v)).map(|a| a.as_str().to_owned())
        })
        .transpose()?;
    let order = NewOrder {
        external_id: field("external_id", ExternalId::parse(&body.external_id))?,
        customer: field(
            "customer_external_id",
            ExternalId::parse(&body.customer_external_id),
        )?,
        amount: body.amount,
        expires_at,
        bank_account_number,
        items: line_items(&body.items)?,
        referral_code: referral_code(body.referral_code.as_deref())?,
    };
    let created = state
        .store
        .create_order(&merchant.id, &order, now)
        .await
        .map_err(ApiError::from_store)?;
    Ok((StatusCode::CREATED, Json(created)))
}

async fn order(
    State(state): State<AppState>,
    ApiMerchant(merchant): ApiMerchant,
    Path(id): Path<String>,
) -> Result<Json<Order>, ApiError> {
    let id = ExternalId::parse(&id).map_err(|_| ApiError::NotFound("order"))?;
    state
        .store
        .order(&merchant.id, &id, Utc::now())
        .await?
        .map(Json)
        .ok_or(ApiError::NotFound("order"))
}

#[derive(Debug, Deserialize)]
struct PurchasesQuery {
    attributed: Option<String>,
    #[serde(flatten)]
    page: PageQuery,
}

async fn purchases(
    State(state): State<AppState>,
    ApiMerchant(merchant): ApiMerchant,
    Query(query): Query<PurchasesQuery>,
) -> Result<Json<ListResponse<PurchaseRow>>, ApiError> {
    let attributed = match query.attributed.as_deref() {
        None | Some("") => None,
        Some("true") => Some(true),
        Some("false") => Some(false),
        Some(other) => {
            return Err(ApiError::BadRequest(format!(
                "attributed: {other:?} is not true or false"
            )))
        }
    };
    let page = state
        .store
        .purchases(&merchant.id, attributed, query.page.parse()?)
        .await?;
    Ok(Json(page.into()))
}

fn purchase_id(text: &str) -> Result<PurchaseId, ApiError> {
    PurchaseId::parse(text).map_err(|_| ApiError::NotFound("purchase"))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct AttributeBody {
    #[schema(min_length = 1, max_length = 128, pattern = "\\S")]
    customer_external_id: String,
    /// The customer's pending order this transfer pays: it becomes paid and its lines pass
    /// to the purchase.
    order_external_id: Option<String>,
}

async fn attribute(
    State(state): State<AppState>,
    ApiMerchant(merchant): ApiMerchant,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<PurchaseRow>, ApiError> {
    let body: AttributeBody = json_body(&body)?;
    let customer = field(
        "customer_external_id",
        ExternalId::parse(&body.customer_external_id),
    )?;
    let order = body
        .order_external_id
        .as_deref()
        .map(|v| field("order_external_id", ExternalId::parse(v)))
        .transpose()?;
    let outcome = state
        .store
        .attribute_purchase(
            &merchant.id,
            purchase_id(&id)?,
            &customer,
            order.as_ref(),
            Utc::now(),
        )
        .await?
        .ok_or(ApiError::NotFound("purchase or customer"))?;
    manual_attribution(outcome).map(Json)
}

/// The answer to a manual attribution, shared by the API and the dashboard.
pub(crate) fn manual_attribution(outcome: ManualAttribution) -> Result<PurchaseRow, ApiError> {
    match outcome {
        ManualAttribution::Attributed(purchase) => Ok(purchase),
        ManualAttribution::AlreadyAttributed => Err(ApiError::Conflict {
            code: "already_attributed",
            message: "this purchase already belongs to a customer".into(),
        }),
        ManualAttribution::UnknownOrder => Err(ApiError::NotFound("order")),
        ManualAttribution::OrderNotPending => Err(ApiError::Conflict {
            code: "order_not_pending",
            message: "this order is already paid".into(),
        }),
        ManualAttribution::OrderOfAnotherCustomer => Err(ApiError::Conflict {
            code: "order_of_another_customer",
            message: "this order belongs to another customer".into(),
        }),
    }
}

async fn refund(
    State(state): State<AppState>,
    ApiMerchant(merchant): ApiMerchant,
    Path(id): Path<String>,
) -> Result<Json<PurchaseRow>, ApiError> {
    state
        .store
        .refund_purchase(&merchant.id, purchase_id(&id)?, Utc::now())
        .await?
        .map(Json)
        .ok_or(ApiError::NotFound("purchase"))
}

async fn quarantine(
    State(state): State<AppState>,
    ApiMerchant(merchant): ApiMerchant,
    Query(query): Query<PageQuery>,
) -> Result<Json<ListResponse<QuarantinedRow>>, ApiError> {
    let page = state
        .store
        .quarantined(&merchant.id, query.parse()?)
        .await?;
    Ok(Json(page.into()))
}
