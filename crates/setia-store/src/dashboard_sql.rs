// The dashboard's queries, included by `sqlite.rs` and `postgres.rs` after the other query
// files (it reuses their row readers). Every list is one indexed range scan of a page.

use crate::dashboard::*;

const DASH_CUSTOMER_COLUMNS: &str = "c.id, c.external_id, c.name, c.email, c.consent, \
     c.unsubscribed_at_us, s.as_of, s.recency_days, s.frequency_days, s.monetary_minor, \
     s.rfm_r, s.rfm_f, s.rfm_m, s.segment, s.p_alive, s.expected_purchases_90d, s.clv_12m_minor";

/// A customer row joined (LEFT) with its scores: `s.as_of` is NULL when it has none.
fn dash_customer_from_row(row: &DbRow) -> StoreResult<CustomerListRow> {
    let as_of: Option<String> = row.try_get("as_of")?;
    let scores = match as_of {
        None => None,
        Some(as_of) => Some(CustomerScores {
            as_of,
            recency_days: row.try_get("recency_days")?,
            frequency_days: row.try_get("frequency_days")?,
            monetary: Money::from_minor(row.try_get("monetary_minor")?),
            r: row.try_get("rfm_r")?,
            f: row.try_get("rfm_f")?,
            m: row.try_get("rfm_m")?,
            segment: row.try_get("segment")?,
            p_alive: row.try_get("p_alive")?,
            expected_purchases_90d: row.try_get("expected_purchases_90d")?,
            clv_12m: row
                .try_get::<Option<i64>, _>("clv_12m_minor")?
                .map(Money::from_minor),
        }),
    };
    Ok(CustomerListRow {
        id: CustomerId::from_key(row.try_get("id")?),
        external_id: row.try_get("external_id")?,
        name: row.try_get("name")?,
        email: row.try_get("email")?,
        marketing_consent: row.try_get::<bool, _>("consent")?
            && row.try_get::<Option<i64>, _>("unsubscribed_at_us")?.is_none(),
        scores,
    })
}

