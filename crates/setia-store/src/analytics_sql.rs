// The analytics queries both backends run, included by `sqlite.rs` and `postgres.rs`.

use crate::analytics::*;

/// Purchases per chunk of `purchase_columns` where a backend reads in chunks (PostgreSQL):
/// about 4 MB of text per chunk.
const PURCHASE_CHUNK: usize = 200_000;

/// Concurrent readers of `purchase_columns`, each on a connection of its own.
const MAX_PURCHASE_READERS: usize = 4;

/// The columns of a `customer_scores` row, in the order both backends write them.
const SCORE_COLUMNS: &str = "merchant_id, customer_id, as_of, recency_days, frequency_days, \
    monetary_minor, rfm_r, rfm_f, rfm_m, segment, p_alive, expected_purchases_90d, \
    clv_12m_minor, computed_at_us, recommended";

/// Adds a run's report: the snapshot the dashboard and the API show.
async fn insert_snapshot(
    tx: &mut DbTx<'_>,
    merchant: &MerchantId,
    as_of: &str,
    period: &str,
    report: &str,
    computed_at: DateTime<Utc>,
) -> StoreResult<i64> {
    Ok(sqlx::query_scalar(
        "INSERT INTO metric_snapshots (merchant_id, as_of, period, computed_at_us, report) \
         VALUES ($1, $2, $3, $4, $5) RETURNING id",
    )
    .bind(merchant.as_str())
    .bind(as_of)
    .bind(period)
    .bind(micros(computed_at))
    .bind(report)
    .fetch_one(&mut **tx)
    .await?)
}

#[async_trait]
impl Analytics for ThisStore {
    async fn purchase_columns(
        &self,
        merchant: &MerchantId,
        until: DateTime<Utc>,
    ) -> StoreResult<PurchaseColumns> {
        self.purchase_columns_in_chunks(merchant, until, PURCHASE_CHUNK)
            .await
    }

    async fn purchase_columns_in_chunks(
        &self,
        merchant: &MerchantId,
        until: DateTime<Utc>,
        chunk: usize,
    ) -> StoreResult<PurchaseColumns> {
        let chunk = i64::try_from(chunk.max(1)).unwrap_or(i64::MAX);
        // The merchant's customer keys are split into a few ranges read at once, each on a
        // connection of its own: the database's per-row work is what costs, and it then runs
        // on several cores. (Two single-aggregate subqueries, so each is one index seek.)
        let (low, high): (Option<i64>, Option<i64>) = sqlx::query_as(
            "SELECT (SELECT min(customer_id) FROM purchases WHERE merchant_id = $1 AND customer_id IS NOT NULL), \
             (SELECT max(customer_id) FROM purchases WHERE merchant_id = $1 AND customer_id IS NOT NULL)",
        )
        .bind(merchant.as_str())
        .fetch_one(&self.pool)
        .await?;
        let (Some(low), Some(high)) = (low, high) else {
            return Ok(PurchaseColumns::default());
        };
        let readers = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
            .clamp(1, MAX_PURCHASE_READERS) as i128;
        let span = i128::from(high) - i128::from(low) + 1;
        let bound = |k: i128| (i128::from(low) - 1 + span * k / readers) as i64;
        let tasks: Vec<_> = (0..readers)
            .map(|k| (bound(k), bound(k + 1)))
            .filter(|(after, upto)| after < upto)
            .map(|(after, upto)| {
                let reader = self.purchase_reader();
                let merchant = merchant.as_str().to_owned();
                tokio::spawn(async move {
                    reader
                        .read(merchant, micros(until), after, upto, chunk)
                        .await
                })
            })
            .collect();
        let mut columns = PurchaseColumns::default();
        for task in tasks {
            let part = task.await.map_err(|error| {
                sqlx::Error::Protocol(format!("a purchase reader stopped: {error}"))
            })??;
            if columns.customer.is_empty() {
                columns = part;
            } else {
                columns.purchase.extend_from_slice(&part.purchase);
                columns.customer.extend_from_slice(&part.customer);
                columns
                    .occurred_at_us
                    .extend_from_slice(&part.occurred_at_us);
                columns.amount_minor.extend_from_slice(&part.amount_minor);
            }
        }
        Ok(columns)
    }

