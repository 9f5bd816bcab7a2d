// The query texts both backends run, included by `sqlite.rs` and `postgres.rs`, where `Db`,
// `ThisStore`, `MIGRATOR` and the pool are defined. Placeholders are `$N`, which both
// SQLite and PostgreSQL read; times are integer microseconds on both.

use std::collections::HashMap;

use async_trait::async_trait;
use chrono::Utc;
use setia_core::customer::ExternalId;
use setia_core::import::{CustomerRecord, RowError, TransactionRecord};
use setia_core::{CustomerId, MerchantId, MerchantTimezone, Money, TokenHash, WebhookSecret};
use sqlx::Row;

use crate::*;

/// `$2, $3, …`: the placeholders of `count` values bound after the merchant (`$1`).
fn placeholders_after_merchant(count: usize) -> String {
    placeholders_from(2, count)
}

/// `$first, $first+1, …`: `count` numbered placeholders.
fn placeholders_from(first: usize, count: usize) -> String {
    (0..count)
        .map(|i| format!("${}", i + first))
        .collect::<Vec<_>>()
        .join(", ")
}

fn page_of<T>(mut items: Vec<T>, page: PageRequest, id: impl Fn(&T) -> i64) -> Page<T> {
    let next_cursor = if items.len() > page.limit as usize {
        items.truncate(page.limit as usize);
        items.last().map(&id)
    } else {
        None
    };
    Page { items, next_cursor }
}

/// One newest-first page of a merchant's rows. `sql` filters on `merchant_id = $1`, on
/// `$2 = scope` when there is a scope (a customer), and ends with `id < $N ORDER BY id DESC
/// LIMIT $N+1`: one row more than the page, to know whether another page follows.
async fn newest_first<T>(
    pool: &sqlx::Pool<Db>,
    sql: &str,
    merchant: &MerchantId,
    scope: Option<i64>,
    page: PageRequest,
    map: impl Fn(&DbRow) -> StoreResult<T>,
    id: impl Fn(&T) -> i64,
) -> StoreResult<Page<T>> {
    let mut query = sqlx::query(sql).bind(merchant.as_str());
    if let Some(key) = scope {
        query = query.bind(key);
    }
    let rows = query
        .bind(page.before.unwrap_or(i64::MAX))
        .bind(i64::from(page.limit) + 1)
        .fetch_all(pool)
        .await?;
    let items = rows.iter().map(map).collect::<StoreResult<Vec<_>>>()?;
    Ok(page_of(items, page, id))
}

fn audit_entry_from_row(row: &DbRow) -> StoreResult<AuditEntry> {
    let status: i64 = row.try_get("status")?;
    let body_size: i64 = row.try_get("body_size")?;
    Ok(AuditEntry {
        id: row.try_get("id")?,
        received_at: from_micros(row.try_get("received_at_us")?)?,
        remote_addr: row.try_get("remote_addr")?,
        status: u16::try_from(status)
            .map_err(|_| StoreError::Corrupt(format!("status {status}")))?,
        reason: row.try_get("reason")?,
        body_sha256: row.try_get("body_sha256")?,
        body_size: body_size as u64,
        inbox_id: row.try_get("inbox_id")?,
    })
}

fn inbox_entry_from_row(row: &DbRow) -> StoreResult<InboxEntry> {
    let body_size: i64 = row.try_get("body_size")?;
    Ok(InboxEntry {
        id: row.try_get("id")?,
        body: row.try_get("body")?,
        body_sha256: row.try_get("body_sha256")?,
        body_size: body_size as u64,
        user_agent: row.try_get("user_agent")?,
        moota_user: row.try_get("moota_user")?,
        moota_webhook: row.try_get("moota_webhook")?,
        remote_addr: row.try_get("remote_addr")?,
        received_at: from_micros(row.try_get("received_at_us")?)?,
        state: row.try_get("state")?,
    })
}

type DbRow = <Db as sqlx::Database>::Row;
type DbTx<'c> = sqlx::Transaction<'c, Db>;

/// Rows per multi-row INSERT: well under both databases' bound-parameter limits.
const INSERT_CHUNK: usize = 1000;