/// `%text%` for LIKE, lower case, with the pattern characters escaped.
fn dash_like_pattern(text: &str) -> String {
    let mut pattern = String::with_capacity(text.len() + 2);
    pattern.push('%');
    for c in text.trim().to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

/// A page of a value list, highest CLV first (the SQL is the backend's:
/// `value_list_page_sql`).
async fn dash_value_page(
    pool: &sqlx::Pool<Db>,
    merchant: &MerchantId,
    list: ValueList<'_>,
    after: Option<ValueCursor>,
    limit: u32,
) -> StoreResult<ValuePage> {
    let after = after.unwrap_or(ValueCursor {
        clv_minor: i64::MAX,
        customer: 0,
    });
    let (sql, extra) = value_list_page_sql(list);
    let mut query = sqlx::query(&sql)
        .bind(merchant.as_str())
        .bind(after.clv_minor)
        .bind(after.customer);
    if let Some(extra) = extra {
        query = query.bind(extra);
    }
    let rows = query.bind(i64::from(limit) + 1).fetch_all(pool).await?;
    let mut items = rows
        .iter()
        .map(dash_customer_from_row)
        .collect::<StoreResult<Vec<_>>>()?;
    let next_cursor = if items.len() > limit as usize {
        items.truncate(limit as usize);
        items.last().map(|row| ValueCursor {
            clv_minor: row
                .scores
                .as_ref()
                .and_then(|s| s.clv_12m)
                .map_or(-1, |m| m.minor()),
            customer: row.id.key(),
        })
    } else {
        None
    };
    Ok(ValuePage { items, next_cursor })
}

#[async_trait]
impl Dashboard for ThisStore {
    async fn create_dashboard_session(
        &self,
        merchant: &MerchantId,
        token_hash: &str,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query("DELETE FROM dashboard_sessions WHERE expires_at_us <= $1")
            .bind(micros(now))
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO dashboard_sessions (token_hash, merchant_id, created_at_us, expires_at_us) \
             VALUES ($1, $2, $3, $4)",
        )
        .bind(token_hash)
        .bind(merchant.as_str())
        .bind(micros(now))
        .bind(micros(expires_at))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn dashboard_session(
        &self,
        token_hash: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<Merchant>> {
        let columns = MERCHANT_COLUMNS
            .split(", ")
            .map(|c| format!("m.{c}"))
            .collect::<Vec<_>>()
            .join(", ");
        let row = sqlx::query(&format!(
            "SELECT {columns} FROM dashboard_sessions s JOIN merchants m ON m.id = s.merchant_id \
             WHERE s.token_hash = $1 AND s.expires_at_us > $2"
        ))
        .bind(token_hash)
        .bind(micros(now))
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(merchant_from_row).transpose()
    }

    async fn delete_dashboard_session(&self, token_hash: &str) -> StoreResult<()> {
        sqlx::query("DELETE FROM dashboard_sessions WHERE token_hash = $1")
            .bind(token_hash)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    async fn snapshot_heads(
        &self,
        merchant: &MerchantId,
        period: &str,
        limit: u32,
    ) -> StoreResult<Vec<SnapshotHead>> {
        let rows = sqlx::query(
            "SELECT id, as_of, period, computed_at_us FROM metric_snapshots \
             WHERE merchant_id = $1 AND period = $2 ORDER BY id DESC LIMIT $3",
        )
        .bind(merchant.as_str())
        .bind(period)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(SnapshotHead {
                    id: row.try_get("id")?,
                    as_of: row.try_get("as_of")?,
                    period: row.try_get("period")?,
                    computed_at: from_micros(row.try_get("computed_at_us")?)?,
                })
            })
            .collect()
    }

    async fn snapshots_by_id(
        &self,
        merchant: &MerchantId,
        ids: &[i64],
    ) -> StoreResult<Vec<Snapshot>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut query = sqlx::QueryBuilder::<Db>::new(
            "SELECT id, as_of, period, computed_at_us, report FROM metric_snapshots WHERE merchant_id = ",
        );
        query.push_bind(merchant.as_str()).push(" AND id IN (");
        let mut list = query.separated(", ");
        for id in ids {
            list.push_bind(*id);
        }
        query.push(")");
        let rows = query.build().fetch_all(&self.pool).await?;
        rows.iter()
            .map(|row| {
                Ok(Snapshot {
                    id: row.try_get("id")?,
                    as_of: row.try_get("as_of")?,
                    period: row.try_get("period")?,
                    computed_at: from_micros(row.try_get("computed_at_us")?)?,
                    report: row.try_get("report")?,
                })
            })
            .collect()
    }

    async fn customer_list(
        &self,
        merchant: &MerchantId,
        filter: &CustomerFilter,
        page: PageRequest,
    ) -> StoreResult<Page<CustomerListRow>> {
        let select = format!("SELECT {DASH_CUSTOMER_COLUMNS}");
        let scores =
            "LEFT JOIN customer_scores s ON s.merchant_id = c.merchant_id AND s.customer_id = c.id";
        let text = match filter {
            CustomerFilter::All => None,
            CustomerFilter::Search(text) => Some(text.trim().to_owned()),
        };
        let rows = match text {
            None => {
                sqlx::query(&format!(
                    "{select} FROM customers c {scores} \
                     WHERE c.merchant_id = $1 AND c.id < $2 ORDER BY c.id DESC LIMIT $3"
                ))
                .bind(merchant.as_str())
                .bind(page.before.unwrap_or(i64::MAX))
                .bind(i64::from(page.limit) + 1)
                .fetch_all(&self.pool)
                .await?
            }
            // Too short for the trigram index: the external id, exactly.
            Some(text) if text.chars().count() < SEARCH_MIN_CHARS => {
                sqlx::query(&format!(
                    "{select} FROM customers c {scores} \
                     WHERE c.merchant_id = $1 AND c.id < $2 AND c.external_id = $4 \
                     ORDER BY c.id DESC LIMIT $3"
                ))
                .bind(merchant.as_str())
                .bind(page.before.unwrap_or(i64::MAX))
                .bind(i64::from(page.limit) + 1)
                .bind(text)
                .fetch_all(&self.pool)
                .await?
            }
            Some(text) if IS_SQLITE => {
                // The FTS5 trigram index drives, newest first: a phrase of the text is a
                // case-insensitive substring match on any of the three columns.
                sqlx::query(&format!(
                    "{select} FROM customer_search f JOIN customers c ON c.id = f.rowid {scores} \
                     WHERE f.customer_search MATCH $4 AND f.rowid < $2 AND c.merchant_id = $1 \
                     ORDER BY f.rowid DESC LIMIT $3"
                ))
                .bind(merchant.as_str())
                .bind(page.before.unwrap_or(i64::MAX))
                .bind(i64::from(page.limit) + 1)
                .bind(format!("\"{}\"", text.replace('"', "\"\"")))
                .fetch_all(&self.pool)
                .await?
            }
            Some(text) => {
                // The expression of the pg_trgm index customers_search.
                sqlx::query(&format!(
                    "{select} FROM customers c {scores} \
                     WHERE c.merchant_id = $1 AND c.id < $2 \
                     AND lower(c.external_id || ' ' || coalesce(c.name, '') || ' ' || coalesce(c.email, '')) \
                     LIKE $4 ESCAPE '\\' ORDER BY c.id DESC LIMIT $3"
                ))
                .bind(merchant.as_str())
                .bind(page.before.unwrap_or(i64::MAX))
                .bind(i64::from(page.limit) + 1)
                .bind(dash_like_pattern(&text))
                .fetch_all(&self.pool)
                .await?
            }
        };
        let items = rows
            .iter()
            .map(dash_customer_from_row)
            .collect::<StoreResult<Vec<_>>>()?;
        Ok(page_of(items, page, |c| c.id.key()))
    }

    async fn at_risk_by_value(
        &self,
        merchant: &MerchantId,
        after: Option<ValueCursor>,
        limit: u32,
    ) -> StoreResult<ValuePage> {
        dash_value_page(&self.pool, merchant, ValueList::AtRisk, after, limit).await
    }

    async fn segment_by_value(
        &self,
        merchant: &MerchantId,
        segment: &str,
        after: Option<ValueCursor>,
        limit: u32,
    ) -> StoreResult<ValuePage> {
        dash_value_page(
            &self.pool,
            merchant,
            ValueList::Segment(segment),
            after,
            limit,
        )
        .await
    }

    async fn customer_by_key(
        &self,
        merchant: &MerchantId,
        customer: CustomerId,
    ) -> StoreResult<Option<CustomerListRow>> {
        let row = sqlx::query(&format!(
            "SELECT {DASH_CUSTOMER_COLUMNS} FROM customers c \
             LEFT JOIN customer_scores s ON s.merchant_id = c.merchant_id AND s.customer_id = c.id \
             WHERE c.merchant_id = $1 AND c.id = $2"
        ))
        .bind(merchant.as_str())
        .bind(customer.key())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(dash_customer_from_row).transpose()
    }

    async fn customer_purchases(
        &self,
        merchant: &MerchantId,
        customer: CustomerId,
        page: PageRequest,
    ) -> StoreResult<Page<PurchaseRow>> {
        // Newest first by id within the customer: purchases_by_customer narrows to the
        // customer, whose purchases are few enough to sort.
        let sql = format!(
            "SELECT {PURCHASE_COLUMNS} FROM purchases p LEFT JOIN customers c ON c.id = p.customer_id \
             WHERE p.merchant_id = $1 AND p.customer_id = $2 AND p.id < $3 ORDER BY p.id DESC LIMIT $4"
        );
        newest_first(
            &self.pool,
            &sql,
            merchant,
            Some(customer.key()),
            page,
            purchase_from_row,
            |p| p.id.key(),
        )
        .await
    }

    async fn customer_points(
        &self,
        merchant: &MerchantId,
        customer: CustomerId,
        page: PageRequest,
    ) -> StoreResult<Page<PointsEntry>> {
        newest_first(
            &self.pool,
            "SELECT id, occurred_at_us, points, kind, reason, source FROM points_ledger \
             WHERE merchant_id = $1 AND customer_id = $2 AND id < $3 ORDER BY id DESC LIMIT $4",
            merchant,
            Some(customer.key()),
            page,
            points_entry_from_row,
            |e| e.id,
        )
        .await
    }

    async fn customer_emails(
        &self,
        merchant: &MerchantId,
        customer: CustomerId,
        page: PageRequest,
    ) -> StoreResult<Page<OutboxEntry>> {
        newest_first(
            &self.pool,
            "SELECT id, kind, recipient, period_key, status, attempts, last_error, due_at_us, \
             next_attempt_at_us, sent_at_us, created_at_us FROM outbox \
             WHERE merchant_id = $1 AND customer_id = $2 AND id < $3 ORDER BY id DESC LIMIT $4",
            merchant,
            Some(customer.key()),
            page,
            outbox_entry_from_row,
            |e| e.id,
        )
        .await
    }

    async fn recent_mutations(
        &self,
        merchant: &MerchantId,
        page: PageRequest,
    ) -> StoreResult<Page<MutationRow>> {
        let sql = "SELECT m.id, m.mutation_id, m.occurred_at_us, m.account_number, m.description, \
             m.amount_minor, m.direction, m.note, m.bank_type, m.sandbox, m.deliveries, \
             p.id AS purchase_id, p.attribution, p.customer_id, p.refunded_at_us, c.external_id, \
             i.source \
             FROM mutations m JOIN inbox i ON i.id = m.inbox_id \
             LEFT JOIN purchases p ON p.merchant_id = m.merchant_id AND p.mutation_id = m.mutation_id \
             LEFT JOIN customers c ON c.id = p.customer_id \
             WHERE m.merchant_id = $1 AND m.id < $2 ORDER BY m.id DESC LIMIT $3";
        newest_first(
            &self.pool,
            sql,
            merchant,
            None,
            page,
            |row| {
                Ok(MutationRow {
                    id: row.try_get("id")?,
                    mutation_id: row.try_get("mutation_id")?,
                    occurred_at: from_micros(row.try_get("occurred_at_us")?)?,
                    account_number: row.try_get("account_number")?,
                    description: row.try_get("description")?,
                    amount: Money::from_minor(row.try_get("amount_minor")?),
                    direction: row.try_get("direction")?,
                    note: row.try_get("note")?,
                    bank_type: row.try_get("bank_type")?,
                    sandbox: row.try_get("sandbox")?,
                    deliveries: row.try_get("deliveries")?,
                    purchase: row
                        .try_get::<Option<i64>, _>("purchase_id")?
                        .map(PurchaseId::from_key),
                    attribution: row.try_get("attribution")?,
                    customer_id: row
                        .try_get::<Option<i64>, _>("customer_id")?
                        .map(CustomerId::from_key),
                    customer_external_id: row.try_get("external_id")?,
                    refunded: row.try_get::<Option<i64>, _>("refunded_at_us")?.is_some(),
                    reconciled: row.try_get::<String, _>("source")? == "api",
                })
            },
            |m| m.id,
        )
        .await
    }

    async fn attention_counts(&self, merchant: &MerchantId) -> StoreResult<AttentionCounts> {
        let (unattributed, quarantined, failed): (i64, i64, i64) = sqlx::query_as(
            "SELECT \
             (SELECT COUNT(*) FROM purchases WHERE merchant_id = $1 AND customer_id IS NULL), \
             (SELECT COUNT(*) FROM inbox WHERE merchant_id = $1 AND state = 'quarantined'), \
             (SELECT COUNT(*) FROM outbox WHERE merchant_id = $1 AND status = 'failed')",
        )
        .bind(merchant.as_str())
        .fetch_one(&self.pool)
        .await?;
        Ok(AttentionCounts {
            unattributed: unattributed.max(0) as u64,
            quarantined: quarantined.max(0) as u64,
            failed_emails: failed.max(0) as u64,
        })
    }
}
