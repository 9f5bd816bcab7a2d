// The win-back queries both backends run, included by `sqlite.rs` and `postgres.rs`.

use crate::winback::*;

const DAY_MICROS: i64 = 86_400_000_000;

const EPISODE_COLUMNS: &str = "e.id, e.customer_id, c.external_id, c.name, e.number, e.reason, \
     e.holdout, e.entered_at_us, e.last_step_at_us, e.p_alive, e.expected_30d, e.expected_60d, \
     e.ended_at_us, e.end_reason";

fn voucher_from_row(row: &DbRow) -> StoreResult<Voucher> {
    let percent: i64 = row.try_get("percent")?;
    let step: i64 = row.try_get("step")?;
    let valid_until: String = row.try_get("valid_until")?;
    Ok(Voucher {
        code: row.try_get("code")?,
        customer_id: CustomerId::from_key(row.try_get("customer_id")?),
        episode_id: row.try_get("episode_id")?,
        step: u32::try_from(step).map_err(|_| StoreError::Corrupt(format!("voucher step {step}")))?,
        percent: u32::try_from(percent)
            .map_err(|_| StoreError::Corrupt(format!("voucher percent {percent}")))?,
        valid_until: chrono::NaiveDate::parse_from_str(&valid_until, "%Y-%m-%d")
            .map_err(|_| StoreError::Corrupt(format!("voucher day {valid_until:?}")))?,
        redeemed_at: row
            .try_get::<Option<i64>, _>("redeemed_at_us")?
            .map(from_micros)
            .transpose()?,
        redeemed_order: row.try_get("redeemed_order")?,
    })
}

fn episode_from_row(row: &DbRow, vouchers: Vec<Voucher>) -> StoreResult<Episode> {
    let number: i64 = row.try_get("number")?;
    Ok(Episode {
        id: row.try_get("id")?,
        customer_id: CustomerId::from_key(row.try_get("customer_id")?),
        customer_external_id: row.try_get("external_id")?,
        customer_name: row.try_get("name")?,
        number: u32::try_from(number)
            .map_err(|_| StoreError::Corrupt(format!("episode number {number}")))?,
        reason: row.try_get("reason")?,
        holdout: row.try_get("holdout")?,
        entered_at: from_micros(row.try_get("entered_at_us")?)?,
        last_step_at: from_micros(row.try_get("last_step_at_us")?)?,
        p_alive: row.try_get("p_alive")?,
        expected_30d: row.try_get("expected_30d")?,
        expected_60d: row.try_get("expected_60d")?,
        ended_at: row
            .try_get::<Option<i64>, _>("ended_at_us")?
            .map(from_micros)
            .transpose()?,
        end_reason: row.try_get("end_reason")?,
        vouchers,
    })
}

const VOUCHER_COLUMNS: &str = "code, customer_id, episode_id, step, percent, valid_until, \
     redeemed_at_us, redeemed_order";

async fn vouchers_of(
    conn: &mut DbConn,
    merchant: &MerchantId,
    episodes: &[i64],
) -> StoreResult<HashMap<i64, Vec<Voucher>>> {
    let mut by_episode: HashMap<i64, Vec<Voucher>> = HashMap::new();
    for chunk in episodes.chunks(500) {
        let list = placeholders_after_merchant(chunk.len());
        let sql = format!(
            "SELECT {VOUCHER_COLUMNS} FROM vouchers WHERE merchant_id = $1 AND episode_id IN ({list}) \
             ORDER BY step"
        );
        let mut query = sqlx::query(&sql).bind(merchant.as_str());
        for id in chunk {
            query = query.bind(id);
        }
        for row in query.fetch_all(&mut *conn).await? {
            let voucher = voucher_from_row(&row)?;
            by_episode.entry(voucher.episode_id).or_default().push(voucher);
        }
    }
    Ok(by_episode)
}

