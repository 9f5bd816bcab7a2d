// The analytics queries both backends run, included by `sqlite.rs` and `postgres.rs`.

use crate::analytics::*;

/// Scores per multi-row INSERT (12 columns each, under both databases' parameter limits).
const SCORE_CHUNK: usize = 1_000;

#[async_trait]
impl Analytics for ThisStore {
    async fn purchase_columns(
        &self,
        merchant: &MerchantId,
        until: DateTime<Utc>,
    ) -> StoreResult<PurchaseColumns> {
        use futures_util::TryStreamExt;
        let mut rows = sqlx::query_as::<_, (i64, i64, i64)>(
            "SELECT customer_id, occurred_at_us, amount_minor FROM purchases \
             WHERE merchant_id = $1 AND customer_id IS NOT NULL AND sandbox = (SELECT m.sandbox FROM merchants m WHERE m.id = $1) \
             AND refunded_at_us IS NULL AND occurred_at_us <= $2",
        )
        .bind(merchant.as_str())
        .bind(micros(until))
        .fetch(&self.pool);
        let mut columns = PurchaseColumns::default();
        while let Some((customer, at, amount)) = rows.try_next().await? {
            columns.customer.push(customer);
            columns.occurred_at_us.push(at);
            columns.amount_minor.push(amount);
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
        scores: &[ScoreRow],
        computed_at: DateTime<Utc>,
    ) -> StoreResult<i64> {
        let mut tx = self.begin_write().await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO metric_snapshots (merchant_id, as_of, period, computed_at_us, report) \
             VALUES ($1, $2, $3, $4, $5) RETURNING id",
        )
        .bind(merchant.as_str())
        .bind(as_of)
        .bind(period)
        .bind(micros(computed_at))
        .bind(report)
        .fetch_one(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM customer_scores WHERE merchant_id = $1")
            .bind(merchant.as_str())
            .execute(&mut *tx)
            .await?;
        for chunk in scores.chunks(SCORE_CHUNK) {
            let mut insert = sqlx::QueryBuilder::<Db>::new(
                "INSERT INTO customer_scores (merchant_id, customer_id, as_of, recency_days, frequency_days, \
                 monetary_minor, rfm_r, rfm_f, rfm_m, segment, p_alive, expected_purchases_90d, clv_12m_minor, \
                 computed_at_us) ",
            );
            insert.push_values(chunk, |mut row, score| {
                row.push_bind(merchant.as_str())
                    .push_bind(score.customer)
                    .push_bind(as_of)
                    .push_bind(score.recency_days)
                    .push_bind(score.frequency_days)
                    .push_bind(score.monetary_minor)
                    .push_bind(score.r)
                    .push_bind(score.f)
                    .push_bind(score.m)
                    .push_bind(&score.segment)
                    .push_bind(score.p_alive)
                    .push_bind(score.expected_purchases_90d)
                    .push_bind(score.clv_12m_minor)
                    .push_bind(micros(computed_at));
            });
            insert.build().execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(id)
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
