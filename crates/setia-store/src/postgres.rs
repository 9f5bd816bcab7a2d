//! PostgreSQL, for several stateless nodes and workers sharing one database.

use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::PgPoolOptions;

use crate::StoreResult;

type Db = sqlx::Postgres;
type ThisStore = PostgresStore;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../sql/postgres");

pub struct PostgresStore {
    pool: sqlx::PgPool,
    /// The same pool: PostgreSQL runs writers side by side.
    writer: sqlx::PgPool,
}

impl PostgresStore {
    pub async fn connect(url: &str) -> StoreResult<PostgresStore> {
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(10))
            .connect(url)
            .await?;
        Ok(PostgresStore {
            writer: pool.clone(),
            pool,
        })
    }
}

/// For the few queries whose text or tuning differs by backend.
const IS_SQLITE: bool = false;

const FOR_UPDATE: &str = " FOR UPDATE";

/// PostgreSQL keeps the indexes of `purchases` through a large import: dropping one inside
/// the import's transaction would lock every reader of the table out until it commits.
async fn set_purchase_indexes_aside(_tx: &mut DbTx<'_>) -> StoreResult<Vec<String>> {
    Ok(Vec::new())
}

/// SKIP LOCKED: workers on several machines each take different rows without waiting.
const CLAIM_INBOX_SQL: &str = "UPDATE inbox SET claim_id = $1, lease_until_us = $2, attempts = attempts + 1 \
     WHERE id IN (SELECT id FROM inbox WHERE state = 'pending' AND next_attempt_at_us <= $3 \
     AND (lease_until_us IS NULL OR lease_until_us < $3) ORDER BY id LIMIT $4 FOR UPDATE SKIP LOCKED) \
     RETURNING id, merchant_id, body, attempts";

/// SKIP LOCKED: delivery workers on several machines each take different emails.
const CLAIM_OUTBOX_SQL: &str = "UPDATE outbox SET claim_id = $1, lease_until_us = $2, attempts = attempts + 1, status = 'pending' \
     WHERE id IN (SELECT id FROM outbox WHERE status IN ('pending', 'deferred') AND due_at_us <= $3 \
     AND next_attempt_at_us <= $3 AND (lease_until_us IS NULL OR lease_until_us < $3) \
     ORDER BY due_at_us, id LIMIT $4 FOR UPDATE SKIP LOCKED) \
     RETURNING id, merchant_id, kind, recipient, customer_id, period_key, due_at_us, attempts, payload";

/// A page of a value list: a range scan of the partial index customer_scores_at_risk_by_clv
/// (whose condition is this literal one) or of customer_scores_by_segment; `$4` is the
/// segment, when there is one. The extra parameter, if any, comes back for binding.
fn value_list_page_sql(list: ValueList<'_>) -> (String, Option<String>) {
    let (condition, extra, limit) = match list {
        ValueList::AtRisk => ("s.p_alive < 0.5 AND s.frequency_days >= 2", None, 4),
        ValueList::Segment(segment) => ("s.segment = $4", Some(segment.to_owned()), 5),
    };
    let sql = format!(
        "SELECT {DASH_CUSTOMER_COLUMNS} \
         FROM customer_scores s JOIN customers c ON c.merchant_id = s.merchant_id AND c.id = s.customer_id \
         WHERE s.merchant_id = $1 AND {condition} \
         AND (COALESCE(s.clv_12m_minor, -1) < $2 OR (COALESCE(s.clv_12m_minor, -1) = $2 AND s.customer_id > $3)) \
         ORDER BY COALESCE(s.clv_12m_minor, -1) DESC, s.customer_id LIMIT ${limit}"
    );
    (sql, extra)
}

impl PostgresStore {
    async fn run_migrations(&self) -> StoreResult<()> {
        MIGRATOR.run(&self.writer).await?;
        Ok(())
    }

    /// Nothing to prepare: the unique index is the duplicate check.
    async fn prepare_webhook_writer(&self) -> StoreResult<()> {
        Ok(())
    }

