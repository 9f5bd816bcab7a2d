// The referral queries both backends run, included by `sqlite.rs` and `postgres.rs`.

use setia_core::referral::{
    qualification, referral_decision, reward_month, FirstPaymentFacts, NewReferralFacts, Party,
    Qualification, ReferralCode, ReferralStatus,
};

use crate::referral::*;

const REFERRAL_COLUMNS: &str = "r.id, r.advocate_id, a.external_id AS advocate_external_id, \
     a.name AS advocate_name, r.friend_id, f.external_id AS friend_external_id, \
     f.name AS friend_name, r.via, r.referred_at_us, r.status, r.reason, r.purchase_id, \
     p.amount_minor AS purchase_amount_minor, r.qualified_at_us, r.reward_due_at_us, \
     r.rewarded_at_us, r.points";

const REFERRAL_FROM: &str = "referrals r JOIN customers a ON a.id = r.advocate_id \
     JOIN customers f ON f.id = r.friend_id LEFT JOIN purchases p ON p.id = r.purchase_id";

/// How many times a code is derived again when the one derived belongs to someone else.
const CODE_ATTEMPTS: u32 = 8;

fn referral_from_row(row: &DbRow) -> StoreResult<Referral> {
    let optional_time = |column: &str| -> StoreResult<Option<DateTime<Utc>>> {
        row.try_get::<Option<i64>, _>(column)?
            .map(from_micros)
            .transpose()
    };
    let status: String = row.try_get("status")?;
    let reason: Option<String> = row.try_get("reason")?;
    let via: String = row.try_get("via")?;
    Ok(Referral {
        id: row.try_get("id")?,
        advocate: ReferralParty {
            id: CustomerId::from_key(row.try_get("advocate_id")?),
            external_id: row.try_get("advocate_external_id")?,
            name: row.try_get("advocate_name")?,
        },
        friend: ReferralParty {
            id: CustomerId::from_key(row.try_get("friend_id")?),
            external_id: row.try_get("friend_external_id")?,
            name: row.try_get("friend_name")?,
        },
        via: match via.as_str() {
            "order" => ReferralVia::Order,
            "customer" => ReferralVia::Customer,
            "import" => ReferralVia::Import,
            other => return Err(StoreError::Corrupt(format!("referral via {other:?}"))),
        },
        referred_at: from_micros(row.try_get("referred_at_us")?)?,
        status: status_str(&status)
            .ok_or_else(|| StoreError::Corrupt(format!("referral status {status:?}")))?,
        reason: reason
            .map(|r| reason_str(&r).ok_or_else(|| StoreError::Corrupt(format!("referral reason {r:?}"))))
            .transpose()?,
        purchase_id: row
            .try_get::<Option<i64>, _>("purchase_id")?
            .map(setia_core::PurchaseId::from_key),
        purchase_amount: row
            .try_get::<Option<i64>, _>("purchase_amount_minor")?
            .map(Money::from_minor),
        qualified_at: optional_time("qualified_at_us")?,
        reward_due_at: optional_time("reward_due_at_us")?,
        rewarded_at: optional_time("rewarded_at_us")?,
        points: row.try_get("points")?,
    })
}

