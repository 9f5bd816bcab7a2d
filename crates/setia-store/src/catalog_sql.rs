// The catalogue queries both backends run, included by `sqlite.rs` and `postgres.rs`. The
// bulk read of every line for the recommender differs by backend (`read_basket_lines`).

use std::collections::HashSet;

use setia_core::import::ItemRecord;
use setia_core::product::{LineItem, ProductName, Sku};

use crate::catalog::*;

const PRODUCT_COLUMNS: &str = "id, sku, name, price_minor, url, image_url, category, in_stock, \
     released_at_us, created_at_us, updated_at_us";

fn product_from_row(row: &DbRow) -> StoreResult<Product> {
    Ok(Product {
        key: row.try_get("id")?,
        sku: row.try_get("sku")?,
        name: row.try_get("name")?,
        price: row
            .try_get::<Option<i64>, _>("price_minor")?
            .map(Money::from_minor),
        url: row.try_get("url")?,
        image_url: row.try_get("image_url")?,
        category: row.try_get("category")?,
        in_stock: row.try_get("in_stock")?,
        released_at: row
            .try_get::<Option<i64>, _>("released_at_us")?
            .map(from_micros)
            .transpose()?,
        created_at: from_micros(row.try_get("created_at_us")?)?,
        updated_at: from_micros(row.try_get("updated_at_us")?)?,
    })
}

/// A customer's stored list as `customer_scores.recommended` keeps it: NULL for none.
fn product_list_json(keys: &[i64]) -> Option<String> {
    (!keys.is_empty()).then(|| serde_json::to_string(keys).expect("integers serialise"))
}

/// What an upsert compares and writes: a product's fields but its SKU and times.
#[derive(Debug, Clone, PartialEq)]
struct ProductFields {
    name: String,
    price_minor: Option<i64>,
    url: Option<String>,
    image_url: Option<String>,
    category: Option<String>,
    in_stock: bool,
    released_at_us: Option<i64>,
}

impl ProductFields {
    fn of(product: &Product) -> ProductFields {
        ProductFields {
            name: product.name.clone(),
            price_minor: product.price.map(Money::minor),
            url: product.url.clone(),
            image_url: product.image_url.clone(),
            category: product.category.clone(),
            in_stock: product.in_stock,
            released_at_us: product.released_at.map(micros),
        }
    }

    fn new(upsert: &ProductUpsert) -> ProductFields {
        ProductFields {
            name: upsert
                .name
                .clone()
                .unwrap_or_else(|| ProductName::of_sku(&upsert.sku))
                .as_str()
                .to_owned(),
            price_minor: upsert.price.map(Money::minor),
            url: upsert.url.as_ref().map(|v| v.as_str().to_owned()),
            image_url: upsert.image_url.as_ref().map(|v| v.as_str().to_owned()),
            category: upsert.category.as_ref().map(|v| v.as_str().to_owned()),
            in_stock: upsert.in_stock.unwrap_or(true),
            released_at_us: upsert.released_at.map(micros),
        }
    }

    /// These fields with the upsert's given ones written over them.
    fn merged(&self, upsert: &ProductUpsert) -> ProductFields {
        ProductFields {
            name: upsert
                .name
                .as_ref()
                .map_or_else(|| self.name.clone(), |v| v.as_str().to_owned()),
            price_minor: upsert.price.map(Money::minor).or(self.price_minor),
            url: upsert
                .url
                .as_ref()
                .map(|v| v.as_str().to_owned())
                .or_else(|| self.url.clone()),
            image_url: upsert
                .image_url
                .as_ref()
                .map(|v| v.as_str().to_owned())
                .or_else(|| self.image_url.clone()),
            category: upsert
                .category
                .as_ref()
                .map(|v| v.as_str().to_owned())
                .or_else(|| self.category.clone()),
            in_stock: upsert.in_stock.unwrap_or(self.in_stock),
            released_at_us: upsert.released_at.map(micros).or(self.released_at_us),
        }
    }

