// The ledger queries both backends run, included by `sqlite.rs` and `postgres.rs` after
// `shared.rs`. Backend differences come in as `CLAIM_INBOX_SQL`, `FOR_UPDATE` and
// `begin_write`.

use chrono::{DateTime, TimeDelta};
use setia_core::attribution::{
    payer_name_in, payment_code_from_random, payment_codes_in, AttributionMethod,
};
use setia_core::loyalty::{balance_at, checked_balance_at, Effect, LoyaltyProgram, PointsMovement};
use setia_core::moota::Mutation;
use setia_core::{PayerName, PurchaseId};

use crate::ledger::*;

type DbConn = <Db as sqlx::Database>::Connection;

/// What the pipeline needs to know of a merchant.
struct MerchantRules {
    sandbox: bool,
    zone: MerchantTimezone,
    program: LoyaltyProgram,
}

async fn merchant_rules(conn: &mut DbConn, merchant: &MerchantId) -> StoreResult<MerchantRules> {
    let row = sqlx::query("SELECT sandbox, timezone, loyalty_program FROM merchants WHERE id = $1")
        .bind(merchant.as_str())
        .fetch_one(&mut *conn)
        .await?;
    let zone: String = row.try_get("timezone")?;
    let program: Option<String> = row.try_get("loyalty_program")?;
    Ok(MerchantRules {
        sandbox: row.try_get("sandbox")?,
        zone: MerchantTimezone::parse(&zone).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        program: match program {
            // Stored programs from before the bounds are read within them, not refused.
            Some(text) => LoyaltyProgram::from_stored_toml(&text)
                .map_err(|e| StoreError::Corrupt(e.to_string()))?,
            None => LoyaltyProgram::default(),
        },
    })
}

const PURCHASE_COLUMNS: &str =
    "p.id, c.external_id AS customer_external_id, p.occurred_at_us, p.amount_minor, \
     p.source, p.attribution, p.payer_name, p.mutation_id, p.sandbox, p.refunded_at_us";

fn purchase_from_row(row: &DbRow) -> StoreResult<PurchaseRow> {
    Ok(PurchaseRow {
        id: PurchaseId::from_key(row.try_get("id")?),
        customer_external_id: row.try_get("customer_external_id")?,
        occurred_at: from_micros(row.try_get("occurred_at_us")?)?,
        amount: Money::from_minor(row.try_get("amount_minor")?),
        source: row.try_get("source")?,
        attribution: row.try_get("attribution")?,
        payer_name: row.try_get("payer_name")?,
        mutation_id: row.try_get("mutation_id")?,
        sandbox: row.try_get("sandbox")?,
        refunded_at: row
            .try_get::<Option<i64>, _>("refunded_at_us")?
            .map(from_micros)
            .transpose()?,
    })
}

async fn purchase_by_id(
    conn: &mut DbConn,
    merchant: &MerchantId,
    id: i64,
) -> StoreResult<Option<PurchaseRow>> {
    let row = sqlx::query(&format!(
        "SELECT {PURCHASE_COLUMNS} FROM purchases p LEFT JOIN customers c ON c.id = p.customer_id \
         WHERE p.merchant_id = $1 AND p.id = $2"
    ))
    .bind(merchant.as_str())
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?;
    row.as_ref().map(purchase_from_row).transpose()
}

async fn customer_id_of(
    conn: &mut DbConn,
    merchant: &MerchantId,
    external_id: &ExternalId,
) -> StoreResult<Option<i64>> {
    Ok(
        sqlx::query_scalar("SELECT id FROM customers WHERE merchant_id = $1 AND external_id = $2")
            .bind(merchant.as_str())
            .bind(external_id.as_str())
            .fetch_optional(&mut *conn)
            .await?,
    )
}

/// A customer's spend that counts for tiers: attributed, of the merchant's own world (see
/// `COUNTS`), not refunded, in
/// `[from, until)`, leaving out one purchase (the one being awarded).
async fn spend_between(
    conn: &mut DbConn,
    merchant: &MerchantId,
    customer: i64,
    from: DateTime<Utc>,
    until: DateTime<Utc>,
    except: i64,
) -> StoreResult<Money> {
    let spend: i64 = sqlx::query_scalar(
        "SELECT CAST(COALESCE(SUM(amount_minor), 0) AS BIGINT) FROM purchases \
         WHERE merchant_id = $1 AND customer_id = $2 AND sandbox = (SELECT m.sandbox FROM merchants m WHERE m.id = $1) AND refunded_at_us IS NULL \
         AND occurred_at_us >= $3 AND occurred_at_us < $4 AND id <> $5",
    )
    .bind(merchant.as_str())
    .bind(customer)
    .bind(micros(from))
    .bind(micros(until))
    .bind(except)
    .fetch_one(&mut *conn)
    .await?;
    Ok(Money::from_minor(spend))
}

/// `total + points`; past i64 is an error. The program's bounds keep it out of reach for
/// what setia writes, so only foreign data can get there.
fn add_points(total: i64, points: i64, what: &str) -> StoreResult<i64> {
    total
        .checked_add(points)
        .ok_or_else(|| StoreError::Corrupt(format!("the points of {what} overflow i64")))
}

/// A customer's balance as of `now`; one past i64 is an error.
fn points_balance(
    movements: &[PointsMovement],
    now: DateTime<Utc>,
    program: &LoyaltyProgram,
    customer: i64,
) -> StoreResult<i64> {
    checked_balance_at(movements, now, program.expiry())
        .map(|(balance, _)| balance)
        .map_err(|e| StoreError::Corrupt(format!("customer {customer}: {e}")))
}

async fn insert_points(
    conn: &mut DbConn,
    merchant: &MerchantId,
    customer: i64,
    at: DateTime<Utc>,
    points: i64,
    kind: &str,
    reason: &str,
    source: &str,
    now: DateTime<Utc>,
) -> StoreResult<bool> {
    let inserted = sqlx::query(
        "INSERT INTO points_ledger (merchant_id, customer_id, occurred_at_us, points, kind, reason, source, created_at_us) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (merchant_id, kind, source) DO NOTHING",
    )
    .bind(merchant.as_str())
    .bind(customer)
    .bind(micros(at))
    .bind(points)
    .bind(kind)
    .bind(reason)
    .bind(source)
    .bind(micros(now))
    .execute(&mut *conn)
    .await?
    .rows_affected();
    Ok(inserted > 0)
}

