// The email queries both backends run, included by `sqlite.rs` and `postgres.rs` after
// `ledger_sql.rs` (whose helpers it uses). Backend differences come in as
// `CLAIM_OUTBOX_SQL` and `begin_write`.

use setia_core::loyalty::Tier;
use setia_core::mail_token::MailSecret;

use crate::mail::*;

/// Outbox rows per multi-row INSERT (9 parameters each).
const OUTBOX_CHUNK: usize = 500;

fn corrupt(what: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(what.to_string())
}

/// `WHERE … IN (…)` over customer keys, appended to a query being built.
fn push_customer_keys(query: &mut sqlx::QueryBuilder<'_, Db>, customers: &[CustomerId]) {
    query.push("(");
    let mut list = query.separated(", ");
    for customer in customers {
        list.push_bind(customer.key());
    }
    list.push_unseparated(")");
}

/// The balance rules' view of ledger rows (as `movements_of` reads them, for many
/// customers at once).
fn movement_from_row(row: &DbRow) -> StoreResult<PointsMovement> {
    let kind: String = row.try_get("kind")?;
    let source: String = row.try_get("source")?;
    let effect = match kind.as_str() {
        "earn" | "bonus" | "birthday" => Effect::Award { source },
        "redeem" => Effect::Spend,
        "reverse" => Effect::Reverse { source },
        "expire" => Effect::Expire {
            lot: source
                .strip_prefix("lot:")
                .and_then(|id| id.parse().ok())
                .ok_or_else(|| corrupt(format!("expiry source {source:?}")))?,
        },
        other => return Err(corrupt(format!("points kind {other:?}"))),
    };
    Ok(PointsMovement {
        id: row.try_get("id")?,
        at: from_micros(row.try_get("occurred_at_us")?)?,
        points: row.try_get("points")?,
        effect,
    })
}

fn outbox_entry_from_row(row: &DbRow) -> StoreResult<OutboxEntry> {
    let attempts: i64 = row.try_get("attempts")?;
    let next_attempt: i64 = row.try_get("next_attempt_at_us")?;
    Ok(OutboxEntry {
        id: row.try_get("id")?,
        kind: row.try_get("kind")?,
        recipient: row.try_get("recipient")?,
        period_key: row.try_get("period_key")?,
        status: row.try_get("status")?,
        attempts: u32::try_from(attempts).map_err(|_| corrupt(format!("attempts {attempts}")))?,
        last_error: row.try_get("last_error")?,
        due_at: from_micros(row.try_get("due_at_us")?)?,
        next_attempt_at: (next_attempt > 0)
            .then(|| from_micros(next_attempt))
            .transpose()?,
        sent_at: row
            .try_get::<Option<i64>, _>("sent_at_us")?
            .map(from_micros)
            .transpose()?,
        created_at: from_micros(row.try_get("created_at_us")?)?,
    })
}

async fn subscription_of(
    conn: &mut DbConn,
    merchant: &MerchantId,
    customer: CustomerId,
) -> StoreResult<Option<Subscription>> {
    let row = sqlx::query(
        "SELECT m.name AS merchant_name, m.email_language, c.name, c.unsubscribed_at_us \
         FROM customers c JOIN merchants m ON m.id = c.merchant_id \
         WHERE c.merchant_id = $1 AND c.id = $2 AND c.erased_at_us IS NULL",
    )
    .bind(merchant.as_str())
    .bind(customer.key())
    .fetch_optional(&mut *conn)
    .await?;
    row.map(|row| {
        let language: String = row.try_get("email_language")?;
        Ok(Subscription {
            merchant_name: row.try_get("merchant_name")?,
            language: EmailLanguage::parse(&language)
                .ok_or_else(|| corrupt(format!("email language {language:?}")))?,
            customer_name: row.try_get("name")?,
            unsubscribed_at: row
                .try_get::<Option<i64>, _>("unsubscribed_at_us")?
                .map(from_micros)
                .transpose()?,
        })
    })
    .transpose()
}