/// Records the referral a customer or order write carries, in that write's transaction:
/// pending when it stands, refused with the rule's reason when not. The same friend and
/// advocate again (a replayed write) changes nothing. A code that is not this merchant's,
/// or a program that is off, is [`StoreError::BadReferral`] and the write fails whole.
async fn refer(
    conn: &mut DbConn,
    merchant: &MerchantId,
    friend: i64,
    referred_by: &ReferredBy,
    now: DateTime<Utc>,
) -> StoreResult<()> {
    if !engagement_in(conn, merchant).await?.referral.enabled {
        return Err(StoreError::BadReferral(
            "referral_code: this shop's referral program is off".into(),
        ));
    }
    let code = &referred_by.code;
    let advocate: Option<i64> = sqlx::query_scalar(
        "SELECT customer_id FROM referral_codes WHERE merchant_id = $1 AND code = $2",
    )
    .bind(merchant.as_str())
    .bind(code.as_str())
    .fetch_optional(&mut *conn)
    .await?;
    let Some(advocate) = advocate else {
        return Err(StoreError::BadReferral(format!(
            "referral_code {code} is not a referral code of this shop"
        )));
    };
    let known: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM referrals WHERE merchant_id = $1 AND friend_id = $2 AND advocate_id = $3",
    )
    .bind(merchant.as_str())
    .bind(friend)
    .bind(advocate)
    .fetch_one(&mut *conn)
    .await?;
    if known > 0 {
        return Ok(());
    }
    let people = sqlx::query(
        "SELECT id, email, virtual_account, created_at_us FROM customers WHERE merchant_id = $1 AND id IN ($2, $3)",
    )
    .bind(merchant.as_str())
    .bind(advocate)
    .bind(friend)
    .fetch_all(&mut *conn)
    .await?;
    let mut parties = HashMap::new();
    for row in &people {
        parties.insert(
            row.try_get::<i64, _>("id")?,
            (
                row.try_get::<Option<String>, _>("email")?,
                row.try_get::<Option<String>, _>("virtual_account")?,
                row.try_get::<i64, _>("created_at_us")?,
            ),
        );
    }
    let party = |id: i64| {
        parties
            .get(&id)
            .ok_or_else(|| StoreError::Corrupt(format!("customer {id} vanished")))
    };
    let (advocate_row, friend_row) = (party(advocate)?, party(friend)?);
    let friend_purchases: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM purchases WHERE merchant_id = $1 AND customer_id = $2",
    )
    .bind(merchant.as_str())
    .bind(friend)
    .fetch_one(&mut *conn)
    .await?;
    let standing: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM referrals WHERE merchant_id = $1 AND friend_id = $2 AND status <> 'refused'",
    )
    .bind(merchant.as_str())
    .bind(friend)
    .fetch_one(&mut *conn)
    .await?;
    let decision = referral_decision(&NewReferralFacts {
        advocate: Party {
            customer: CustomerId::from_key(advocate),
            email: advocate_row.0.as_deref(),
            virtual_account: advocate_row.1.as_deref(),
        },
        friend: Party {
            customer: CustomerId::from_key(friend),
            email: friend_row.0.as_deref(),
            virtual_account: friend_row.1.as_deref(),
        },
        friend_created_at: from_micros(friend_row.2)?,
        friend_purchases: friend_purchases.max(0) as u64,
        friend_referred: standing > 0,
        referred_at: now,
    });
    let (status, reason) = match decision {
        Ok(()) => (ReferralStatus::Pending, None),
        Err(reason) => (ReferralStatus::Refused, Some(reason.as_str())),
    };
    sqlx::query(
        "INSERT INTO referrals (merchant_id, advocate_id, friend_id, via, referred_at_us, status, reason, updated_at_us) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $5)",
    )
    .bind(merchant.as_str())
    .bind(advocate)
    .bind(friend)
    .bind(referred_by.via.as_str())
    .bind(micros(now))
    .bind(status.as_str())
    .bind(reason)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// A verified payment of the merchant's own world, attributed to `friend`, decides their