    async fn close_connections(&self) {
        self.pool.close().await;
    }

    fn purchase_reader(&self) -> PurchaseReader {
        PurchaseReader(self.pool.clone())
    }

    async fn begin_write(&self) -> StoreResult<sqlx::Transaction<'static, Db>> {
        Ok(self.writer.begin().await?)
    }

    /// Several nodes may write here: groups are gathered by the caller, one transaction each.
    fn queue_for_webhooks(&self) -> Option<WebhookQueue> {
        None
    }

    async fn write_webhook_group(
        &self,
        calls: Arc<[WebhookCall]>,
    ) -> StoreResult<Vec<CallOutcome>> {
        let mut tx = self.begin_write().await?;
        let outcomes = record_webhook_group(&mut tx, &calls).await?;
        tx.commit().await?;
        Ok(outcomes)
    }
}

/// Writes a group of calls inside one transaction with one multi-row statement per table,
/// not two statements per call: the group commit then costs a few round trips to the
/// database whatever its size.
async fn record_webhook_group(
    tx: &mut DbTx<'_>,
    calls: &[WebhookCall],
) -> StoreResult<Vec<CallOutcome>> {
    let accepted: Vec<(&WebhookCall, &InboxBody)> = calls
        .iter()
        .filter_map(|call| call.inbox.as_ref().map(|inbox| (call, inbox)))
        .collect();
    // (merchant, sha256) -> id of the rows this group added.
    let mut added: HashMap<(String, String), i64> = HashMap::new();
    for chunk in accepted.chunks(INSERT_CHUNK) {
        let mut insert = sqlx::QueryBuilder::<Db>::new(
            "INSERT INTO inbox (merchant_id, body, body_sha256, body_size, user_agent, \
             moota_user, moota_webhook, remote_addr, received_at_us) ",
        );
        insert.push_values(chunk, |mut row, (call, inbox)| {
            row.push_bind(inbox.merchant.as_str())
                .push_bind(inbox.body.as_ref())
                .push_bind(call.body_sha256.as_deref().unwrap_or_default())
                .push_bind(inbox.body.len() as i64)
                .push_bind(inbox.user_agent.as_deref())
                .push_bind(inbox.moota_user.as_deref())
                .push_bind(inbox.moota_webhook.as_deref())
                .push_bind(call.remote_addr.as_str())
                .push_bind(micros(call.received_at));
        });
        // A body twice in one statement is inserted once: DO NOTHING skips the second.
        insert.push(
            " ON CONFLICT (merchant_id, body_sha256) DO NOTHING \
             RETURNING id, merchant_id, body_sha256",
        );
        for row in insert.build().fetch_all(&mut **tx).await? {
            added.insert(
                (row.try_get("merchant_id")?, row.try_get("body_sha256")?),
                row.try_get("id")?,
            );
        }
    }

    // The first call of a new body received it; every other call with that body, in this
    // group or before it, is a duplicate of the stored row.
    let mut seen: HashMap<(String, String), i64> = HashMap::new();
    let mut outcomes = Vec::with_capacity(calls.len());
    for call in calls {
        let Some(inbox) = &call.inbox else {
            outcomes.push(CallOutcome::Audited);
            continue;
        };
        let key = (
            inbox.merchant.as_str().to_owned(),
            call.body_sha256.clone().unwrap_or_default(),
        );
        if let Some(&id) = seen.get(&key) {
            outcomes.push(CallOutcome::Duplicate { inbox_id: id });
        } else if let Some(&id) = added.get(&key) {
            outcomes.push(CallOutcome::Received { inbox_id: id });
            seen.insert(key, id);
        } else {
            let id: i64 = sqlx::query_scalar(
                "SELECT id FROM inbox WHERE merchant_id = $1 AND body_sha256 = $2",
            )
            .bind(&key.0)
            .bind(&key.1)
            .fetch_one(&mut **tx)
            .await?;
            outcomes.push(CallOutcome::Duplicate { inbox_id: id });
            seen.insert(key, id);
        }
    }

    let audited: Vec<(&WebhookCall, &CallOutcome)> = calls.iter().zip(&outcomes).collect();
    for chunk in audited.chunks(INSERT_CHUNK) {
        let mut insert = sqlx::QueryBuilder::<Db>::new(
            "INSERT INTO webhook_audit (merchant_id, received_at_us, remote_addr, status, \
             reason, body_sha256, body_size, inbox_id) ",
        );
        insert.push_values(chunk, |mut row, (call, outcome)| {
            let (status, reason, inbox_id) = match outcome {
                CallOutcome::Received { inbox_id } => (200, "received", Some(*inbox_id)),
                CallOutcome::Duplicate { inbox_id } => (200, "duplicate", Some(*inbox_id)),
                CallOutcome::Audited => (i64::from(call.status), call.reason.as_str(), None),
            };
            row.push_bind(call.merchant.as_str())
                .push_bind(micros(call.received_at))
                .push_bind(call.remote_addr.as_str())
                .push_bind(status)
                .push_bind(reason)
                .push_bind(call.body_sha256.as_deref())
                .push_bind(call.body_size as i64)
                .push_bind(inbox_id);
        });
        insert.build().execute(&mut **tx).await?;
    }
    Ok(outcomes)
}

