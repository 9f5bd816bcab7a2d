// The campaign queries both backends run, included by `sqlite.rs` and `postgres.rs`.

use crate::campaign::*;
use setia_core::campaign::AudiencePart;

const CAMPAIGN_COLUMNS: &str = "id, name, audience, subject, body, send_at_us, early_access_days, \
     holdout_percent, result_days, status, created_at_us";

fn campaign_from_row(row: &DbRow) -> StoreResult<Campaign> {
    let small = |column: &str, value: i64| {
        u32::try_from(value).map_err(|_| StoreError::Corrupt(format!("campaign {column} {value}")))
    };
    let status: String = row.try_get("status")?;
    Ok(Campaign {
        id: setia_core::CampaignId::from_key(row.try_get("id")?),
        name: row.try_get("name")?,
        audience: row.try_get("audience")?,
        subject: row.try_get("subject")?,
        body: row.try_get("body")?,
        send_at: from_micros(row.try_get("send_at_us")?)?,
        early_access_days: row
            .try_get::<Option<i64>, _>("early_access_days")?
            .map(|days| small("early_access_days", days))
            .transpose()?,
        holdout_percent: small("holdout_percent", row.try_get("holdout_percent")?)?,
        result_days: small("result_days", row.try_get("result_days")?)?,
        status: CampaignStatus::parse(&status)
            .ok_or_else(|| StoreError::Corrupt(format!("campaign status {status:?}")))?,
        created_at: from_micros(row.try_get("created_at_us")?)?,
    })
}

/// The SQL condition on the audience query's `x` row that one term selects. Segment names
/// are setia's own constants, so they are written into the text.
fn audience_condition(part: &AudiencePart) -> String {
    match part {
        AudiencePart::All => "1 = 1".into(),
        AudiencePart::Tier(Tier::Gold) => "x.spent >= $4".into(),
        AudiencePart::Tier(Tier::Silver) => "(x.spent >= $5 AND x.spent < $4)".into(),
        AudiencePart::Tier(Tier::Bronze) => "x.spent < $5".into(),
        AudiencePart::Segment(segment) => format!("x.segment = '{}'", segment.as_str()),
        // The churn model's at risk, as the dashboard and the weekly report count it.
        AudiencePart::AtRisk => "(x.frequency_days >= 2 AND x.p_alive < 0.5)".into(),
    }
}

#[async_trait]
impl Campaigns for ThisStore {
    async fn create_campaign(
        &self,
        merchant: &MerchantId,
        campaign: &setia_core::campaign::CampaignDraft,
        now: DateTime<Utc>,
    ) -> StoreResult<Campaign> {
        let row = sqlx::query(&format!(
            "INSERT INTO campaigns (merchant_id, name, audience, subject, body, send_at_us, \
             early_access_days, holdout_percent, result_days, status, created_at_us) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'scheduled', $10) RETURNING {CAMPAIGN_COLUMNS}"
        ))
        .bind(merchant.as_str())
        .bind(campaign.name.as_str())
        .bind(campaign.audience.to_string())
        .bind(campaign.subject.as_str())
        .bind(campaign.body.as_str())
        .bind(micros(campaign.send_at))
        .bind(campaign.early_access_days.map(i64::from))
        .bind(i64::from(campaign.holdout_percent))
        .bind(i64::from(campaign.result_days))
        .bind(micros(now))
        .fetch_one(&self.writer)
        .await?;
        campaign_from_row(&row)
    }

    async fn campaign(
        &self,
        merchant: &MerchantId,
        id: setia_core::CampaignId,
    ) -> StoreResult<Option<Campaign>> {
        sqlx::query(&format!(
            "SELECT {CAMPAIGN_COLUMNS} FROM campaigns WHERE merchant_id = $1 AND id = $2"
        ))
        .bind(merchant.as_str())
        .bind(id.key())
        .fetch_optional(&self.pool)
        .await?
        .as_ref()
        .map(campaign_from_row)
        .transpose()
    }

    async fn campaigns(
        &self,
        merchant: &MerchantId,
        page: PageRequest,
    ) -> StoreResult<Page<Campaign>> {
        newest_first(
            &self.pool,
            &format!(
                "SELECT {CAMPAIGN_COLUMNS} FROM campaigns WHERE merchant_id = $1 AND id < $2 \
                 ORDER BY id DESC LIMIT $3"
            ),
            merchant,
            None,
            page,
            campaign_from_row,
            |c| c.id.key(),
        )
        .await
    }