#[async_trait]
impl Mail for ThisStore {
    async fn mail_merchant(&self, merchant: &MerchantId) -> StoreResult<Option<MailMerchant>> {
        let query = format!(
            "SELECT {MERCHANT_COLUMNS}, mail_secret, email_language FROM merchants WHERE id = $1"
        );
        let Some(mut row) = sqlx::query(&query)
            .bind(merchant.as_str())
            .fetch_optional(&self.pool)
            .await?
        else {
            return Ok(None);
        };
        if row.try_get::<Option<String>, _>("mail_secret")?.is_none() {
            // First use: several processes may race here; the first write wins and every
            // one of them reads that one back.
            let fresh = MailSecret::from_random_bytes(rand::random());
            sqlx::query(
                "UPDATE merchants SET mail_secret = $1 WHERE id = $2 AND mail_secret IS NULL",
            )
            .bind(fresh.to_hex())
            .bind(merchant.as_str())
            .execute(&self.writer)
            .await?;
            row = sqlx::query(&query)
                .bind(merchant.as_str())
                .fetch_one(&self.pool)
                .await?;
        }
        let secret: Option<String> = row.try_get("mail_secret")?;
        let language: String = row.try_get("email_language")?;
        Ok(Some(MailMerchant {
            merchant: merchant_from_row(&row)?,
            language: EmailLanguage::parse(&language)
                .ok_or_else(|| corrupt(format!("email language {language:?}")))?,
            secret: MailSecret::from_hex(secret.as_deref().unwrap_or_default())
                .map_err(|e| corrupt(format!("mail secret: {e}")))?,
        }))
    }

    async fn set_email_language(
        &self,
        merchant: &MerchantId,
        language: EmailLanguage,
    ) -> StoreResult<bool> {
        let updated = sqlx::query("UPDATE merchants SET email_language = $1 WHERE id = $2")
            .bind(language.as_str())
            .bind(merchant.as_str())
            .execute(&self.writer)
            .await?
            .rows_affected();
        Ok(updated > 0)
    }

    async fn birthday_candidates(
        &self,
        merchant: &MerchantId,
        month_days: &[String],
        year: i32,
        after: CustomerId,
        limit: u32,
    ) -> StoreResult<Vec<CustomerId>> {
        if month_days.is_empty() {
            return Ok(Vec::new());
        }
        let mut query =
            sqlx::QueryBuilder::<Db>::new("SELECT c.id FROM customers c WHERE c.merchant_id = ");
        query
            .push_bind(merchant.as_str())
            .push(
                " AND c.birthday IS NOT NULL AND c.email IS NOT NULL AND c.consent = TRUE \
                 AND c.unsubscribed_at_us IS NULL AND c.id > ",
            )
            .push_bind(after.key())
            .push(" AND substr(c.birthday, length(c.birthday) - 4) IN (");
        let mut days = query.separated(", ");
        for day in month_days {
            days.push_bind(day.as_str());
        }
        query
            .push(
                // A correlated count, not NOT EXISTS: PostgreSQL turns NOT EXISTS into an anti
                // join, and when its statistics say the merchant has no offers yet (a new
                // merchant, a table not analysed since it grew) it reads every offer of the
                // merchant for each customer. The count is one index probe per customer.
                ") AND (SELECT COUNT(*) FROM outbox o WHERE o.merchant_id = c.merchant_id \
                 AND o.kind = 'birthday_offer' AND o.recipient = 'cus_' || c.id AND o.period_key = ",
            )
            .push_bind(year.to_string())
            .push(") = 0 ORDER BY c.id LIMIT ")
            .push_bind(i64::from(limit));
        let ids: Vec<i64> = query.build_query_scalar().fetch_all(&self.pool).await?;
        Ok(ids.into_iter().map(CustomerId::from_key).collect())
    }

