//! The catalogue side of the store: products, the lines of orders and purchases, what the
//! recommender reads (baskets and stock) and what it leaves (per-customer lists, a popular
//! list and "bought together" lists per product).
//!
//! Stored recommendations are a snapshot of the nightly run; every read filters them again
//! against the catalogue and the ledger as they are now, so a product that went out of stock
//! or that the customer bought since the run is never offered.

use std::collections::HashMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Serialize;
use setia_core::import::ItemRecord;
use setia_core::product::{Category, ProductName, Sku, WebLink};
use setia_core::{CustomerId, MerchantId, Money};

use crate::{ImportBatches, Page, PageRequest, StoreResult};

/// Products per upsert call (the API's limit for one request).
pub const MAX_PRODUCTS_PER_UPSERT: usize = 1_000;

/// A product to create or change, by SKU. `None` keeps what is stored; a new product gets
/// its SKU as name and is in stock unless told otherwise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProductUpsert {
    pub sku: Sku,
    pub name: Option<ProductName>,
    pub price: Option<Money>,
    pub url: Option<WebLink>,
    pub image_url: Option<WebLink>,
    pub category: Option<Category>,
    pub in_stock: Option<bool>,
    pub released_at: Option<DateTime<Utc>>,
}

impl ProductUpsert {
    pub fn of_sku(sku: Sku) -> ProductUpsert {
        ProductUpsert {
            sku,
            name: None,
            price: None,
            url: None,
            image_url: None,
            category: None,
            in_stock: None,
            released_at: None,
        }
    }
}

/// A product as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Product {
    /// The row's key: what recommendations and lines refer to, and the paging cursor.
    #[serde(skip)]
    pub key: i64,
    pub sku: String,
    pub name: String,
    #[schema(value_type = Option<String>, example = "89000.00")]
    pub price: Option<Money>,
    pub url: Option<String>,
    pub image_url: Option<String>,
    pub category: Option<String>,
    pub in_stock: bool,
    pub released_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// What an upsert did to each product, in the order given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum UpsertOutcome {
    Created,
    Updated,
    Unchanged,
}

/// A line of an order or a purchase.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct OrderLine {
    pub sku: String,
    pub name: String,
    pub quantity: u32,
    #[schema(value_type = String, example = "89000.00")]
    pub unit_price: Money,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ItemImportCounts {
    pub inserted: u64,
    /// Lines whose key (reference, SKU, occurrence) was already stored.
    pub skipped_duplicates: u64,
    /// Products created from lines with a SKU the catalogue did not have.
    pub products_created: u64,
}

/// What the recommender reads: the (customer, product) pair of every line of a countable
/// purchase (attributed, of the merchant's sandbox flag, not refunded, at or before the
/// cut-off), one entry per line, and every product with its stock flag.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BasketInput {
    pub line_customer: Vec<i64>,
    pub line_product: Vec<i64>,
    pub product: Vec<i64>,
    pub in_stock: Vec<bool>,
}

/// What the nightly run leaves for the products of a merchant: the most popular in-stock
/// products, best first, and each product's "bought together" list with its similarity.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProductSignals {
    pub popular: Vec<i64>,
    pub related: Vec<(i64, Vec<(i64, f64)>)>,
}

#[async_trait]
pub trait Catalog: Send + Sync {
    /// Creates or changes products by SKU in one transaction, at most
    /// [`MAX_PRODUCTS_PER_UPSERT`]; a SKU given twice takes its last entry's fields.
    /// Returns each product as stored and what happened to it, in the order given.
    async fn upsert_products(
        &self,
        merchant: &MerchantId,
        products: &[ProductUpsert],
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<(Product, UpsertOutcome)>>;
    async fn products(
        &self,
        merchant: &MerchantId,
        page: PageRequest,
    ) -> StoreResult<Page<Product>>;
    async fn product(&self, merchant: &MerchantId, sku: &Sku) -> StoreResult<Option<Product>>;

    /// Attaches lines to imported purchases (by `reference`, the purchase's import
    /// reference) or orders (by external id) in one transaction, all or nothing; lines whose
    /// key is stored are skipped, unknown SKUs create products from the line. A reference
    /// that names neither is a `RowConflict` naming its line.
    async fn import_items(
        &self,
        merchant: &MerchantId,
        batches: ImportBatches<ItemRecord>,
        now: DateTime<Utc>,
    ) -> StoreResult<ItemImportCounts>;
    /// The lines of a purchase, in the order they were written.
    async fn purchase_lines(
        &self,
        merchant: &MerchantId,
        purchase: i64,
    ) -> StoreResult<Vec<OrderLine>>;

    async fn basket_input(
        &self,
        merchant: &MerchantId,
        until: DateTime<Utc>,
    ) -> StoreResult<BasketInput>;
    /// Replaces the merchant's popular list and "bought together" lists.
    async fn save_product_signals(
        &self,
        merchant: &MerchantId,
        signals: &ProductSignals,
        computed_at: DateTime<Utc>,
    ) -> StoreResult<()>;
    /// Up to `limit` products for each customer: their stored list, then the popular list,
    /// keeping only products in stock now and never bought by the customer. A customer
    /// without a stored list (no lines, or not scored yet) gets the popular list. Customers
    /// of another merchant get nothing.
    async fn recommendations_for(
        &self,
        merchant: &MerchantId,
        customers: &[CustomerId],
        limit: usize,
    ) -> StoreResult<HashMap<CustomerId, Vec<Product>>>;
    /// The in-stock products most often bought by the buyers of `sku`, best first, with
    /// their similarity; `None` when the merchant has no such product.
    async fn related_products(
        &self,
        merchant: &MerchantId,
        sku: &Sku,
        limit: usize,
    ) -> StoreResult<Option<Vec<(Product, f64)>>>;
}