/// Appends the `rows` comma-separated decimal integers of `text` to `values`.
fn append_integers(
    values: &mut Vec<i64>,
    text: Option<&str>,
    rows: i64,
    column: &str,
) -> StoreResult<()> {
    let bad =
        |what: &str| crate::StoreError::Corrupt(format!("{column} in a columnar chunk: {what}"));
    let start = values.len();
    let text = text.ok_or_else(|| bad("no values"))?;
    values.reserve(usize::try_from(rows).unwrap_or(0));
    for item in text.split(',') {
        let value = item.parse::<i64>().map_err(|error| match error.kind() {
            std::num::IntErrorKind::PosOverflow | std::num::IntErrorKind::NegOverflow => {
                bad("out of range")
            }
            _ => bad("not an integer"),
        })?;
        values.push(value);
    }
    if (values.len() - start) as i64 != rows {
        return Err(bad("a different number of values than rows"));
    }
    Ok(())
}

/// Reads a range of customers for `purchase_columns`.
struct PurchaseReader(sqlx::PgPool);

impl PurchaseReader {
    /// The purchases of the customers with keys in (`after_customer`, `upto_customer`], in
    /// keyset-paged chunks in the order of the `purchases_by_customer` index, each chunk one
    /// row of whole columns (decimal text joined by commas): per-row driver overhead is paid
    /// once per chunk instead of once per purchase. The aggregates of one chunk read the same
    /// rows in the same order, so their entries line up; the chunk's largest key is found in
    /// the decoded columns rather than trusting that order.
    async fn read(
        self,
        merchant: String,
        until_us: i64,
        after_customer: i64,
        upto_customer: i64,
        chunk: i64,
    ) -> StoreResult<PurchaseColumns> {
        let mut columns = PurchaseColumns::default();
        let mut after = (after_customer, i64::MAX, i64::MAX);
        loop {
            let (rows, ids, customers, times, amounts) = sqlx::query_as::<
                _,
                (
                    i64,
                    Option<String>,
                    Option<String>,
                    Option<String>,
                    Option<String>,
                ),
            >(
                "SELECT count(*), string_agg(CAST(id AS TEXT), ','), \
             string_agg(CAST(customer_id AS TEXT), ','), \
             string_agg(CAST(occurred_at_us AS TEXT), ','), \
             string_agg(CAST(amount_minor AS TEXT), ',') \
             FROM (SELECT id, customer_id, occurred_at_us, amount_minor FROM purchases \
             WHERE merchant_id = $1 AND customer_id IS NOT NULL \
             AND sandbox = (SELECT m.sandbox FROM merchants m WHERE m.id = $1) \
             AND refunded_at_us IS NULL AND occurred_at_us <= $2 \
             AND (customer_id, occurred_at_us, id) > ($3, $4, $5) AND customer_id <= $6 \
             ORDER BY customer_id, occurred_at_us, id LIMIT $7) AS chunk",
            )
            .bind(&merchant)
            .bind(until_us)
            .bind(after.0)
            .bind(after.1)
            .bind(after.2)
            .bind(upto_customer)
            .bind(chunk)
            .fetch_one(&self.0)
            .await?;
            if rows == 0 {
                break;
            }
            let start = columns.customer.len();
            append_integers(&mut columns.purchase, ids.as_deref(), rows, "purchases.id")?;
            append_integers(
                &mut columns.customer,
                customers.as_deref(),
                rows,
                "purchases.customer_id",
            )?;
            append_integers(
                &mut columns.occurred_at_us,
                times.as_deref(),
                rows,
                "purchases.occurred_at_us",
            )?;
            append_integers(
                &mut columns.amount_minor,
                amounts.as_deref(),
                rows,
                "purchases.amount_minor",
            )?;
            for i in start..columns.purchase.len() {
                let key = (
                    columns.customer[i],
                    columns.occurred_at_us[i],
                    columns.purchase[i],
                );
                after = after.max(key);
            }
            if rows < chunk {
                break;
            }
        }
        Ok(columns)
    }
}