    async fn enqueue_birthday_offers(
        &self,
        merchant: &MerchantId,
        year: i32,
        due_at: DateTime<Utc>,
        points: i64,
        offers: &[NewBirthdayOffer],
        now: DateTime<Utc>,
    ) -> StoreResult<u64> {
        if offers.is_empty() {
            return Ok(0);
        }
        let period = year.to_string();
        let mut tx = self.begin_write().await?;
        let mut added = 0;
        for chunk in offers.chunks(OUTBOX_CHUNK) {
            let mut insert = sqlx::QueryBuilder::<Db>::new(
                "INSERT INTO outbox (merchant_id, kind, recipient, customer_id, period_key, due_at_us, \
                 next_attempt_at_us, created_at_us, payload) ",
            );
            insert.push_values(chunk, |mut row, offer| {
                row.push_bind(merchant.as_str())
                    .push_bind(OutboxKind::BirthdayOffer.as_str())
                    .push_bind(offer.customer.to_string())
                    .push_bind(offer.customer.key())
                    .push_bind(period.as_str())
                    .push_bind(micros(due_at))
                    .push_bind(micros(due_at))
                    .push_bind(micros(now))
                    .push_bind(offer.payload.as_str());
            });
            insert.push(
                " ON CONFLICT (merchant_id, kind, recipient, period_key) DO NOTHING RETURNING customer_id",
            );
            let enqueued: Vec<i64> = insert.build_query_scalar().fetch_all(&mut *tx).await?;
            added += enqueued.len() as u64;
            if points <= 0 || enqueued.is_empty() {
                continue;
            }
            // The birthday points, once per customer and year: (kind, source) is unique.
            let reason = format!("birthday offer {year}");
            let mut award = sqlx::QueryBuilder::<Db>::new(
                "INSERT INTO points_ledger (merchant_id, customer_id, occurred_at_us, points, kind, \
                 reason, source, created_at_us) ",
            );
            award.push_values(&enqueued, |mut row, customer| {
                row.push_bind(merchant.as_str())
                    .push_bind(*customer)
                    .push_bind(micros(now))
                    .push_bind(points)
                    .push_bind("birthday")
                    .push_bind(reason.as_str())
                    .push_bind(format!(
                        "birthday:{year}:{}",
                        CustomerId::from_key(*customer)
                    ))
                    .push_bind(micros(now));
            });
            award.push(" ON CONFLICT (merchant_id, kind, source) DO NOTHING");
            award.build().execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(added)
    }

    async fn missing_reports(
        &self,
        merchant: &MerchantId,
        period_key: &str,
        recipients: &[String],
    ) -> StoreResult<Vec<String>> {
        let existing: Vec<String> = sqlx::query_scalar(
            "SELECT recipient FROM outbox WHERE merchant_id = $1 AND kind = 'weekly_churn_report' \
             AND period_key = $2",
        )
        .bind(merchant.as_str())
        .bind(period_key)
        .fetch_all(&self.pool)
        .await?;
        Ok(recipients
            .iter()
            .filter(|r| !existing.contains(r))
            .cloned()
            .collect())
    }

    async fn enqueue_report(
        &self,
        merchant: &MerchantId,
        recipient: &str,
        period_key: &str,
        due_at: DateTime<Utc>,
        payload: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let added = sqlx::query(
            "INSERT INTO outbox (merchant_id, kind, recipient, customer_id, period_key, due_at_us, \
             next_attempt_at_us, created_at_us, payload) VALUES ($1, 'weekly_churn_report', $2, NULL, $3, $4, $4, $5, $6) \
             ON CONFLICT (merchant_id, kind, recipient, period_key) DO NOTHING",
        )
        .bind(merchant.as_str())
        .bind(recipient)
        .bind(period_key)
        .bind(micros(due_at))
        .bind(micros(now))
        .bind(payload)
        .execute(&self.writer)
        .await?
        .rows_affected();
        Ok(added > 0)
    }

    async fn report_payload(
        &self,
        merchant: &MerchantId,
        period_key: &str,
    ) -> StoreResult<Option<String>> {
        let payload: Option<Option<String>> = sqlx::query_scalar(
            "SELECT payload FROM outbox WHERE merchant_id = $1 AND kind = 'weekly_churn_report' \
             AND period_key = $2 ORDER BY id LIMIT 1",
        )
        .bind(merchant.as_str())
        .bind(period_key)
        .fetch_optional(&self.pool)
        .await?;
        Ok(payload.flatten())
    }

    async fn window_purchases(
        &self,
        merchant: &MerchantId,
        from: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> StoreResult<Vec<WindowPurchase>> {
        let rows = sqlx::query(
            "SELECT p.customer_id, p.occurred_at_us, p.amount_minor, \
             (SELECT MIN(q.occurred_at_us) FROM purchases q WHERE q.merchant_id = p.merchant_id \
              AND q.customer_id = p.customer_id AND q.sandbox = FALSE AND q.refunded_at_us IS NULL) AS first_us \
             FROM purchases p WHERE p.merchant_id = $1 AND p.customer_id IS NOT NULL AND p.sandbox = FALSE \
             AND p.refunded_at_us IS NULL AND p.occurred_at_us >= $2 AND p.occurred_at_us < $3 \
             ORDER BY p.occurred_at_us, p.id",
        )
        .bind(merchant.as_str())
        .bind(micros(from))
        .bind(micros(until))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(WindowPurchase {
                    customer: row.try_get("customer_id")?,
                    occurred_at: from_micros(row.try_get("occurred_at_us")?)?,
                    amount: Money::from_minor(row.try_get("amount_minor")?),
                    first_purchase_at: from_micros(row.try_get("first_us")?)?,
                })
            })
            .collect()
    }