    /// The fields of a product a line creates.
    fn of_line(item: &LineItem) -> ProductFields {
        ProductFields {
            name: item
                .name
                .clone()
                .unwrap_or_else(|| ProductName::of_sku(&item.sku))
                .as_str()
                .to_owned(),
            price_minor: Some(item.unit_price.minor()),
            url: None,
            image_url: None,
            category: item.category.as_ref().map(|v| v.as_str().to_owned()),
            in_stock: true,
            released_at_us: None,
        }
    }
}

/// The merchant's products with these SKUs, by SKU.
async fn products_by_sku(
    conn: &mut DbConn,
    merchant: &MerchantId,
    skus: &[&str],
) -> StoreResult<HashMap<String, Product>> {
    let mut found = HashMap::with_capacity(skus.len());
    for chunk in skus.chunks(INSERT_CHUNK) {
        let mut query = sqlx::QueryBuilder::<Db>::new(format!(
            "SELECT {PRODUCT_COLUMNS} FROM products WHERE merchant_id = "
        ));
        query.push_bind(merchant.as_str()).push(" AND sku IN (");
        let mut list = query.separated(", ");
        for sku in chunk {
            list.push_bind(*sku);
        }
        query.push(")");
        for row in query.build().fetch_all(&mut *conn).await? {
            let product = product_from_row(&row)?;
            found.insert(product.sku.clone(), product);
        }
    }
    Ok(found)
}

/// The merchant's products with these keys, by key; keys of no product of the merchant are
/// left out.
async fn products_by_key(
    conn: &mut DbConn,
    merchant: &MerchantId,
    keys: &[i64],
) -> StoreResult<HashMap<i64, Product>> {
    let mut found = HashMap::with_capacity(keys.len());
    for chunk in keys.chunks(INSERT_CHUNK) {
        let mut query = sqlx::QueryBuilder::<Db>::new(format!(
            "SELECT {PRODUCT_COLUMNS} FROM products WHERE merchant_id = "
        ));
        query.push_bind(merchant.as_str()).push(" AND id IN (");
        let mut list = query.separated(", ");
        for key in chunk {
            list.push_bind(*key);
        }
        query.push(")");
        for row in query.build().fetch_all(&mut *conn).await? {
            let product = product_from_row(&row)?;
            found.insert(product.key, product);
        }
    }
    Ok(found)
}

/// Makes sure every SKU of `items` is a product, creating the missing ones from the first
/// line that names them, and records each SKU's key in `known`. Returns how many were
/// created. A SKU another transaction created meanwhile (PostgreSQL) is looked up, not
/// created twice.
async fn ensure_products<'a>(
    conn: &mut DbConn,
    merchant: &MerchantId,
    items: impl Iterator<Item = &'a LineItem>,
    now_us: i64,
    known: &mut HashMap<String, i64>,
) -> StoreResult<u64> {
    let mut missing: Vec<&LineItem> = Vec::new();
    let mut seen: HashSet<&str> = HashSet::new();
    for item in items {
        if !known.contains_key(item.sku.as_str()) && seen.insert(item.sku.as_str()) {
            missing.push(item);
        }
    }
    if missing.is_empty() {
        return Ok(0);
    }
    let skus: Vec<&str> = missing.iter().map(|i| i.sku.as_str()).collect();
    for (sku, product) in products_by_sku(conn, merchant, &skus).await? {
        known.insert(sku, product.key);
    }
    missing.retain(|item| !known.contains_key(item.sku.as_str()));
    let mut created = 0;
    for chunk in missing.chunks(INSERT_CHUNK) {
        let mut insert = sqlx::QueryBuilder::<Db>::new(
            "INSERT INTO products (merchant_id, sku, name, price_minor, category, in_stock, \
             created_at_us, updated_at_us) ",
        );
        insert.push_values(chunk, |mut row, item| {
            let fields = ProductFields::of_line(item);
            row.push_bind(merchant.as_str())
                .push_bind(item.sku.as_str())
                .push_bind(fields.name)
                .push_bind(fields.price_minor)
                .push_bind(fields.category)
                .push_bind(fields.in_stock)
                .push_bind(now_us)
                .push_bind(now_us);
        });
        insert.push(" ON CONFLICT (merchant_id, sku) DO NOTHING RETURNING id, sku");
        for row in insert.build().fetch_all(&mut *conn).await? {
            known.insert(row.try_get("sku")?, row.try_get("id")?);
            created += 1;
        }
    }
    let raced: Vec<&str> = missing
        .iter()
        .map(|i| i.sku.as_str())
        .filter(|sku| !known.contains_key(*sku))
        .collect();
    if !raced.is_empty() {
        for (sku, product) in products_by_sku(conn, merchant, &raced).await? {
            known.insert(sku, product.key);
        }
    }
    Ok(created)
}

