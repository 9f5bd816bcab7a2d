// The erasure queries both backends run, included by `sqlite.rs` and `postgres.rs`.

use std::collections::BTreeSet;

use setia_core::loyalty::unspent_lots;
use setia_core::moota::redact_payer_text;
use setia_core::referral::ReferralReason;

use crate::privacy::*;

/// The Moota mutations the customer's purchases came from ($1 merchant, $2 customer key).
const CUSTOMER_MUTATION_IDS: &str = "SELECT DISTINCT mutation_id FROM purchases \
     WHERE merchant_id = $1 AND customer_id = $2 AND mutation_id IS NOT NULL";

/// The merchant's inbox rows whose body holds one of `mutation_ids`: the body that first
/// brought each mutation, Moota's repeated deliveries and what reconciliation found. One pass
/// over the merchant's bodies, whatever the number of ids (a loyal customer has hundreds; a
/// SQL `instr` per id made a pass per id), so it runs before the erasure's write transaction,
/// which re-reads each body it rewrites. A body that merely holds an id as text is a false
/// match the rewrite finds nothing to change in.
async fn inbox_rows_naming(
    pool: &sqlx::Pool<Db>,
    merchant: &MerchantId,
    mutation_ids: &[String],
) -> StoreResult<BTreeSet<i64>> {
    use futures_util::TryStreamExt;

    let mut rows = BTreeSet::new();
    if mutation_ids.is_empty() {
        return Ok(rows);
    }
    let ids = aho_corasick::AhoCorasick::new(mutation_ids)
        .map_err(|e| StoreError::Invalid(format!("mutation ids: {e}")))?;
    let mut bodies =
        sqlx::query_as::<_, (i64, Vec<u8>)>("SELECT id, body FROM inbox WHERE merchant_id = $1")
            .bind(merchant.as_str())
            .fetch(pool);
    while let Some((id, body)) = bodies.try_next().await? {
        if ids.is_match(&body) {
            rows.insert(id);
        }
    }
    Ok(rows)
}