/// Earn points (and the every-n-th bonus) for an attributed purchase, as of the purchase's
/// time: the tier is what the customer spent in the year before it. Idempotent.
/// Crosses into the tiers the purchase reaches ([`cross_tiers`]) in the same go; the
/// entry points count in what it returns.
#[allow(clippy::too_many_arguments)]
async fn award_purchase_points(
    conn: &mut DbConn,
    merchant: &MerchantId,
    rules: &MerchantRules,
    customer: i64,
    purchase: i64,
    amount: Money,
    at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> StoreResult<i64> {
    let source = PurchaseId::from_key(purchase).to_string();
    // An erased customer's anonymous row keeps a sale (an order placed before the erasure,
    // paid after) but earns nothing: nobody can redeem it.
    let erased: bool = sqlx::query_scalar(
        "SELECT erased_at_us IS NOT NULL FROM customers WHERE merchant_id = $1 AND id = $2",
    )
    .bind(merchant.as_str())
    .bind(customer)
    .fetch_one(&mut *conn)
    .await?;
    if erased {
        return Ok(0);
    }
    // A date near chrono's first one (a webhook or import typo) has no year before it.
    let year_before = at.checked_sub_signed(TimeDelta::days(365)).ok_or_else(|| {
        StoreError::Corrupt(format!(
            "purchase {source} at {at} has no 365 days before it to set its tier"
        ))
    })?;
    let trailing = spend_between(conn, merchant, customer, year_before, at, purchase).await?;
    let program = &rules.program;
    let tier = program.tier_for(trailing);
    let mut awarded = 0;
    let points = program.points_for(amount, tier);
    if points > 0 {
        let reason = format!("purchase {source} at tier {}", tier.as_str());
        if insert_points(
            conn, merchant, customer, at, points, "earn", &reason, &source, now,
        )
        .await?
        {
            awarded = add_points(awarded, points, &source)?;
        }
    }
    let number: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM purchases WHERE merchant_id = $1 AND customer_id = $2 AND sandbox = (SELECT m.sandbox FROM merchants m WHERE m.id = $1) \
         AND refunded_at_us IS NULL AND (occurred_at_us < $3 OR (occurred_at_us = $3 AND id <= $4))",
    )
    .bind(merchant.as_str())
    .bind(customer)
    .bind(micros(at))
    .bind(purchase)
    .fetch_one(&mut *conn)
    .await?;
    if let Some(bonus) = program.bonus_for(number as u64) {
        let reason = format!("bonus for purchase number {number}");
        if insert_points(
            conn, merchant, customer, at, bonus, "bonus", &reason, &source, now,
        )
        .await?
        {
            awarded = add_points(awarded, bonus, &source)?;
        }
    }
    let entry_points = cross_tiers(
        conn, merchant, rules, customer, purchase, amount, at, trailing, now,
    )
    .await?;
    add_points(awarded, entry_points, &source)
}

/// Whether a customer may be enqueued email at all: an address and consent.
async fn contactable(conn: &mut DbConn, merchant: &MerchantId, customer: i64) -> StoreResult<bool> {
    let consent: Option<bool> = sqlx::query_scalar(
        "SELECT consent FROM customers WHERE merchant_id = $1 AND id = $2 AND email IS NOT NULL",
    )
    .bind(merchant.as_str())
    .bind(customer)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(consent == Some(true))
}