/// pending referral (if they have one) in the ledger's transaction.
#[allow(clippy::too_many_arguments)]
async fn qualify_referral(
    conn: &mut DbConn,
    merchant: &MerchantId,
    zone: MerchantTimezone,
    friend: i64,
    purchase: i64,
    amount: Money,
    payer_name: Option<&str>,
    now: DateTime<Utc>,
) -> StoreResult<()> {
    let pending: Option<(i64, i64)> = sqlx::query_as(
        "SELECT id, advocate_id FROM referrals WHERE merchant_id = $1 AND friend_id = $2 AND status = 'pending'",
    )
    .bind(merchant.as_str())
    .bind(friend)
    .fetch_optional(&mut *conn)
    .await?;
    let Some((referral, advocate)) = pending else {
        return Ok(());
    };
    let settings = engagement_in(conn, merchant).await?.referral;
    if !settings.enabled {
        return Ok(());
    }
    let earlier: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM purchases WHERE merchant_id = $1 AND customer_id = $2 AND id <> $3 \
         AND occurred_at_us <= (SELECT occurred_at_us FROM purchases WHERE id = $3)",
    )
    .bind(merchant.as_str())
    .bind(friend)
    .bind(purchase)
    .fetch_one(&mut *conn)
    .await?;
    let advocate_names: Vec<String> = sqlx::query_scalar(
        "SELECT payer_name FROM customer_payer_names WHERE merchant_id = $1 AND customer_id = $2",
    )
    .bind(merchant.as_str())
    .bind(advocate)
    .fetch_all(&mut *conn)
    .await?;
    let (month_start, month_end) = reward_month(zone, now);
    let this_month: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM referrals WHERE merchant_id = $1 AND advocate_id = $2 \
         AND status IN ('qualified', 'rewarded') AND qualified_at_us >= $3 AND qualified_at_us < $4",
    )
    .bind(merchant.as_str())
    .bind(advocate)
    .bind(micros(month_start))
    .bind(micros(month_end))
    .fetch_one(&mut *conn)
    .await?;
    let decided = qualification(
        &settings,
        &FirstPaymentFacts {
            amount,
            payer_name,
            earlier_purchases: earlier.max(0) as u64,
            advocate_payer_names: &advocate_names,
            advocate_rewards_this_month: u32::try_from(this_month).unwrap_or(u32::MAX),
        },
        now,
    );
    let (status, reason, due) = match decided {
        Qualification::Qualified { reward_due_at } => {
            (ReferralStatus::Qualified, None, Some(micros(reward_due_at)))
        }
        Qualification::Refused(reason) => (ReferralStatus::Refused, Some(reason.as_str()), None),
    };
    sqlx::query(
        "UPDATE referrals SET status = $3, reason = $4, purchase_id = $5, qualified_at_us = $6, \
         reward_due_at_us = $7, updated_at_us = $6 WHERE merchant_id = $1 AND id = $2",
    )
    .bind(merchant.as_str())
    .bind(referral)
    .bind(status.as_str())
    .bind(reason)
    .bind(purchase)
    .bind(micros(now))
    .bind(due)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// A refund of the payment that qualified a referral cancels it while its reward waits.