/// A line to write.
struct NewLine<'a> {
    order_id: Option<i64>,
    purchase_id: Option<i64>,
    product_id: i64,
    quantity: i64,
    unit_price_minor: i64,
    line_key: Option<&'a str>,
}

/// Inserts lines, skipping those whose key is stored; returns how many were inserted.
async fn insert_lines(
    conn: &mut DbConn,
    merchant: &MerchantId,
    lines: &[NewLine<'_>],
    now_us: i64,
) -> StoreResult<u64> {
    let mut inserted = 0;
    for chunk in lines.chunks(INSERT_CHUNK) {
        let mut insert = sqlx::QueryBuilder::<Db>::new(
            "INSERT INTO order_lines (merchant_id, order_id, purchase_id, product_id, quantity, \
             unit_price_minor, line_key, created_at_us) ",
        );
        insert.push_values(chunk, |mut row, line| {
            row.push_bind(merchant.as_str())
                .push_bind(line.order_id)
                .push_bind(line.purchase_id)
                .push_bind(line.product_id)
                .push_bind(line.quantity)
                .push_bind(line.unit_price_minor)
                .push_bind(line.line_key)
                .push_bind(now_us);
        });
        insert.push(" ON CONFLICT (merchant_id, line_key) DO NOTHING");
        inserted += insert.build().execute(&mut *conn).await?.rows_affected();
    }
    Ok(inserted)
}

/// Writes an order's lines (creating products for unknown SKUs) inside the order's
/// transaction.
async fn insert_order_lines(
    conn: &mut DbConn,
    merchant: &MerchantId,
    order_id: i64,
    items: &[LineItem],
    now_us: i64,
) -> StoreResult<()> {
    if items.is_empty() {
        return Ok(());
    }
    let mut known = HashMap::new();
    ensure_products(conn, merchant, items.iter(), now_us, &mut known).await?;
    let lines = items
        .iter()
        .map(|item| {
            Ok(NewLine {
                order_id: Some(order_id),
                purchase_id: None,
                product_id: *known.get(item.sku.as_str()).ok_or_else(|| {
                    StoreError::Corrupt(format!("product {} vanished after insert", item.sku))
                })?,
                quantity: i64::from(item.quantity.get()),
                unit_price_minor: item.unit_price.minor(),
                line_key: None,
            })
        })
        .collect::<StoreResult<Vec<_>>>()?;
    insert_lines(conn, merchant, &lines, now_us).await?;
    Ok(())
}

/// The lines of an order paid by `purchase` become the purchase's lines too.
async fn inherit_order_lines(
    conn: &mut DbConn,
    merchant: &MerchantId,
    order_id: i64,
    purchase: i64,
) -> StoreResult<()> {
    sqlx::query("UPDATE order_lines SET purchase_id = $1 WHERE merchant_id = $2 AND order_id = $3")
        .bind(purchase)
        .bind(merchant.as_str())
        .bind(order_id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// The lines of an order (`column` = "order_id") or a purchase ("purchase_id"), in the
/// order they were written.
async fn lines_of(
    conn: &mut DbConn,
    merchant: &MerchantId,
    column: &'static str,
    id: i64,
) -> StoreResult<Vec<OrderLine>> {
    let rows = sqlx::query(&format!(
        "SELECT p.sku, p.name, l.quantity, l.unit_price_minor FROM order_lines l \
         JOIN products p ON p.id = l.product_id \
         WHERE l.merchant_id = $1 AND l.{column} = $2 ORDER BY l.id"
    ))
    .bind(merchant.as_str())
    .bind(id)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|row| {
            let quantity: i64 = row.try_get("quantity")?;
            Ok(OrderLine {
                sku: row.try_get("sku")?,
                name: row.try_get("name")?,
                quantity: u32::try_from(quantity)
                    .map_err(|_| StoreError::Corrupt(format!("line quantity {quantity}")))?,
                unit_price: Money::from_minor(row.try_get("unit_price_minor")?),
            })
        })
        .collect()
}

/// Where an items file's reference points: an imported purchase, or an order (and its
/// purchase once paid).
#[derive(Debug, Clone, Copy)]
struct LineTarget {
    order_id: Option<i64>,
    purchase_id: Option<i64>,
}

/// Resolves the distinct references of a batch, a thousand per query: imported purchases
/// (`source_key = 'ref:' || reference`) first, then orders by external id. References that
/// name neither are absent from the map. Each reference is its own subquery on a unique
/// index: an IN list let PostgreSQL, before the tables had statistics (right after an
/// import), scan every purchase of the merchant for each list.
async fn resolve_references<'a>(
    conn: &mut DbConn,
    merchant: &MerchantId,
    references: impl Iterator<Item = &'a str>,
) -> StoreResult<HashMap<&'a str, LineTarget>> {
    let mut distinct: Vec<&str> = references.collect();
    distinct.sort_unstable();
    distinct.dedup();
    let mut found: HashMap<&str, LineTarget> = HashMap::with_capacity(distinct.len());
    for chunk in distinct.chunks(INSERT_CHUNK) {
        let mut query = sqlx::QueryBuilder::<Db>::new(
            "SELECT v.column1 AS reference, (SELECT p.id FROM purchases p WHERE p.merchant_id = ",
        );
        query.push_bind(merchant.as_str()).push(
            " AND p.source_key = 'ref:' || v.column1) AS imported, \
             (SELECT o.id FROM orders o WHERE o.merchant_id = ",
        );
        query.push_bind(merchant.as_str()).push(
            " AND o.external_id = v.column1) AS order_id, \
             (SELECT o.purchase_id FROM orders o WHERE o.merchant_id = ",
        );
        query
            .push_bind(merchant.as_str())
            .push(" AND o.external_id = v.column1) AS order_purchase FROM (VALUES ");
        let mut list = query.separated(", ");
        for reference in chunk {
            list.push("(")
                .push_bind_unseparated(*reference)
                .push_unseparated(")");
        }
        query.push(") AS v");
        for row in query.build().fetch_all(&mut *conn).await? {
            let target = match (
                row.try_get::<Option<i64>, _>("imported")?,
                row.try_get::<Option<i64>, _>("order_id")?,
            ) {
                (Some(purchase), _) => LineTarget {
                    order_id: None,
                    purchase_id: Some(purchase),
                },
                (None, Some(order)) => LineTarget {
                    order_id: Some(order),
                    purchase_id: row.try_get("order_purchase")?,
                },
                (None, None) => continue,
            };
            let reference: String = row.try_get("reference")?;
            if let Ok(i) = chunk.binary_search(&reference.as_str()) {
                found.insert(chunk[i], target);
            }
        }
    }
    Ok(found)
}