/// The thank-you email for a customer's purchases of one local day: one row per day.
async fn enqueue_thank_you(
    conn: &mut DbConn,
    merchant: &MerchantId,
    zone: MerchantTimezone,
    customer: i64,
    occurred_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> StoreResult<bool> {
    if !contactable(conn, merchant, customer).await? {
        return Ok(false);
    }
    let day = zone.local_day(occurred_at).to_string();
    let inserted = sqlx::query(
        "INSERT INTO outbox (merchant_id, kind, recipient, customer_id, period_key, due_at_us, created_at_us) \
         VALUES ($1, 'thank_you', $2, $3, $4, $5, $6) ON CONFLICT (merchant_id, kind, recipient, period_key) DO NOTHING",
    )
    .bind(merchant.as_str())
    .bind(CustomerId::from_key(customer).to_string())
    .bind(customer)
    .bind(day)
    .bind(micros(now + TimeDelta::minutes(10)))
    .bind(micros(now))
    .execute(&mut *conn)
    .await?
    .rows_affected();
    Ok(inserted > 0)
}

/// How many distinct code-shaped words of a transfer description are looked up. A real note
/// carries one code among a few words; a description stuffed with code-shaped words must not
/// cost a lookup each inside the worker's write transaction.
const MAX_NOTE_CODES: usize = 16;

/// The payment codes a description may carry: its code-shaped words, each once, the first
/// [`MAX_NOTE_CODES`] of them.
fn note_codes_to_try(description: &str) -> Vec<String> {
    let mut codes: Vec<String> = Vec::new();
    for code in payment_codes_in(description) {
        if codes.len() == MAX_NOTE_CODES {
            break;
        }
        if !codes.contains(&code) {
            codes.push(code);
        }
    }
    codes
}

/// Who paid: (customer, method, order). DESIGN §1's order of rules.
async fn attribute(
    conn: &mut DbConn,
    merchant: &MerchantId,
    mutation: &Mutation,
    payer: Option<&PayerName>,
) -> StoreResult<(Option<i64>, Option<AttributionMethod>, Option<i64>)> {
    if !mutation.account_number.is_empty() {
        let by_account: Option<i64> = sqlx::query_scalar(
            "SELECT id FROM customers WHERE merchant_id = $1 AND virtual_account = $2",
        )
        .bind(merchant.as_str())
        .bind(&mutation.account_number)
        .fetch_optional(&mut *conn)
        .await?;
        if let Some(customer) = by_account {
            return Ok((
                Some(customer),
                Some(AttributionMethod::VirtualAccount),
                None,
            ));
        }
    }

    let candidates = sqlx::query(
        "SELECT id, customer_id FROM orders WHERE merchant_id = $1 AND transfer_amount_minor = $2 \
         AND status IN ('pending', 'ambiguous') AND expires_at_us > $3 \
         AND (bank_account_number IS NULL OR bank_account_number = $4)",
    )
    .bind(merchant.as_str())
    .bind(mutation.amount.minor())
    .bind(micros(mutation.occurred_at))
    .bind(&mutation.account_number)
    .fetch_all(&mut *conn)
    .await?;
    match candidates.as_slice() {
        [only] => {
            return Ok((
                only.try_get("customer_id")?,
                Some(AttributionMethod::Order),
                Some(only.try_get("id")?),
            ));
        }
        [] => {}
        several => {
            for order in several {
                sqlx::query(
                    "UPDATE orders SET status = 'ambiguous' WHERE merchant_id = $1 AND id = $2",
                )
                .bind(merchant.as_str())
                .bind(order.try_get::<i64, _>("id")?)
                .execute(&mut *conn)
                .await?;
            }
        }
    }

    let codes = note_codes_to_try(&mutation.description);
    let by_code = if codes.is_empty() {
        Vec::new()
    } else {
        // One query for all of them: $3… are the codes.
        let sql = format!(
            "SELECT id, customer_id FROM orders WHERE merchant_id = $1 AND transfer_amount_minor = $2 \
             AND status IN ('pending', 'ambiguous') AND payment_code IN ({})",
            placeholders_from(3, codes.len())
        );
        let mut query = sqlx::query(&sql)
            .bind(merchant.as_str())
            .bind(mutation.amount.minor());
        for code in &codes {
            query = query.bind(code);
        }
        query.fetch_all(&mut *conn).await?
    };
    if let [only] = by_code.as_slice() {
        return Ok((
            only.try_get("customer_id")?,
            Some(AttributionMethod::NoteCode),
            Some(only.try_get("id")?),
        ));
    }

    if let Some(payer) = payer {
        let customers: Vec<i64> = sqlx::query_scalar(
            "SELECT DISTINCT customer_id FROM customer_payer_names WHERE merchant_id = $1 AND payer_name = $2",
        )
        .bind(merchant.as_str())
        .bind(payer.as_str())
        .fetch_all(&mut *conn)
        .await?;
        if let [only] = customers.as_slice() {
            return Ok((Some(*only), Some(AttributionMethod::PayerName), None));
        }
    }
    Ok((None, None, None))
}

/// One mutation inside the row's transaction.
async fn apply_mutation(
    conn: &mut DbConn,
    merchant: &MerchantId,
    rules: &MerchantRules,
    inbox_id: i64,
    mutation: &Mutation,
    now: DateTime<Utc>,
    applied: &mut Applied,
) -> StoreResult<()> {
    applied.mutations += 1;
    let sandbox = rules.sandbox || mutation.is_sandbox();
    let new_row: Option<i64> = sqlx::query_scalar(
        "INSERT INTO mutations (merchant_id, mutation_id, inbox_id, account_number, occurred_at_us, description, \
         amount_minor, direction, note, bank_type, sandbox, created_at_us) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) \
         ON CONFLICT (merchant_id, mutation_id) DO NOTHING RETURNING id",
    )
    .bind(merchant.as_str())
    .bind(&mutation.mutation_id)
    .bind(inbox_id)
    .bind(&mutation.account_number)
    .bind(micros(mutation.occurred_at))
    .bind(&mutation.description)
    .bind(mutation.amount.minor())
    .bind(mutation.direction.as_str())
    .bind(&mutation.note)
    .bind(&mutation.bank_type)
    .bind(sandbox)
    .bind(micros(now))
    .fetch_optional(&mut *conn)
    .await?;
    if new_row.is_none() {
        // Moota sent this mutation before: count the delivery (a webhook's, not a
        // reconciliation's that crossed one still in the inbox), change nothing else.
        applied.repeated += 1;
        sqlx::query(
            "UPDATE mutations SET deliveries = deliveries + 1 WHERE merchant_id = $1 AND mutation_id = $2 \
             AND (SELECT source FROM inbox WHERE id = $3) = 'webhook'",
        )
        .bind(merchant.as_str())
        .bind(&mutation.mutation_id)
        .bind(inbox_id)
        .execute(&mut *conn)
        .await?;
        return Ok(());
    }
    if !mutation.is_payment() {
        return Ok(());
    }

    let payer = payer_name_in(&mutation.description);
    let (customer, method, order) = attribute(conn, merchant, mutation, payer.as_ref()).await?;
    let purchase: i64 = sqlx::query_scalar(
        "INSERT INTO purchases (merchant_id, customer_id, occurred_at_us, amount_minor, source, source_key, \
         attribution, sandbox, created_at_us, mutation_id, payer_name) \
         VALUES ($1, $2, $3, $4, 'moota', $5, $6, $7, $8, $9, $10) RETURNING id",
    )
    .bind(merchant.as_str())
    .bind(customer)
    .bind(micros(mutation.occurred_at))
    .bind(mutation.amount.minor())
    .bind(format!("moota:{}", mutation.mutation_id))
    .bind(method.map(AttributionMethod::as_str))
    .bind(sandbox)
    .bind(micros(now))
    .bind(&mutation.mutation_id)
    .bind(payer.as_ref().map(PayerName::as_str))
    .fetch_one(&mut *conn)
    .await?;
    applied.purchases += 1;
    if let Some(order) = order {
        sqlx::query("UPDATE orders SET status = 'paid', purchase_id = $1 WHERE merchant_id = $2 AND id = $3")
            .bind(purchase)
            .bind(merchant.as_str())
            .bind(order)
            .execute(&mut *conn)
            .await?;
        inherit_order_lines(conn, merchant, order, purchase).await?;
    }
    let Some(customer) = customer else {
        return Ok(());
    };
    applied.attributed += 1;
    // Sandbox money that reaches a production merchant is shown, never rewarded and never
    // thanked. A sandbox merchant is a world of its own: there everything is sandbox and
    // behaves as in production, so a demo shows points and emails.
    if sandbox != rules.sandbox {
        return Ok(());
    }
    let awarded = award_purchase_points(
        conn,
        merchant,
        rules,
        customer,
        purchase,
        mutation.amount,
        mutation.occurred_at,
        now,
    )
    .await?;
    applied.points_awarded = add_points(applied.points_awarded, awarded, "an inbox row")?;
    end_winback_by_purchase(
        conn,
        merchant,
        customer,
        purchase,
        mutation.occurred_at,
        now,
    )
    .await?;
    qualify_referral(
        conn,
        merchant,
        rules.zone,
        customer,
        purchase,
        mutation.amount,
        payer.as_ref().map(PayerName::as_str),
        now,
    )
    .await?;
    if enqueue_thank_you(
        conn,
        merchant,
        rules.zone,
        customer,
        mutation.occurred_at,
        now,
    )
    .await?
    {
        applied.emails_enqueued += 1;
    }
    Ok(())
}

/// A verified purchase ends the customer's open win-back episode: its next steps are not
/// sent (the sender sees the episode ended).
async fn end_winback_by_purchase(
    conn: &mut DbConn,
    merchant: &MerchantId,
    customer: i64,
    purchase: i64,
    occurred_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> StoreResult<()> {
    sqlx::query(
        "UPDATE winback_episodes SET ended_at_us = $4, end_reason = 'purchase', end_purchase_id = $3 \
         WHERE merchant_id = $1 AND customer_id = $2 AND ended_at_us IS NULL \
         AND counts_from_us <= $5 AND last_step_at_us > $5",
    )
    .bind(merchant.as_str())
    .bind(customer)
    .bind(purchase)
    .bind(micros(now))
    .bind(micros(occurred_at))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

async fn movements_of(
    conn: &mut DbConn,
    merchant: &MerchantId,
    customer: i64,
) -> StoreResult<Vec<PointsMovement>> {
    let rows = sqlx::query(
        "SELECT id, occurred_at_us, points, kind, source FROM points_ledger \
         WHERE merchant_id = $1 AND customer_id = $2 ORDER BY occurred_at_us, id",
    )
    .bind(merchant.as_str())
    .bind(customer)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|row| {
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
                        .ok_or_else(|| StoreError::Corrupt(format!("expiry source {source:?}")))?,
                },
                other => return Err(StoreError::Corrupt(format!("points kind {other:?}"))),
            };
            Ok(PointsMovement {
                id: row.try_get("id")?,
                at: from_micros(row.try_get("occurred_at_us")?)?,
                points: row.try_get("points")?,
                effect,
            })
        })
        .collect()
}

