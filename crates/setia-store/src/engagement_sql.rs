// The engagement queries both backends run, included by `sqlite.rs` and `postgres.rs`.

use setia_core::engagement::{EngagementProgram, FeedbackKind};
use setia_core::feedback::FeedbackComment;

use crate::engagement::*;
use crate::mail::OutboxKind;

const ANSWER_COLUMNS: &str = "a.id, a.request_id, a.customer_id, c.external_id, c.name, a.kind, \
     a.score, a.comment, a.answered_at_us, a.updated_at_us";

const COMPLAINT_COLUMNS: &str = "k.id AS complaint_id, k.status, k.note, k.resolved_by, \
     k.resolved_at_us, k.created_at_us, k.updated_at_us AS complaint_updated_at_us, \
     p.id AS purchase_id, p.amount_minor, p.occurred_at_us";

/// Complaints with their answer, customer and purchase.
const COMPLAINT_FROM: &str = "FROM complaints k JOIN feedback_answers a ON a.id = k.answer_id \
     JOIN customers c ON c.id = a.customer_id JOIN feedback_requests r ON r.id = a.request_id \
     JOIN purchases p ON p.id = r.purchase_id";

fn feedback_kind(text: &str) -> StoreResult<FeedbackKind> {
    FeedbackKind::parse(text).ok_or_else(|| StoreError::Corrupt(format!("feedback kind {text:?}")))
}

fn answer_from_row(row: &DbRow) -> StoreResult<FeedbackAnswer> {
    let score: i64 = row.try_get("score")?;
    Ok(FeedbackAnswer {
        id: row.try_get("id")?,
        request_id: row.try_get("request_id")?,
        customer_id: CustomerId::from_key(row.try_get("customer_id")?),
        customer_external_id: row.try_get("external_id")?,
        customer_name: row.try_get("name")?,
        kind: feedback_kind(&row.try_get::<String, _>("kind")?)?,
        score: u8::try_from(score)
            .map_err(|_| StoreError::Corrupt(format!("feedback score {score}")))?,
        comment: row.try_get("comment")?,
        answered_at: from_micros(row.try_get("answered_at_us")?)?,
        updated_at: from_micros(row.try_get("updated_at_us")?)?,
    })
}

fn complaint_from_row(row: &DbRow) -> StoreResult<Complaint> {
    let status: String = row.try_get("status")?;
    Ok(Complaint {
        id: row.try_get("complaint_id")?,
        status: ComplaintStatus::parse(&status)
            .ok_or_else(|| StoreError::Corrupt(format!("complaint status {status:?}")))?,
        note: row.try_get("note")?,
        resolved_by: row.try_get("resolved_by")?,
        resolved_at: row
            .try_get::<Option<i64>, _>("resolved_at_us")?
            .map(from_micros)
            .transpose()?,
        created_at: from_micros(row.try_get("created_at_us")?)?,
        updated_at: from_micros(row.try_get("complaint_updated_at_us")?)?,
        answer: answer_from_row(row)?,
        purchase_id: PurchaseId::from_key(row.try_get("purchase_id")?),
        purchase_amount: Money::from_minor(row.try_get("amount_minor")?),
        purchased_at: from_micros(row.try_get("occurred_at_us")?)?,
    })
}

async fn answer_of_request(
    conn: &mut DbConn,
    merchant: &MerchantId,
    request: i64,
) -> StoreResult<Option<FeedbackAnswer>> {
    let row = sqlx::query(&format!(
        "SELECT {ANSWER_COLUMNS} FROM feedback_answers a JOIN customers c ON c.id = a.customer_id \
         WHERE a.merchant_id = $1 AND a.request_id = $2"
    ))
    .bind(merchant.as_str())
    .bind(request)
    .fetch_optional(&mut *conn)
    .await?;
    row.as_ref().map(answer_from_row).transpose()
}