async fn cancel_referral_of_refund(
    conn: &mut DbConn,
    merchant: &MerchantId,
    purchase: i64,
    now: DateTime<Utc>,
) -> StoreResult<()> {
    sqlx::query(
        "UPDATE referrals SET status = 'cancelled', reason = 'refunded', updated_at_us = $3 \
         WHERE merchant_id = $1 AND purchase_id = $2 AND status = 'qualified'",
    )
    .bind(merchant.as_str())
    .bind(purchase)
    .bind(micros(now))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

#[async_trait]
impl Referrals for ThisStore {
    async fn referral_codes(
        &self,
        merchant: &MerchantId,
        secret: &MailSecret,
        customers: &[CustomerId],
        now: DateTime<Utc>,
    ) -> StoreResult<HashMap<CustomerId, ReferralCode>> {
        let stored_codes = |rows: Vec<(i64, String)>| -> StoreResult<HashMap<CustomerId, ReferralCode>> {
            rows.into_iter()
                .map(|(customer, code)| {
                    let code = ReferralCode::parse(&code)
                        .map_err(|_| StoreError::Corrupt(format!("referral code {code:?}")))?;
                    Ok((CustomerId::from_key(customer), code))
                })
                .collect()
        };
        let mut codes = HashMap::new();
        let keys: Vec<i64> = customers.iter().map(|c| c.key()).collect();
        let mut conn = self.pool.acquire().await?;
        for chunk in keys.chunks(INSERT_CHUNK) {
            let sql = format!(
                "SELECT customer_id, code FROM referral_codes WHERE merchant_id = $1 AND customer_id IN ({})",
                placeholders_after_merchant(chunk.len())
            );
            let mut query = sqlx::query_as::<_, (i64, String)>(&sql).bind(merchant.as_str());
            for key in chunk {
                query = query.bind(*key);
            }
            let rows = query.fetch_all(&mut *conn).await?;
            codes.extend(stored_codes(rows)?);
        }
        drop(conn);
        let missing: Vec<CustomerId> = customers
            .iter()
            .filter(|c| !codes.contains_key(c))
            .copied()
            .collect();
        if missing.is_empty() {
            return Ok(codes);
        }
        let mut tx = self.begin_write().await?;
        for customer in missing {
            for attempt in 0..CODE_ATTEMPTS {
                let code = ReferralCode::derive(secret, merchant, customer, attempt);
                sqlx::query(
                    "INSERT INTO referral_codes (merchant_id, customer_id, code, created_at_us) \
                     SELECT $1, $2, $3, $4 WHERE EXISTS \
                     (SELECT 1 FROM customers WHERE merchant_id = $1 AND id = $2) \
                     ON CONFLICT DO NOTHING",
                )
                .bind(merchant.as_str())
                .bind(customer.key())
                .bind(code.as_str())
                .bind(micros(now))
                .execute(&mut *tx)
                .await?;
                let held: Option<String> = sqlx::query_scalar(
                    "SELECT code FROM referral_codes WHERE merchant_id = $1 AND customer_id = $2",
                )
                .bind(merchant.as_str())
                .bind(customer.key())
                .fetch_optional(&mut *tx)
                .await?;
                if let Some(held) = held {
                    codes.extend(stored_codes(vec![(customer.key(), held)])?);
                    break;
                }
                let exists: i64 = sqlx::query_scalar(
                    "SELECT COUNT(*) FROM customers WHERE merchant_id = $1 AND id = $2",
                )
                .bind(merchant.as_str())
                .bind(customer.key())
                .fetch_one(&mut *tx)
                .await?;
                if exists == 0 {
                    break;
                }
            }
        }
        tx.commit().await?;
        Ok(codes)
    }

    async fn referral_link(&self, code: &ReferralCode) -> StoreResult<Option<ReferralLink>> {
        let row = sqlx::query(
            "SELECT k.merchant_id, m.name AS merchant_name, m.sandbox, k.customer_id, c.name, \
             c.consent, c.unsubscribed_at_us FROM referral_codes k \
             JOIN merchants m ON m.id = k.merchant_id JOIN customers c ON c.id = k.customer_id \
             WHERE k.code = $1 AND c.erased_at_us IS NULL",
        )
        .bind(code.as_str())
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let merchant: String = row.try_get("merchant_id")?;
        Ok(Some(ReferralLink {
            merchant: MerchantId::parse(&merchant)
                .map_err(|e| StoreError::Corrupt(e.to_string()))?,
            merchant_name: row.try_get("merchant_name")?,
            sandbox: row.try_get("sandbox")?,
            advocate: CustomerId::from_key(row.try_get("customer_id")?),
            advocate_name: row.try_get("name")?,
            advocate_active: row.try_get::<bool, _>("consent")?
                && row.try_get::<Option<i64>, _>("unsubscribed_at_us")?.is_none(),
        }))
    }

    async fn referrals(
        &self,
        merchant: &MerchantId,
        status: Option<ReferralStatus>,
        page: PageRequest,
    ) -> StoreResult<Page<Referral>> {
        let rows = sqlx::query(&format!(
            "SELECT {REFERRAL_COLUMNS} FROM {REFERRAL_FROM} WHERE r.merchant_id = $1 AND r.id < $2 \
             AND ($4 = '' OR r.status = $4) ORDER BY r.id DESC LIMIT $3"
        ))
        .bind(merchant.as_str())
        .bind(page.before.unwrap_or(i64::MAX))
        .bind(i64::from(page.limit) + 1)
        .bind(status.map_or("", ReferralStatus::as_str))
        .fetch_all(&self.pool)
        .await?;
        let items = rows
            .iter()
            .map(referral_from_row)
            .collect::<StoreResult<Vec<_>>>()?;
        Ok(page_of(items, page, |r| r.id))
    }

    async fn referral(&self, merchant: &MerchantId, id: i64) -> StoreResult<Option<Referral>> {
        let row = sqlx::query(&format!(
            "SELECT {REFERRAL_COLUMNS} FROM {REFERRAL_FROM} WHERE r.merchant_id = $1 AND r.id = $2"
        ))
        .bind(merchant.as_str())
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(referral_from_row).transpose()
    }

    async fn referral_summary(
        &self,
        merchant: &MerchantId,
        top: u32,
    ) -> StoreResult<ReferralSummary> {
        let mut conn = self.pool.acquire().await?;
        let counted: Vec<(String, Option<String>, i64)> = sqlx::query_as(
            "SELECT status, reason, COUNT(*) FROM referrals WHERE merchant_id = $1 \
             GROUP BY status, reason ORDER BY status, reason",
        )
        .bind(merchant.as_str())
        .fetch_all(&mut *conn)
        .await?;
        let counts = counted
            .into_iter()
            .map(|(status, reason, count)| {
                Ok(ReferralCount {
                    status: status_str(&status)
                        .ok_or_else(|| StoreError::Corrupt(format!("referral status {status:?}")))?,
                    reason: reason
                        .map(|r| {
                            reason_str(&r)
                                .ok_or_else(|| StoreError::Corrupt(format!("referral reason {r:?}")))
                        })
                        .transpose()?,
                    count: count.max(0) as u64,
                })
            })
            .collect::<StoreResult<Vec<_>>>()?;
        // Verified payments: from a bank mutation, not refunded, of the merchant's own world.
        let verified = "p.merchant_id = r.merchant_id AND p.customer_id = r.friend_id \
             AND p.mutation_id IS NOT NULL AND p.refunded_at_us IS NULL AND p.sandbox = m.sandbox";
        let (referred_customers, referred_revenue, referred_payments): (i64, i64, i64) =
            sqlx::query_as(&format!(
                "SELECT COUNT(DISTINCT r.friend_id), \
                 CAST(COALESCE(SUM(p.amount_minor), 0) AS BIGINT), COUNT(p.id) \
                 FROM referrals r JOIN merchants m ON m.id = r.merchant_id \
                 LEFT JOIN purchases p ON {verified} \
                 WHERE r.merchant_id = $1 AND r.status IN ('qualified', 'rewarded')"
            ))
            .bind(merchant.as_str())
            .fetch_one(&mut *conn)
            .await?;
        let advocates = sqlx::query(&format!(
            "SELECT r.advocate_id, a.external_id, a.name, \
             SUM(CASE WHEN r.status = 'rewarded' THEN 1 ELSE 0 END) AS rewarded, \
             SUM(CASE WHEN r.status = 'qualified' THEN 1 ELSE 0 END) AS qualified, \
             CAST(COALESCE(SUM(r.points), 0) AS BIGINT) AS points, \
             CAST(COALESCE(SUM((SELECT SUM(p.amount_minor) FROM purchases p, merchants m \
               WHERE m.id = r.merchant_id AND {verified})), 0) AS BIGINT) AS revenue \
             FROM referrals r JOIN customers a ON a.id = r.advocate_id \
             WHERE r.merchant_id = $1 AND r.status IN ('qualified', 'rewarded') \
             GROUP BY r.advocate_id, a.external_id, a.name \
             ORDER BY rewarded DESC, qualified DESC, revenue DESC, r.advocate_id LIMIT $2"
        ))
        .bind(merchant.as_str())
        .bind(i64::from(top))
        .fetch_all(&mut *conn)
        .await?;
        let top_advocates = advocates
            .iter()
            .map(|row| {
                Ok(TopAdvocate {
                    advocate: ReferralParty {
                        id: CustomerId::from_key(row.try_get("advocate_id")?),
                        external_id: row.try_get("external_id")?,
                        name: row.try_get("name")?,
                    },
                    rewarded: row.try_get::<i64, _>("rewarded")?.max(0) as u64,
                    qualified: row.try_get::<i64, _>("qualified")?.max(0) as u64,
                    points: row.try_get("points")?,
                    friends_revenue: Money::from_minor(row.try_get("revenue")?),
                })
            })
            .collect::<StoreResult<Vec<_>>>()?;
        Ok(ReferralSummary {
            counts,
            top_advocates,
            referred_customers: referred_customers.max(0) as u64,
            referred_revenue: Money::from_minor(referred_revenue),
            referred_payments: referred_payments.max(0) as u64,
        })
    }

    async fn customer_referrals(
        &self,
        merchant: &MerchantId,
        customer: CustomerId,
    ) -> StoreResult<CustomerReferrals> {
        let mut conn = self.pool.acquire().await?;
        let code: Option<String> = sqlx::query_scalar(
            "SELECT code FROM referral_codes WHERE merchant_id = $1 AND customer_id = $2",
        )
        .bind(merchant.as_str())
        .bind(customer.key())
        .fetch_optional(&mut *conn)
        .await?;
        let rows = sqlx::query(&format!(
            "SELECT {REFERRAL_COLUMNS} FROM {REFERRAL_FROM} WHERE r.merchant_id = $1 \
             AND (r.friend_id = $2 OR r.advocate_id = $2) ORDER BY r.id DESC"
        ))
        .bind(merchant.as_str())
        .bind(customer.key())
        .fetch_all(&mut *conn)
        .await?;
        let mut referrals = CustomerReferrals {
            code,
            ..CustomerReferrals::default()
        };
        for row in &rows {
            let referral = referral_from_row(row)?;
            if referral.friend.id == customer {
                // The referral that stands (or the latest refused one when none does).
                let stands = referral.status != ReferralStatus::Refused.as_str();
                let keep = match &referrals.referred_by {
                    None => true,
                    Some(kept) => stands && kept.status == ReferralStatus::Refused.as_str(),
                };
                if keep {
                    referrals.referred_by = Some(referral);
                }
            } else {
                referrals.referred.push(referral);
            }
        }
        Ok(referrals)
    }

    async fn reward_due_referrals(
        &self,
        merchant: &MerchantId,
        points: u32,
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<PaidReward>> {
        // Most passes find nothing due: a read says so without taking the write lock.
        let any_due: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM referrals WHERE merchant_id = $1 AND status = 'qualified' \
             AND reward_due_at_us <= $2",
        )
        .bind(merchant.as_str())
        .bind(micros(now))
        .fetch_one(&self.pool)
        .await?;
        if any_due == 0 {
            return Ok(Vec::new());
        }
        let mut tx = self.begin_write().await?;
        let due: Vec<(i64, i64, i64)> = sqlx::query_as(
            "SELECT r.id, r.advocate_id, r.friend_id FROM referrals r WHERE r.merchant_id = $1 \
             AND r.status = 'qualified' AND r.reward_due_at_us <= $2 ORDER BY r.id",
        )
        .bind(merchant.as_str())
        .bind(micros(now))
        .fetch_all(&mut *tx)
        .await?;
        let mut paid = Vec::with_capacity(due.len());
        for (referral, advocate, friend) in due {
            // The status is taken first: a second worker paying the same referral at the same
            // time waits for this row, then finds it rewarded and pays nothing.
            let taken = sqlx::query(
                "UPDATE referrals SET status = 'rewarded', rewarded_at_us = $3, points = $4, updated_at_us = $3 \
                 WHERE merchant_id = $1 AND id = $2 AND status = 'qualified'",
            )
            .bind(merchant.as_str())
            .bind(referral)
            .bind(micros(now))
            .bind(i64::from(points))
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if taken == 0 {
                continue;
            }
            let source = format!("referral:{referral}");
            let reason = format!(
                "referral: {}'s first payment",
                CustomerId::from_key(friend)
            );
            insert_points(
                &mut tx,
                merchant,
                advocate,
                now,
                i64::from(points),
                "bonus",
                &reason,
                &source,
                now,
            )
            .await?;
            sqlx::query(
                "INSERT INTO outbox (merchant_id, kind, recipient, customer_id, period_key, due_at_us, \
                 next_attempt_at_us, created_at_us) VALUES ($1, 'referral_reward', $2, $3, $4, $5, $5, $5) \
                 ON CONFLICT (merchant_id, kind, recipient, period_key) DO NOTHING",
            )
            .bind(merchant.as_str())
            .bind(CustomerId::from_key(advocate).to_string())
            .bind(advocate)
            .bind(referral.to_string())
            .bind(micros(now))
            .execute(&mut *tx)
            .await?;
            paid.push(PaidReward {
                referral,
                advocate: CustomerId::from_key(advocate),
                points: i64::from(points),
            });
        }
        tx.commit().await?;
        Ok(paid)
    }
}
