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

/// What the recommender reads: the (purchase, product) pair of every line of the merchant's
/// purchases, one entry per line in purchase-key order, and every product with its stock
/// flag. Which lines count, and whose they are, [`PurchaseOwners`] tells.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BasketInput {
    pub line_purchase: Vec<i64>,
    pub line_product: Vec<i64>,
    pub product: Vec<i64>,
    pub in_stock: Vec<bool>,
}

/// The customer of each countable purchase, in purchase-key order: what turns order lines
/// into the recommender's (customer, product) pairs. Built from the `purchase` and
/// `customer` columns of `Analytics::purchase_columns`, which the nightly run reads anyway,
/// so that the lines are read alone rather than joined to their purchases one by one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PurchaseOwners {
    /// (purchase, customer), sorted by purchase, each purchase once.
    owners: Vec<(i64, i64)>,
}

impl PurchaseOwners {
    /// From parallel columns in any order; a purchase listed twice keeps its first customer.
    pub fn new(purchase: &[i64], customer: &[i64]) -> PurchaseOwners {
        let mut owners: Vec<(i64, i64)> = purchase
            .iter()
            .copied()
            .zip(customer.iter().copied())
            .collect();
        owners.sort_by_key(|(purchase, _)| *purchase);
        owners.dedup_by_key(|(purchase, _)| *purchase);
        PurchaseOwners { owners }
    }

    /// Keeps the lines of countable purchases, one entry per line, each as (customer,
    /// product): the others (refunded, sandbox, unattributed, after the cut-off) are
    /// dropped. A merge, since both sides are in purchase order; lines out of order are
    /// sorted first (checked in one pass). The columns are reused in place, ten million
    /// lines being 160 MB.
    pub fn customers_of(
        &self,
        mut line_purchase: Vec<i64>,
        mut line_product: Vec<i64>,
    ) -> (Vec<i64>, Vec<i64>) {
        let length = line_purchase.len().min(line_product.len());
        line_purchase.truncate(length);
        line_product.truncate(length);
        if !line_purchase.is_sorted() {
            let mut lines: Vec<(i64, i64)> = line_purchase
                .iter()
                .copied()
                .zip(line_product.iter().copied())
                .collect();
            lines.sort_unstable();
            (line_purchase, line_product) = lines.into_iter().unzip();
        }
        let mut owner = 0;
        let mut kept = 0;
        for line in 0..length {
            let purchase = line_purchase[line];
            while owner < self.owners.len() && self.owners[owner].0 < purchase {
                owner += 1;
            }
            if let Some(&(key, customer)) = self.owners.get(owner) {
                if key == purchase {
                    line_purchase[kept] = customer;
                    line_product[kept] = line_product[line];
                    kept += 1;
                }
            }
        }
        line_purchase.truncate(kept);
        line_product.truncate(kept);
        (line_purchase, line_product)
    }
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

    async fn basket_input(&self, merchant: &MerchantId) -> StoreResult<BasketInput>;
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

#[cfg(test)]
mod tests {
    use super::PurchaseOwners;

    /// Lines before the first purchase, between purchases, of one purchase several times and
    /// after the last: only those of a listed purchase stay, with its customer, in order.
    #[test]
    fn lines_take_their_purchases_customer() {
        let owners = PurchaseOwners::new(&[9, 3, 6, 5], &[90, 30, 60, 50]);
        let lines = owners.customers_of(
            vec![1, 3, 3, 4, 5, 7, 9, 9, 12],
            vec![10, 11, 12, 13, 14, 15, 16, 17, 18],
        );
        assert_eq!(lines, (vec![30, 30, 50, 90, 90], vec![11, 12, 14, 16, 17]));
        let shuffled = owners.customers_of(vec![9, 1, 3, 12, 5], vec![16, 10, 11, 18, 14]);
        assert_eq!(shuffled, (vec![30, 50, 90], vec![11, 14, 16]));
        let nobody = PurchaseOwners::new(&[], &[]).customers_of(vec![1, 2], vec![1, 2]);
        assert_eq!(nobody, (vec![], vec![]));
    }
}
