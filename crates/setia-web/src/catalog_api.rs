//! The catalogue's JSON API: products (upserted by SKU), a customer's recommendations and a
//! product's "bought together" list. Scoped by the token's merchant like the ledger's.

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::routing::get;
use axum::{Json, Router};
use chrono::Utc;
use serde::{Deserialize, Serialize};
use setia_core::customer::ExternalId;
use setia_core::product::{parse_released_at, Category, ProductName, Sku, WebLink};
use setia_core::Money;
use setia_store::catalog::{Product, ProductUpsert, UpsertOutcome, MAX_PRODUCTS_PER_UPSERT};

use crate::api::{ApiMerchant, ListResponse, PageQuery};
use crate::ledger_api::{field, json_body};
use crate::{ApiError, AppState};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/products", get(products).post(upsert_products))
        .route("/products/{sku}", get(product))
        .route("/products/{sku}/related", get(related))
        .route(
            "/customers/{external_id}/recommendations",
            get(recommendations),
        )
}

/// A product to create or change. Fields left out keep their stored value; a new product
/// is named by its SKU and in stock unless told otherwise.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ProductBody {
    /// Letters, digits and `. _ - / : #`, up to 64
    #[schema(example = "KOPI-GAYO-250", pattern = "^[A-Za-z0-9._/:#-]{1,64}$")]
    sku: String,
    #[schema(example = "Kopi Arabika Gayo 250 g")]
    name: Option<String>,
    /// Rupiah as a decimal string (at most 2 decimals), from 0 to 1000000000000.00.
    #[schema(value_type = Option<String>, example = "89000.00")]
    price: Option<Money>,
    /// The product page (http or https).
    url: Option<String>,
    image_url: Option<String>,
    #[schema(example = "Kopi")]
    category: Option<String>,
    in_stock: Option<bool>,
    /// A day (`2027-03-14`) or an RFC 3339 instant.
    released_at: Option<String>,
}

impl ProductBody {
    fn parse(&self) -> Result<ProductUpsert, ApiError> {
        let link = |name: &str, value: &Option<String>| {
            value
                .as_deref()
                .map(|v| field(name, WebLink::parse(v)))
                .transpose()
        };
        if let Some(price) = self.price {
            if price < Money::ZERO {
                return Err(ApiError::BadRequest("price: must not be negative".into()));
            }
        }
        Ok(ProductUpsert {
            sku: field("sku", Sku::parse(&self.sku))?,
            name: self
                .name
                .as_deref()
                .map(|v| field("name", ProductName::parse(v)))
                .transpose()?,
            price: self.price,
            url: link("url", &self.url)?,
            image_url: link("image_url", &self.image_url)?,
            category: self
                .category
                .as_deref()
                .map(|v| field("category", Category::parse(v)))
                .transpose()?,
            in_stock: self.in_stock,
            released_at: self
                .released_at
                .as_deref()
                .map(|v| field("released_at", parse_released_at(v)))
                .transpose()?,
        })
    }
}

/// What an upsert did, with every product as now stored, in the order sent.
#[derive(Debug, Default, Serialize, utoipa::ToSchema)]
pub(crate) struct UpsertedProducts {
    created: u32,
    updated: u32,
    unchanged: u32,
    products: Vec<Product>,
}