fn parse_product_list(text: &str, what: &str) -> StoreResult<Vec<i64>> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))
}

#[async_trait]
impl Catalog for ThisStore {
    async fn upsert_products(
        &self,
        merchant: &MerchantId,
        products: &[ProductUpsert],
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<(Product, UpsertOutcome)>> {
        if products.len() > MAX_PRODUCTS_PER_UPSERT {
            return Err(StoreError::Conflict(format!(
                "{} products in one upsert; at most {MAX_PRODUCTS_PER_UPSERT} are allowed",
                products.len()
            )));
        }
        if products.is_empty() {
            return Ok(Vec::new());
        }
        let now_us = micros(now);
        let mut tx = self.begin_write().await?;
        let mut skus: Vec<&str> = products.iter().map(|p| p.sku.as_str()).collect();
        skus.sort_unstable();
        skus.dedup();
        let stored = products_by_sku(&mut tx, merchant, &skus).await?;

        // Each entry applies to what the entries before it left, so a SKU given twice
        // ends with its last entry's fields written over the first's.
        let mut current: HashMap<&str, ProductFields> = stored
            .iter()
            .map(|(sku, product)| (sku.as_str(), ProductFields::of(product)))
            .collect();
        let mut changed: HashSet<&str> = HashSet::new();
        let mut created: Vec<&str> = Vec::new();
        let mut outcomes = Vec::with_capacity(products.len());
        for upsert in products {
            let sku = upsert.sku.as_str();
            let outcome = match current.get_mut(sku) {
                None => {
                    current.insert(sku, ProductFields::new(upsert));
                    created.push(sku);
                    UpsertOutcome::Created
                }
                Some(fields) => {
                    let merged = fields.merged(upsert);
                    if merged == *fields {
                        UpsertOutcome::Unchanged
                    } else {
                        *fields = merged;
                        changed.insert(sku);
                        UpsertOutcome::Updated
                    }
                }
            };
            outcomes.push(outcome);
        }

        for chunk in created.chunks(INSERT_CHUNK) {
            let mut insert = sqlx::QueryBuilder::<Db>::new(
                "INSERT INTO products (merchant_id, sku, name, price_minor, url, image_url, \
                 category, in_stock, released_at_us, created_at_us, updated_at_us) ",
            );
            insert.push_values(chunk, |mut row, sku| {
                let fields = &current[sku];
                row.push_bind(merchant.as_str())
                    .push_bind(*sku)
                    .push_bind(fields.name.clone())
                    .push_bind(fields.price_minor)
                    .push_bind(fields.url.clone())
                    .push_bind(fields.image_url.clone())
                    .push_bind(fields.category.clone())
                    .push_bind(fields.in_stock)
                    .push_bind(fields.released_at_us)
                    .push_bind(now_us)
                    .push_bind(now_us);
            });
            insert.build().execute(&mut *tx).await.map_err(|e| {
                if is_unique_violation(&e) {
                    StoreError::Conflict(
                        "another request created one of these products at the same time; \
                         try again"
                            .into(),
                    )
                } else {
                    e.into()
                }
            })?;
        }
        for sku in skus.iter().filter(|sku| changed.contains(**sku)) {
            // Only SKUs that were stored are in `changed`: created ones are inserted whole.
            if !stored.contains_key(*sku) {
                continue;
            }
            let fields = &current[sku];
            sqlx::query(
                "UPDATE products SET name = $1, price_minor = $2, url = $3, image_url = $4, \
                 category = $5, in_stock = $6, released_at_us = $7, updated_at_us = $8 \
                 WHERE merchant_id = $9 AND sku = $10",
            )
            .bind(&fields.name)
            .bind(fields.price_minor)
            .bind(&fields.url)
            .bind(&fields.image_url)
            .bind(&fields.category)
            .bind(fields.in_stock)
            .bind(fields.released_at_us)
            .bind(now_us)
            .bind(merchant.as_str())
            .bind(*sku)
            .execute(&mut *tx)
            .await?;
        }

        let written = products_by_sku(&mut tx, merchant, &skus).await?;
        tx.commit().await?;
        products
            .iter()
            .zip(outcomes)
            .map(|(upsert, outcome)| {
                let product = written.get(upsert.sku.as_str()).cloned().ok_or_else(|| {
                    StoreError::Corrupt(format!("product {} vanished after upsert", upsert.sku))
                })?;
                Ok((product, outcome))
            })
            .collect()
    }

    async fn products(
        &self,
        merchant: &MerchantId,
        page: PageRequest,
    ) -> StoreResult<Page<Product>> {
        let sql = format!(
            "SELECT {PRODUCT_COLUMNS} FROM products WHERE merchant_id = $1 AND id < $2 \
             ORDER BY id DESC LIMIT $3"
        );
        newest_first(
            &self.pool,
            &sql,
            merchant,
            None,
            page,
            product_from_row,
            |p| p.key,
        )
        .await
    }

    async fn product(&self, merchant: &MerchantId, sku: &Sku) -> StoreResult<Option<Product>> {
        let row = sqlx::query(&format!(
            "SELECT {PRODUCT_COLUMNS} FROM products WHERE merchant_id = $1 AND sku = $2"
        ))
        .bind(merchant.as_str())
        .bind(sku.as_str())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(product_from_row).transpose()
    }

    async fn import_items(
        &self,
        merchant: &MerchantId,
        mut batches: ImportBatches<ItemRecord>,
        now: DateTime<Utc>,
    ) -> StoreResult<ItemImportCounts> {
        let now_us = micros(now);
        let mut tx = self.begin_write().await?;
        // SKU → key, kept across batches: a catalogue is small next to its lines.
        let mut known: HashMap<String, i64> = HashMap::new();
        let mut counts = ItemImportCounts::default();
        while let Some(records) = next_batch(&mut batches).await? {
            // References are resolved per batch: lines of one purchase sit together in a
            // file, so a cache across batches would hold every reference for little gain.
            let targets = resolve_references(
                &mut tx,
                merchant,
                records.iter().map(|r| r.reference.as_str()),
            )
            .await?;
            if let Some(record) = records
                .iter()
                .find(|r| !targets.contains_key(r.reference.as_str()))
            {
                return Err(StoreError::RowConflict(RowError {
                    line: record.line,
                    field: "reference".into(),
                    error: format!(
                        "no imported purchase or order has reference {:?}",
                        record.reference
                    ),
                }));
            }
            counts.products_created += ensure_products(
                &mut tx,
                merchant,
                records.iter().map(|r| &r.item),
                now_us,
                &mut known,
            )
            .await?;
            let lines = records
                .iter()
                .map(|record| {
                    let target = targets[record.reference.as_str()];
                    Ok(NewLine {
                        order_id: target.order_id,
                        purchase_id: target.purchase_id,
                        product_id: *known.get(record.item.sku.as_str()).ok_or_else(|| {
                            StoreError::Corrupt(format!(
                                "product {} vanished after insert",
                                record.item.sku
                            ))
                        })?,
                        quantity: i64::from(record.item.quantity.get()),
                        unit_price_minor: record.item.unit_price.minor(),
                        line_key: Some(record.line_key.as_str()),
                    })
                })
                .collect::<StoreResult<Vec<_>>>()?;
            let inserted = insert_lines(&mut tx, merchant, &lines, now_us).await?;
            counts.inserted += inserted;
            counts.skipped_duplicates += lines.len() as u64 - inserted;
        }
        tx.commit().await?;
        Ok(counts)
    }

    async fn purchase_lines(
        &self,
        merchant: &MerchantId,
        purchase: i64,
    ) -> StoreResult<Vec<OrderLine>> {
        let mut conn = self.pool.acquire().await?;
        lines_of(&mut conn, merchant, "purchase_id", purchase).await
    }

    async fn basket_input(&self, merchant: &MerchantId) -> StoreResult<BasketInput> {
        let (line_purchase, line_product) = self.read_basket_lines(merchant).await?;
        let catalogue: Vec<(i64, bool)> =
            sqlx::query_as("SELECT id, in_stock FROM products WHERE merchant_id = $1 ORDER BY id")
                .bind(merchant.as_str())
                .fetch_all(&self.pool)
                .await?;
        let (product, in_stock) = catalogue.into_iter().unzip();
        Ok(BasketInput {
            line_purchase,
            line_product,
            product,
            in_stock,
        })
    }

    async fn save_product_signals(
        &self,
        merchant: &MerchantId,
        signals: &ProductSignals,
        computed_at: DateTime<Utc>,
    ) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        // Only the merchant's own products: a key of another merchant's is never stored.
        let own: HashSet<i64> =
            sqlx::query_scalar::<_, i64>("SELECT id FROM products WHERE merchant_id = $1")
                .bind(merchant.as_str())
                .fetch_all(&mut *tx)
                .await?
                .into_iter()
                .collect();
        let mut rows: std::collections::BTreeMap<i64, (Option<i64>, Vec<(i64, f64)>)> =
            std::collections::BTreeMap::new();
        for (rank, product) in signals.popular.iter().enumerate() {
            if own.contains(product) {
                rows.entry(*product)
                    .or_insert((Some(rank as i64), Vec::new()));
            }
        }
        for (product, related) in &signals.related {
            if !own.contains(product) {
                continue;
            }
            // JSON has no NaN or infinity; such a similarity would be written as null.
            let kept: Vec<(i64, f64)> = related
                .iter()
                .copied()
                .filter(|(other, similarity)| own.contains(other) && similarity.is_finite())
                .collect();
            rows.entry(*product).or_insert((None, Vec::new())).1 = kept;
        }
        sqlx::query("DELETE FROM product_signals WHERE merchant_id = $1")
            .bind(merchant.as_str())
            .execute(&mut *tx)
            .await?;
        let rows: Vec<(i64, Option<i64>, String)> = rows
            .into_iter()
            .map(|(product, (rank, related))| {
                let json = serde_json::to_string(&related).expect("finite numbers serialise");
                (product, rank, json)
            })
            .collect();
        for chunk in rows.chunks(INSERT_CHUNK) {
            let mut insert = sqlx::QueryBuilder::<Db>::new(
                "INSERT INTO product_signals (merchant_id, product_id, popularity_rank, related, \
                 computed_at_us) ",
            );
            insert.push_values(chunk, |mut row, (product, rank, related)| {
                row.push_bind(merchant.as_str())
                    .push_bind(*product)
                    .push_bind(*rank)
                    .push_bind(related.as_str())
                    .push_bind(micros(computed_at));
            });
            insert.build().execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn recommendations_for(
        &self,
        merchant: &MerchantId,
        customers: &[CustomerId],
        limit: usize,
    ) -> StoreResult<HashMap<CustomerId, Vec<Product>>> {
        let mut conn = self.pool.acquire().await?;
        let mut keys: Vec<i64> = customers.iter().map(|c| c.key()).collect();
        keys.sort_unstable();
        keys.dedup();

        // The merchant's customers among those asked for, with their stored lists.
        let mut stored: Vec<(i64, Vec<i64>)> = Vec::with_capacity(keys.len());
        for chunk in keys.chunks(INSERT_CHUNK) {
            let mut query = sqlx::QueryBuilder::<Db>::new(
                "SELECT c.id, s.recommended FROM customers c LEFT JOIN customer_scores s \
                 ON s.merchant_id = c.merchant_id AND s.customer_id = c.id WHERE c.merchant_id = ",
            );
            query.push_bind(merchant.as_str()).push(" AND c.id IN (");
            let mut list = query.separated(", ");
            for key in chunk {
                list.push_bind(*key);
            }
            query.push(")");
            for row in query.build().fetch_all(&mut *conn).await? {
                let id: i64 = row.try_get("id")?;
                let list = match row.try_get::<Option<String>, _>("recommended")? {
                    Some(text) => parse_product_list(&text, "customer_scores.recommended")?,
                    None => Vec::new(),
                };
                stored.push((id, list));
            }
        }
        if stored.is_empty() {
            return Ok(HashMap::new());
        }

        let popular: Vec<i64> = sqlx::query_scalar(
            "SELECT product_id FROM product_signals WHERE merchant_id = $1 \
             AND popularity_rank IS NOT NULL ORDER BY popularity_rank",
        )
        .bind(merchant.as_str())
        .fetch_all(&mut *conn)
        .await?;
        // Nothing to offer (no products, or no nightly run yet): every email batch asks, so
        // the lines and products are not read for nothing.
        if popular.is_empty() && stored.iter().all(|(_, list)| list.is_empty()) {
            return Ok(stored
                .into_iter()
                .map(|(customer, _)| (CustomerId::from_key(customer), Vec::new()))
                .collect());
        }

        // What each of them ever bought, as the lines of their purchases say. CROSS JOIN
        // keeps SQLite on the customers' purchases first: without statistics it otherwise
        // scans every line of the merchant (PostgreSQL reads it as a plain join).
        let mut bought: HashSet<(i64, i64)> = HashSet::new();
        let ids: Vec<i64> = stored.iter().map(|(id, _)| *id).collect();
        for chunk in ids.chunks(INSERT_CHUNK) {
            let mut query = sqlx::QueryBuilder::<Db>::new(
                "SELECT DISTINCT p.customer_id, l.product_id FROM purchases p CROSS JOIN order_lines l \
                 WHERE l.merchant_id = p.merchant_id AND l.purchase_id = p.id AND p.merchant_id = ",
            );
            query
                .push_bind(merchant.as_str())
                .push(" AND p.customer_id IN (");
            let mut list = query.separated(", ");
            for id in chunk {
                list.push_bind(*id);
            }
            query.push(")");
            for row in query.build().fetch_all(&mut *conn).await? {
                bought.insert((row.try_get("customer_id")?, row.try_get("product_id")?));
            }
        }

        let mut wanted: Vec<i64> = stored
            .iter()
            .flat_map(|(_, list)| list.iter().copied())
            .chain(popular.iter().copied())
            .collect();
        wanted.sort_unstable();
        wanted.dedup();
        let products = products_by_key(&mut conn, merchant, &wanted).await?;

        Ok(stored
            .into_iter()
            .map(|(customer, list)| {
                let mut picked: Vec<Product> = Vec::new();
                let mut seen: HashSet<i64> = HashSet::new();
                for key in list.iter().chain(popular.iter()) {
                    if picked.len() >= limit {
                        break;
                    }
                    let Some(product) = products.get(key) else {
                        continue;
                    };
                    if product.in_stock && !bought.contains(&(customer, *key)) && seen.insert(*key)
                    {
                        picked.push(product.clone());
                    }
                }
                (CustomerId::from_key(customer), picked)
            })
            .collect())
    }

    async fn related_products(
        &self,
        merchant: &MerchantId,
        sku: &Sku,
        limit: usize,
    ) -> StoreResult<Option<Vec<(Product, f64)>>> {
        let Some(product) = self.product(merchant, sku).await? else {
            return Ok(None);
        };
        let mut conn = self.pool.acquire().await?;
        let related: Option<String> = sqlx::query_scalar(
            "SELECT related FROM product_signals WHERE merchant_id = $1 AND product_id = $2",
        )
        .bind(merchant.as_str())
        .bind(product.key)
        .fetch_optional(&mut *conn)
        .await?;
        let Some(related) = related else {
            return Ok(Some(Vec::new()));
        };
        let related: Vec<(i64, f64)> = serde_json::from_str(&related)
            .map_err(|e| StoreError::Corrupt(format!("product_signals.related: {e}")))?;
        let keys: Vec<i64> = related.iter().map(|(key, _)| *key).collect();
        let products = products_by_key(&mut conn, merchant, &keys).await?;
        Ok(Some(
            related
                .into_iter()
                .filter_map(|(key, similarity)| {
                    products
                        .get(&key)
                        .filter(|p| p.in_stock)
                        .map(|p| (p.clone(), similarity))
                })
                .take(limit)
                .collect(),
        ))
    }
}
