// The reconciliation queries both backends run, included by `sqlite.rs` and `postgres.rs`.

use crate::reconcile::*;

/// What the inbox and the audit log say of a row a sync put there.
const API_REMOTE_ADDR: &str = "moota-api";
const API_USER_AGENT: &str = "setia reconciliation";
const API_AUDIT_REASON: &str = "found by reconciliation through Moota's API";

fn sync_day(text: &str) -> StoreResult<chrono::NaiveDate> {
    chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .map_err(|_| StoreError::Corrupt(format!("sync day {text:?}")))
}

fn moota_sync_from_row(row: &DbRow) -> StoreResult<MootaSync> {
    let number = |name: &str| -> StoreResult<u64> {
        let value: i64 = row.try_get(name)?;
        u64::try_from(value).map_err(|_| StoreError::Corrupt(format!("{name} {value}")))
    };
    Ok(MootaSync {
        id: row.try_get("id")?,
        started_by: row.try_get("started_by")?,
        window: setia_core::moota_api::SyncWindow {
            since: sync_day(&row.try_get::<String, _>("since_day")?)?,
            until: sync_day(&row.try_get::<String, _>("until_day")?)?,
        },
        started_at: from_micros(row.try_get("started_at_us")?)?,
        finished_at: row
            .try_get::<Option<i64>, _>("finished_at_us")?
            .map(from_micros)
            .transpose()?,
        counts: SyncCounts {
            pages: number("pages")?,
            mutations: number("mutations")?,
            new: number("new_mutations")?,
            already_known: number("already_known")?,
        },
        error: row.try_get("error")?,
    })
}

#[async_trait]
impl Reconcile for ThisStore {
    async fn set_moota_settings(
        &self,
        merchant: &MerchantId,
        token: Option<&setia_core::moota_api::MootaToken>,
        banks: Option<&[setia_core::moota_api::MootaBankId]>,
    ) -> StoreResult<bool> {
        let banks = banks
            .map(|banks| serde_json::to_string(banks).expect("bank ids serialise"))
            .map(|json| if json == "[]" { None } else { Some(json) });
        let updated = sqlx::query(
            "UPDATE merchants SET \
             moota_token = CASE WHEN $2 THEN $3 ELSE moota_token END, \
             moota_bank_ids = CASE WHEN $4 THEN $5 ELSE moota_bank_ids END \
             WHERE id = $1",
        )
        .bind(merchant.as_str())
        .bind(token.is_some())
        .bind(token.map(|t| t.expose().to_owned()))
        .bind(banks.is_some())
        .bind(banks.flatten())
        .execute(&self.writer)
        .await?
        .rows_affected();
        Ok(updated == 1)
    }

    async fn moota_settings(&self, merchant: &MerchantId) -> StoreResult<MootaSettings> {
        let row = sqlx::query("SELECT moota_token, moota_bank_ids FROM merchants WHERE id = $1")
            .bind(merchant.as_str())
            .fetch_optional(&self.pool)
            .await?;
        let Some(row) = row else {
            return Ok(MootaSettings::default());
        };
        let token = row
            .try_get::<Option<String>, _>("moota_token")?
            .map(|text| {
                setia_core::moota_api::MootaToken::parse(&text)
                    .map_err(|e| StoreError::Corrupt(format!("stored Moota token: {e}")))
            })
            .transpose()?;
        let banks = match row.try_get::<Option<String>, _>("moota_bank_ids")? {
            None => Vec::new(),
            Some(json) => serde_json::from_str::<Vec<String>>(&json)
                .map_err(|e| StoreError::Corrupt(format!("stored Moota bank ids: {e}")))?
                .iter()
                .map(|id| {
                    setia_core::moota_api::MootaBankId::parse(id)
                        .map_err(|e| StoreError::Corrupt(e.to_string()))
                })
                .collect::<StoreResult<Vec<_>>>()?,
        };
        Ok(MootaSettings { token, banks })
    }