#[async_trait]
impl Privacy for ThisStore {
    async fn erase_customer(
        &self,
        merchant: &MerchantId,
        customer: &ExternalId,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<Erasure>> {
        let Some(key): Option<i64> = sqlx::query_scalar(
            "SELECT id FROM customers WHERE merchant_id = $1 AND external_id = $2 AND erased_at_us IS NULL",
        )
        .bind(merchant.as_str())
        .bind(customer.as_str())
        .fetch_optional(&self.pool)
        .await?
        else {
            return Ok(None);
        };
        let id = CustomerId::from_key(key);
        let mutation_ids: Vec<String> = sqlx::query_scalar(CUSTOMER_MUTATION_IDS)
            .bind(merchant.as_str())
            .bind(key)
            .fetch_all(&self.pool)
            .await?;
        let mut bodies = inbox_rows_naming(&self.pool, merchant, &mutation_ids).await?;

        let mut tx = self.begin_write().await?;
        let now_us = micros(now);
        let external_id = erased_external_id(id);
        // Erased once: a second call, or one racing this, finds nothing to do.
        let erased = sqlx::query(
            "UPDATE customers SET external_id = $3, name = NULL, email = NULL, birthday = NULL, \
             virtual_account = NULL, consent = FALSE, \
             unsubscribed_at_us = COALESCE(unsubscribed_at_us, $4), erased_at_us = $4, updated_at_us = $4 \
             WHERE merchant_id = $1 AND id = $2 AND erased_at_us IS NULL",
        )
        .bind(merchant.as_str())
        .bind(key)
        .bind(&external_id)
        .bind(now_us)
        .execute(&mut *tx)
        .await
        .map_err(|error| {
            if is_unique_violation(&error) {
                StoreError::Conflict(format!(
                    "another customer already has the external id {external_id}; rename it first"
                ))
            } else {
                error.into()
            }
        })?
        .rows_affected();
        if erased == 0 {
            return Ok(None);
        }
        if IS_SQLITE {
            // From here on, zero whole pages this transaction frees too (a long body's
            // overflow pages), not only the space freed inside the pages it changes (FAST).
            sqlx::query("PRAGMA secure_delete = ON")
                .execute(&mut *tx)
                .await?;
        }
        let customer_query = |sql: &'static str| sqlx::query(sql).bind(merchant.as_str()).bind(key);

        let payer_names = customer_query(
            "DELETE FROM customer_payer_names WHERE merchant_id = $1 AND customer_id = $2",
        )
        .execute(&mut *tx)
        .await?
        .rows_affected();
        let purchases = customer_query(
            "UPDATE purchases SET payer_name = NULL \
             WHERE merchant_id = $1 AND customer_id = $2 AND payer_name IS NOT NULL",
        )
        .execute(&mut *tx)
        .await?
        .rows_affected();

        // Read again inside the transaction, with the body that first brought each: a
        // payment attributed since the search counts too.
        let mut mutation_ids = Vec::new();
        for row in customer_query(
            "SELECT DISTINCT m.mutation_id, m.inbox_id FROM mutations m JOIN purchases p \
             ON p.merchant_id = m.merchant_id AND p.mutation_id = m.mutation_id \
             WHERE p.merchant_id = $1 AND p.customer_id = $2",
        )
        .fetch_all(&mut *tx)
        .await?
        {
            mutation_ids.push(row.try_get::<String, _>("mutation_id")?);
            bodies.insert(row.try_get("inbox_id")?);
        }
        let clear_mutations = format!(
            "UPDATE mutations SET description = '', note = NULL WHERE merchant_id = $1 \
             AND mutation_id IN ({CUSTOMER_MUTATION_IDS}) AND (description <> '' OR note IS NOT NULL)"
        );
        let mutations = sqlx::query(&clear_mutations)
            .bind(merchant.as_str())
            .bind(key)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        let named: HashSet<&str> = mutation_ids.iter().map(String::as_str).collect();
        let mut inbox_bodies = 0;
        for inbox_id in bodies {
            let body: Option<Vec<u8>> =
                sqlx::query_scalar("SELECT body FROM inbox WHERE merchant_id = $1 AND id = $2")
                    .bind(merchant.as_str())
                    .bind(inbox_id)
                    .fetch_optional(&mut *tx)
                    .await?;
            let Some(redacted) = body.and_then(|body| redact_payer_text(&body, &named)) else {
                continue;
            };
            // The digest and size stay those of the body as received: they are the key that
            // tells a repeated delivery, which must still be known as one.
            sqlx::query("UPDATE inbox SET body = $3 WHERE merchant_id = $1 AND id = $2")
                .bind(merchant.as_str())
                .bind(inbox_id)
                .bind(redacted)
                .execute(&mut *tx)
                .await?;
            inbox_bodies += 1;
        }

        let feedback_comments = customer_query(
            "UPDATE feedback_answers SET comment = NULL \
             WHERE merchant_id = $1 AND customer_id = $2 AND comment IS NOT NULL",
        )
        .execute(&mut *tx)
        .await?
        .rows_affected();
        let complaints = customer_query(
            "UPDATE complaints SET note = NULL, status = 'resolved', \
             resolved_by = CASE WHEN status = 'resolved' THEN resolved_by ELSE 'erasure' END, \
             resolved_at_us = COALESCE(resolved_at_us, $3), updated_at_us = $3 \
             WHERE merchant_id = $1 AND customer_id = $2",
        )
        .bind(now_us)
        .execute(&mut *tx)
        .await?
        .rows_affected();

        // Emails to the customer, and alerts about them to the merchant, that have not gone.
        // One a sender holds right now is sent; its row is gone when the sender reports it.
        let emails_cancelled = customer_query(
            "DELETE FROM outbox WHERE merchant_id = $1 AND customer_id = $2 \
             AND status IN ('pending', 'held', 'deferred')",
        )
        .execute(&mut *tx)
        .await?
        .rows_affected();
        // A bounce may quote the address.
        customer_query(
            "UPDATE outbox SET last_error = NULL \
             WHERE merchant_id = $1 AND customer_id = $2 AND last_error IS NOT NULL",
        )
        .execute(&mut *tx)
        .await?;
        let mut reports = 0;
        let frozen = sqlx::query(
            "SELECT id, payload FROM outbox WHERE merchant_id = $1 AND kind = $2 AND payload LIKE $3",
        )
        .bind(merchant.as_str())
        .bind(OutboxKind::WeeklyChurnReport.as_str())
        .bind(format!("%\"customer\":{key},%"))
        .fetch_all(&mut *tx)
        .await?;
        for row in frozen {
            let payload: String = row.try_get("payload")?;
            let Some(rewritten) = report_without(&payload, id) else {
                continue;
            };
            sqlx::query("UPDATE outbox SET payload = $3 WHERE merchant_id = $1 AND id = $2")
                .bind(merchant.as_str())
                .bind(row.try_get::<i64, _>("id")?)
                .bind(rewritten)
                .execute(&mut *tx)
                .await?;
            reports += 1;
        }

        // Points nobody can redeem any more leave the loyalty liability, lot by lot, as an
        // expiry would take them.
        let rules = merchant_rules(&mut tx, merchant).await?;
        let movements = movements_of(&mut tx, merchant, key).await?;
        let mut points_forfeited = 0i64;
        for (lot, points) in unspent_lots(&movements, now, rules.program.expiry()) {
            if insert_points(
                &mut tx,
                merchant,
                key,
                now,
                -points,
                "expire",
                &format!("{points} points forfeited: the customer was erased at their request"),
                &format!("lot:{lot}"),
                now,
            )
            .await?
            {
                points_forfeited = add_points(points_forfeited, points, "a forfeiture")?;
            }
        }

        customer_query("DELETE FROM referral_codes WHERE merchant_id = $1 AND customer_id = $2")
            .execute(&mut *tx)
            .await?;
        let referrals_cancelled = customer_query(
            "UPDATE referrals SET status = 'cancelled', reason = $3, updated_at_us = $4 \
             WHERE merchant_id = $1 AND advocate_id = $2 AND status IN ('pending', 'qualified')",
        )
        .bind(ReferralReason::AdvocateErased.as_str())
        .bind(now_us)
        .execute(&mut *tx)
        .await?
        .rows_affected();

        if IS_SQLITE {
            sqlx::query("PRAGMA secure_delete = FAST")
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        if IS_SQLITE {
            // The log still holds the pages as they were before; copy it into the file and
            // empty it. Best effort: a long read keeps it, and the next checkpoint after
            // that read ends overwrites it.
            let (busy, _, _): (i64, i64, i64) = sqlx::query_as("PRAGMA wal_checkpoint(TRUNCATE)")
                .fetch_one(&self.pool)
                .await?;
            if busy != 0 {
                tracing::warn!(%merchant, "the erased values stay in the SQLite log until its next checkpoint");
            }
        }
        Ok(Some(Erasure {
            customer: id,
            external_id,
            erased_at: now,
            payer_names,
            purchases,
            mutations,
            inbox_bodies,
            feedback_comments,
            complaints,
            emails_cancelled,
            reports,
            points_forfeited,
            referrals_cancelled,
        }))
    }
}