fn points_entry_from_row(row: &DbRow) -> StoreResult<PointsEntry> {
    Ok(PointsEntry {
        id: row.try_get("id")?,
        occurred_at: from_micros(row.try_get("occurred_at_us")?)?,
        points: row.try_get("points")?,
        kind: row.try_get("kind")?,
        reason: row.try_get("reason")?,
        source: row.try_get("source")?,
    })
}

/// Unique codes run from Rp 1 to this.
const UNIQUE_CODES: i64 = 999;

/// What the customer transfers for an order: its amount plus the unique code in whole
/// rupiah; `None` past i64.
fn transfer_amount_minor(amount: Money, unique_code: i64) -> Option<i64> {
    unique_code
        .checked_mul(100)
        .and_then(|code| amount.minor().checked_add(code))
}

const ORDER_COLUMNS: &str = "o.id, o.external_id, c.external_id AS customer_external_id, o.amount_minor, o.unique_code, \
     o.transfer_amount_minor, o.payment_code, o.bank_account_number, o.status, o.expires_at_us, o.purchase_id, o.created_at_us";

fn order_from_row(row: &DbRow, now: DateTime<Utc>) -> StoreResult<Order> {
    let expires_at = from_micros(row.try_get("expires_at_us")?)?;
    let status: String = row.try_get("status")?;
    Ok(Order {
        external_id: row.try_get("external_id")?,
        customer_external_id: row.try_get("customer_external_id")?,
        amount: Money::from_minor(row.try_get("amount_minor")?),
        unique_code: row.try_get("unique_code")?,
        transfer_amount: Money::from_minor(row.try_get("transfer_amount_minor")?),
        payment_code: row.try_get("payment_code")?,
        bank_account_number: row.try_get("bank_account_number")?,
        // An order nobody paid in time is expired; the row need not say so.
        status: if status == "pending" && expires_at <= now {
            "expired".into()
        } else {
            status
        },
        expires_at,
        purchase_id: row
            .try_get::<Option<i64>, _>("purchase_id")?
            .map(PurchaseId::from_key),
        created_at: from_micros(row.try_get("created_at_us")?)?,
        items: Vec::new(),
    })
}

async fn order_by_external_id(
    conn: &mut DbConn,
    merchant: &MerchantId,
    external_id: &str,
    now: DateTime<Utc>,
) -> StoreResult<Option<Order>> {
    let row = sqlx::query(&format!(
        "SELECT {ORDER_COLUMNS} FROM orders o LEFT JOIN customers c ON c.id = o.customer_id \
         WHERE o.merchant_id = $1 AND o.external_id = $2"
    ))
    .bind(merchant.as_str())
    .bind(external_id)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let mut order = order_from_row(&row, now)?;
    order.items = lines_of(conn, merchant, "order_id", row.try_get("id")?).await?;
    Ok(Some(order))
}

/// Marks a claimed row done inside `tx`; false (and nothing written) when the claim was lost.
/// Finishing first takes the row (and, on PostgreSQL, its lock): a worker that lost its claim
/// stops here.
async fn finish_row(tx: &mut DbTx<'_>, row: &ClaimedRow, now: DateTime<Utc>) -> StoreResult<bool> {
    let finished = sqlx::query(
        "UPDATE inbox SET state = 'done', processed_at_us = $1, claim_id = NULL, lease_until_us = NULL, last_error = NULL \
         WHERE id = $2 AND claim_id = $3 AND state = 'pending'",
    )
    .bind(micros(now))
    .bind(row.inbox_id)
    .bind(&row.claim_id)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    Ok(finished > 0)
}

/// Applies a finished row's mutations inside `tx`.
async fn apply_row(
    tx: &mut DbTx<'_>,
    row: &ClaimedRow,
    rules: &MerchantRules,
    mutations: &[Mutation],
    now: DateTime<Utc>,
) -> StoreResult<Applied> {
    let mut applied = Applied::default();
    for mutation in mutations {
        apply_mutation(
            tx,
            &row.merchant,
            rules,
            row.inbox_id,
            mutation,
            now,
            &mut applied,
        )
        .await?;
    }
    Ok(applied)
}