#[async_trait]
impl Winback for ThisStore {
    async fn winback_states(
        &self,
        merchant: &MerchantId,
        customers: &[CustomerId],
        now: DateTime<Utc>,
    ) -> StoreResult<HashMap<CustomerId, WinbackState>> {
        let mut states = HashMap::with_capacity(customers.len());
        for chunk in customers.chunks(500) {
            let list = placeholders_after_merchant(chunk.len());
            let sql = format!(
                "SELECT c.id, (c.email IS NOT NULL AND c.consent = TRUE AND c.unsubscribed_at_us IS NULL) \
                 AS reachable, \
                 EXISTS (SELECT 1 FROM complaints k JOIN feedback_answers a ON a.id = k.answer_id \
                  WHERE k.merchant_id = c.merchant_id AND a.customer_id = c.id AND k.status <> 'resolved') \
                 AS open_complaint, \
                 (SELECT COUNT(*) FROM winback_episodes e WHERE e.merchant_id = c.merchant_id \
                  AND e.customer_id = c.id) AS episodes, \
                 (SELECT COALESCE(e.ended_at_us, e.last_step_at_us) FROM winback_episodes e \
                  WHERE e.merchant_id = c.merchant_id AND e.customer_id = c.id \
                  ORDER BY e.number DESC LIMIT 1) AS last_end_us \
                 FROM customers c WHERE c.merchant_id = $1 AND c.id IN ({list})"
            );
            let mut query = sqlx::query(&sql).bind(merchant.as_str());
            for customer in chunk {
                query = query.bind(customer.key());
            }
            for row in query.fetch_all(&self.pool).await? {
                let episodes: i64 = row.try_get("episodes")?;
                let last_end = row
                    .try_get::<Option<i64>, _>("last_end_us")?
                    .map(from_micros)
                    .transpose()?;
                states.insert(
                    CustomerId::from_key(row.try_get("id")?),
                    WinbackState {
                        reachable: row.try_get("reachable")?,
                        open_complaint: row.try_get("open_complaint")?,
                        episodes: u32::try_from(episodes).unwrap_or(u32::MAX),
                        in_episode: last_end.is_some_and(|end| end > now),
                        last_ended: last_end,
                    },
                );
            }
        }
        Ok(states)
    }

