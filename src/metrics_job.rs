//! One metrics run for one merchant: read the ledger out of the store as columns, compute
//! with setia-analytics off the async runtime, store the snapshot and the customer scores
//! with each customer's product recommendations, then start the win-back episodes the new
//! scores call for.
//! The `metrics` command and the nightly scheduler both call this.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::{DateTime, NaiveDate, TimeDelta, Timelike, Utc};
use setia_analytics::{
    compute_metrics, recommend, BasketColumns, BgNbdHistory, CatalogueColumns, MetricsOutput,
    MetricsRequest, Period, PointsEntry, PointsKind, PurchaseColumns, RecommendConfig,
    TierThresholds,
};
use setia_core::loyalty::{LoyaltyProgram, Tier};
use setia_core::CustomerId;
use setia_mail::winback::ScoredCustomer;
use setia_store::analytics::ScoreRow;
use setia_store::catalog::{BasketInput, ProductSignals, PurchaseOwners};
use setia_store::{Merchant, Store};

/// The last instant of the local day `as_of` in the merchant's zone.
fn end_of_local_day(merchant: &Merchant, as_of: NaiveDate) -> DateTime<Utc> {
    let next_midnight = (as_of + TimeDelta::days(1))
        .and_hms_opt(0, 0, 0)
        .expect("midnight exists");
    merchant
        .timezone
        .instant_of(next_midnight)
        .map(|t| t - TimeDelta::microseconds(1))
        .unwrap_or_else(|_| next_midnight.and_utc())
}

/// The program's tier thresholds in sen ([`LoyaltyProgram::threshold`] saturates one too
/// large for sen: a tier nobody reaches, not an overflow that kills the run).
fn tier_thresholds(program: &LoyaltyProgram) -> TierThresholds {
    TierThresholds {
        silver_minor: program.threshold(Tier::Silver).minor(),
        gold_minor: program.threshold(Tier::Gold).minor(),
    }
}

/// Whether a snapshot as of `as_of` is current on the merchant's `today`: as of yesterday
/// (the nightly run's day) or today (a run by hand). One dated after today is not: it
/// holds days that have not happened, and must neither stand in for the nightly run nor
/// start win-back episodes.
fn is_current(as_of: NaiveDate, today: NaiveDate) -> bool {
    today.pred_opt().map_or(as_of <= today, |yesterday| {
        (yesterday..=today).contains(&as_of)
    })
}

/// Whether a snapshot as of `as_of`, computed at `computed_at`, holds every purchase of the
/// day before `today`, which ended at `yesterday_ended`.
fn holds_all_of_yesterday(
    as_of: NaiveDate,
    computed_at: DateTime<Utc>,
    today: NaiveDate,
    yesterday_ended: DateTime<Utc>,
) -> bool {
    is_current(as_of, today) && computed_at > yesterday_ended
}

fn points_kind(kind: &str) -> anyhow::Result<PointsKind> {
    Ok(match kind {
        "earn" => PointsKind::Earn,
        "bonus" | "birthday" => PointsKind::Bonus,
        "redeem" => PointsKind::Redeem,
        "expire" => PointsKind::Expire,
        "reverse" => PointsKind::Reverse,
        other => anyhow::bail!("unknown points kind {other:?} in the ledger"),
    })
}