/// Lines per chunk of the recommender's read: about 3 MB of text per chunk.
const BASKET_CHUNK: i64 = 200_000;

impl PostgresStore {
    /// Every line of the merchant's purchases as (purchase, product), in purchase-key order,
    /// in chunks of whole columns, as `PurchaseReader` reads purchases: the driver's per-row
    /// cost is paid once per chunk. A chunk is a range of purchase keys holding about
    /// `BASKET_CHUNK` lines, found first from the lines' index alone, then read as a plain
    /// key range of that index, so no plan (even one made before the table has statistics,
    /// as right after an import) reads more than the chunk. Both aggregates are ordered
    /// alike, so their entries line up.
    async fn read_basket_lines(&self, merchant: &MerchantId) -> StoreResult<(Vec<i64>, Vec<i64>)> {
        let (mut purchases, mut products) = (Vec::new(), Vec::new());
        let mut after = 0_i64;
        loop {
            // The purchase of the chunk's last line; None when fewer lines remain.
            let boundary: Option<i64> = sqlx::query_scalar(
                "SELECT purchase_id FROM order_lines WHERE merchant_id = $1 AND purchase_id > $2 \
                 ORDER BY purchase_id LIMIT 1 OFFSET $3",
            )
            .bind(merchant.as_str())
            .bind(after)
            .bind(BASKET_CHUNK - 1)
            .fetch_optional(&self.pool)
            .await?;
            let upto = boundary.unwrap_or(i64::MAX);
            let (rows, chunk_purchases, chunk_products) =
                sqlx::query_as::<_, (i64, Option<String>, Option<String>)>(
                    "SELECT count(*), \
                     string_agg(CAST(purchase_id AS TEXT), ',' ORDER BY purchase_id, id), \
                     string_agg(CAST(product_id AS TEXT), ',' ORDER BY purchase_id, id) \
                     FROM order_lines \
                     WHERE merchant_id = $1 AND purchase_id > $2 AND purchase_id <= $3",
                )
                .bind(merchant.as_str())
                .bind(after)
                .bind(upto)
                .fetch_one(&self.pool)
                .await?;
            if rows > 0 {
                append_integers(
                    &mut purchases,
                    chunk_purchases.as_deref(),
                    rows,
                    "order_lines.purchase_id",
                )?;
                append_integers(
                    &mut products,
                    chunk_products.as_deref(),
                    rows,
                    "order_lines.product_id",
                )?;
            }
            match boundary {
                Some(boundary) => after = boundary,
                None => break,
            }
        }
        Ok((purchases, products))
    }
}