const MERCHANT_COLUMNS: &str =
    "id, name, timezone, webhook_secret, report_emails, sandbox, created_at_us";

fn merchant_from_row(row: &DbRow) -> StoreResult<Merchant> {
    let id: String = row.try_get("id")?;
    let timezone: String = row.try_get("timezone")?;
    let secret: String = row.try_get("webhook_secret")?;
    let emails: String = row.try_get("report_emails")?;
    Ok(Merchant {
        id: MerchantId::parse(&id).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        name: row.try_get("name")?,
        timezone: MerchantTimezone::parse(&timezone)
            .map_err(|e| StoreError::Corrupt(e.to_string()))?,
        webhook_secret: WebhookSecret::parse(&secret)
            .map_err(|e| StoreError::Corrupt(e.to_string()))?,
        report_emails: serde_json::from_str(&emails)
            .map_err(|e| StoreError::Corrupt(format!("report_emails: {e}")))?,
        sandbox: row.try_get("sandbox")?,
        created_at: from_micros(row.try_get("created_at_us")?)?,
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Upserted {
    Inserted,
    Updated,
    Unchanged,
}

fn is_unique_violation(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(e) if e.is_unique_violation())
}

/// Inserts or updates one customer inside `tx`. Fields the patch leaves `None` keep their
/// stored value; payer names are added to the ones the customer already has.
async fn upsert_customer(
    tx: &mut DbTx<'_>,
    merchant: &MerchantId,
    external_id: &ExternalId,
    patch: &CustomerPatch,
    now_us: i64,
) -> StoreResult<(CustomerId, Upserted)> {
    let existing = sqlx::query(
        "SELECT id, name, email, birthday, virtual_account, consent, erased_at_us FROM customers \
         WHERE merchant_id = $1 AND external_id = $2",
    )
    .bind(merchant.as_str())
    .bind(external_id.as_str())
    .fetch_optional(&mut **tx)
    .await?;
    if let Some(row) = &existing {
        if row.try_get::<Option<i64>, _>("erased_at_us")?.is_some() {
            return Err(StoreError::Erased(external_id.to_string()));
        }
    }

    let name = patch.name.as_ref().map(|v| v.as_str().to_owned());
    let email = patch.email.as_ref().map(|v| v.as_str().to_owned());
    let birthday = patch.birthday.map(|v| v.to_string());
    let virtual_account = patch
        .virtual_account
        .as_ref()
        .map(|v| v.as_str().to_owned());

    let (id, mut outcome) = match existing {
        None => {
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO customers (merchant_id, external_id, name, email, birthday, \
                 virtual_account, consent, created_at_us, updated_at_us) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8) RETURNING id",
            )
            .bind(merchant.as_str())
            .bind(external_id.as_str())
            .bind(&name)
            .bind(&email)
            .bind(&birthday)
            .bind(&virtual_account)
            .bind(patch.consent.unwrap_or(true))
            .bind(now_us)
            .fetch_one(&mut **tx)
            .await
            .map_err(|e| virtual_account_conflict(e, &virtual_account))?;
            (id, Upserted::Inserted)
        }
        Some(row) => {
            let id: i64 = row.try_get("id")?;
            let stored = (
                row.try_get::<Option<String>, _>("name")?,
                row.try_get::<Option<String>, _>("email")?,
                row.try_get::<Option<String>, _>("birthday")?,
                row.try_get::<Option<String>, _>("virtual_account")?,
                row.try_get::<bool, _>("consent")?,
            );
            let merged = (
                name.or_else(|| stored.0.clone()),
                email.or_else(|| stored.1.clone()),
                birthday.or_else(|| stored.2.clone()),
                virtual_account.or_else(|| stored.3.clone()),
                patch.consent.unwrap_or(stored.4),
            );
            if merged == stored {
                (id, Upserted::Unchanged)
            } else {
                sqlx::query(
                    "UPDATE customers SET name = $1, email = $2, birthday = $3, \
                     virtual_account = $4, consent = $5, updated_at_us = $6 \
                     WHERE merchant_id = $7 AND id = $8",
                )
                .bind(&merged.0)
                .bind(&merged.1)
                .bind(&merged.2)
                .bind(&merged.3)
                .bind(merged.4)
                .bind(now_us)
                .bind(merchant.as_str())
                .bind(id)
                .execute(&mut **tx)
                .await
                .map_err(|e| virtual_account_conflict(e, &merged.3))?;
                (id, Upserted::Updated)
            }
        }
    };

    for payer_name in &patch.payer_names {
        let added = sqlx::query(
            "INSERT INTO customer_payer_names (merchant_id, customer_id, payer_name) \
             VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
        )
        .bind(merchant.as_str())
        .bind(id)
        .bind(payer_name.as_str())
        .execute(&mut **tx)
        .await?
        .rows_affected();
        if added > 0 && outcome == Upserted::Unchanged {
            outcome = Upserted::Updated;
        }
    }
    if let Some(referred_by) = &patch.referred_by {
        refer(tx, merchant, id, referred_by, from_micros(now_us)?).await?;
    }
    Ok((CustomerId::from_key(id), outcome))
}