    async fn points_rows(
        &self,
        merchant: &MerchantId,
        until: DateTime<Utc>,
    ) -> StoreResult<Vec<PointsRow>> {
        let rows = sqlx::query_as::<_, (i64, i64, i64, String)>(
            "SELECT customer_id, occurred_at_us, points, kind FROM points_ledger \
             WHERE merchant_id = $1 AND occurred_at_us <= $2 ORDER BY occurred_at_us, id",
        )
        .bind(merchant.as_str())
        .bind(micros(until))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(customer, occurred_at_us, points, kind)| PointsRow {
                customer,
                occurred_at_us,
                points,
                kind,
            })
            .collect())
    }

    async fn save_snapshot(
        &self,
        merchant: &MerchantId,
        as_of: &str,
        period: &str,
        report: &str,
        scores: Vec<ScoreRow>,
        computed_at: DateTime<Utc>,
    ) -> StoreResult<i64> {
        self.save_run(merchant, as_of, period, report, scores, computed_at)
            .await
    }

    async fn claim_nightly_run(
        &self,
        merchant: &MerchantId,
        as_of: &str,
        claim: &str,
        now: DateTime<Utc>,
        lease: TimeDelta,
    ) -> StoreResult<bool> {
        let mut tx = self.begin_write().await?;
        let claimed: Option<String> = sqlx::query_scalar(
            "INSERT INTO nightly_runs (merchant_id, as_of, claim_id, lease_until_us, claimed_at_us) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (merchant_id, as_of) DO UPDATE SET \
             claim_id = excluded.claim_id, lease_until_us = excluded.lease_until_us, \
             claimed_at_us = excluded.claimed_at_us \
             WHERE nightly_runs.finished_at_us IS NULL AND nightly_runs.lease_until_us < $5 \
             RETURNING claim_id",
        )
        .bind(merchant.as_str())
        .bind(as_of)
        .bind(claim)
        .bind(micros(now + lease))
        .bind(micros(now))
        .fetch_optional(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(claimed.as_deref() == Some(claim))
    }

    async fn renew_nightly_run(
        &self,
        merchant: &MerchantId,
        as_of: &str,
        claim: &str,
        now: DateTime<Utc>,
        lease: TimeDelta,
    ) -> StoreResult<bool> {
        let mut tx = self.begin_write().await?;
        // A takeover writes its own claim id, so a claim still ours was not taken over, even
        // when its lease ran out.
        let renewed = sqlx::query(
            "UPDATE nightly_runs SET lease_until_us = $1 \
             WHERE merchant_id = $2 AND as_of = $3 AND claim_id = $4 AND finished_at_us IS NULL",
        )
        .bind(micros(now + lease))
        .bind(merchant.as_str())
        .bind(as_of)
        .bind(claim)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(renewed == 1)
    }

    async fn finish_nightly_run(
        &self,
        merchant: &MerchantId,
        as_of: &str,
        claim: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let mut tx = self.begin_write().await?;
        let finished = sqlx::query(
            "UPDATE nightly_runs SET finished_at_us = $1 \
             WHERE merchant_id = $2 AND as_of = $3 AND claim_id = $4 AND finished_at_us IS NULL",
        )
        .bind(micros(now))
        .bind(merchant.as_str())
        .bind(as_of)
        .bind(claim)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(finished == 1)
    }

    async fn latest_snapshot(
        &self,
        merchant: &MerchantId,
        period: Option<&str>,
    ) -> StoreResult<Option<Snapshot>> {
        let row = sqlx::query(
            "SELECT id, as_of, period, computed_at_us, report FROM metric_snapshots \
             WHERE merchant_id = $1 AND ($2 = '' OR period = $2) ORDER BY id DESC LIMIT 1",
        )
        .bind(merchant.as_str())
        .bind(period.unwrap_or(""))
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| {
            Ok(Snapshot {
                id: row.try_get("id")?,
                as_of: row.try_get("as_of")?,
                period: row.try_get("period")?,
                computed_at: from_micros(row.try_get("computed_at_us")?)?,
                report: row.try_get("report")?,
            })
        })
        .transpose()
    }
}