async fn complaint_by_id(
    conn: &mut DbConn,
    merchant: &MerchantId,
    complaint: i64,
) -> StoreResult<Option<Complaint>> {
    let row = sqlx::query(&format!(
        "SELECT {COMPLAINT_COLUMNS}, {ANSWER_COLUMNS} {COMPLAINT_FROM} \
         WHERE k.merchant_id = $1 AND k.id = $2"
    ))
    .bind(merchant.as_str())
    .bind(complaint)
    .fetch_optional(&mut *conn)
    .await?;
    row.as_ref().map(complaint_from_row).transpose()
}

const DAY_US: i64 = 86_400_000_000;

/// The local day of a day number (days since 1970-01-01 in local time).
fn day_of_number(number: i64) -> StoreResult<chrono::NaiveDate> {
    chrono::DateTime::from_timestamp(number.saturating_mul(86_400), 0)
        .map(|at| at.date_naive())
        .ok_or_else(|| StoreError::Corrupt(format!("day number {number}")))
}

fn count(value: i64) -> StoreResult<u64> {
    u64::try_from(value).map_err(|_| StoreError::Corrupt(format!("count {value}")))
}

/// The program in force (the stored one, or the defaults), read on `conn`: a transaction's
/// own when a write depends on it (a referral, a reward).
async fn engagement_in(conn: &mut DbConn, merchant: &MerchantId) -> StoreResult<EngagementProgram> {
    let stored: Option<Option<String>> =
        sqlx::query_scalar("SELECT engagement_program FROM merchants WHERE id = $1")
            .bind(merchant.as_str())
            .fetch_optional(&mut *conn)
            .await?;
    match stored.flatten() {
        None => Ok(EngagementProgram::standard()),
        Some(text) => EngagementProgram::from_toml(&text)
            .map_err(|e| StoreError::Corrupt(format!("merchant {merchant}: {e}"))),
    }
}

