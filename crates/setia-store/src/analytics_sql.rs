// The analytics queries both backends run, included by `sqlite.rs` and `postgres.rs`.

use crate::analytics::*;

/// Scores per multi-row INSERT (15 columns each, under both databases' parameter limits).
const SCORE_CHUNK: usize = 1_000;

/// Purchases per chunk of `purchase_columns` where a backend reads in chunks (PostgreSQL):
/// about 4 MB of text per chunk.
const PURCHASE_CHUNK: usize = 200_000;

/// Concurrent readers of `purchase_columns`, each on a connection of its own.
const MAX_PURCHASE_READERS: usize = 4;

/// Scores per write transaction: about a quarter of a second of SQLite's writer.
const SCORES_PER_TRANSACTION: usize = 10_000;

/// SQLite's writer keeps 64 MiB of pages. Scores change five B-trees (the table, its key and
/// three indexes) at random places, and for a million customers nearly every insert would
/// evict and re-read pages. Raised while the scores are written, then put back.
async fn raise_page_cache(tx: &mut DbTx<'_>) -> StoreResult<Option<i64>> {
    if !IS_SQLITE {
        return Ok(None);
    }
    let before: i64 = sqlx::query_scalar("PRAGMA cache_size")
        .fetch_one(&mut **tx)
        .await?;
    sqlx::query("PRAGMA cache_size = -262144")
        .execute(&mut **tx)
        .await?;
    Ok(Some(before))
}

async fn restore_page_cache(tx: &mut DbTx<'_>, before: Option<i64>) -> StoreResult<()> {
    if let Some(before) = before {
        sqlx::query(&format!("PRAGMA cache_size = {before}"))
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

/// Upserts scores: a re-run changes rows in place instead of deleting and re-inserting every
/// index entry (half the time for a million customers on SQLite).
async fn upsert_scores(
    tx: &mut DbTx<'_>,
    merchant: &MerchantId,
    as_of: &str,
    scores: &[ScoreRow],
    computed_at: DateTime<Utc>,
) -> StoreResult<()> {
    for chunk in scores.chunks(SCORE_CHUNK) {
        let mut insert = sqlx::QueryBuilder::<Db>::new(
            "INSERT INTO customer_scores (merchant_id, customer_id, as_of, recency_days, frequency_days, \
             monetary_minor, rfm_r, rfm_f, rfm_m, segment, p_alive, expected_purchases_90d, clv_12m_minor, \
             computed_at_us, recommended) ",
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
                .push_bind(micros(computed_at))
                .push_bind(product_list_json(&score.recommended));
        });
        insert.push(
            " ON CONFLICT (merchant_id, customer_id) DO UPDATE SET as_of = excluded.as_of, \
             recency_days = excluded.recency_days, frequency_days = excluded.frequency_days, \
             monetary_minor = excluded.monetary_minor, rfm_r = excluded.rfm_r, rfm_f = excluded.rfm_f, \
             rfm_m = excluded.rfm_m, segment = excluded.segment, p_alive = excluded.p_alive, \
             expected_purchases_90d = excluded.expected_purchases_90d, \
             clv_12m_minor = excluded.clv_12m_minor, computed_at_us = excluded.computed_at_us, \
             recommended = excluded.recommended",
        );
        insert.build().execute(&mut **tx).await?;
    }
    Ok(())
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
        scores: &[ScoreRow],
        computed_at: DateTime<Utc>,
    ) -> StoreResult<i64> {
        // Scores are written in transactions of SCORES_PER_TRANSACTION, and the snapshot with
        // the removal of stale scores in a last one. SQLite has one writer: a single
        // transaction for a million scores held every webhook back for half a minute, far
        // past Moota's 5 s. Between transactions a reader may see some customers' new scores
        // beside others' old ones; the snapshot appears only when every score is written.
        // The page cache stays raised from the first part to the last (lowering it between
        // parts would drop the pages the next part needs); what runs on the writer in between
        // only gains from it.
        let mut cache_before = None;
        let written: StoreResult<()> = async {
            for part in scores.chunks(SCORES_PER_TRANSACTION) {
                let mut tx = self.begin_write().await?;
                if cache_before.is_none() {
                    cache_before = raise_page_cache(&mut tx).await?;
                }
                upsert_scores(&mut tx, merchant, as_of, part, computed_at).await?;
                tx.commit().await?;
            }
            Ok(())
        }
        .await;
        let mut tx = self.begin_write().await?;
        restore_page_cache(&mut tx, cache_before).await?;
        written?;
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
        // Customers this run did not score lose their old scores.
        sqlx::query("DELETE FROM customer_scores WHERE merchant_id = $1 AND computed_at_us <> $2")
            .bind(merchant.as_str())
            .bind(micros(computed_at))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(id)
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