fn virtual_account_conflict(error: sqlx::Error, virtual_account: &Option<String>) -> StoreError {
    if is_unique_violation(&error) {
        StoreError::Conflict(format!(
            "virtual account {} already belongs to another customer",
            virtual_account.as_deref().unwrap_or("?")
        ))
    } else {
        error.into()
    }
}

/// Receives import batches until `Finished`, handing each row to `apply`.
async fn next_batch<T>(batches: &mut ImportBatches<T>) -> StoreResult<Option<Vec<T>>> {
    match batches.recv().await {
        Some(ImportMessage::Rows(rows)) => Ok(Some(rows)),
        Some(ImportMessage::Finished) => Ok(None),
        Some(ImportMessage::Failed(error)) => Err(StoreError::ImportAborted(error)),
        None => Err(StoreError::ImportInterrupted),
    }
}

impl ThisStore {
    async fn create_missing_customers(
        tx: &mut DbTx<'_>,
        merchant: &MerchantId,
        external_ids: &[&ExternalId],
        now_us: i64,
        known: &mut HashMap<String, i64>,
    ) -> StoreResult<u64> {
        let mut created = 0;
        for chunk in external_ids.chunks(INSERT_CHUNK) {
            let mut insert = sqlx::QueryBuilder::<Db>::new(
                "INSERT INTO customers (merchant_id, external_id, consent, created_at_us, updated_at_us) ",
            );
            insert.push_values(chunk, |mut row, external_id| {
                row.push_bind(merchant.as_str())
                    .push_bind(external_id.as_str())
                    .push_bind(true)
                    .push_bind(now_us)
                    .push_bind(now_us);
            });
            insert.push(" RETURNING id, external_id");
            for row in insert.build().fetch_all(&mut **tx).await? {
                known.insert(row.try_get("external_id")?, row.try_get("id")?);
                created += 1;
            }
        }
        Ok(created)
    }
}

#[async_trait]
impl Store for ThisStore {
    async fn migrate(&self) -> StoreResult<()> {
        self.run_migrations().await
    }

    async fn close(&self) {
        self.close_connections().await;
    }

    fn webhooks_wait_for_other_writers(&self) -> bool {
        IS_SQLITE
    }