#[async_trait]
impl Engagement for ThisStore {
    async fn set_engagement_program(
        &self,
        merchant: &MerchantId,
        program: &EngagementProgram,
    ) -> StoreResult<()> {
        sqlx::query("UPDATE merchants SET engagement_program = $1 WHERE id = $2")
            .bind(program.to_toml())
            .bind(merchant.as_str())
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    async fn engagement_program(&self, merchant: &MerchantId) -> StoreResult<EngagementProgram> {
        let mut conn = self.pool.acquire().await?;
        engagement_in(&mut conn, merchant).await
    }

    async fn feedback_candidates(
        &self,
        merchant: &MerchantId,
        from: DateTime<Utc>,
        until: DateTime<Utc>,
        after: Option<(DateTime<Utc>, i64)>,
        limit: u32,
    ) -> StoreResult<Vec<FeedbackCandidate>> {
        let (after_at, after_id) = after.map_or((i64::MIN, i64::MIN), |(at, id)| (micros(at), id));
        // "Not asked yet" is a correlated count, not NOT EXISTS, as in `birthday_candidates`:
        // with stale statistics PostgreSQL plans NOT EXISTS as an anti join that reads all of
        // the merchant's requests for every purchase.
        let rows = sqlx::query(
            "SELECT p.id, p.customer_id, p.occurred_at_us, p.sandbox, \
             (c.email IS NOT NULL AND c.consent = TRUE AND c.unsubscribed_at_us IS NULL) AS reachable, \
             (SELECT MAX(r.due_at_us) FROM feedback_requests r \
              WHERE r.merchant_id = p.merchant_id AND r.customer_id = p.customer_id) AS last_request_us \
             FROM purchases p JOIN customers c ON c.id = p.customer_id \
             WHERE p.merchant_id = $1 AND p.occurred_at_us >= $2 AND p.occurred_at_us < $3 \
             AND p.refunded_at_us IS NULL AND p.customer_id IS NOT NULL \
             AND (p.occurred_at_us > $4 OR (p.occurred_at_us = $4 AND p.id > $5)) \
             AND (SELECT COUNT(*) FROM feedback_requests q WHERE q.merchant_id = p.merchant_id \
                  AND q.purchase_id = p.id) = 0 \
             ORDER BY p.occurred_at_us, p.id LIMIT $6",
        )
        .bind(merchant.as_str())
        .bind(micros(from))
        .bind(micros(until))
        .bind(after_at)
        .bind(after_id)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(FeedbackCandidate {
                    purchase: row.try_get("id")?,
                    customer: CustomerId::from_key(row.try_get("customer_id")?),
                    occurred_at: from_micros(row.try_get("occurred_at_us")?)?,
                    sandbox: row.try_get("sandbox")?,
                    reachable: row.try_get("reachable")?,
                    last_request_at: row
                        .try_get::<Option<i64>, _>("last_request_us")?
                        .map(from_micros)
                        .transpose()?,
                })
            })
            .collect()
    }

    async fn create_feedback_requests(
        &self,
        merchant: &MerchantId,
        requests: &[NewFeedbackRequest],
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<i64>> {
        let mut tx = self.begin_write().await?;
        let mut written = Vec::new();
        for chunk in requests.chunks(INSERT_CHUNK) {
            let mut insert = sqlx::QueryBuilder::<Db>::new(
                "INSERT INTO feedback_requests (merchant_id, customer_id, purchase_id, kind, due_at_us, \
                 created_at_us) ",
            );
            insert.push_values(chunk, |mut row, request| {
                row.push_bind(merchant.as_str())
                    .push_bind(request.customer.key())
                    .push_bind(request.purchase)
                    .push_bind(request.kind.as_str())
                    .push_bind(micros(request.due_at))
                    .push_bind(micros(now));
            });
            insert.push(
                " ON CONFLICT (merchant_id, purchase_id) DO NOTHING RETURNING id, customer_id, due_at_us",
            );
            let created: Vec<(i64, i64, i64)> =
                insert.build_query_as().fetch_all(&mut *tx).await?;
            if created.is_empty() {
                continue;
            }
            let mut outbox = sqlx::QueryBuilder::<Db>::new(
                "INSERT INTO outbox (merchant_id, kind, recipient, customer_id, period_key, due_at_us, \
                 next_attempt_at_us, created_at_us) ",
            );
            outbox.push_values(&created, |mut row, &(id, customer, due_us)| {
                row.push_bind(merchant.as_str())
                    .push_bind(OutboxKind::FeedbackRequest.as_str())
                    .push_bind(CustomerId::from_key(customer).to_string())
                    .push_bind(customer)
                    .push_bind(id.to_string())
                    .push_bind(due_us)
                    .push_bind(due_us)
                    .push_bind(micros(now));
            });
            outbox.push(" ON CONFLICT (merchant_id, kind, recipient, period_key) DO NOTHING");
            outbox.build().execute(&mut *tx).await?;
            written.extend(created.iter().map(|(id, _, _)| *id));
        }
        tx.commit().await?;
        written.sort_unstable();
        Ok(written)
    }

    async fn feedback_request(
        &self,
        merchant: &MerchantId,
        request: i64,
    ) -> StoreResult<Option<FeedbackRequest>> {
        let mut conn = self.pool.acquire().await?;
        let Some(row) = sqlx::query(
            "SELECT r.id, r.customer_id, c.external_id, c.name, r.purchase_id, p.amount_minor, \
             p.occurred_at_us, r.kind, r.due_at_us, \
             (SELECT o.sent_at_us FROM outbox o WHERE o.merchant_id = r.merchant_id \
              AND o.kind = 'feedback_request' AND o.recipient = 'cus_' || CAST(r.customer_id AS TEXT) \
              AND o.period_key = $3 \
              AND o.status = 'sent') AS asked_at_us \
             FROM feedback_requests r JOIN customers c ON c.id = r.customer_id \
             JOIN purchases p ON p.id = r.purchase_id \
             WHERE r.merchant_id = $1 AND r.id = $2 AND c.erased_at_us IS NULL",
        )
        .bind(merchant.as_str())
        .bind(request)
        .bind(request.to_string())
        .fetch_optional(&mut *conn)
        .await?
        else {
            return Ok(None);
        };
        Ok(Some(FeedbackRequest {
            id: row.try_get("id")?,
            customer: CustomerId::from_key(row.try_get("customer_id")?),
            customer_external_id: row.try_get("external_id")?,
            customer_name: row.try_get("name")?,
            purchase: row.try_get("purchase_id")?,
            purchase_amount: Money::from_minor(row.try_get("amount_minor")?),
            purchased_at: from_micros(row.try_get("occurred_at_us")?)?,
            kind: feedback_kind(&row.try_get::<String, _>("kind")?)?,
            due_at: from_micros(row.try_get("due_at_us")?)?,
            asked_at: row
                .try_get::<Option<i64>, _>("asked_at_us")?
                .map(from_micros)
                .transpose()?,
            answer: answer_of_request(&mut conn, merchant, request).await?,
        }))
    }

    async fn record_feedback_answer(
        &self,
        merchant: &MerchantId,
        new: NewAnswer<'_>,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<RecordedAnswer>> {
        let NewAnswer {
            request,
            score,
            comment,
            opens_complaint,
            alert_to,
        } = new;
        let mut tx = self.begin_write().await?;
        let Some((customer, kind)) = sqlx::query_as::<_, (i64, String)>(
            "SELECT r.customer_id, r.kind FROM feedback_requests r JOIN customers c ON c.id = r.customer_id \
             WHERE r.merchant_id = $1 AND r.id = $2 AND c.erased_at_us IS NULL",
        )
        .bind(merchant.as_str())
        .bind(request)
        .fetch_optional(&mut *tx)
        .await?
        else {
            return Ok(None);
        };
        let comment = comment.map(FeedbackComment::as_str);
        let changed = sqlx::query(
            "UPDATE feedback_answers SET score = $1, comment = $2, updated_at_us = $3 \
             WHERE merchant_id = $4 AND request_id = $5",
        )
        .bind(i64::from(score.get()))
        .bind(comment)
        .bind(micros(now))
        .bind(merchant.as_str())
        .bind(request)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if changed == 0 {
            sqlx::query(
                "INSERT INTO feedback_answers (merchant_id, request_id, customer_id, kind, score, comment, \
                 answered_at_us, updated_at_us) VALUES ($1, $2, $3, $4, $5, $6, $7, $7)",
            )
            .bind(merchant.as_str())
            .bind(request)
            .bind(customer)
            .bind(&kind)
            .bind(i64::from(score.get()))
            .bind(comment)
            .bind(micros(now))
            .execute(&mut *tx)
            .await?;
        }
        let answer = answer_of_request(&mut tx, merchant, request)
            .await?
            .ok_or_else(|| StoreError::Corrupt("an answer vanished after its write".into()))?;
        let opened_complaint = if opens_complaint {
            sqlx::query_scalar::<_, i64>(
                "INSERT INTO complaints (merchant_id, answer_id, customer_id, status, created_at_us, \
                 updated_at_us) VALUES ($1, $2, $3, 'open', $4, $4) \
                 ON CONFLICT (answer_id) DO NOTHING RETURNING id",
            )
            .bind(merchant.as_str())
            .bind(answer.id)
            .bind(customer)
            .bind(micros(now))
            .fetch_optional(&mut *tx)
            .await?
        } else {
            None
        };
        if let Some(complaint) = opened_complaint {
            for recipient in alert_to {
                sqlx::query(
                    "INSERT INTO outbox (merchant_id, kind, recipient, customer_id, period_key, due_at_us, \
                     next_attempt_at_us, created_at_us) VALUES ($1, $2, $3, $4, $5, $6, $6, $6) \
                     ON CONFLICT (merchant_id, kind, recipient, period_key) DO NOTHING",
                )
                .bind(merchant.as_str())
                .bind(OutboxKind::FeedbackAlert.as_str())
                .bind(recipient)
                .bind(customer)
                .bind(complaint.to_string())
                .bind(micros(now))
                .execute(&mut *tx)
                .await?;
            }
        }
        tx.commit().await?;
        Ok(Some(RecordedAnswer {
            answer,
            first: changed == 0,
            opened_complaint,
        }))
    }

    async fn feedback_answers(
        &self,
        merchant: &MerchantId,
        filter: AnswerFilter,
        page: PageRequest,
    ) -> StoreResult<Page<FeedbackAnswer>> {
        let rows = sqlx::query(&format!(
            "SELECT {ANSWER_COLUMNS} FROM feedback_answers a JOIN customers c ON c.id = a.customer_id \
             WHERE a.merchant_id = $1 AND ($2 < 0 OR a.score = $2) AND a.answered_at_us >= $3 \
             AND a.answered_at_us < $4 AND a.id < $5 AND ($7 < 0 OR a.customer_id = $7) \
             ORDER BY a.id DESC LIMIT $6"
        ))
        .bind(merchant.as_str())
        .bind(filter.score.map_or(-1, i64::from))
        .bind(filter.from.map_or(i64::MIN, micros))
        .bind(filter.until.map_or(i64::MAX, micros))
        .bind(page.before.unwrap_or(i64::MAX))
        .bind(i64::from(page.limit) + 1)
        .bind(filter.customer.map_or(-1, CustomerId::key))
        .fetch_all(&self.pool)
        .await?;
        let items = rows.iter().map(answer_from_row).collect::<StoreResult<Vec<_>>>()?;
        Ok(page_of(items, page, |a| a.id))
    }

    async fn complaint(
        &self,
        merchant: &MerchantId,
        complaint: i64,
    ) -> StoreResult<Option<Complaint>> {
        let mut conn = self.pool.acquire().await?;
        complaint_by_id(&mut conn, merchant, complaint).await
    }

    async fn complaints(
        &self,
        merchant: &MerchantId,
        status: Option<ComplaintStatus>,
        page: PageRequest,
    ) -> StoreResult<Page<Complaint>> {
        let rows = sqlx::query(&format!(
            "SELECT {COMPLAINT_COLUMNS}, {ANSWER_COLUMNS} {COMPLAINT_FROM} \
             WHERE k.merchant_id = $1 AND ($2 = '' OR k.status = $2) AND k.id < $3 \
             ORDER BY k.id DESC LIMIT $4"
        ))
        .bind(merchant.as_str())
        .bind(status.map_or("", ComplaintStatus::as_str))
        .bind(page.before.unwrap_or(i64::MAX))
        .bind(i64::from(page.limit) + 1)
        .fetch_all(&self.pool)
        .await?;
        let items = rows
            .iter()
            .map(complaint_from_row)
            .collect::<StoreResult<Vec<_>>>()?;
        Ok(page_of(items, page, |k| k.id))
    }

    async fn update_complaint(
        &self,
        merchant: &MerchantId,
        complaint: i64,
        status: ComplaintStatus,
        note: Option<&str>,
        by: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<Complaint>> {
        let mut tx = self.begin_write().await?;
        let resolved = status == ComplaintStatus::Resolved;
        let updated = sqlx::query(
            "UPDATE complaints SET status = $1, note = COALESCE($2, note), \
             resolved_by = CASE WHEN $3 THEN COALESCE(resolved_by, $4) ELSE NULL END, \
             resolved_at_us = CASE WHEN $3 THEN COALESCE(resolved_at_us, $5) ELSE NULL END, \
             updated_at_us = $5 WHERE merchant_id = $6 AND id = $7",
        )
        .bind(status.as_str())
        .bind(note)
        .bind(resolved)
        .bind(by)
        .bind(micros(now))
        .bind(merchant.as_str())
        .bind(complaint)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if updated == 0 {
            return Ok(None);
        }
        let found = complaint_by_id(&mut tx, merchant, complaint).await?;
        tx.commit().await?;
        Ok(found)
    }

    async fn daily_scores(
        &self,
        merchant: &MerchantId,
        from: DateTime<Utc>,
        until: DateTime<Utc>,
        utc_offset_seconds: i32,
    ) -> StoreResult<Vec<DailyScores>> {
        let rows: Vec<(i64, String, i64, i64)> = sqlx::query_as(
            "SELECT (answered_at_us + $4) / $5 AS day, kind, score, COUNT(*) FROM feedback_answers \
             WHERE merchant_id = $1 AND answered_at_us >= $2 AND answered_at_us < $3 \
             GROUP BY day, kind, score ORDER BY day, kind, score",
        )
        .bind(merchant.as_str())
        .bind(micros(from))
        .bind(micros(until))
        .bind(i64::from(utc_offset_seconds) * 1_000_000)
        .bind(DAY_US)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|(day, kind, score, answers)| {
                Ok(DailyScores {
                    day: day_of_number(day)?,
                    kind: feedback_kind(&kind)?,
                    score: u8::try_from(score)
                        .map_err(|_| StoreError::Corrupt(format!("feedback score {score}")))?,
                    answers: count(answers)?,
                })
            })
            .collect()
    }

    async fn daily_requests(
        &self,
        merchant: &MerchantId,
        from: DateTime<Utc>,
        until: DateTime<Utc>,
        utc_offset_seconds: i32,
    ) -> StoreResult<Vec<DailyRequests>> {
        let rows: Vec<(i64, i64, i64)> = sqlx::query_as(
            "SELECT (r.due_at_us + $4) / $5 AS day, COUNT(*), COUNT(a.id) FROM feedback_requests r \
             LEFT JOIN feedback_answers a ON a.request_id = r.id \
             WHERE r.merchant_id = $1 AND r.due_at_us >= $2 AND r.due_at_us < $3 \
             GROUP BY day ORDER BY day",
        )
        .bind(merchant.as_str())
        .bind(micros(from))
        .bind(micros(until))
        .bind(i64::from(utc_offset_seconds) * 1_000_000)
        .bind(DAY_US)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|(day, asked, answered)| {
                Ok(DailyRequests {
                    day: day_of_number(day)?,
                    asked: count(asked)?,
                    answered: count(answered)?,
                })
            })
            .collect()
    }

    async fn complaint_counts(
        &self,
        merchant: &MerchantId,
        from: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> StoreResult<ComplaintCounts> {
        let (opened, unresolved): (i64, i64) = sqlx::query_as(
            "SELECT \
             (SELECT COUNT(*) FROM complaints WHERE merchant_id = $1 AND created_at_us >= $2 \
              AND created_at_us < $3), \
             (SELECT COUNT(*) FROM complaints WHERE merchant_id = $1 AND status <> 'resolved')",
        )
        .bind(merchant.as_str())
        .bind(micros(from))
        .bind(micros(until))
        .fetch_one(&self.pool)
        .await?;
        Ok(ComplaintCounts {
            opened: count(opened)?,
            unresolved: count(unresolved)?,
        })
    }

    async fn customers_with_open_complaints(
        &self,
        merchant: &MerchantId,
        customers: &[CustomerId],
    ) -> StoreResult<HashSet<CustomerId>> {
        let mut open = HashSet::new();
        for chunk in customers.chunks(INSERT_CHUNK) {
            let mut query = sqlx::QueryBuilder::<Db>::new(
                "SELECT DISTINCT customer_id FROM complaints WHERE merchant_id = ",
            );
            query
                .push_bind(merchant.as_str())
                .push(" AND status <> 'resolved' AND customer_id IN (");
            let mut list = query.separated(", ");
            for customer in chunk {
                list.push_bind(customer.key());
            }
            query.push(")");
            for key in query.build_query_scalar::<i64>().fetch_all(&self.pool).await? {
                open.insert(CustomerId::from_key(key));
            }
        }
        Ok(open)
    }
}