#[async_trait]
impl Ledger for ThisStore {
    async fn claim_inbox(
        &self,
        now: DateTime<Utc>,
        lease: TimeDelta,
        limit: u32,
    ) -> StoreResult<Vec<ClaimedRow>> {
        let claim_id = hex::encode(rand::random::<[u8; 16]>());
        let rows = sqlx::query(CLAIM_INBOX_SQL)
            .bind(&claim_id)
            .bind(micros(now + lease))
            .bind(micros(now))
            .bind(i64::from(limit))
            .fetch_all(&self.writer)
            .await?;
        let mut claimed = rows
            .iter()
            .map(|row| {
                let merchant: String = row.try_get("merchant_id")?;
                let attempts: i64 = row.try_get("attempts")?;
                Ok(ClaimedRow {
                    inbox_id: row.try_get("id")?,
                    claim_id: claim_id.clone(),
                    merchant: MerchantId::parse(&merchant)
                        .map_err(|e| StoreError::Corrupt(e.to_string()))?,
                    body: row.try_get("body")?,
                    attempts: attempts as u32,
                })
            })
            .collect::<StoreResult<Vec<_>>>()?;
        claimed.sort_by_key(|row| row.inbox_id);
        Ok(claimed)
    }

    async fn apply_mutations(
        &self,
        row: &ClaimedRow,
        mutations: &[Mutation],
        now: DateTime<Utc>,
    ) -> StoreResult<Option<Applied>> {
        self.apply_batch(&[(row, mutations)], now)
            .await
            .map(|mut outcomes| outcomes.remove(0))
    }