    async fn start_winback_episodes(
        &self,
        merchant: &MerchantId,
        episodes: &[NewEpisode],
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<i64>> {
        let mut tx = self.begin_write().await?;
        let mut written = Vec::new();
        for episode in episodes {
            let id: Option<i64> = sqlx::query_scalar(
                "INSERT INTO winback_episodes (merchant_id, customer_id, number, reason, holdout, \
                 entered_at_us, counts_from_us, last_step_at_us, p_alive, expected_30d, expected_60d) \
                 VALUES ($1, $2, $3, $4, $5, $6, $11, $7, $8, $9, $10) \
                 ON CONFLICT (merchant_id, customer_id, number) DO NOTHING RETURNING id",
            )
            .bind(merchant.as_str())
            .bind(episode.customer.key())
            .bind(i64::from(episode.number))
            .bind(episode.reason.as_str())
            .bind(episode.holdout)
            .bind(micros(episode.entered_at))
            .bind(micros(episode.last_step_at))
            .bind(episode.p_alive)
            .bind(episode.expected_30d)
            .bind(episode.expected_60d)
            .bind(micros(episode.counts_from))
            .fetch_optional(&mut *tx)
            .await?;
            let Some(id) = id else { continue };
            written.push(id);
            if episode.holdout {
                continue;
            }
            for (index, step) in episode.steps.iter().enumerate() {
                sqlx::query(
                    "INSERT INTO outbox (merchant_id, kind, recipient, customer_id, period_key, \
                     due_at_us, next_attempt_at_us, created_at_us) VALUES ($1, $2, $3, $4, $5, $6, $6, $7) \
                     ON CONFLICT (merchant_id, kind, recipient, period_key) DO NOTHING",
                )
                .bind(merchant.as_str())
                .bind(crate::mail::OutboxKind::Winback.as_str())
                .bind(episode.customer.to_string())
                .bind(episode.customer.key())
                .bind(format!("{id}-{index}"))
                .bind(micros(step.due_at))
                .bind(micros(now))
                .execute(&mut *tx)
                .await?;
                if let Some(voucher) = &step.voucher {
                    sqlx::query(
                        "INSERT INTO vouchers (merchant_id, code, customer_id, episode_id, step, percent, \
                         valid_until, created_at_us) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                    )
                    .bind(merchant.as_str())
                    .bind(&voucher.code)
                    .bind(episode.customer.key())
                    .bind(id)
                    .bind(index as i64)
                    .bind(i64::from(voucher.percent))
                    .bind(voucher.valid_until.format("%Y-%m-%d").to_string())
                    .bind(micros(now))
                    .execute(&mut *tx)
                    .await?;
                }
            }
        }
        tx.commit().await?;
        Ok(written)
    }

    async fn end_unsubscribed_episodes(
        &self,
        merchant: &MerchantId,
        now: DateTime<Utc>,
    ) -> StoreResult<u64> {
        Ok(sqlx::query(
            "UPDATE winback_episodes SET ended_at_us = $2, end_reason = 'unsubscribed' \
             WHERE merchant_id = $1 AND ended_at_us IS NULL AND last_step_at_us > $2 \
             AND customer_id IN (SELECT id FROM customers WHERE merchant_id = $1 \
              AND (unsubscribed_at_us IS NOT NULL OR consent = FALSE OR email IS NULL))",
        )
        .bind(merchant.as_str())
        .bind(micros(now))
        .execute(&self.writer)
        .await?
        .rows_affected())
    }

    async fn winback_episode(
        &self,
        merchant: &MerchantId,
        episode: i64,
    ) -> StoreResult<Option<Episode>> {
        let mut conn = self.pool.acquire().await?;
        let Some(row) = sqlx::query(&format!(
            "SELECT {EPISODE_COLUMNS} FROM winback_episodes e JOIN customers c ON c.id = e.customer_id \
             WHERE e.merchant_id = $1 AND e.id = $2"
        ))
        .bind(merchant.as_str())
        .bind(episode)
        .fetch_optional(&mut *conn)
        .await?
        else {
            return Ok(None);
        };
        let mut vouchers = vouchers_of(&mut conn, merchant, &[episode]).await?;
        Ok(Some(episode_from_row(
            &row,
            vouchers.remove(&episode).unwrap_or_default(),
        )?))
    }

    async fn winback_episodes(
        &self,
        merchant: &MerchantId,
        open_only: bool,
        page: crate::PageRequest,
    ) -> StoreResult<crate::Page<Episode>> {
        let mut conn = self.pool.acquire().await?;
        let open = if open_only {
            "AND e.ended_at_us IS NULL AND e.last_step_at_us > $4"
        } else {
            "AND $4 = $4"
        };
        let rows = sqlx::query(&format!(
            "SELECT {EPISODE_COLUMNS} FROM winback_episodes e JOIN customers c ON c.id = e.customer_id \
             WHERE e.merchant_id = $1 AND e.id < $2 {open} ORDER BY e.id DESC LIMIT $3"
        ))
        .bind(merchant.as_str())
        .bind(page.before.unwrap_or(i64::MAX))
        .bind(i64::from(page.limit) + 1)
        .bind(micros(Utc::now()))
        .fetch_all(&mut *conn)
        .await?;
        let ids: Vec<i64> = rows
            .iter()
            .map(|row| row.try_get("id"))
            .collect::<Result<_, _>>()?;
        let mut vouchers = vouchers_of(&mut conn, merchant, &ids).await?;
        let items = rows
            .iter()
            .map(|row| {
                let id: i64 = row.try_get("id")?;
                episode_from_row(row, vouchers.remove(&id).unwrap_or_default())
            })
            .collect::<StoreResult<Vec<_>>>()?;
        Ok(page_of(items, page, |e| e.id))
    }

    async fn winback_outcomes(
        &self,
        merchant: &MerchantId,
        from: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> StoreResult<Vec<EpisodeOutcome>> {
        // Verified purchases: from a bank mutation, attributed to the customer, not refunded,
        // of the merchant's own world (see sandbox isolation).
        let within = |days: i64, what: &str| {
            format!(
                "(SELECT {what} FROM purchases p WHERE p.merchant_id = e.merchant_id \
                 AND p.customer_id = e.customer_id AND p.mutation_id IS NOT NULL \
                 AND p.refunded_at_us IS NULL AND p.sandbox = m.sandbox \
                 AND p.occurred_at_us >= e.counts_from_us \
                 AND p.occurred_at_us < e.counts_from_us + {})",
                days * DAY_MICROS
            )
        };
        let sql = format!(
            "SELECT e.id, e.entered_at_us, e.holdout, e.expected_30d, e.expected_60d, \
             {} AS purchases_30d, {} AS revenue_30d, {} AS purchases_60d, {} AS revenue_60d, \
             (SELECT COUNT(*) FROM vouchers v WHERE v.merchant_id = e.merchant_id \
              AND v.episode_id = e.id AND v.redeemed_at_us IS NOT NULL) AS redeemed \
             FROM winback_episodes e JOIN merchants m ON m.id = e.merchant_id \
             WHERE e.merchant_id = $1 AND e.entered_at_us >= $2 AND e.entered_at_us < $3 \
             ORDER BY e.id",
            within(30, "COUNT(*)"),
            within(30, "CAST(COALESCE(SUM(p.amount_minor), 0) AS BIGINT)"),
            within(60, "COUNT(*)"),
            within(60, "CAST(COALESCE(SUM(p.amount_minor), 0) AS BIGINT)"),
        );
        let rows = sqlx::query(&sql)
            .bind(merchant.as_str())
            .bind(micros(from))
            .bind(micros(until))
            .fetch_all(&self.pool)
            .await?;
        let small = |value: i64| u32::try_from(value).unwrap_or(u32::MAX);
        rows.iter()
            .map(|row| {
                Ok(EpisodeOutcome {
                    id: row.try_get("id")?,
                    entered_at: from_micros(row.try_get("entered_at_us")?)?,
                    holdout: row.try_get("holdout")?,
                    expected_30d: row.try_get("expected_30d")?,
                    expected_60d: row.try_get("expected_60d")?,
                    purchases_30d: small(row.try_get("purchases_30d")?),
                    revenue_30d: Money::from_minor(row.try_get("revenue_30d")?),
                    purchases_60d: small(row.try_get("purchases_60d")?),
                    revenue_60d: Money::from_minor(row.try_get("revenue_60d")?),
                    vouchers_redeemed: small(row.try_get("redeemed")?),
                })
            })
            .collect()
    }

    async fn redeem_voucher(
        &self,
        merchant: &MerchantId,
        code: &str,
        order: Option<&str>,
        today: chrono::NaiveDate,
        now: DateTime<Utc>,
    ) -> StoreResult<Result<Voucher, RedeemError>> {
        // As stored (microseconds), so the first answer and a replay's are the same.
        let now = from_micros(micros(now))?;
        let mut tx = self.begin_write().await?;
        let row = sqlx::query(&format!(
            "SELECT {VOUCHER_COLUMNS} FROM vouchers WHERE merchant_id = $1 AND code = $2"
        ))
        .bind(merchant.as_str())
        .bind(code)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            return Ok(Err(RedeemError::Unknown(code.to_owned())));
        };
        let voucher = voucher_from_row(&row)?;
        if voucher.redeemed_at.is_some() {
            // A replay of the same redemption answers it again; any other is refused.
            return Ok(if voucher.redeemed_order.as_deref() == order {
                Ok(voucher)
            } else {
                Err(RedeemError::AlreadyRedeemed {
                    code: voucher.code,
                    order: voucher.redeemed_order,
                })
            });
        }
        if voucher.valid_until < today {
            return Ok(Err(RedeemError::Expired {
                code: voucher.code,
                valid_until: voucher.valid_until,
            }));
        }
        sqlx::query(
            "UPDATE vouchers SET redeemed_at_us = $3, redeemed_order = $4 \
             WHERE merchant_id = $1 AND code = $2",
        )
        .bind(merchant.as_str())
        .bind(code)
        .bind(micros(now))
        .bind(order)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Ok(Voucher {
            redeemed_at: Some(now),
            redeemed_order: order.map(str::to_owned),
            ..voucher
        }))
    }
}