include!("shared.rs");
include!("ledger_sql.rs");
include!("mail_sql.rs");
include!("analytics_sql.rs");
include!("dashboard_sql.rs");
include!("catalog_sql.rs");
include!("engagement_sql.rs");
include!("reconcile_sql.rs");
include!("winback_sql.rs");
include!("referral_sql.rs");
include!("perks_sql.rs");
include!("privacy_sql.rs");

/// The first key of the advisory lock that replaces a merchant's scores (the second is the
/// merchant id's hash); the pair form keeps it apart from sqlx's migration lock.
const SCORES_LOCK_CLASS: i32 = 0x5e71_a001;

/// Score rows per `COPY` message (about 100 bytes each): the run's rows are not all
/// encoded before the first goes out.
const COPY_CHUNK: usize = 10_000;

impl PostgresStore {
    /// The run's scores replace the merchant's and the snapshot is added, in one
    /// transaction: readers see the previous scores until it commits, and PostgreSQL runs
    /// writers side by side, so nobody waits for it. The rows go in by `COPY`, which costs
    /// a fraction of the same rows as multi-row upserts (bench/metrics/README.md).
    async fn save_run(
        &self,
        merchant: &MerchantId,
        as_of: &str,
        period: &str,
        report: &str,
        mut scores: Vec<ScoreRow>,
        computed_at: DateTime<Utc>,
    ) -> StoreResult<i64> {
        // Key order: the primary key's entries are then appended, page after page.
        scores.sort_unstable_by_key(|score| score.customer);
        let mut tx = self.begin_write().await?;
        // One replacement of a merchant's scores at a time (an operator's `setia metrics`
        // may meet the nightly run): a second waits, then deletes what the first wrote,
        // where it would otherwise not see those rows and collide with them.
        sqlx::query("SELECT pg_advisory_xact_lock($1, hashtext($2))")
            .bind(SCORES_LOCK_CLASS)
            .bind(merchant.as_str())
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM customer_scores WHERE merchant_id = $1")
            .bind(merchant.as_str())
            .execute(&mut *tx)
            .await?;
        let mut copy = tx
            .copy_in_raw(&format!(
                "COPY customer_scores ({SCORE_COLUMNS}) FROM STDIN"
            ))
            .await?;
        let run = RunFields::new(merchant, as_of, computed_at);
        let mut buffer = Vec::with_capacity(COPY_CHUNK * 128);
        for chunk in scores.chunks(COPY_CHUNK) {
            buffer.clear();
            for score in chunk {
                copy_score_row(&mut buffer, &run, score);
            }
            copy.send(buffer.as_slice()).await?;
        }
        copy.finish().await?;
        let id = insert_snapshot(&mut tx, merchant, as_of, period, report, computed_at).await?;
        tx.commit().await?;
        Ok(id)
    }
}

/// The fields every score of a run shares, as `COPY` text, encoded once per run.
struct RunFields {
    merchant: Vec<u8>,
    as_of: Vec<u8>,
    computed_at_us: i64,
}

impl RunFields {
    fn new(merchant: &MerchantId, as_of: &str, computed_at: DateTime<Utc>) -> RunFields {
        let encoded = |text: &str| {
            let mut out = Vec::new();
            copy_text(&mut out, Some(text));
            out
        };
        RunFields {
            merchant: encoded(merchant.as_str()),
            as_of: encoded(as_of),
            computed_at_us: micros(computed_at),
        }
    }
}

/// One score as a line of `COPY`'s text format, in `SCORE_COLUMNS` order: tab-separated
/// fields, `\N` for NULL.
fn copy_score_row(out: &mut Vec<u8>, run: &RunFields, score: &ScoreRow) {
    out.extend_from_slice(&run.merchant);
    copy_value(out, Some(score.customer));
    out.extend_from_slice(&run.as_of);
    for value in [
        score.recency_days,
        score.frequency_days,
        score.monetary_minor,
        score.r,
        score.f,
        score.m,
    ] {
        copy_value(out, Some(value));
    }
    copy_text(out, Some(&score.segment));
    copy_value(out, score.p_alive);
    copy_value(out, score.expected_purchases_90d);
    copy_value(out, score.clv_12m_minor);
    copy_value(out, Some(run.computed_at_us));
    copy_text(out, product_list_json(&score.recommended).as_deref());
    // Every field ends in a tab; the line's last one ends in its newline instead.
    if let Some(last) = out.last_mut() {
        *last = b'\n';
    }
}