    async fn is_ready(&self) -> StoreResult<bool> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        let applied: Vec<i64> =
            match sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success = TRUE")
                .fetch_all(&self.pool)
                .await
            {
                Ok(versions) => versions,
                // No migrations table yet: reachable, not migrated.
                Err(sqlx::Error::Database(_)) => return Ok(false),
                Err(other) => return Err(other.into()),
            };
        Ok(MIGRATOR.iter().all(|m| applied.contains(&m.version)))
    }

    async fn create_merchant(&self, new: NewMerchant) -> StoreResult<Merchant> {
        let emails: Vec<&str> = new.report_emails.iter().map(|e| e.as_str()).collect();
        let now = Utc::now();
        sqlx::query(
            "INSERT INTO merchants (id, name, timezone, webhook_secret, api_token_hash, \
             report_emails, sandbox, created_at_us) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(new.id.as_str())
        .bind(new.name.as_str())
        .bind(new.timezone.name())
        .bind(new.webhook_secret.expose())
        .bind(new.api_token_hash.as_str())
        .bind(serde_json::to_string(&emails).expect("strings serialise"))
        .bind(new.sandbox)
        .bind(micros(now))
        .execute(&self.writer)
        .await
        .map_err(|e| {
            if is_unique_violation(&e) {
                StoreError::Conflict(format!("merchant {} already exists", new.id))
            } else {
                e.into()
            }
        })?;
        self.merchant(&new.id)
            .await?
            .ok_or_else(|| StoreError::Corrupt("a merchant vanished after insert".into()))
    }

    async fn list_merchants(&self) -> StoreResult<Vec<Merchant>> {
        let rows = sqlx::query(&format!(
            "SELECT {MERCHANT_COLUMNS} FROM merchants ORDER BY created_at_us, id"
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(merchant_from_row).collect()
    }

    async fn merchant(&self, id: &MerchantId) -> StoreResult<Option<Merchant>> {
        let row = sqlx::query(&format!(
            "SELECT {MERCHANT_COLUMNS} FROM merchants WHERE id = $1"
        ))
        .bind(id.as_str())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(merchant_from_row).transpose()
    }

    async fn merchant_by_token(&self, token: &TokenHash) -> StoreResult<Option<Merchant>> {
        let row = sqlx::query(&format!(
            "SELECT {MERCHANT_COLUMNS} FROM merchants WHERE api_token_hash = $1"
        ))
        .bind(token.as_str())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(merchant_from_row).transpose()
    }

    async fn rotate_credentials(
        &self,
        merchant: &MerchantId,
        api_token: Option<&TokenHash>,
        webhook_secret: Option<&WebhookSecret>,
    ) -> StoreResult<u64> {
        let mut tx = self.begin_write().await?;
        let mut sessions_ended = 0;
        if let Some(token) = api_token {
            sqlx::query("UPDATE merchants SET api_token_hash = $1 WHERE id = $2")
                .bind(token.as_str())
                .bind(merchant.as_str())
                .execute(&mut *tx)
                .await?;
            sessions_ended = sqlx::query("DELETE FROM dashboard_sessions WHERE merchant_id = $1")
                .bind(merchant.as_str())
                .execute(&mut *tx)
                .await?
                .rows_affected();
        }
        if let Some(secret) = webhook_secret {
            sqlx::query("UPDATE merchants SET webhook_secret = $1 WHERE id = $2")
                .bind(secret.expose())
                .bind(merchant.as_str())
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(sessions_ended)
    }

    async fn customer(
        &self,
        merchant: &MerchantId,
        external_id: &ExternalId,
    ) -> StoreResult<Option<Customer>> {
        let Some(row) = sqlx::query(
            "SELECT id, external_id, name, email, birthday, virtual_account, consent \
             FROM customers WHERE merchant_id = $1 AND external_id = $2",
        )
        .bind(merchant.as_str())
        .bind(external_id.as_str())
        .fetch_optional(&self.pool)
        .await?
        else {
            return Ok(None);
        };
        let id: i64 = row.try_get("id")?;
        let payer_names: Vec<String> = sqlx::query_scalar(
            "SELECT payer_name FROM customer_payer_names \
             WHERE merchant_id = $1 AND customer_id = $2 ORDER BY payer_name",
        )
        .bind(merchant.as_str())
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        Ok(Some(Customer {
            id: CustomerId::from_key(id),
            external_id: external_id.clone(),
            name: row.try_get("name")?,
            email: row.try_get("email")?,
            birthday: row.try_get("birthday")?,
            virtual_account: row.try_get("virtual_account")?,
            payer_names,
            consent: row.try_get("consent")?,
        }))
    }

    async fn import_customers(
        &self,
        merchant: &MerchantId,
        mut batches: ImportBatches<CustomerRecord>,
    ) -> StoreResult<CustomerImportCounts> {
        let mut tx = self.begin_write().await?;
        let now_us = micros(Utc::now());
        let mut counts = CustomerImportCounts::default();
        while let Some(records) = next_batch(&mut batches).await? {
            for record in &records {
                let patch = CustomerPatch::from(record);
                let (_, outcome) =
                    upsert_customer(&mut tx, merchant, &record.external_id, &patch, now_us)
                        .await
                        .map_err(|e| match e {
                            StoreError::Erased(_) => StoreError::RowConflict(RowError {
                                line: record.line,
                                field: "external_id".into(),
                                error: e.to_string(),
                            }),
                            StoreError::Conflict(message) => StoreError::RowConflict(RowError {
                                line: record.line,
                                field: "virtual_account".into(),
                                error: message,
                            }),
                            StoreError::BadReferral(message) => StoreError::RowConflict(RowError {
                                line: record.line,
                                field: "referral_code".into(),
                                error: message,
                            }),
                            other => other,
                        })?;
                match outcome {
                    Upserted::Inserted => counts.inserted += 1,
                    Upserted::Updated => counts.updated += 1,
                    Upserted::Unchanged => counts.unchanged += 1,
                }
            }
        }
        tx.commit().await?;
        Ok(counts)
    }

    async fn import_transactions(
        &self,
        merchant: &MerchantId,
        mut batches: ImportBatches<TransactionRecord>,
    ) -> StoreResult<TransactionImportCounts> {
        let mut tx = self.begin_write().await?;
        let sandbox: bool = sqlx::query_scalar("SELECT sandbox FROM merchants WHERE id = $1")
            .bind(merchant.as_str())
            .fetch_one(&mut *tx)
            .await?;
        let mut known: HashMap<String, i64> = HashMap::new();
        {
            let rows = sqlx::query("SELECT external_id, id FROM customers WHERE merchant_id = $1")
                .bind(merchant.as_str())
                .fetch_all(&mut *tx)
                .await?;
            for row in rows {
                known.insert(row.try_get("external_id")?, row.try_get("id")?);
            }
        }
        // An import that at least doubles the table builds the ordinary indexes once at the
        // end instead of row by row (SQLite only; `set_purchase_indexes_aside`). The highest
        // id stands for the table's size: a count would read the whole table.
        let purchases_before: i64 =
            sqlx::query_scalar("SELECT COALESCE(MAX(id), 0) FROM purchases")
                .fetch_one(&mut *tx)
                .await?;
        let mut set_aside: Option<Vec<String>> = None;
        let now_us = micros(Utc::now());
        let mut counts = TransactionImportCounts::default();
        while let Some(records) = next_batch(&mut batches).await? {
            let imported = counts.inserted + records.len() as u64;
            if set_aside.is_none()
                && imported >= crate::BULK_IMPORT_ROWS
                && imported as i64 >= purchases_before
            {
                set_aside = Some(set_purchase_indexes_aside(&mut tx).await?);
            }
            let mut unknown: Vec<&ExternalId> = records
                .iter()
                .map(|r| &r.customer)
                .filter(|c| !known.contains_key(c.as_str()))
                .collect();
            unknown.sort();
            unknown.dedup();
            counts.customers_created +=
                Self::create_missing_customers(&mut tx, merchant, &unknown, now_us, &mut known)
                    .await?;

            for chunk in records.chunks(INSERT_CHUNK) {
                let mut insert = sqlx::QueryBuilder::<Db>::new(
                    "INSERT INTO purchases (merchant_id, customer_id, occurred_at_us, amount_minor, \
                     source, source_key, attribution, sandbox, created_at_us) ",
                );
                insert.push_values(chunk, |mut row, record| {
                    row.push_bind(merchant.as_str())
                        .push_bind(known[record.customer.as_str()])
                        .push_bind(micros(record.occurred_at))
                        .push_bind(record.amount.minor())
                        .push_bind("import")
                        .push_bind(record.source_key.as_str())
                        .push_bind("import")
                        .push_bind(sandbox)
                        .push_bind(now_us);
                });
                insert.push(" ON CONFLICT (merchant_id, source_key) DO NOTHING");
                let inserted = insert.build().execute(&mut *tx).await?.rows_affected();
                counts.inserted += inserted;
                counts.skipped_duplicates += chunk.len() as u64 - inserted;
            }
        }
        for create in set_aside.into_iter().flatten() {
            sqlx::query(&create).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(counts)
    }

    async fn ledger_summary(&self, merchant: &MerchantId) -> StoreResult<LedgerSummary> {
        let row = sqlx::query(
            "SELECT (SELECT COUNT(*) FROM customers WHERE merchant_id = $1) AS customers, \
             (SELECT COUNT(*) FROM purchases WHERE merchant_id = $1) AS purchases, \
             (SELECT CAST(COALESCE(SUM(amount_minor), 0) AS BIGINT) FROM purchases WHERE merchant_id = $1) AS revenue, \
             (SELECT COUNT(*) FROM mutations WHERE merchant_id = $1) AS mutations, \
             (SELECT CAST(COALESCE(SUM(deliveries), 0) AS BIGINT) FROM mutations WHERE merchant_id = $1) AS deliveries, \
             (SELECT COUNT(*) FROM points_ledger WHERE merchant_id = $1) AS points_entries",
        )
        .bind(merchant.as_str())
        .fetch_one(&self.pool)
        .await?;
        let count = |name: &str| -> StoreResult<u64> { Ok(row.try_get::<i64, _>(name)? as u64) };
        Ok(LedgerSummary {
            customers: count("customers")?,
            purchases: count("purchases")?,
            revenue: Money::from_minor(row.try_get("revenue")?),
            mutations: count("mutations")?,
            mutation_deliveries: count("deliveries")?,
            points_entries: count("points_entries")?,
        })
    }

    async fn prepare_for_webhooks(&self) -> StoreResult<()> {
        self.prepare_webhook_writer().await
    }

    async fn record_webhook_calls(
        &self,
        calls: Arc<[WebhookCall]>,
    ) -> StoreResult<Vec<CallOutcome>> {
        self.write_webhook_group(calls).await
    }

    fn webhook_queue(&self) -> Option<WebhookQueue> {
        self.queue_for_webhooks()
    }

    async fn add_suppressed_calls(&self, counts: &[SuppressedCalls]) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        for entry in counts {
            sqlx::query(
                "INSERT INTO webhook_audit_suppressed (merchant_id, minute_us, reason, count) \
                 VALUES ($1, $2, $3, $4) ON CONFLICT (merchant_id, minute_us, reason) \
                 DO UPDATE SET count = webhook_audit_suppressed.count + excluded.count",
            )
            .bind(&entry.merchant)
            .bind(micros(entry.minute_start))
            .bind(&entry.reason)
            .bind(entry.count as i64)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn suppressed_call_count(&self, merchant: &str) -> StoreResult<u64> {
        let count: i64 = sqlx::query_scalar(
            "SELECT CAST(COALESCE(SUM(count), 0) AS BIGINT) FROM webhook_audit_suppressed \
             WHERE merchant_id = $1",
        )
        .bind(merchant)
        .fetch_one(&self.pool)
        .await?;
        Ok(count as u64)
    }

    async fn webhook_deliveries(
        &self,
        merchant: &MerchantId,
        page: PageRequest,
    ) -> StoreResult<Page<AuditEntry>> {
        let sql = "SELECT id, received_at_us, remote_addr, status, reason, body_sha256, body_size, inbox_id \
             FROM webhook_audit WHERE merchant_id = $1 AND id < $2 ORDER BY id DESC LIMIT $3";
        newest_first(
            &self.pool,
            sql,
            merchant,
            None,
            page,
            audit_entry_from_row,
            |e| e.id,
        )
        .await
    }

    async fn inbox_entries(
        &self,
        merchant: &MerchantId,
        page: PageRequest,
    ) -> StoreResult<Page<InboxEntry>> {
        newest_first(
            &self.pool,
            "SELECT id, body, body_sha256, body_size, user_agent, moota_user, moota_webhook, \
             remote_addr, received_at_us, state \
             FROM inbox WHERE merchant_id = $1 AND id < $2 ORDER BY id DESC LIMIT $3",
            merchant,
            None,
            page,
            inbox_entry_from_row,
            |e| e.id,
        )
        .await
    }

    async fn inbox_depth(&self) -> StoreResult<u64> {
        let depth: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM inbox WHERE state = 'pending'")
            .fetch_one(&self.pool)
            .await?;
        Ok(depth as u64)
    }
}