    async fn at_risk_customers(
        &self,
        merchant: &MerchantId,
        threshold: f64,
        limit: u32,
    ) -> StoreResult<(u64, Vec<AtRiskCustomer>)> {
        const AT_RISK: &str = "FROM customer_scores s JOIN customers c ON c.merchant_id = s.merchant_id AND c.id = s.customer_id \
             WHERE s.merchant_id = $1 AND s.frequency_days >= 2 AND s.p_alive IS NOT NULL AND s.p_alive < $2 \
             AND c.erased_at_us IS NULL";
        let total: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) {AT_RISK}"))
            .bind(merchant.as_str())
            .bind(threshold)
            .fetch_one(&self.pool)
            .await?;
        let rows = sqlx::query(&format!(
            "SELECT s.customer_id, c.external_id, c.name, s.p_alive, s.clv_12m_minor, s.monetary_minor, \
             s.recency_days, s.frequency_days, s.as_of {AT_RISK} \
             ORDER BY COALESCE(s.clv_12m_minor, 0) DESC, s.monetary_minor DESC, s.customer_id LIMIT $3"
        ))
        .bind(merchant.as_str())
        .bind(threshold)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        let customers = rows
            .iter()
            .map(|row| {
                Ok(AtRiskCustomer {
                    customer: CustomerId::from_key(row.try_get("customer_id")?),
                    external_id: row.try_get("external_id")?,
                    name: row.try_get("name")?,
                    p_alive: row.try_get("p_alive")?,
                    clv_12m: row
                        .try_get::<Option<i64>, _>("clv_12m_minor")?
                        .map(Money::from_minor),
                    monetary: Money::from_minor(row.try_get("monetary_minor")?),
                    recency_days: row.try_get("recency_days")?,
                    frequency_days: row.try_get("frequency_days")?,
                    as_of: row.try_get("as_of")?,
                })
            })
            .collect::<StoreResult<Vec<_>>>()?;
        Ok((total as u64, customers))
    }

    async fn loyalty_totals(
        &self,
        merchant: &MerchantId,
        from: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> StoreResult<LoyaltyTotals> {
        let row = sqlx::query(
            "SELECT CAST(COALESCE(SUM(points), 0) AS BIGINT) AS outstanding, \
             CAST(COALESCE(SUM(CASE WHEN points > 0 AND occurred_at_us >= $2 THEN points ELSE 0 END), 0) AS BIGINT) AS issued, \
             CAST(COALESCE(SUM(CASE WHEN kind = 'redeem' AND occurred_at_us >= $2 THEN -points ELSE 0 END), 0) AS BIGINT) AS redeemed, \
             CAST(COALESCE(SUM(CASE WHEN kind = 'expire' AND occurred_at_us >= $2 THEN -points ELSE 0 END), 0) AS BIGINT) AS expired \
             FROM points_ledger WHERE merchant_id = $1 AND occurred_at_us < $3",
        )
        .bind(merchant.as_str())
        .bind(micros(from))
        .bind(micros(until))
        .fetch_one(&self.pool)
        .await?;
        Ok(LoyaltyTotals {
            outstanding: row.try_get("outstanding")?,
            issued: row.try_get("issued")?,
            redeemed: row.try_get("redeemed")?,
            expired: row.try_get("expired")?,
        })
    }

    async fn claim_outbox(
        &self,
        now: DateTime<Utc>,
        lease: TimeDelta,
        limit: u32,
    ) -> StoreResult<Vec<ClaimedEmail>> {
        let claim_id = hex::encode(rand::random::<[u8; 16]>());
        let lease_until = now + lease;
        let rows = sqlx::query(CLAIM_OUTBOX_SQL)
            .bind(&claim_id)
            .bind(micros(lease_until))
            .bind(micros(now))
            .bind(i64::from(limit))
            .fetch_all(&self.writer)
            .await?;
        let mut claimed = rows
            .iter()
            .map(|row| {
                let merchant: String = row.try_get("merchant_id")?;
                let kind: String = row.try_get("kind")?;
                let attempts: i64 = row.try_get("attempts")?;
                Ok(ClaimedEmail {
                    id: row.try_get("id")?,
                    claim_id: claim_id.clone(),
                    merchant: MerchantId::parse(&merchant).map_err(corrupt)?,
                    kind: OutboxKind::parse(&kind)
                        .ok_or_else(|| corrupt(format!("outbox kind {kind:?}")))?,
                    recipient: row.try_get("recipient")?,
                    customer: row
                        .try_get::<Option<i64>, _>("customer_id")?
                        .map(CustomerId::from_key),
                    period_key: row.try_get("period_key")?,
                    due_at: from_micros(row.try_get("due_at_us")?)?,
                    attempts: u32::try_from(attempts)
                        .map_err(|_| corrupt(format!("attempts {attempts}")))?,
                    payload: row.try_get("payload")?,
                    lease_until,
                })
            })
            .collect::<StoreResult<Vec<_>>>()?;
        claimed.sort_by_key(|row| (row.due_at, row.id));
        Ok(claimed)
    }

    async fn finish_outbox(
        &self,
        finished: &[FinishedEmail],
        now: DateTime<Utc>,
    ) -> StoreResult<u64> {
        if finished.is_empty() {
            return Ok(0);
        }
        let mut tx = self.begin_write().await?;
        let mut written = 0;
        // Sent, the common outcome, is one statement per merchant, claim and chunk.
        let mut sent: std::collections::BTreeMap<(&str, &str), Vec<&FinishedEmail>> =
            std::collections::BTreeMap::new();
        for email in finished {
            if email.outcome == DeliveryOutcome::Sent {
                sent.entry((email.merchant.as_str(), email.claim_id.as_str()))
                    .or_default()
                    .push(email);
            }
        }
        for ((merchant, claim_id), emails) in sent {
            for chunk in emails.chunks(INSERT_CHUNK) {
                // The claim is checked with the row: a worker whose lease ran out (and whose
                // row another worker took) writes nothing.
                let sql = format!(
                    "UPDATE outbox SET status = 'sent', sent_at_us = $3, last_error = NULL, \
                     claim_id = NULL, lease_until_us = NULL \
                     WHERE merchant_id = $1 AND claim_id = $2 AND status = 'pending' \
                     AND id IN ({}) RETURNING id",
                    placeholders_from(4, chunk.len())
                );
                let mut query = sqlx::query_scalar::<_, i64>(&sql)
                    .bind(merchant)
                    .bind(claim_id)
                    .bind(micros(now));
                for email in chunk {
                    query = query.bind(email.id);
                }
                let marked: HashSet<i64> = query.fetch_all(&mut *tx).await?.into_iter().collect();
                written += marked.len() as u64;
                for email in chunk.iter().filter(|e| marked.contains(&e.id)) {
                    if let Some(follow_up) = &email.follow_up {
                        write_follow_up(&mut tx, email, follow_up, now).await?;
                    }
                }
            }
        }
        for email in finished {
            // Every statement releases the claim and checks it first, as above.
            let query = match &email.outcome {
                DeliveryOutcome::Sent => continue,
                DeliveryOutcome::Retry { at, error } => sqlx::query(
                    "UPDATE outbox SET next_attempt_at_us = $4, last_error = $5, \
                     claim_id = NULL, lease_until_us = NULL \
                     WHERE merchant_id = $1 AND id = $2 AND claim_id = $3 AND status = 'pending'",
                )
                .bind(email.merchant.as_str())
                .bind(email.id)
                .bind(email.claim_id.as_str())
                .bind(micros(*at))
                .bind(error.as_str()),
                DeliveryOutcome::Failed { error } => sqlx::query(
                    "UPDATE outbox SET status = 'failed', last_error = $4, \
                     claim_id = NULL, lease_until_us = NULL \
                     WHERE merchant_id = $1 AND id = $2 AND claim_id = $3 AND status = 'pending'",
                )
                .bind(email.merchant.as_str())
                .bind(email.id)
                .bind(email.claim_id.as_str())
                .bind(error.as_str()),
                // Holding is not a delivery attempt: the claim's attempt is given back.
                DeliveryOutcome::Held { error, fingerprint } => sqlx::query(
                    "UPDATE outbox SET status = 'held', last_error = $4, held_fingerprint = $5, \
                     attempts = attempts - 1, claim_id = NULL, lease_until_us = NULL \
                     WHERE merchant_id = $1 AND id = $2 AND claim_id = $3 AND status = 'pending'",
                )
                .bind(email.merchant.as_str())
                .bind(email.id)
                .bind(email.claim_id.as_str())
                .bind(error.as_str())
                .bind(fingerprint.as_str()),
                DeliveryOutcome::Suppressed { reason } => sqlx::query(
                    "UPDATE outbox SET status = 'suppressed', last_error = $4, \
                     attempts = attempts - 1, claim_id = NULL, lease_until_us = NULL \
                     WHERE merchant_id = $1 AND id = $2 AND claim_id = $3 AND status = 'pending'",
                )
                .bind(email.merchant.as_str())
                .bind(email.id)
                .bind(email.claim_id.as_str())
                .bind(reason.as_str()),
                // A deferral is not an attempt; the reason shows why the email waits.
                DeliveryOutcome::Deferred { until, reason } => sqlx::query(
                    "UPDATE outbox SET status = 'deferred', next_attempt_at_us = $5, last_error = $4, \
                     attempts = attempts - 1, claim_id = NULL, lease_until_us = NULL \
                     WHERE merchant_id = $1 AND id = $2 AND claim_id = $3 AND status = 'pending'",
                )
                .bind(email.merchant.as_str())
                .bind(email.id)
                .bind(email.claim_id.as_str())
                .bind(reason.as_str())
                .bind(micros(*until)),
            };
            written += query.execute(&mut *tx).await?.rows_affected();
        }
        tx.commit().await?;
        Ok(written)
    }

    async fn release_held(
        &self,
        merchant: &MerchantId,
        fingerprint: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<u64> {
        let released = sqlx::query(
            "UPDATE outbox SET status = 'pending', next_attempt_at_us = $3, held_fingerprint = NULL \
             WHERE merchant_id = $1 AND status = 'held' \
             AND (held_fingerprint IS NULL OR held_fingerprint <> $2)",
        )
        .bind(merchant.as_str())
        .bind(fingerprint)
        .bind(micros(now))
        .execute(&self.writer)
        .await?
        .rows_affected();
        Ok(released)
    }

    async fn mail_customers(
        &self,
        merchant: &MerchantId,
        customers: &[CustomerId],
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<MailCustomer>> {
        if customers.is_empty() {
            return Ok(Vec::new());
        }
        let mut conn = self.pool.acquire().await?;
        let rules = merchant_rules(&mut conn, merchant).await?;

        let mut query = sqlx::QueryBuilder::<Db>::new(
            "SELECT id, external_id, name, email, consent, unsubscribed_at_us, birthday \
             FROM customers WHERE merchant_id = ",
        );
        query.push_bind(merchant.as_str()).push(" AND id IN ");
        push_customer_keys(&mut query, customers);
        let rows = query.build().fetch_all(&mut *conn).await?;

        // What counts for the tier: as `customer_profile` computes it.
        let mut spend = sqlx::QueryBuilder::<Db>::new(
            "SELECT customer_id, CAST(COALESCE(SUM(amount_minor), 0) AS BIGINT) AS spent FROM purchases \
             WHERE sandbox = FALSE AND refunded_at_us IS NULL AND merchant_id = ",
        );
        let (from, until) = tier_year(now);
        spend
            .push_bind(merchant.as_str())
            .push(" AND occurred_at_us >= ")
            .push_bind(micros(from))
            .push(" AND occurred_at_us < ")
            .push_bind(micros(until))
            .push(" AND customer_id IN ");
        push_customer_keys(&mut spend, customers);
        spend.push(" GROUP BY customer_id");
        let mut spent: HashMap<i64, i64> = HashMap::new();
        for row in spend.build().fetch_all(&mut *conn).await? {
            spent.insert(row.try_get("customer_id")?, row.try_get("spent")?);
        }

        let mut ledger = sqlx::QueryBuilder::<Db>::new(
            "SELECT customer_id, id, occurred_at_us, points, kind, source FROM points_ledger WHERE merchant_id = ",
        );
        ledger
            .push_bind(merchant.as_str())
            .push(" AND customer_id IN ");
        push_customer_keys(&mut ledger, customers);
        ledger.push(" ORDER BY customer_id, occurred_at_us, id");
        let mut movements: HashMap<i64, Vec<PointsMovement>> = HashMap::new();
        for row in ledger.build().fetch_all(&mut *conn).await? {
            movements
                .entry(row.try_get("customer_id")?)
                .or_default()
                .push(movement_from_row(&row)?);
        }

        rows.iter()
            .map(|row| {
                let id: i64 = row.try_get("id")?;
                let trailing = Money::from_minor(spent.get(&id).copied().unwrap_or(0));
                let movements = movements.get(&id).map(Vec::as_slice).unwrap_or_default();
                let (balance, _) = balance_at(movements, now, rules.program.expiry());
                let next_expiry = setia_core::loyalty::next_expiry(
                    movements,
                    now,
                    rules.program.expiry(),
                )
                .map(|(at, points)| PointsExpiry { at, points });
                let tier: Tier = rules.program.tier_for(trailing);
                Ok(MailCustomer {
                    id: CustomerId::from_key(id),
                    external_id: row.try_get("external_id")?,
                    name: row.try_get("name")?,
                    email: row.try_get("email")?,
                    consent: row.try_get("consent")?,
                    unsubscribed: row
                        .try_get::<Option<i64>, _>("unsubscribed_at_us")?
                        .is_some(),
                    birthday: row.try_get("birthday")?,
                    tier,
                    points_balance: balance,
                    trailing_spend: trailing,
                    next_expiry,
                })
            })
            .collect()
    }

    async fn day_purchases(
        &self,
        merchant: &MerchantId,
        customer: CustomerId,
        from: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> StoreResult<Vec<DayPurchase>> {
        let rows = sqlx::query(
            "SELECT p.id, p.occurred_at_us, p.amount_minor, \
             (SELECT CAST(COALESCE(SUM(l.points), 0) AS BIGINT) FROM points_ledger l \
              WHERE l.merchant_id = p.merchant_id AND l.kind IN ('earn', 'bonus') AND l.source = 'pur_' || p.id) AS points \
             FROM purchases p WHERE p.merchant_id = $1 AND p.customer_id = $2 AND p.sandbox = FALSE \
             AND p.refunded_at_us IS NULL AND p.occurred_at_us >= $3 AND p.occurred_at_us < $4 \
             ORDER BY p.occurred_at_us, p.id",
        )
        .bind(merchant.as_str())
        .bind(customer.key())
        .bind(micros(from))
        .bind(micros(until))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(DayPurchase {
                    id: PurchaseId::from_key(row.try_get("id")?),
                    occurred_at: from_micros(row.try_get("occurred_at_us")?)?,
                    amount: Money::from_minor(row.try_get("amount_minor")?),
                    points: row.try_get("points")?,
                })
            })
            .collect()
    }

    async fn last_marketing_sent(
        &self,
        merchant: &MerchantId,
        customers: &[CustomerId],
    ) -> StoreResult<HashMap<CustomerId, DateTime<Utc>>> {
        let mut last = HashMap::new();
        for chunk in customers.chunks(INSERT_CHUNK) {
            // By recipient, which the outbox's unique key indexes with the kind.
            let mut query = sqlx::QueryBuilder::<Db>::new(
                "SELECT customer_id, MAX(sent_at_us) AS sent_us FROM outbox WHERE merchant_id = ",
            );
            query.push_bind(merchant.as_str());
            query.push(" AND status = 'sent' AND kind IN (");
            let mut kinds = query.separated(", ");
            for kind in OutboxKind::MARKETING {
                kinds.push_bind(kind.as_str());
            }
            query.push(") AND recipient IN (");
            let mut recipients = query.separated(", ");
            for customer in chunk {
                recipients.push_bind(customer.to_string());
            }
            query.push(") GROUP BY customer_id");
            for row in query.build().fetch_all(&self.pool).await? {
                let customer: Option<i64> = row.try_get("customer_id")?;
                let sent: Option<i64> = row.try_get("sent_us")?;
                if let (Some(customer), Some(sent)) = (customer, sent) {
                    last.insert(CustomerId::from_key(customer), from_micros(sent)?);
                }
            }
        }
        Ok(last)
    }

    async fn outbox_entries(
        &self,
        merchant: &MerchantId,
        status: Option<OutboxStatus>,
        page: PageRequest,
    ) -> StoreResult<Page<OutboxEntry>> {
        let rows = sqlx::query(
            "SELECT id, kind, recipient, period_key, status, attempts, last_error, due_at_us, \
             next_attempt_at_us, sent_at_us, created_at_us FROM outbox \
             WHERE merchant_id = $1 AND ($2 = '' OR status = $2) AND id < $3 ORDER BY id DESC LIMIT $4",
        )
        .bind(merchant.as_str())
        .bind(status.map_or("", OutboxStatus::as_str))
        .bind(page.before.unwrap_or(i64::MAX))
        .bind(i64::from(page.limit) + 1)
        .fetch_all(&self.pool)
        .await?;
        let items = rows
            .iter()
            .map(outbox_entry_from_row)
            .collect::<StoreResult<Vec<_>>>()?;
        Ok(page_of(items, page, |e| e.id))
    }

    async fn subscription(
        &self,
        merchant: &MerchantId,
        customer: CustomerId,
    ) -> StoreResult<Option<Subscription>> {
        let mut conn = self.pool.acquire().await?;
        subscription_of(&mut conn, merchant, customer).await
    }

    async fn unsubscribe(
        &self,
        merchant: &MerchantId,
        customer: CustomerId,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<Subscription>> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "UPDATE customers SET unsubscribed_at_us = $1, updated_at_us = $1 \
             WHERE merchant_id = $2 AND id = $3 AND unsubscribed_at_us IS NULL",
        )
        .bind(micros(now))
        .bind(merchant.as_str())
        .bind(customer.key())
        .execute(&mut *tx)
        .await?;
        let subscription = subscription_of(&mut tx, merchant, customer).await?;
        tx.commit().await?;
        Ok(subscription)
    }
}

/// The email a sent row schedules for its recipient (a feedback request's reminder).
async fn write_follow_up(
    tx: &mut DbTx<'_>,
    email: &FinishedEmail,
    follow_up: &FollowUp,
    now: DateTime<Utc>,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO outbox (merchant_id, kind, recipient, customer_id, period_key, \
         due_at_us, next_attempt_at_us, created_at_us) \
         SELECT merchant_id, $3, recipient, customer_id, $4, $5, $5, $6 \
         FROM outbox WHERE merchant_id = $1 AND id = $2 \
         ON CONFLICT (merchant_id, kind, recipient, period_key) DO NOTHING",
    )
    .bind(email.merchant.as_str())
    .bind(email.id)
    .bind(follow_up.kind.as_str())
    .bind(follow_up.period_key.as_str())
    .bind(micros(follow_up.due_at))
    .bind(micros(now))
    .execute(&mut **tx)
    .await?;
    Ok(())
}