/// Upserts one product (a JSON object) or up to 1,000 (an array), all or nothing.
async fn upsert_products(
    State(state): State<AppState>,
    ApiMerchant(merchant): ApiMerchant,
    body: Bytes,
) -> Result<Json<UpsertedProducts>, ApiError> {
    let is_array = body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[');
    let bodies: Vec<ProductBody> = if is_array {
        json_body(&body)?
    } else {
        vec![json_body(&body)?]
    };
    if bodies.is_empty() || bodies.len() > MAX_PRODUCTS_PER_UPSERT {
        return Err(ApiError::BadRequest(format!(
            "send 1 to {MAX_PRODUCTS_PER_UPSERT} products per request, not {}",
            bodies.len()
        )));
    }
    let products = bodies
        .iter()
        .enumerate()
        .map(|(index, body)| {
            body.parse().map_err(|error| match (is_array, error) {
                (true, ApiError::BadRequest(message)) => {
                    ApiError::BadRequest(format!("[{index}] {message}"))
                }
                (_, error) => error,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let stored = state
        .store
        .upsert_products(&merchant.id, &products, Utc::now())
        .await
        .map_err(ApiError::from_store)?;
    let mut answer = UpsertedProducts::default();
    for (product, outcome) in stored {
        match outcome {
            UpsertOutcome::Created => answer.created += 1,
            UpsertOutcome::Updated => answer.updated += 1,
            UpsertOutcome::Unchanged => answer.unchanged += 1,
        }
        answer.products.push(product);
    }
    Ok(Json(answer))
}

async fn products(
    State(state): State<AppState>,
    ApiMerchant(merchant): ApiMerchant,
    Query(query): Query<PageQuery>,
) -> Result<Json<ListResponse<Product>>, ApiError> {
    let page = state.store.products(&merchant.id, query.parse()?).await?;
    Ok(Json(page.into()))
}

fn sku(text: &str) -> Result<Sku, ApiError> {
    Sku::parse(text).map_err(|_| ApiError::NotFound("product"))
}

async fn product(
    State(state): State<AppState>,
    ApiMerchant(merchant): ApiMerchant,
    Path(id): Path<String>,
) -> Result<Json<Product>, ApiError> {
    state
        .store
        .product(&merchant.id, &sku(&id)?)
        .await?
        .map(Json)
        .ok_or(ApiError::NotFound("product"))
}

/// How many products a list call returns unless told (the nightly run keeps 10 per
/// customer and product), and at most.
const DEFAULT_LIST: usize = 10;
const MAX_LIST: usize = 50;

#[derive(Debug, Deserialize)]
struct ListQuery {
    limit: Option<String>,
}

impl ListQuery {
    fn limit(&self) -> Result<usize, ApiError> {
        match self.limit.as_deref().filter(|l| !l.is_empty()) {
            None => Ok(DEFAULT_LIST),
            Some(text) => text
                .parse::<usize>()
                .ok()
                .filter(|l| (1..=MAX_LIST).contains(l))
                .ok_or_else(|| {
                    ApiError::BadRequest(format!(
                        "limit must be a whole number from 1 to {MAX_LIST}"
                    ))
                }),
        }
    }
}

/// A product bought by the same customers as another, with how strongly (the cosine of
/// their buyer sets, 0 to 1).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct RelatedProduct {
    #[serde(flatten)]
    product: Product,
    #[schema(example = 0.42)]
    similarity: f64,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct RelatedProducts {
    sku: String,
    items: Vec<RelatedProduct>,
}

async fn related(
    State(state): State<AppState>,
    ApiMerchant(merchant): ApiMerchant,
    Path(id): Path<String>,
    Query(query): Query<ListQuery>,
) -> Result<Json<RelatedProducts>, ApiError> {
    let limit = query.limit()?;
    let sku = sku(&id)?;
    let related = state
        .store
        .related_products(&merchant.id, &sku, limit)
        .await?
        .ok_or(ApiError::NotFound("product"))?;
    Ok(Json(RelatedProducts {
        sku: sku.as_str().to_owned(),
        items: related
            .into_iter()
            .map(|(product, similarity)| RelatedProduct {
                product,
                similarity,
            })
            .collect(),
    }))
}

/// A customer's recommendations: in stock, never bought, best first.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct Recommendations {
    customer_external_id: String,
    items: Vec<Product>,
}

async fn recommendations(
    State(state): State<AppState>,
    ApiMerchant(merchant): ApiMerchant,
    Path(id): Path<String>,
    Query(query): Query<ListQuery>,
) -> Result<Json<Recommendations>, ApiError> {
    let limit = query.limit()?;
    let external = ExternalId::parse(&id).map_err(|_| ApiError::NotFound("customer"))?;
    let customer = state
        .store
        .customer(&merchant.id, &external)
        .await?
        .ok_or(ApiError::NotFound("customer"))?;
    let items = state
        .store
        .recommendations_for(&merchant.id, &[customer.id], limit)
        .await?
        .remove(&customer.id)
        .unwrap_or_default();
    Ok(Json(Recommendations {
        customer_external_id: external.as_str().to_owned(),
        items,
    }))
}