pub async fn run(
    store: &Arc<dyn Store>,
    merchant: &Merchant,
    as_of: NaiveDate,
    period: Period,
) -> anyhow::Result<MetricsOutput> {
    let until = end_of_local_day(merchant, as_of);
    let started = Instant::now();
    let columns = store
        .purchase_columns(&merchant.id, until)
        .await
        .context("reading purchases")?;
    let points = store
        .points_rows(&merchant.id, until)
        .await
        .context("reading the points ledger")?
        .into_iter()
        .map(|row| {
            Ok(PointsEntry {
                customer: row.customer,
                at_micros: row.occurred_at_us,
                points: row.points,
                kind: points_kind(&row.kind)?,
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let program = store.loyalty_program(&merchant.id).await?;
    let read_seconds = started.elapsed().as_secs_f64();
    let request = MetricsRequest {
        merchant_id: merchant.id.to_string(),
        as_of,
        timezone: merchant.timezone.tz(),
        period,
        tiers: tier_thresholds(&program),
    };
    // Whose each purchase is, which turns its order lines into the recommender's pairs.
    let (owner_purchase, owner_customer) = (columns.purchase, columns.customer.clone());
    let purchases = PurchaseColumns {
        customer: columns.customer,
        occurred_at_micros: columns.occurred_at_us,
        amount_minor: columns.amount_minor,
    };
    let purchase_rows = purchases.len();
    // Polars and the model fits are CPU work: keep them off the async runtime. The order
    // lines are read meanwhile, on a thread of their own: the batch leaves a core idle much
    // of the time.
    let started = Instant::now();
    let batch = async {
        anyhow::Ok(
            tokio::task::spawn_blocking(move || compute_metrics(&request, purchases, &points))
                .await
                .context("the metrics batch stopped")??,
        )
    };
    let lines = async {
        let input = store
            .basket_input(&merchant.id)
            .await
            .context("reading order lines")?;
        // A merchant without products has no lines to place: no purchases to sort.
        let owners = if input.product.is_empty() {
            PurchaseOwners::default()
        } else {
            tokio::task::spawn_blocking(move || {
                PurchaseOwners::new(&owner_purchase, &owner_customer)
            })
            .await
            .context("sorting the purchases by key stopped")?
        };
        anyhow::Ok((input, owners, started.elapsed().as_secs_f64()))
    };
    let (output, lines) = tokio::join!(batch, lines);
    let (output, (basket, owners, lines_read_seconds)) = (output?, lines?);
    if output.ignored_before_first_year > 0 {
        tracing::warn!(
            merchant = %merchant.id,
            purchases = output.ignored_before_first_year,
            "purchases dated before 1970 left out of the metrics: stored before every source refused such dates, they are typos to correct"
        );
    }
    let compute_seconds = started.elapsed().as_secs_f64();
    let started = Instant::now();
    let (mut recommended, signals) = recommendations(merchant, basket, owners).await?;
    let recommend_seconds = started.elapsed().as_secs_f64();
    let started = Instant::now();
    let scores: Vec<ScoreRow> = output
        .customer_scores
        .iter()
        .map(|score| ScoreRow {
            customer: score.customer,
            recency_days: i64::from(score.recency_days),
            frequency_days: i64::from(score.frequency_days),
            monetary_minor: score.monetary_minor,
            r: i64::from(score.r_score),
            f: i64::from(score.f_score),
            m: i64::from(score.m_score),
            segment: score.segment.as_str().to_owned(),
            p_alive: score.p_alive,
            expected_purchases_90d: score.expected_purchases_90d,
            clv_12m_minor: score.clv_12m_minor,
            recommended: recommended.remove(&score.customer).unwrap_or_default(),
        })
        .collect();
    if let Some(signals) = &signals {
        store
            .save_product_signals(&merchant.id, signals, Utc::now())
            .await
            .context("storing the product signals")?;
    }
    let report = serde_json::to_string(&output.report).context("serialising the report")?;
    let customers = scores.len();
    // The benchmark starts its webhook load when it reads this line.
    tracing::debug!(merchant = %merchant.id, customers, "storing the scores");
    store
        .save_snapshot(
            &merchant.id,
            &as_of.to_string(),
            period.as_str(),
            &report,
            scores,
            Utc::now(),
        )
        .await
        .context("storing the snapshot")?;
    let save_seconds = started.elapsed().as_secs_f64();
    enter_winback(store, merchant, as_of, &output).await?;
    // How long each phase took (`RUST_LOG=setia::metrics_job=debug`): the benchmark reads it.
    tracing::debug!(
        merchant = %merchant.id,
        purchase_rows,
        customers,
        read_seconds,
        compute_seconds,
        lines_read_seconds,
        recommend_seconds,
        save_seconds,
        "metrics run"
    );
    Ok(output)
}

/// Starts the win-back episodes the new snapshot calls for (DESIGN §8): only for a current
/// snapshot (as of yesterday or today), since an older one says nothing of who is slipping
/// away now, and one dated in the future measures recency to a day that has not come (every
/// repeat customer would look lost).
async fn enter_winback(
    store: &Arc<dyn Store>,
    merchant: &Merchant,
    as_of: NaiveDate,
    output: &MetricsOutput,
) -> anyhow::Result<()> {
    let now = Utc::now();
    if !is_current(as_of, merchant.timezone.local_day(now)) {
        return Ok(());
    }
    // Each customer's expected purchases cost about 0.4 s a million: not for nothing.
    let program = store.engagement_program(&merchant.id).await?;
    if !program.winback.enabled {
        return Ok(());
    }
    let params = output
        .report
        .churn
        .converged
        .then(|| output.report.churn.params.params())
        .flatten();
    let as_of_day = |day: NaiveDate| (as_of - day).num_days() as i32;
    let scored: Vec<ScoredCustomer> = output
        .customer_scores
        .iter()
        .map(|score| {
            let history = BgNbdHistory::from_days(
                score.frequency_days.saturating_sub(1),
                (score.last_purchase_day - score.first_purchase_day).num_days() as i32,
                as_of_day(score.first_purchase_day),
            );
            let expected = |days: f64| {
                params
                    .as_ref()
                    .and_then(|p| p.expected_purchases(&history, days / 7.0).ok())
                    .filter(|e| e.is_finite())
            };
            ScoredCustomer {
                customer: CustomerId::from_key(score.customer),
                purchase_days: score.frequency_days,
                recency_days: i64::from(score.recency_days),
                p_alive: score.p_alive,
                median_gap_days: score.median_gap_days,
                expected_30d: expected(30.0),
                expected_60d: expected(60.0),
            }
        })
        .collect();
    let entered = setia_mail::winback::enter(&**store, &merchant.id, &program, &scored, now)
        .await
        .context("starting win-back episodes")?;
    if entered.treated + entered.held_out > 0 {
        tracing::info!(merchant = %merchant.id, treated = entered.treated,
            held_out = entered.held_out, "win-back episodes started");
    }
    Ok(())
}

/// Each customer's recommended products and the merchant's popular and "bought together"
/// lists, from the order lines of countable purchases (those `owners` lists); nothing for a
/// merchant without products.
async fn recommendations(
    merchant: &Merchant,
    input: BasketInput,
    owners: PurchaseOwners,
) -> anyhow::Result<(HashMap<i64, Vec<i64>>, Option<ProductSignals>)> {
    if input.product.is_empty() {
        return Ok((HashMap::new(), None));
    }
    let started = Instant::now();
    let catalogue = CatalogueColumns {
        product: input.product,
        in_stock: input.in_stock,
    };
    let (found, lines) = tokio::task::spawn_blocking(move || {
        let (customer, product) = owners.customers_of(input.line_purchase, input.line_product);
        let basket = BasketColumns { customer, product };
        let found = recommend(&basket, &catalogue, &RecommendConfig::default())?;
        anyhow::Ok((found, basket.customer.len()))
    })
    .await
    .context("the recommender stopped")??;
    tracing::debug!(
        merchant = %merchant.id,
        lines,
        recommend_seconds = started.elapsed().as_secs_f64(),
        "recommendations"
    );
    let lists = found.customers.into_iter().zip(found.products).collect();
    Ok((
        lists,
        Some(ProductSignals {
            popular: found.popular,
            related: found.related,
        }),
    ))
}

/// Recomputes each merchant's snapshot once a night (from `hour` merchant time, as of the
/// day before), checking every few minutes so a late start or a restart catches up.
pub async fn nightly(
    store: Arc<dyn Store>,
    schedule: NightlySchedule,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    while !*stop.borrow() {
        if let Err(error) = nightly_step(&store, &schedule, Utc::now()).await {
            tracing::error!(error = %format!("{error:#}"), "nightly metrics failed");
        }
        tokio::select! {
            _ = tokio::time::sleep(schedule.check_every) => {}
            _ = stop.changed() => {}
        }
    }
}

/// When the nightly run happens, how often a worker looks for due runs, and how long a
/// claimed run is a worker's before another may take it over.
#[derive(Debug, Clone, Copy)]
pub struct NightlySchedule {
    /// The merchant-local hour from which yesterday's snapshot is due.
    pub hour: u32,
    pub check_every: Duration,
    /// How long a claim lasts without news from its worker: the worker renews it every
    /// third of it while the run goes on, so a run may take longer than the lease, and a
    /// dead worker's run is taken over within one lease.
    pub lease: TimeDelta,
}

impl NightlySchedule {
    fn renew_every(&self) -> Duration {
        (self.lease / 3)
            .to_std()
            .unwrap_or_default()
            .max(Duration::from_millis(100))
    }
}

/// A stored snapshot's day; `None` for text that is not a day, which then counts as no
/// current snapshot (the run makes one).
fn snapshot_day(text: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()
}

/// Runs every merchant whose nightly snapshot is due at `now`, not yet stored and not
/// claimed by another worker: with several workers on one database, each run is claimed
/// once, and a run whose worker died is taken over when its lease runs out. One merchant's
/// failed run does not hold back the others'; its claim runs out and it is tried again.
async fn nightly_step(
    store: &Arc<dyn Store>,
    schedule: &NightlySchedule,
    now: DateTime<Utc>,
) -> anyhow::Result<usize> {
    let hour = schedule.hour;
    let claim = hex::encode(rand::random::<[u8; 16]>());
    let mut ran = 0;
    for merchant in store.list_merchants().await? {
        let local = now.with_timezone(&merchant.timezone.tz());
        if local.hour() < hour {
            continue;
        }
        let today = local.date_naive();
        let Some(as_of) = today.pred_opt() else {
            continue;
        };
        // A snapshot that holds all of yesterday makes tonight's run needless: current
        // (yesterday's, or today's by hand), and taken after yesterday ended. One taken by
        // hand during yesterday lacks the rest of that day; one dated after today (taken
        // before `setia metrics` refused such a day) would freeze the run until that day.
        // The run's own day is then claimed, and a finished claim is never taken again, so
        // yesterday's run is still made once.
        let latest = store
            .latest_snapshot(&merchant.id, Some(Period::Month.as_str()))
            .await?;
        let yesterday_ended = end_of_local_day(&merchant, as_of);
        if latest.is_some_and(|snapshot| {
            snapshot_day(&snapshot.as_of).is_some_and(|day| {
                holds_all_of_yesterday(day, snapshot.computed_at, today, yesterday_ended)
            })
        }) {
            continue;
        }
        let day = as_of.to_string();
        if !store
            .claim_nightly_run(&merchant.id, &day, &claim, Utc::now(), schedule.lease)
            .await?
        {
            continue;
        }
        // Which worker holds which run, for the operator (and the takeover test).
        tracing::info!(merchant = %merchant.id, as_of = %day, "nightly run claimed");
        match run_holding_claim(store, schedule, &merchant, as_of, &claim).await {
            Some(Ok(_)) => {}
            Some(Err(error)) => {
                tracing::error!(merchant = %merchant.id, error = %format!("{error:#}"), "nightly metrics failed");
                continue;
            }
            None => continue,
        }
        if !store
            .finish_nightly_run(&merchant.id, &day, &claim, Utc::now())
            .await?
        {
            tracing::warn!(merchant = %merchant.id, "a nightly run outlasted its lease and was taken over");
        }
        ran += 1;
    }
    Ok(ran)
}

/// The merchant's run, renewing its claim as it goes; `None` when the claim was lost to
/// another worker (this one stalled past its lease), and the run was dropped for it.
async fn run_holding_claim(
    store: &Arc<dyn Store>,
    schedule: &NightlySchedule,
    merchant: &Merchant,
    as_of: NaiveDate,
    claim: &str,
) -> Option<anyhow::Result<MetricsOutput>> {
    let day = as_of.to_string();
    let work = run(store, merchant, as_of, Period::Month);
    tokio::pin!(work);
    let every = schedule.renew_every();
    let mut renewals = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    loop {
        tokio::select! {
            result = &mut work => return Some(result),
            _ = renewals.tick() => {
                match store.renew_nightly_run(&merchant.id, &day, claim, Utc::now(), schedule.lease).await {
                    Ok(true) => {}
                    Ok(false) => {
                        tracing::warn!(merchant = %merchant.id, "a nightly run lost its claim to another worker; dropping it");
                        return None;
                    }
                    // The next tick tries again; the lease is three ticks long.
                    Err(error) => tracing::warn!(merchant = %merchant.id, %error, "could not renew a nightly run's claim"),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn thresholds_too_large_for_sen_saturate() {
        let program = LoyaltyProgram {
            silver_threshold_rupiah: 100_000_000_000_000_000,
            gold_threshold_rupiah: i64::MAX,
            ..LoyaltyProgram::default()
        };
        let tiers = tier_thresholds(&program);
        assert_eq!((tiers.silver_minor, tiers.gold_minor), (i64::MAX, i64::MAX));
        let tiers = tier_thresholds(&LoyaltyProgram::default());
        assert_eq!(
            (tiers.silver_minor, tiers.gold_minor),
            (200_000_000, 1_000_000_000)
        );
    }

    #[test]
    fn only_yesterday_and_today_are_current() {
        let today = day("2026-12-08");
        assert!(is_current(day("2026-12-07"), today));
        assert!(is_current(today, today));
        assert!(!is_current(day("2026-12-06"), today));
        assert!(!is_current(day("2026-12-09"), today), "tomorrow");
        assert!(!is_current(day("2099-12-31"), today));
        assert!(is_current(NaiveDate::MIN, NaiveDate::MIN));
    }

    #[test]
    fn a_snapshot_taken_during_yesterday_does_not_hold_all_of_it() {
        let today = day("2026-12-08");
        let ended = "2026-12-07T16:59:59.999999Z"
            .parse::<DateTime<Utc>>()
            .unwrap();
        let after = "2026-12-07T19:00:00Z".parse::<DateTime<Utc>>().unwrap();
        let during = "2026-12-07T05:00:00Z".parse::<DateTime<Utc>>().unwrap();
        assert!(holds_all_of_yesterday(
            day("2026-12-07"),
            after,
            today,
            ended
        ));
        assert!(holds_all_of_yesterday(today, after, today, ended));
        assert!(!holds_all_of_yesterday(
            day("2026-12-07"),
            during,
            today,
            ended
        ));
        assert!(!holds_all_of_yesterday(
            day("2099-12-31"),
            after,
            today,
            ended
        ));
    }

    #[test]
    fn snapshot_days_are_read_as_dates() {
        assert_eq!(snapshot_day("2026-12-07"), Some(day("2026-12-07")));
        assert_eq!(snapshot_day("yesterday"), None);
        // As text, "+10000-01-01" sorts before "2026-12-07": as dates it is after.
        assert!(snapshot_day("+10000-01-01").is_some_and(|d| d > day("2026-12-07")));
    }
}