    async fn moota_merchants(&self) -> StoreResult<Vec<MerchantId>> {
        let ids: Vec<String> = sqlx::query_scalar(
            "SELECT id FROM merchants WHERE moota_token IS NOT NULL ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await?;
        ids.iter()
            .map(|id| {
                MerchantId::parse(id).map_err(|e| StoreError::Corrupt(format!("merchant id: {e}")))
            })
            .collect()
    }

    async fn known_mutations(
        &self,
        merchant: &MerchantId,
        mutation_ids: &[String],
    ) -> StoreResult<std::collections::HashSet<String>> {
        let mut known = std::collections::HashSet::new();
        for chunk in mutation_ids.chunks(500) {
            let list = placeholders_after_merchant(chunk.len());
            let sql = format!(
                "SELECT mutation_id FROM mutations WHERE merchant_id = $1 AND mutation_id IN ({list}) \
                 UNION SELECT mutation_id FROM moota_found WHERE merchant_id = $1 AND mutation_id IN ({list})"
            );
            let mut query = sqlx::query_scalar::<_, String>(&sql).bind(merchant.as_str());
            for id in chunk {
                query = query.bind(id);
            }
            known.extend(query.fetch_all(&self.pool).await?);
        }
        Ok(known)
    }

    async fn record_found_mutations(
        &self,
        merchant: &MerchantId,
        sync: i64,
        found: &[FoundMutation],
        now: DateTime<Utc>,
    ) -> StoreResult<u64> {
        use sha2::Digest;
        let mut tx = self.begin_write().await?;
        let mut new = 0;
        for mutation in found {
            // The found row first: its key makes two syncs at once put a mutation in once.
            let first: Option<String> = sqlx::query_scalar(
                "INSERT INTO moota_found (merchant_id, mutation_id, sync_id, found_at_us) \
                 VALUES ($1, $2, $3, $4) ON CONFLICT (merchant_id, mutation_id) DO NOTHING \
                 RETURNING mutation_id",
            )
            .bind(merchant.as_str())
            .bind(&mutation.mutation_id)
            .bind(sync)
            .bind(micros(now))
            .fetch_optional(&mut *tx)
            .await?;
            if first.is_none() {
                continue;
            }
            let sha256 = hex::encode(sha2::Sha256::digest(&mutation.body));
            let size = i64::try_from(mutation.body.len()).unwrap_or(i64::MAX);
            let inbox_id: i64 = sqlx::query_scalar(
                "INSERT INTO inbox (merchant_id, body, body_sha256, body_size, user_agent, \
                 remote_addr, received_at_us, source) VALUES ($1, $2, $3, $4, $5, $6, $7, 'api') \
                 RETURNING id",
            )
            .bind(merchant.as_str())
            .bind(&mutation.body)
            .bind(&sha256)
            .bind(size)
            .bind(API_USER_AGENT)
            .bind(API_REMOTE_ADDR)
            .bind(micros(now))
            .fetch_one(&mut *tx)
            .await?;
            sqlx::query(
                "INSERT INTO webhook_audit (merchant_id, received_at_us, remote_addr, status, \
                 reason, body_sha256, body_size, inbox_id) VALUES ($1, $2, $3, 200, $4, $5, $6, $7)",
            )
            .bind(merchant.as_str())
            .bind(micros(now))
            .bind(API_REMOTE_ADDR)
            .bind(API_AUDIT_REASON)
            .bind(&sha256)
            .bind(size)
            .bind(inbox_id)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "UPDATE moota_found SET inbox_id = $3 WHERE merchant_id = $1 AND mutation_id = $2",
            )
            .bind(merchant.as_str())
            .bind(&mutation.mutation_id)
            .bind(inbox_id)
            .execute(&mut *tx)
            .await?;
            new += 1;
        }
        tx.commit().await?;
        Ok(new)
    }

    async fn start_moota_sync(
        &self,
        merchant: &MerchantId,
        started_by: SyncStarter,
        window: setia_core::moota_api::SyncWindow,
        now: DateTime<Utc>,
    ) -> StoreResult<i64> {
        Ok(sqlx::query_scalar(
            "INSERT INTO moota_syncs (merchant_id, started_by, since_day, until_day, started_at_us) \
             VALUES ($1, $2, $3, $4, $5) RETURNING id",
        )
        .bind(merchant.as_str())
        .bind(started_by.as_str())
        .bind(window.since.format("%Y-%m-%d").to_string())
        .bind(window.until.format("%Y-%m-%d").to_string())
        .bind(micros(now))
        .fetch_one(&self.writer)
        .await?)
    }