    async fn due_campaigns(
        &self,
        merchant: &MerchantId,
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<Campaign>> {
        let rows = sqlx::query(&format!(
            "SELECT {CAMPAIGN_COLUMNS} FROM campaigns WHERE merchant_id = $1 \
             AND status <> 'sent' AND send_at_us <= $2 ORDER BY id"
        ))
        .bind(merchant.as_str())
        .bind(micros(now))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(campaign_from_row).collect()
    }

    async fn audience_chunk(
        &self,
        merchant: &MerchantId,
        audience: &setia_core::campaign::Audience,
        after: CustomerId,
        limit: u32,
        now: DateTime<Utc>,
    ) -> StoreResult<AudienceChunk> {
        let mut conn = self.pool.acquire().await?;
        let scanned_to: Option<i64> = sqlx::query_scalar(
            "SELECT MAX(id) FROM (SELECT id FROM customers WHERE merchant_id = $1 AND id > $2 \
             ORDER BY id LIMIT $3) AS chunk",
        )
        .bind(merchant.as_str())
        .bind(after.key())
        .bind(i64::from(limit.max(1)))
        .fetch_one(&mut *conn)
        .await?;
        let Some(scanned_to) = scanned_to else {
            return Ok(AudienceChunk {
                members: Vec::new(),
                scanned_to: None,
            });
        };
        let rules = merchant_rules(&mut conn, merchant).await?;
        let condition = audience
            .parts()
            .iter()
            .map(audience_condition)
            .collect::<Vec<_>>()
            .join(" OR ");
        // Tier as every email computes it: the merchant's world's purchases, not refunded,
        // in the 365 days before now.
        let sql = format!(
            "SELECT x.id, x.spent FROM (SELECT c.id, \
              (SELECT CAST(COALESCE(SUM(p.amount_minor), 0) AS BIGINT) FROM purchases p \
               WHERE p.merchant_id = c.merchant_id AND p.customer_id = c.id \
               AND p.sandbox = (SELECT m.sandbox FROM merchants m WHERE m.id = $1) \
               AND p.refunded_at_us IS NULL AND p.occurred_at_us >= $6 AND p.occurred_at_us < $7) AS spent, \
              s.segment, s.p_alive, s.frequency_days \
             FROM customers c LEFT JOIN customer_scores s ON s.merchant_id = c.merchant_id AND s.customer_id = c.id \
             WHERE c.merchant_id = $1 AND c.id > $2 AND c.id <= $3 \
             AND c.email IS NOT NULL AND c.consent = TRUE AND c.unsubscribed_at_us IS NULL) AS x \
             WHERE ({condition}) AND $4 = $4 AND $5 = $5 ORDER BY x.id"
        );
        let (from, until) = tier_year(now);
        let rows = sqlx::query(&sql)
            .bind(merchant.as_str())
            .bind(after.key())
            .bind(scanned_to)
            .bind(rules.program.threshold(Tier::Gold).minor())
            .bind(rules.program.threshold(Tier::Silver).minor())
            .bind(micros(from))
            .bind(micros(until))
            .fetch_all(&mut *conn)
            .await?;
        let members = rows
            .iter()
            .map(|row| {
                Ok(AudienceMember {
                    customer: CustomerId::from_key(row.try_get("id")?),
                    tier: rules
                        .program
                        .tier_for(Money::from_minor(row.try_get("spent")?)),
                })
            })
            .collect::<StoreResult<Vec<_>>>()?;
        Ok(AudienceChunk {
            members,
            scanned_to: Some(CustomerId::from_key(scanned_to)),
        })
    }

    async fn add_campaign_recipients(
        &self,
        merchant: &MerchantId,
        campaign: setia_core::CampaignId,
        recipients: &[NewRecipient],
        scanned_to: Option<CustomerId>,
    ) -> StoreResult<u64> {
        let mut tx = self.begin_write().await?;
        let mut written = 0;
        for chunk in recipients.chunks(INSERT_CHUNK) {
            let mut query = sqlx::QueryBuilder::<Db>::new(
                "INSERT INTO campaign_recipients (merchant_id, campaign_id, customer_id, wave, holdout, due_at_us) ",
            );
            query.push_values(chunk, |mut row, recipient| {
                row.push_bind(merchant.as_str())
                    .push_bind(campaign.key())
                    .push_bind(recipient.customer.key())
                    .push_bind(i64::from(recipient.wave.index()))
                    .push_bind(recipient.holdout)
                    .push_bind(micros(recipient.due_at));
            });
            query.push(" ON CONFLICT (campaign_id, customer_id) DO NOTHING");
            written += query.build().execute(&mut *tx).await?.rows_affected();
        }
        let update = match scanned_to {
            Some(_) => {
                "UPDATE campaigns SET audience_cursor = $3 WHERE merchant_id = $1 AND id = $2"
            }
            None => {
                "UPDATE campaigns SET status = 'sending' WHERE merchant_id = $1 AND id = $2 \
                     AND status = 'scheduled' AND $3 = $3"
            }
        };
        sqlx::query(update)
            .bind(merchant.as_str())
            .bind(campaign.key())
            .bind(scanned_to.map_or(0, CustomerId::key))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(written)
    }

    async fn campaign_audience_cursor(
        &self,
        merchant: &MerchantId,
        campaign: setia_core::CampaignId,
    ) -> StoreResult<CustomerId> {
        let cursor: Option<i64> = sqlx::query_scalar(
            "SELECT audience_cursor FROM campaigns WHERE merchant_id = $1 AND id = $2",
        )
        .bind(merchant.as_str())
        .bind(campaign.key())
        .fetch_optional(&self.pool)
        .await?;
        Ok(CustomerId::from_key(cursor.unwrap_or(0)))
    }

    async fn enqueue_campaign_wave(
        &self,
        merchant: &MerchantId,
        campaign: setia_core::CampaignId,
        now: DateTime<Utc>,
        limit: u32,
    ) -> StoreResult<WaveStep> {
        let mut tx = self.begin_write().await?;
        // The next recipients due, by customer: the chunk is a range of customer keys.
        let range: (Option<i64>, Option<i64>) = sqlx::query_as(
            "SELECT MIN(customer_id), MAX(customer_id) FROM (SELECT customer_id FROM campaign_recipients \
             WHERE campaign_id = $2 AND merchant_id = $1 AND enqueued_at_us IS NULL AND due_at_us <= $3 \
             ORDER BY customer_id LIMIT $4) AS chunk",
        )
        .bind(merchant.as_str())
        .bind(campaign.key())
        .bind(micros(now))
        .bind(i64::from(limit.max(1)))
        .fetch_one(&mut *tx)
        .await?;
        let mut step = WaveStep::default();
        if let (Some(low), Some(high)) = range {
            let due = "r.merchant_id = $1 AND r.campaign_id = $2 AND r.enqueued_at_us IS NULL \
                       AND r.due_at_us <= $3 AND r.customer_id >= $4 AND r.customer_id <= $5";
            step.enqueued = sqlx::query(&format!(
                "INSERT INTO outbox (merchant_id, kind, recipient, customer_id, period_key, due_at_us, \
                 next_attempt_at_us, created_at_us) \
                 SELECT r.merchant_id, $6, 'cus_' || r.customer_id, r.customer_id, 'cmp_' || r.campaign_id, \
                 r.due_at_us, r.due_at_us, $3 FROM campaign_recipients r WHERE {due} AND r.holdout = FALSE \
                 ON CONFLICT (merchant_id, kind, recipient, period_key) DO NOTHING"
            ))
            .bind(merchant.as_str())
            .bind(campaign.key())
            .bind(micros(now))
            .bind(low)
            .bind(high)
            .bind(crate::mail::OutboxKind::Campaign.as_str())
            .execute(&mut *tx)
            .await?
            .rows_affected();
            step.due = sqlx::query(
                "UPDATE campaign_recipients SET enqueued_at_us = $3 WHERE merchant_id = $1 \
                 AND campaign_id = $2 AND enqueued_at_us IS NULL AND due_at_us <= $3 \
                 AND customer_id >= $4 AND customer_id <= $5",
            )
            .bind(merchant.as_str())
            .bind(campaign.key())
            .bind(micros(now))
            .bind(low)
            .bind(high)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        } else {
            // Nothing due: the campaign is sent once its audience is complete and no
            // recipient waits for a later wave.
            sqlx::query(
                "UPDATE campaigns SET status = 'sent' WHERE merchant_id = $1 AND id = $2 \
                 AND status = 'sending' AND NOT EXISTS (SELECT 1 FROM campaign_recipients r \
                 WHERE r.campaign_id = $2 AND r.enqueued_at_us IS NULL)",
            )
            .bind(merchant.as_str())
            .bind(campaign.key())
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(step)
    }

    async fn campaign_delivery(
        &self,
        merchant: &MerchantId,
        campaign: setia_core::CampaignId,
    ) -> StoreResult<CampaignDelivery> {
        let mut conn = self.pool.acquire().await?;
        let mut delivery = CampaignDelivery::default();
        let waves = sqlx::query(
            "SELECT wave, MIN(due_at_us) AS due_us, \
             CAST(SUM(CASE WHEN holdout THEN 0 ELSE 1 END) AS BIGINT) AS treated, \
             CAST(SUM(CASE WHEN holdout THEN 1 ELSE 0 END) AS BIGINT) AS holdout \
             FROM campaign_recipients WHERE merchant_id = $1 AND campaign_id = $2 GROUP BY wave ORDER BY wave",
        )
        .bind(merchant.as_str())
        .bind(campaign.key())
        .fetch_all(&mut *conn)
        .await?;
        for row in &waves {
            let count = |column: &str| -> StoreResult<u64> {
                Ok(u64::try_from(row.try_get::<i64, _>(column)?).unwrap_or(0))
            };
            let wave = WaveCount {
                wave: u32::try_from(row.try_get::<i64, _>("wave")?).unwrap_or(0),
                due_at: from_micros(row.try_get("due_us")?)?,
                treated: count("treated")?,
                holdout: count("holdout")?,
            };
            delivery.treated += wave.treated;
            delivery.holdout += wave.holdout;
            delivery.waves.push(wave);
        }
        delivery.recipients = delivery.treated + delivery.holdout;
        let period = campaign.to_string();
        let statuses = sqlx::query(
            "SELECT status, COUNT(*) AS n FROM outbox WHERE merchant_id = $1 AND kind = $2 \
             AND period_key = $3 GROUP BY status",
        )
        .bind(merchant.as_str())
        .bind(crate::mail::OutboxKind::Campaign.as_str())
        .bind(&period)
        .fetch_all(&mut *conn)
        .await?;
        for row in &statuses {
            let status: String = row.try_get("status")?;
            let n = u64::try_from(row.try_get::<i64, _>("n")?).unwrap_or(0);
            match status.as_str() {
                "pending" => delivery.pending += n,
                "sent" => delivery.sent += n,
                "failed" => delivery.failed += n,
                "deferred" => delivery.deferred += n,
                "suppressed" => delivery.suppressed += n,
                "held" => delivery.held += n,
                other => return Err(StoreError::Corrupt(format!("outbox status {other:?}"))),
            }
        }
        let unsubscribed: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM outbox o JOIN customers c ON c.id = o.customer_id \
             WHERE o.merchant_id = $1 AND o.kind = $2 AND o.period_key = $3 AND o.status = 'sent' \
             AND c.unsubscribed_at_us IS NOT NULL AND c.unsubscribed_at_us >= o.sent_at_us",
        )
        .bind(merchant.as_str())
        .bind(crate::mail::OutboxKind::Campaign.as_str())
        .bind(&period)
        .fetch_one(&mut *conn)
        .await?;
        delivery.unsubscribed = u64::try_from(unsubscribed).unwrap_or(0);
        Ok(delivery)
    }

    async fn campaign_outcomes(
        &self,
        merchant: &MerchantId,
        campaign: setia_core::CampaignId,
    ) -> StoreResult<Vec<RecipientOutcome>> {
        // Verified purchases, as win-back's result counts them: from a bank mutation,
        // attributed to the customer, not refunded, of the merchant's own world.
        let within = |what: &str| {
            format!(
                "(SELECT {what} FROM purchases p WHERE p.merchant_id = r.merchant_id \
                 AND p.customer_id = r.customer_id AND p.mutation_id IS NOT NULL \
                 AND p.refunded_at_us IS NULL AND p.sandbox = m.sandbox \
                 AND p.occurred_at_us >= r.due_at_us \
                 AND p.occurred_at_us < r.due_at_us + k.result_days * 86400000000)"
            )
        };
        let sql = format!(
            "SELECT r.holdout, r.due_at_us, {} AS purchases, {} AS revenue \
             FROM campaign_recipients r JOIN campaigns k ON k.id = r.campaign_id \
             JOIN merchants m ON m.id = r.merchant_id \
             WHERE r.merchant_id = $1 AND r.campaign_id = $2 ORDER BY r.customer_id",
            within("COUNT(*)"),
            within("CAST(COALESCE(SUM(p.amount_minor), 0) AS BIGINT)"),
        );
        let rows = sqlx::query(&sql)
            .bind(merchant.as_str())
            .bind(campaign.key())
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| {
                Ok(RecipientOutcome {
                    holdout: row.try_get("holdout")?,
                    due_at: from_micros(row.try_get("due_at_us")?)?,
                    purchases: u32::try_from(row.try_get::<i64, _>("purchases")?)
                        .unwrap_or(u32::MAX),
                    revenue: Money::from_minor(row.try_get("revenue")?),
                })
            })
            .collect()
    }
}
