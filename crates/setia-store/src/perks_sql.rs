// The membership-perk queries both backends run, included by `sqlite.rs` and `postgres.rs`.

use setia_core::perks::{tier_crossing, NudgeWindow};

use crate::perks::*;

/// How recent a purchase must be for its crossing to be mailed: a welcome weeks after the
/// fact (an imported history, a late attribution) would be news to nobody.
const WELCOME_WITHIN_DAYS: i64 = 7;

fn stored_tier(text: &str) -> StoreResult<Tier> {
    Tier::parse(text).ok_or_else(|| StoreError::Corrupt(format!("tier {text:?}")))
}

/// The tiers a customer holds a standing crossing into.
async fn standing_tiers(
    conn: &mut DbConn,
    merchant: &MerchantId,
    customer: i64,
) -> StoreResult<Vec<Tier>> {
    let tiers: Vec<String> = sqlx::query_scalar(
        "SELECT tier FROM tier_crossings WHERE merchant_id = $1 AND customer_id = $2 AND reversed_at_us IS NULL",
    )
    .bind(merchant.as_str())
    .bind(customer)
    .fetch_all(&mut *conn)
    .await?;
    tiers.iter().map(|tier| stored_tier(tier)).collect()
}

/// The tier crossing of one verified purchase, in the ledger's transaction: a standing
/// crossing and its entry points for every tier entered, and one welcome for the highest
/// when the purchase is recent and the customer may be mailed. `spent_before` is the
/// customer's countable spend in the 365 days before the purchase, without it. Idempotent: a
/// purchase seen again finds its tiers standing. Returns the entry points awarded.
#[allow(clippy::too_many_arguments)]
async fn cross_tiers(
    conn: &mut DbConn,
    merchant: &MerchantId,
    rules: &MerchantRules,
    customer: i64,
    purchase: i64,
    amount: Money,
    at: DateTime<Utc>,
    spent_before: Money,
    now: DateTime<Utc>,
) -> StoreResult<i64> {
    // A sandbox world shows points but never crosses: no entry award, no welcome. Most
    // purchases cross nothing, and that is known without reading anything.
    if rules.sandbox
        || tier_crossing(&rules.program, spent_before, amount, &[])
            .entered
            .is_empty()
    {
        return Ok(0);
    }
    let perks = engagement_in(conn, merchant).await?.perks;
    if !perks.enabled {
        return Ok(0);
    }
    let standing = standing_tiers(conn, merchant, customer).await?;
    let crossing = tier_crossing(&rules.program, spent_before, amount, &standing);
    let mut entry_points = 0;
    let mut welcomed = false;
    for tier in &crossing.entered {
        let offer = perks.offer(*tier);
        let points = i64::from(offer.entry_points);
        let crossed: Option<i64> = sqlx::query_scalar(
            "INSERT INTO tier_crossings (merchant_id, customer_id, tier, purchase_id, reached_at_us, points, created_at_us) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING RETURNING id",
        )
        .bind(merchant.as_str())
        .bind(customer)
        .bind(tier.as_str())
        .bind(purchase)
        .bind(micros(at))
        .bind(points)
        .bind(micros(now))
        .fetch_optional(&mut *conn)
        .await?;
        let Some(crossed) = crossed else {
            continue;
        };
        welcomed |= crossing.welcome == Some(*tier);
        if points > 0 {
            let reason = format!("entry to {} ({})", offer.title, tier.as_str());
            let source = format!("tier:{crossed}");
            insert_points(
                conn, merchant, customer, at, points, "bonus", &reason, &source, now,
            )
            .await?;
            entry_points += points;
        }
    }
    let Some(tier) = crossing.welcome.filter(|_| welcomed) else {
        return Ok(entry_points);
    };
    if at < now - TimeDelta::days(WELCOME_WITHIN_DAYS) || !contactable(conn, merchant, customer).await? {
        return Ok(entry_points);
    }
    let offer = perks.offer(tier);
    let payload = TierWelcomePayload {
        tier: tier.as_str().to_owned(),
        title: offer.title,
        perks: offer.perks,
        entry_points,
        voucher_percent: offer.entry_voucher_percent,
    };
    sqlx::query(
        "INSERT INTO outbox (merchant_id, kind, recipient, customer_id, period_key, due_at_us, created_at_us, payload) \
         VALUES ($1, 'tier_welcome', $2, $3, $4, $5, $5, $6) ON CONFLICT (merchant_id, kind, recipient, period_key) DO NOTHING",
    )
    .bind(merchant.as_str())
    .bind(CustomerId::from_key(customer).to_string())
    .bind(customer)
    .bind(tier.as_str())
    .bind(micros(now))
    .bind(serde_json::to_string(&payload).expect("a welcome payload serialises"))
    .execute(&mut *conn)
    .await?;
    Ok(entry_points)
}

/// A refund of the purchase that made a crossing takes it back, with its entry points; a
/// later genuine crossing into the tier earns them again.
async fn reverse_tier_crossings_of_refund(
    conn: &mut DbConn,
    merchant: &MerchantId,
    purchase: i64,
    now: DateTime<Utc>,
) -> StoreResult<()> {
    let crossings: Vec<(i64, i64, i64)> = sqlx::query_as(
        "SELECT id, customer_id, points FROM tier_crossings \
         WHERE merchant_id = $1 AND purchase_id = $2 AND reversed_at_us IS NULL",
    )
    .bind(merchant.as_str())
    .bind(purchase)
    .fetch_all(&mut *conn)
    .await?;
    for (id, customer, points) in crossings {
        sqlx::query("UPDATE tier_crossings SET reversed_at_us = $3 WHERE merchant_id = $1 AND id = $2")
            .bind(merchant.as_str())
            .bind(id)
            .bind(micros(now))
            .execute(&mut *conn)
            .await?;
        if points > 0 {
            let reason = format!("refund of {}", PurchaseId::from_key(purchase));
            let source = format!("tier:{id}");
            insert_points(
                conn, merchant, customer, now, -points, "reverse", &reason, &source, now,
            )
            .await?;
        }
    }
    Ok(())
}