    async fn finish_moota_sync(
        &self,
        merchant: &MerchantId,
        sync: i64,
        counts: SyncCounts,
        error: Option<&str>,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        let number = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        sqlx::query(
            "UPDATE moota_syncs SET finished_at_us = $3, pages = $4, mutations = $5, \
             new_mutations = $6, already_known = $7, error = $8 WHERE merchant_id = $1 AND id = $2",
        )
        .bind(merchant.as_str())
        .bind(sync)
        .bind(micros(now))
        .bind(number(counts.pages))
        .bind(number(counts.mutations))
        .bind(number(counts.new))
        .bind(number(counts.already_known))
        .bind(error)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    async fn moota_syncs(
        &self,
        merchant: &MerchantId,
        page: PageRequest,
    ) -> StoreResult<Page<MootaSync>> {
        newest_first(
            &self.pool,
            "SELECT id, started_by, since_day, until_day, started_at_us, finished_at_us, pages, \
             mutations, new_mutations, already_known, error FROM moota_syncs \
             WHERE merchant_id = $1 AND id < $2 ORDER BY id DESC LIMIT $3",
            merchant,
            None,
            page,
            moota_sync_from_row,
            |s| s.id,
        )
        .await
    }

    async fn last_synced_day(
        &self,
        merchant: &MerchantId,
    ) -> StoreResult<Option<chrono::NaiveDate>> {
        use futures_util::TryStreamExt;
        // A sync covered nothing after the day it ran (in Moota's zone, as its window's
        // "today"): a window ending later (a future `--until` taken before the command
        // refused one) counts only up to that day, else the scheduled window would start
        // past days no sync covered. Latest end first: a row can beat the best so far only
        // while its own end is later, so the scan stops at the first that is not (the
        // second row, unless rows end in the future).
        let moota_days = setia_core::MerchantTimezone::default();
        let mut rows = sqlx::query(
            "SELECT until_day, started_at_us FROM moota_syncs \
             WHERE merchant_id = $1 AND finished_at_us IS NOT NULL AND error IS NULL \
             ORDER BY until_day DESC",
        )
        .bind(merchant.as_str())
        .fetch(&self.pool);
        let mut best: Option<chrono::NaiveDate> = None;
        while let Some(row) = rows.try_next().await? {
            let until = sync_day(&row.try_get::<String, _>("until_day")?)?;
            if best.is_some_and(|best| until <= best) {
                break;
            }
            let ran = moota_days.local_day(from_micros(row.try_get("started_at_us")?)?);
            let covered = until.min(ran);
            best = Some(best.map_or(covered, |best| best.max(covered)));
        }
        Ok(best)
    }

    async fn claim_moota_sync(
        &self,
        merchant: &MerchantId,
        claim: &str,
        now: DateTime<Utc>,
        lease: chrono::TimeDelta,
    ) -> StoreResult<bool> {
        let mut tx = self.begin_write().await?;
        let claimed: Option<String> = sqlx::query_scalar(
            "INSERT INTO moota_sync_schedule (merchant_id, claim_id, lease_until_us, next_due_us) \
             VALUES ($1, $2, $3, 0) ON CONFLICT (merchant_id) DO UPDATE SET \
             claim_id = excluded.claim_id, lease_until_us = excluded.lease_until_us \
             WHERE moota_sync_schedule.lease_until_us < $4 AND moota_sync_schedule.next_due_us <= $4 \
             RETURNING claim_id",
        )
        .bind(merchant.as_str())
        .bind(claim)
        .bind(micros(now + lease))
        .bind(micros(now))
        .fetch_optional(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(claimed.as_deref() == Some(claim))
    }

    async fn release_moota_sync(
        &self,
        merchant: &MerchantId,
        claim: &str,
        next_due: DateTime<Utc>,
    ) -> StoreResult<()> {
        sqlx::query(
            "UPDATE moota_sync_schedule SET lease_until_us = 0, claim_id = NULL, next_due_us = $3 \
             WHERE merchant_id = $1 AND claim_id = $2",
        )
        .bind(merchant.as_str())
        .bind(claim)
        .bind(micros(next_due))
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    async fn missed_by_webhook(
        &self,
        merchant: &MerchantId,
        from: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> StoreResult<u64> {
        let missed: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM mutations m JOIN inbox i ON i.id = m.inbox_id \
             WHERE m.merchant_id = $1 AND i.source = 'api' AND m.direction = 'CR' \
             AND m.amount_minor > 0 AND m.created_at_us >= $2 AND m.created_at_us < $3",
        )
        .bind(merchant.as_str())
        .bind(micros(from))
        .bind(micros(until))
        .fetch_one(&self.pool)
        .await?;
        Ok(u64::try_from(missed).unwrap_or(0))
    }
}