    async fn apply_batch(
        &self,
        rows: &[(&ClaimedRow, &[Mutation])],
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<Option<Applied>>> {
        let mut tx = self.begin_write().await?;
        // Read once per merchant and batch: the rules cannot change inside the transaction.
        let mut rules: HashMap<MerchantId, MerchantRules> = HashMap::new();
        let mut outcomes = Vec::with_capacity(rows.len());
        for (row, mutations) in rows {
            if !finish_row(&mut tx, row, now).await? {
                outcomes.push(None);
                continue;
            }
            if !rules.contains_key(&row.merchant) {
                let found = merchant_rules(&mut tx, &row.merchant).await?;
                rules.insert(row.merchant.clone(), found);
            }
            let merchant_rules = &rules[&row.merchant];
            outcomes.push(Some(
                apply_row(&mut tx, row, merchant_rules, mutations, now).await?,
            ));
        }
        tx.commit().await?;
        Ok(outcomes)
    }

    async fn quarantine_inbox(
        &self,
        row: &ClaimedRow,
        error: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE inbox SET state = 'quarantined', last_error = $1, processed_at_us = $2, claim_id = NULL, lease_until_us = NULL \
             WHERE id = $3 AND claim_id = $4 AND state = 'pending'",
        )
        .bind(error)
        .bind(micros(now))
        .bind(row.inbox_id)
        .bind(&row.claim_id)
        .execute(&self.writer)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn release_inbox(
        &self,
        row: &ClaimedRow,
        error: &str,
        retry_at: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE inbox SET last_error = $1, next_attempt_at_us = $2, claim_id = NULL, lease_until_us = NULL \
             WHERE id = $3 AND claim_id = $4 AND state = 'pending'",
        )
        .bind(error)
        .bind(micros(retry_at))
        .bind(row.inbox_id)
        .bind(&row.claim_id)
        .execute(&self.writer)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn quarantined(
        &self,
        merchant: &MerchantId,
        page: PageRequest,
    ) -> StoreResult<Page<QuarantinedRow>> {
        let sql = "SELECT id, received_at_us, body_sha256, body_size, last_error FROM inbox \
             WHERE merchant_id = $1 AND state = 'quarantined' AND id < $2 ORDER BY id DESC LIMIT $3";
        newest_first(
            &self.pool,
            sql,
            merchant,
            None,
            page,
            |row| {
                let size: i64 = row.try_get("body_size")?;
                Ok(QuarantinedRow {
                    inbox_id: row.try_get("id")?,
                    received_at: from_micros(row.try_get("received_at_us")?)?,
                    body_sha256: row.try_get("body_sha256")?,
                    body_size: size as u64,
                    error: row.try_get("last_error")?,
                })
            },
            |r| r.inbox_id,
        )
        .await
    }

    async fn set_loyalty_program(
        &self,
        merchant: &MerchantId,
        program: &LoyaltyProgram,
    ) -> StoreResult<()> {
        sqlx::query("UPDATE merchants SET loyalty_program = $1 WHERE id = $2")
            .bind(program.to_toml())
            .bind(merchant.as_str())
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    async fn loyalty_program(&self, merchant: &MerchantId) -> StoreResult<LoyaltyProgram> {
        let mut conn = self.pool.acquire().await?;
        Ok(merchant_rules(&mut conn, merchant).await?.program)
    }

    async fn upsert_customer(
        &self,
        merchant: &MerchantId,
        external_id: &ExternalId,
        patch: &CustomerPatch,
    ) -> StoreResult<CustomerId> {
        let mut tx = self.begin_write().await?;
        let (id, _) =
            upsert_customer(&mut tx, merchant, external_id, patch, micros(Utc::now())).await?;
        tx.commit().await?;
        Ok(id)
    }

    async fn customer_profile(
        &self,
        merchant: &MerchantId,
        external_id: &ExternalId,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<CustomerProfile>> {
        let mut conn = self.pool.acquire().await?;
        let Some(row) = sqlx::query(
            "SELECT id, name, email, birthday, consent, erased_at_us FROM customers \
             WHERE merchant_id = $1 AND external_id = $2",
        )
        .bind(merchant.as_str())
        .bind(external_id.as_str())
        .fetch_optional(&mut *conn)
        .await?
        else {
            return Ok(None);
        };
        let id: i64 = row.try_get("id")?;
        let totals = sqlx::query(
            "SELECT COUNT(*) AS purchases, CAST(COALESCE(SUM(amount_minor), 0) AS BIGINT) AS spent, \
             MIN(occurred_at_us) AS first_us, MAX(occurred_at_us) AS last_us FROM purchases \
             WHERE merchant_id = $1 AND customer_id = $2 AND sandbox = (SELECT m.sandbox FROM merchants m WHERE m.id = $1) AND refunded_at_us IS NULL",
        )
        .bind(merchant.as_str())
        .bind(id)
        .fetch_one(&mut *conn)
        .await?;
        let rules = merchant_rules(&mut conn, merchant).await?;
        let (from, until) = tier_year(now);
        let trailing = spend_between(&mut conn, merchant, id, from, until, 0).await?;
        let balance = points_balance(
            &movements_of(&mut conn, merchant, id).await?,
            now,
            &rules.program,
            id,
        )?;
        let purchases: i64 = totals.try_get("purchases")?;
        // Filled by the latest analytics run; absent until the first.
        let scores: Option<(String, Option<f64>)> =
            sqlx::query_as("SELECT segment, p_alive FROM customer_scores WHERE merchant_id = $1 AND customer_id = $2")
                .bind(merchant.as_str())
                .bind(id)
                .fetch_optional(&mut *conn)
                .await?;
        Ok(Some(CustomerProfile {
            id: CustomerId::from_key(id),
            external_id: external_id.as_str().to_owned(),
            name: row.try_get("name")?,
            email: row.try_get("email")?,
            birthday: row.try_get("birthday")?,
            consent: row.try_get("consent")?,
            tier: rules.program.tier_for(trailing).as_str(),
            points_balance: balance,
            purchases: purchases as u64,
            total_spent: Money::from_minor(totals.try_get("spent")?),
            first_purchase_at: totals
                .try_get::<Option<i64>, _>("first_us")?
                .map(from_micros)
                .transpose()?,
            last_purchase_at: totals
                .try_get::<Option<i64>, _>("last_us")?
                .map(from_micros)
                .transpose()?,
            segment: scores.as_ref().map(|(segment, _)| segment.clone()),
            p_alive: scores.and_then(|(_, p_alive)| p_alive),
            erased_at: row
                .try_get::<Option<i64>, _>("erased_at_us")?
                .map(from_micros)
                .transpose()?,
        }))
    }

    async fn points_history(
        &self,
        merchant: &MerchantId,
        customer: CustomerId,
    ) -> StoreResult<Vec<PointsEntry>> {
        let rows = sqlx::query(
            "SELECT id, occurred_at_us, points, kind, reason, source FROM points_ledger \
             WHERE merchant_id = $1 AND customer_id = $2 ORDER BY occurred_at_us, id",
        )
        .bind(merchant.as_str())
        .bind(customer.key())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(points_entry_from_row).collect()
    }

    async fn create_order(
        &self,
        merchant: &MerchantId,
        order: &NewOrder,
        now: DateTime<Utc>,
    ) -> StoreResult<Order> {
        let mut tx = self.begin_write().await?;
        // Orders of one merchant are created one at a time, so two cannot take one amount.
        sqlx::query(&format!(
            "SELECT id FROM merchants WHERE id = $1{FOR_UPDATE}"
        ))
        .bind(merchant.as_str())
        .fetch_one(&mut *tx)
        .await?;
        if order_by_external_id(&mut tx, merchant, order.external_id.as_str(), now)
            .await?
            .is_some()
        {
            return Err(StoreError::Conflict(format!(
                "order {} already exists",
                order.external_id
            )));
        }
        // The highest code fitting means every code does.
        let (Some(lowest), Some(highest)) = (
            transfer_amount_minor(order.amount, 1),
            transfer_amount_minor(order.amount, UNIQUE_CODES),
        ) else {
            return Err(StoreError::Invalid(format!(
                "amount: {} leaves no room for a unique code of up to Rp {UNIQUE_CODES}",
                order.amount
            )));
        };
        let taken: Vec<i64> = sqlx::query_scalar(
            "SELECT transfer_amount_minor FROM orders WHERE merchant_id = $1 AND status IN ('pending', 'ambiguous') \
             AND expires_at_us > $2 AND transfer_amount_minor BETWEEN $3 AND $4",
        )
        .bind(merchant.as_str())
        .bind(micros(now))
        .bind(lowest)
        .bind(highest)
        .fetch_all(&mut *tx)
        .await?;
        let start = rand::random::<u16>() % 999;
        let (unique_code, transfer_amount) = (0..999)
            .map(|step| i64::from((start + step) % 999 + 1))
            .filter_map(|code| Some((code, transfer_amount_minor(order.amount, code)?)))
            .find(|(_, transfer)| !taken.contains(transfer))
            .ok_or_else(|| {
                StoreError::Conflict(format!(
                    "all 999 unique codes for an amount of {} are in use by pending orders; \
                     wait for some to be paid or expire",
                    order.amount
                ))
            })?;
        let customer = match customer_id_of(&mut tx, merchant, &order.customer).await? {
            Some(id) => id,
            None => upsert_customer(
                &mut tx,
                merchant,
                &order.customer,
                &CustomerPatch::default(),
                micros(now),
            )
            .await?
            .0
            .key(),
        };
        if let Some(code) = &order.referral_code {
            let referred_by = ReferredBy {
                code: code.clone(),
                via: ReferralVia::Order,
            };
            refer(&mut tx, merchant, customer, &referred_by, now).await?;
        }
        let mut inserted = false;
        for _ in 0..8 {
            let code = payment_code_from_random(rand::random());
            let clash: Option<i64> = sqlx::query_scalar(
                "SELECT id FROM orders WHERE merchant_id = $1 AND payment_code = $2",
            )
            .bind(merchant.as_str())
            .bind(&code)
            .fetch_optional(&mut *tx)
            .await?;
            if clash.is_some() {
                continue;
            }
            let order_id: i64 = sqlx::query_scalar(
                "INSERT INTO orders (merchant_id, external_id, customer_id, amount_minor, unique_code, transfer_amount_minor, \
                 payment_code, bank_account_number, expires_at_us, created_at_us) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
                 RETURNING id",
            )
            .bind(merchant.as_str())
            .bind(order.external_id.as_str())
            .bind(customer)
            .bind(order.amount.minor())
            .bind(unique_code)
            .bind(transfer_amount)
            .bind(&code)
            .bind(&order.bank_account_number)
            .bind(micros(order.expires_at))
            .bind(micros(now))
            .fetch_one(&mut *tx)
            .await?;
            insert_order_lines(&mut tx, merchant, order_id, &order.items, micros(now)).await?;
            inserted = true;
            break;
        }
        if !inserted {
            return Err(StoreError::Conflict(
                "no free payment code was found; try again".into(),
            ));
        }
        let created = order_by_external_id(&mut tx, merchant, order.external_id.as_str(), now)
            .await?
            .ok_or_else(|| StoreError::Corrupt("an order vanished after insert".into()))?;
        tx.commit().await?;
        Ok(created)
    }

    async fn order(
        &self,
        merchant: &MerchantId,
        external_id: &ExternalId,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<Order>> {
        let mut conn = self.pool.acquire().await?;
        order_by_external_id(&mut conn, merchant, external_id.as_str(), now).await
    }

    async fn purchases(
        &self,
        merchant: &MerchantId,
        attributed: Option<bool>,
        page: PageRequest,
    ) -> StoreResult<Page<PurchaseRow>> {
        let filter = match attributed {
            None => "",
            Some(true) => " AND p.customer_id IS NOT NULL",
            Some(false) => " AND p.customer_id IS NULL",
        };
        let sql = format!(
            "SELECT {PURCHASE_COLUMNS} FROM purchases p LEFT JOIN customers c ON c.id = p.customer_id \
             WHERE p.merchant_id = $1 AND p.id < $2{filter} ORDER BY p.id DESC LIMIT $3"
        );
        newest_first(
            &self.pool,
            &sql,
            merchant,
            None,
            page,
            purchase_from_row,
            |p| p.id.key(),
        )
        .await
    }

    async fn attribute_purchase(
        &self,
        merchant: &MerchantId,
        purchase: PurchaseId,
        customer: &ExternalId,
        order: Option<&ExternalId>,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<ManualAttribution>> {
        let mut tx = self.begin_write().await?;
        let (Some(row), Some(customer_id)) = (
            purchase_by_id(&mut tx, merchant, purchase.key()).await?,
            customer_id_of(&mut tx, merchant, customer).await?,
        ) else {
            return Ok(None);
        };
        if row.customer_external_id.is_some() {
            return Ok(Some(ManualAttribution::AlreadyAttributed));
        }
        if let Some(order) = order {
            let found = sqlx::query(&format!(
                "SELECT id, customer_id, status FROM orders WHERE merchant_id = $1 AND external_id = $2{FOR_UPDATE}"
            ))
            .bind(merchant.as_str())
            .bind(order.as_str())
            .fetch_optional(&mut *tx)
            .await?;
            let Some(found) = found else {
                return Ok(Some(ManualAttribution::UnknownOrder));
            };
            let status: String = found.try_get("status")?;
            // A stored 'pending' past its expiry still counts: a late payment is paid.
            if status != "pending" && status != "ambiguous" {
                return Ok(Some(ManualAttribution::OrderNotPending));
            }
            if found.try_get::<Option<i64>, _>("customer_id")? != Some(customer_id) {
                return Ok(Some(ManualAttribution::OrderOfAnotherCustomer));
            }
            let order_id: i64 = found.try_get("id")?;
            sqlx::query("UPDATE orders SET status = 'paid', purchase_id = $1 WHERE merchant_id = $2 AND id = $3")
                .bind(purchase.key())
                .bind(merchant.as_str())
                .bind(order_id)
                .execute(&mut *tx)
                .await?;
            inherit_order_lines(&mut tx, merchant, order_id, purchase.key()).await?;
        }
        sqlx::query("UPDATE purchases SET customer_id = $1, attribution = 'manual' WHERE merchant_id = $2 AND id = $3")
            .bind(customer_id)
            .bind(merchant.as_str())
            .bind(purchase.key())
            .execute(&mut *tx)
            .await?;
        if let Some(payer) = &row.payer_name {
            sqlx::query(
                "INSERT INTO customer_payer_names (merchant_id, customer_id, payer_name) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
            )
            .bind(merchant.as_str())
            .bind(customer_id)
            .bind(payer)
            .execute(&mut *tx)
            .await?;
        }
        let rules = merchant_rules(&mut tx, merchant).await?;
        if row.sandbox == rules.sandbox && row.refunded_at.is_none() {
            award_purchase_points(
                &mut tx,
                merchant,
                &rules,
                customer_id,
                purchase.key(),
                row.amount,
                row.occurred_at,
                now,
            )
            .await?;
            end_winback_by_purchase(
                &mut tx,
                merchant,
                customer_id,
                purchase.key(),
                row.occurred_at,
                now,
            )
            .await?;
            // Only a bank transfer is a verified payment; an imported one is history.
            if row.mutation_id.is_some() {
                qualify_referral(
                    &mut tx,
                    merchant,
                    rules.zone,
                    customer_id,
                    purchase.key(),
                    row.amount,
                    row.payer_name.as_deref(),
                    now,
                )
                .await?;
            }
        }
        let updated = purchase_by_id(&mut tx, merchant, purchase.key()).await?;
        tx.commit().await?;
        Ok(updated.map(ManualAttribution::Attributed))
    }

    async fn refund_purchase(
        &self,
        merchant: &MerchantId,
        purchase: PurchaseId,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<PurchaseRow>> {
        let mut tx = self.begin_write().await?;
        let Some(row) = purchase_by_id(&mut tx, merchant, purchase.key()).await? else {
            return Ok(None);
        };
        if row.refunded_at.is_none() {
            sqlx::query(
                "UPDATE purchases SET refunded_at_us = $1 WHERE merchant_id = $2 AND id = $3",
            )
            .bind(micros(now))
            .bind(merchant.as_str())
            .bind(purchase.key())
            .execute(&mut *tx)
            .await?;
            let source = purchase.to_string();
            let awarded = sqlx::query(
                "SELECT customer_id, CAST(COALESCE(SUM(points), 0) AS BIGINT) AS points FROM points_ledger \
                 WHERE merchant_id = $1 AND source = $2 AND kind IN ('earn', 'bonus') GROUP BY customer_id",
            )
            .bind(merchant.as_str())
            .bind(&source)
            .fetch_optional(&mut *tx)
            .await?;
            if let Some(awarded) = awarded {
                let points: i64 = awarded.try_get("points")?;
                let customer: i64 = awarded.try_get("customer_id")?;
                let reason = format!("refund of {source}");
                insert_points(
                    &mut tx, merchant, customer, now, -points, "reverse", &reason, &source, now,
                )
                .await?;
            }
            cancel_referral_of_refund(&mut tx, merchant, purchase.key(), now).await?;
            reverse_tier_crossings_of_refund(&mut tx, merchant, purchase.key(), now).await?;
        }
        let refunded = purchase_by_id(&mut tx, merchant, purchase.key()).await?;
        tx.commit().await?;
        Ok(refunded)
    }

    async fn redeem_points(
        &self,
        merchant: &MerchantId,
        customer: &ExternalId,
        points: i64,
        idempotency_key: &str,
        reason: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<RedemptionOutcome>> {
        let mut tx = self.begin_write().await?;
        let Some(customer_id): Option<i64> = sqlx::query_scalar(&format!(
            "SELECT id FROM customers WHERE merchant_id = $1 AND external_id = $2{FOR_UPDATE}"
        ))
        .bind(merchant.as_str())
        .bind(customer.as_str())
        .fetch_optional(&mut *tx)
        .await?
        else {
            return Ok(None);
        };
        let rules = merchant_rules(&mut tx, merchant).await?;
        let source = format!("redemption:{customer_id}:{idempotency_key}");
        let balance = |movements: &[PointsMovement]| {
            points_balance(movements, now, &rules.program, customer_id)
        };
        let earlier = sqlx::query(
            "SELECT id, occurred_at_us, points, kind, reason, source FROM points_ledger \
             WHERE merchant_id = $1 AND kind = 'redeem' AND source = $2",
        )
        .bind(merchant.as_str())
        .bind(&source)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(earlier) = earlier {
            let entry = points_entry_from_row(&earlier)?;
            if entry.points != -points {
                return Ok(Some(RedemptionOutcome::KeyReused));
            }
            let balance = balance(&movements_of(&mut tx, merchant, customer_id).await?)?;
            return Ok(Some(RedemptionOutcome::Replayed { entry, balance }));
        }
        let available = balance(&movements_of(&mut tx, merchant, customer_id).await?)?;
        if available < points {
            return Ok(Some(RedemptionOutcome::InsufficientPoints {
                balance: available,
            }));
        }
        insert_points(
            &mut tx,
            merchant,
            customer_id,
            now,
            -points,
            "redeem",
            reason,
            &source,
            now,
        )
        .await?;
        let entry = sqlx::query(
            "SELECT id, occurred_at_us, points, kind, reason, source FROM points_ledger \
             WHERE merchant_id = $1 AND kind = 'redeem' AND source = $2",
        )
        .bind(merchant.as_str())
        .bind(&source)
        .fetch_one(&mut *tx)
        .await?;
        let entry = points_entry_from_row(&entry)?;
        tx.commit().await?;
        Ok(Some(RedemptionOutcome::Redeemed {
            entry,
            balance: available - points,
        }))
    }

    async fn award_missing_points(
        &self,
        merchant: &MerchantId,
        now: DateTime<Utc>,
    ) -> StoreResult<(u64, i64)> {
        let mut tx = self.begin_write().await?;
        let rules = merchant_rules(&mut tx, merchant).await?;
        let rows = sqlx::query(
            "SELECT p.id, p.customer_id, p.amount_minor, p.occurred_at_us FROM purchases p \
             WHERE p.merchant_id = $1 AND p.customer_id IS NOT NULL AND p.sandbox = (SELECT m.sandbox FROM merchants m WHERE m.id = $1) \
             AND p.refunded_at_us IS NULL AND p.occurred_at_us <= $2 AND NOT EXISTS (SELECT 1 FROM points_ledger l \
             WHERE l.merchant_id = p.merchant_id AND l.kind = 'earn' AND l.source = 'pur_' || p.id) \
             ORDER BY p.occurred_at_us, p.id",
        )
        .bind(merchant.as_str())
        .bind(micros(now))
        .fetch_all(&mut *tx)
        .await?;
        let (mut purchases, mut points) = (0, 0);
        for row in &rows {
            let awarded = award_purchase_points(
                &mut tx,
                merchant,
                &rules,
                row.try_get("customer_id")?,
                row.try_get("id")?,
                Money::from_minor(row.try_get("amount_minor")?),
                from_micros(row.try_get("occurred_at_us")?)?,
                now,
            )
            .await?;
            if awarded > 0 {
                purchases += 1;
                points = add_points(points, awarded, "the missing awards")?;
            }
        }
        tx.commit().await?;
        Ok((purchases, points))
    }

    async fn expire_points(&self, merchant: &MerchantId, now: DateTime<Utc>) -> StoreResult<i64> {
        let mut tx = self.begin_write().await?;
        let rules = merchant_rules(&mut tx, merchant).await?;
        let expiry = rules.program.expiry();
        // Nothing was earned a whole expiry before chrono's first date: nothing is due.
        let Some(earned_by) = now.checked_sub_signed(expiry) else {
            return Ok(0);
        };
        let customers: Vec<i64> = sqlx::query_scalar(
            "SELECT DISTINCT customer_id FROM points_ledger WHERE merchant_id = $1 AND points > 0 AND occurred_at_us <= $2",
        )
        .bind(merchant.as_str())
        .bind(micros(earned_by))
        .fetch_all(&mut *tx)
        .await?;
        let mut expired = 0;
        for customer in customers {
            let movements = movements_of(&mut tx, merchant, customer).await?;
            // Only the due expiries count here, so the saturating balance will do.
            let (_, due) = balance_at(&movements, now, expiry);
            for lot in due {
                let earned_at = lot.earned_at;
                let reason = format!(
                    "{} points earned {} expired",
                    lot.points,
                    earned_at.date_naive()
                );
                let source = format!("lot:{}", lot.lot);
                if insert_points(
                    &mut tx,
                    merchant,
                    customer,
                    lot.expired_at,
                    -lot.points,
                    "expire",
                    &reason,
                    &source,
                    now,
                )
                .await?
                {
                    expired = add_points(expired, lot.points, "an expiry run")?;
                }
            }
        }
        tx.commit().await?;
        Ok(expired)
    }
}