/// A number (Display writes the shortest digits that read back as the same f64) or NULL,
/// and the tab after it.
fn copy_value(out: &mut Vec<u8>, value: Option<impl std::fmt::Display>) {
    use std::io::Write as _;
    match value {
        Some(value) => write!(out, "{value}\t").expect("a Vec takes every write"),
        None => out.extend_from_slice(b"\\N\t"),
    }
}

/// A text value or NULL, and the tab after it: the separator, line breaks and the escape
/// character itself are backslash-escaped, everything else goes as it is.
fn copy_text(out: &mut Vec<u8>, value: Option<&str>) {
    let Some(value) = value else {
        out.extend_from_slice(b"\\N\t");
        return;
    };
    for byte in value.bytes() {
        match byte {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\t' => out.extend_from_slice(b"\\t"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            other => out.push(other),
        }
    }
    out.push(b'\t');
}

#[cfg(test)]
mod copy_format {
    use super::*;

    fn merchant() -> MerchantId {
        MerchantId::from_random_bytes([7; 20])
    }

    fn line(score: &ScoreRow) -> String {
        let mut out = Vec::new();
        let computed_at = DateTime::from_timestamp_micros(1_700_000_000_000_000).unwrap();
        copy_score_row(
            &mut out,
            &RunFields::new(&merchant(), "2026-12-07", computed_at),
            score,
        );
        String::from_utf8(out).unwrap()
    }

    fn score() -> ScoreRow {
        ScoreRow {
            customer: 42,
            recency_days: 3,
            frequency_days: 2,
            monetary_minor: -150_000,
            r: 5,
            f: 4,
            m: 3,
            segment: "champions".into(),
            p_alive: Some(0.1 + 0.2),
            expected_purchases_90d: Some(1e-300),
            clv_12m_minor: Some(9_007_199_254_740_993),
            recommended: vec![7, 3],
        }
    }

    #[test]
    fn a_score_is_one_line_of_fifteen_fields() {
        let text = line(&score());
        assert!(text.ends_with('\n') && text.matches('\n').count() == 1);
        let fields: Vec<&str> = text.trim_end_matches('\n').split('\t').collect();
        assert_eq!(fields.len(), 15);
        assert_eq!(
            &fields[..10],
            [
                merchant().as_str(),
                "42",
                "2026-12-07",
                "3",
                "2",
                "-150000",
                "5",
                "4",
                "3",
                "champions"
            ]
        );
        assert_eq!(
            fields[10].parse::<f64>().unwrap(),
            0.1 + 0.2,
            "exact: {}",
            fields[10]
        );
        assert_eq!(fields[11].parse::<f64>().unwrap(), 1e-300);
        assert_eq!(
            fields[12..],
            ["9007199254740993", "1700000000000000", "[7,3]"]
        );
    }

    #[test]
    fn missing_values_are_null_and_text_is_escaped() {
        let text = line(&ScoreRow {
            segment: "a\tb\\c\nd\re".into(),
            p_alive: None,
            expected_purchases_90d: None,
            clv_12m_minor: None,
            recommended: Vec::new(),
            ..score()
        });
        let fields: Vec<&str> = text.trim_end_matches('\n').split('\t').collect();
        assert_eq!(fields.len(), 15);
        assert_eq!(fields[9], "a\\tb\\\\c\\nd\\re");
        assert_eq!(
            fields[10..],
            ["\\N", "\\N", "\\N", "1700000000000000", "\\N"]
        );
    }
}

include!("campaign_sql.rs");