#[async_trait]
impl Perks for ThisStore {
    async fn spend_in_windows(
        &self,
        merchant: &MerchantId,
        windows: &[NudgeWindow],
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<CustomerSpend>> {
        if windows.is_empty() {
            return Ok(Vec::new());
        }
        let (from, until) = tier_year(now);
        let mut query = sqlx::QueryBuilder::<Db>::new(
            "SELECT customer_id, CAST(SUM(amount_minor) AS BIGINT) AS spent FROM purchases \
             WHERE merchant_id = ",
        );
        query
            .push_bind(merchant.as_str())
            .push(
                " AND customer_id IS NOT NULL AND sandbox = FALSE AND refunded_at_us IS NULL \
                 AND occurred_at_us >= ",
            )
            .push_bind(micros(from))
            .push(" AND occurred_at_us < ")
            .push_bind(micros(until))
            .push(" GROUP BY customer_id HAVING ");
        let mut any = query.separated(" OR ");
        for window in windows {
            any.push("(SUM(amount_minor) >= ")
                .push_bind_unseparated(window.from.minor())
                .push_unseparated(" AND SUM(amount_minor) < ")
                .push_bind_unseparated(window.until.minor())
                .push_unseparated(")");
        }
        let rows = query.build().fetch_all(&self.pool).await?;
        rows.iter()
            .map(|row| {
                Ok(CustomerSpend {
                    customer: CustomerId::from_key(row.try_get("customer_id")?),
                    spent: Money::from_minor(row.try_get("spent")?),
                })
            })
            .collect()
    }

    async fn enqueue_tier_nudges(
        &self,
        merchant: &MerchantId,
        period_key: &str,
        customers: &[CustomerId],
        due_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> StoreResult<u64> {
        let mut added = 0;
        for chunk in customers.chunks(NUDGES_PER_WRITE) {
            // The customers by merchant and key (customers_by_merchant).
            let mut query = sqlx::QueryBuilder::<Db>::new(
                "INSERT INTO outbox (merchant_id, kind, recipient, customer_id, period_key, due_at_us, created_at_us) \
                 SELECT merchant_id, 'tier_nudge', 'cus_' || id, id, ",
            );
            query
                .push_bind(period_key)
                .push(", ")
                .push_bind(micros(due_at))
                .push(", ")
                .push_bind(micros(now))
                .push(" FROM customers WHERE merchant_id = ")
                .push_bind(merchant.as_str())
                .push(" AND id IN ");
            push_customer_keys(&mut query, chunk);
            query.push(
                " AND consent = TRUE AND email IS NOT NULL AND unsubscribed_at_us IS NULL \
                 ON CONFLICT (merchant_id, kind, recipient, period_key) DO NOTHING",
            );
            let mut tx = self.begin_write().await?;
            added += query.build().execute(&mut *tx).await?.rows_affected();
            tx.commit().await?;
        }
        Ok(added)
    }

    async fn tier_crossings(
        &self,
        merchant: &MerchantId,
        customer: CustomerId,
    ) -> StoreResult<Vec<TierCrossingRow>> {
        let rows = sqlx::query(
            "SELECT id, tier, purchase_id, reached_at_us, points, reversed_at_us FROM tier_crossings \
             WHERE merchant_id = $1 AND customer_id = $2 ORDER BY reached_at_us, id",
        )
        .bind(merchant.as_str())
        .bind(customer.key())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let tier: String = row.try_get("tier")?;
                Ok(TierCrossingRow {
                    id: row.try_get("id")?,
                    tier: stored_tier(&tier)?.as_str(),
                    purchase_id: row.try_get("purchase_id")?,
                    reached_at: from_micros(row.try_get("reached_at_us")?)?,
                    points: row.try_get("points")?,
                    reversed_at: row
                        .try_get::<Option<i64>, _>("reversed_at_us")?
                        .map(from_micros)
                        .transpose()?,
                })
            })
            .collect()
    }

    async fn holds_tier_entry(
        &self,
        merchant: &MerchantId,
        customer: CustomerId,
        tier: Tier,
    ) -> StoreResult<bool> {
        let mut conn = self.pool.acquire().await?;
        Ok(standing_tiers(&mut conn, merchant, customer.key())
            .await?
            .contains(&tier))
    }

    async fn member_page(
        &self,
        merchant: &MerchantId,
        customer: CustomerId,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<MemberPage>> {
        let Some(subscription) = self.subscription(merchant, customer).await? else {
            return Ok(None);
        };
        let Some(found) = self.mail_customers(merchant, &[customer], now).await?.pop() else {
            return Ok(None);
        };
        let code: Option<String> = sqlx::query_scalar(
            "SELECT code FROM referral_codes WHERE merchant_id = $1 AND customer_id = $2",
        )
        .bind(merchant.as_str())
        .bind(customer.key())
        .fetch_optional(&self.pool)
        .await?;
        let referral_code = code
            .map(|code| {
                ReferralCode::parse(&code)
                    .map_err(|_| StoreError::Corrupt(format!("referral code {code:?}")))
            })
            .transpose()?;
        Ok(Some(MemberPage {
            merchant_name: subscription.merchant_name,
            language: subscription.language,
            customer: found,
            referral_code,
        }))
    }
}
