//! The metrics run: purchases in, report and per-customer scores out.
//!
//! Shape of the computation (n purchases, c customers):
//! 1. one pass over the rows converts instants to local days and drops rows after as_of
//!    (and before 1970, which no source accepts: see `prepare_purchases`);
//! 2. Polars sorts the purchases by (customer, day) — packed into one integer key when the
//!    ranges allow — and collapses them to purchase days with a group-by on the sorted key
//!    (far lighter than a hash group-by on 10 M rows: a third of the time and memory);
//! 3. one sequential scan over the sorted purchase days yields every per-customer figure,
//!    the gaps between purchase days, the cohort cells and the BG/NBD histories (per-group
//!    expressions in Polars would run group by group over a million customers);
//! 4. per-customer scoring (RFM, tier, P(alive), CLV) is a loop over c rows, with the
//!    hypergeometric work cached per distinct (x, T).

use std::collections::{BTreeMap, HashMap};

use chrono::NaiveDate;
use polars::prelude::{col, len, Column, DataFrame, DataType, IntoLazy, SortMultipleOptions};
use setia_core::stats::median;
use setia_core::time::FIRST_YEAR;

use crate::bgnbd::{fit_bg_nbd, BgNbdFit, BgNbdHistory, BgNbdParams, BgNbdSummary, FitError};
use crate::calendar::{
    date_of_epoch_day, epoch_day, period_index, period_label, LocalDayConverter,
};
use crate::error::AnalyticsError;
use crate::gamma_gamma::{
    discounted_purchase_growth, fit_gamma_gamma, ClvError, GammaGammaData, GammaGammaFit,
};
use crate::input::{MetricsRequest, Period, PointsEntry, PurchaseColumns};
use crate::loyalty::{points_totals, tier_for, PointsTotals};
use crate::report::{
    ChurnModel, ChurnParams, ChurnReport, ClvModel, ClvParams, ClvReport, CohortRow, CustomerScore,
    LoyaltyReport, MetricsOutput, MetricsReport, MinorAmount, RfmReport, SegmentCounts, Tier,
    TierCounts, Totals, FORECAST_DAYS, P_ALIVE_THRESHOLD, SCHEMA_VERSION,
};
use crate::rfm::{quintile_scores, Segment};

/// Days in the loyalty tier window, which ends on (and includes) as_of.
const TIER_WINDOW_DAYS: i32 = 365;

/// Runs every metric for one merchant. Pure and synchronous: call it from
/// `spawn_blocking`. `purchases` is taken by value so its buffers can be reused in place.
pub fn compute_metrics(
    request: &MetricsRequest,
    purchases: PurchaseColumns,
    points: &[PointsEntry],
) -> Result<MetricsOutput, AnalyticsError> {
    let as_of_day = epoch_day(request.as_of);
    let mut converter = LocalDayConverter::new(request.timezone);
    let points = points_totals(points, as_of_day, &mut converter)?;
    let prepared = prepare_purchases(purchases, as_of_day, &mut converter)?;
    let purchase_count = prepared.customer.len() as u64;
    let ignored_before_first_year = prepared.before_first_year;
    let aggregates = if prepared.customer.is_empty() {
        Aggregates::default()
    } else {
        aggregate(prepared, as_of_day, request.period)?
    };
    build_output(
        request,
        as_of_day,
        purchase_count,
        ignored_before_first_year,
        aggregates,
        &points,
    )
}

/// Purchases on or before as_of, with their local day.
struct PreparedPurchases {
    customer: Vec<i64>,
    day: Vec<i32>,
    amount: Vec<i64>,
    /// Rows dropped for a local day before [`FIRST_YEAR`].
    before_first_year: u64,
}

fn prepare_purchases(
    purchases: PurchaseColumns,
    as_of_day: i32,
    converter: &mut LocalDayConverter,
) -> Result<PreparedPurchases, AnalyticsError> {
    let PurchaseColumns {
        mut customer,
        occurred_at_micros,
        mut amount_minor,
    } = purchases;
    if customer.len() != occurred_at_micros.len() || customer.len() != amount_minor.len() {
        return Err(AnalyticsError::ColumnLengthMismatch {
            customer: customer.len(),
            occurred_at: occurred_at_micros.len(),
            amount: amount_minor.len(),
        });
    }
    let rows = customer.len();
    let mut day = Vec::with_capacity(rows);
    // Every source refuses a year before FIRST_YEAR; a row stored before that bound existed
    // would stretch each cohort row over centuries of empty weeks, so it is left out.
    let first_day = epoch_day(NaiveDate::from_ymd_opt(FIRST_YEAR, 1, 1).expect("a real date"));
    let mut before_first_year = 0;
    // Keep the rows on or before as_of by compacting the input vectors in place.
    let mut kept = 0;
    for row in 0..rows {
        let amount = amount_minor[row];
        if amount < 0 {
            return Err(AnalyticsError::NegativeAmount {
                row,
                amount_minor: amount,
            });
        }
        let micros = occurred_at_micros[row];
        let local_day = converter
            .local_day(micros)
            .ok_or(AnalyticsError::PurchaseTimeOutOfRange { row, micros })?;
        if local_day > as_of_day {
            continue;
        }
        if local_day < first_day {
            before_first_year += 1;
            continue;
        }
        customer[kept] = customer[row];
        amount_minor[kept] = amount;
        day.push(local_day);
        kept += 1;
    }
    customer.truncate(kept);
    amount_minor.truncate(kept);
    Ok(PreparedPurchases {
        customer,
        day,
        amount: amount_minor,
        before_first_year,
    })
}

/// Purchase days (a customer's purchases on one local day), sorted by customer then day.
struct PurchaseDays {
    customer: Vec<i64>,
    day: Vec<i32>,
    amount: Vec<i64>,
    purchases: Vec<i64>,
}

impl PurchaseDays {
    /// Sorting before a stable group-by leaves the groups in key order; the scan depends on
    /// it, so it is checked (linear) and restored (sort) should an engine change break it.
    fn in_order(self) -> PurchaseDays {
        let ordered = (1..self.customer.len())
            .all(|i| (self.customer[i - 1], self.day[i - 1]) < (self.customer[i], self.day[i]));
        if ordered {
            return self;
        }
        let mut rows: Vec<(i64, i32, i64, i64)> = (0..self.customer.len())
            .map(|i| {
                (
                    self.customer[i],
                    self.day[i],
                    self.amount[i],
                    self.purchases[i],
                )
            })
            .collect();
        rows.sort_unstable();
        PurchaseDays {
            customer: rows.iter().map(|row| row.0).collect(),
            day: rows.iter().map(|row| row.1).collect(),
            amount: rows.iter().map(|row| row.2).collect(),
            purchases: rows.iter().map(|row| row.3).collect(),
        }
    }
}

/// Collapses purchases to purchase days with Polars: sort, then a group-by on sorted keys.
fn collapse_to_purchase_days(prepared: PreparedPurchases) -> Result<PurchaseDays, AnalyticsError> {
    let PreparedPurchases {
        mut customer,
        day,
        amount,
        ..
    } = prepared;
    let height = customer.len();
    let (Some(&min_customer), Some(&max_customer)) = (customer.iter().min(), customer.iter().max())
    else {
        return Ok(PurchaseDays {
            customer,
            day,
            amount,
            purchases: Vec::new(),
        });
    };
    let min_day = day.iter().copied().min().unwrap_or(0);
    let max_day = day.iter().copied().max().unwrap_or(0);
    let day_bits = 64 - ((max_day - min_day) as u64).leading_zeros();
    let customer_span = (i128::from(max_customer) - i128::from(min_customer)) as u128;

    if customer_span < (1_u128 << (62 - day_bits)) {
        // One i64 key (customer offset above, day offset below) hashes and sorts much
        // faster than two key columns, and its order is (customer, day) order.
        for (slot, &d) in customer.iter_mut().zip(&day) {
            let customer_offset = (*slot - min_customer) as u64;
            *slot = ((customer_offset << day_bits) | (d - min_day) as u64) as i64;
        }
        drop(day);
        let purchases = DataFrame::new(
            height,
            vec![
                Column::new("key".into(), customer),
                Column::new("amount".into(), amount),
            ],
        )?;
        let days = purchases
            .lazy()
            .sort(["key"], SortMultipleOptions::default())
            .group_by_stable([col("key")])
            .agg([
                col("amount").sum().alias("amount"),
                len().cast(DataType::Int64).alias("purchases"),
            ])
            .collect()?;
        let keys = i64_values(&days, "key")?;
        let mask = (1_u64 << day_bits) - 1;
        Ok(PurchaseDays {
            customer: keys
                .iter()
                .map(|key| ((*key as u64) >> day_bits) as i64 + min_customer)
                .collect(),
            day: keys
                .iter()
                .map(|key| ((*key as u64) & mask) as i32 + min_day)
                .collect(),
            amount: i64_values(&days, "amount")?,
            purchases: i64_values(&days, "purchases")?,
        }
        .in_order())
    } else {
        let purchases = DataFrame::new(
            height,
            vec![
                Column::new("customer".into(), customer),
                Column::new("day".into(), day),
                Column::new("amount".into(), amount),
            ],
        )?;
        let days = purchases
            .lazy()
            .sort(["customer", "day"], SortMultipleOptions::default())
            .group_by_stable([col("customer"), col("day")])
            .agg([
                col("amount").sum().alias("amount"),
                len().cast(DataType::Int64).alias("purchases"),
            ])
            .collect()?;
        Ok(PurchaseDays {
            customer: i64_values(&days, "customer")?,
            day: i32_values(&days, "day")?,
            amount: i64_values(&days, "amount")?,
            purchases: i64_values(&days, "purchases")?,
        }
        .in_order())
    }
}

/// One row per customer, ascending customer key.
#[derive(Debug, Default)]
struct CustomerTable {
    customer: Vec<i64>,
    first_day: Vec<i32>,
    last_day: Vec<i32>,
    active_days: Vec<i64>,
    purchases: Vec<i64>,
    revenue: Vec<i64>,
    first_day_revenue: Vec<i64>,
    tier_window_spend: Vec<i64>,
    /// The median of the customer's gaps between purchase days; None with one day.
    median_gap: Vec<Option<f64>>,
}

#[derive(Debug, Default)]
struct Aggregates {
    customers: CustomerTable,
    cohorts: Vec<CohortRow>,
    median_gap_days: Option<f64>,
    /// (x, t_x days, T days) per customer.
    histories: Vec<(u32, i32, i32)>,
}

/// A cohort being counted: index k is period cohort+k.
struct CohortAccumulator {
    size: u64,
    /// Customers whose last purchase falls in cohort+k.
    last_offsets: Vec<u64>,
    active: Vec<u64>,
    revenue: Vec<i64>,
}

fn aggregate(
    prepared: PreparedPurchases,
    as_of_day: i32,
    period: Period,
) -> Result<Aggregates, AnalyticsError> {
    let days = collapse_to_purchase_days(prepared)?;
    let rows = days.customer.len();
    let as_of_period = period_index(period, as_of_day);
    let tier_window_after = as_of_day - TIER_WINDOW_DAYS;
    let overflow = |what| AnalyticsError::Overflow { what };

    let mut table = CustomerTable::default();
    let mut gaps: Vec<i32> = Vec::with_capacity(rows);
    let mut cohorts: BTreeMap<i32, CohortAccumulator> = BTreeMap::new();
    let mut histories = Vec::new();

    let mut start = 0;
    while start < rows {
        let customer = days.customer[start];
        let mut end = start + 1;
        while end < rows && days.customer[end] == customer {
            end += 1;
        }
        let customer_days = &days.day[start..end];
        let customer_amounts = &days.amount[start..end];
        let first_day = customer_days[0];
        let last_day = customer_days[customer_days.len() - 1];

        let mut revenue = 0_i64;
        let mut tier_window_spend = 0_i64;
        for (&day, &amount) in customer_days.iter().zip(customer_amounts) {
            revenue = revenue
                .checked_add(amount)
                .ok_or(overflow("a customer's revenue"))?;
            if day > tier_window_after {
                tier_window_spend += amount;
            }
        }
        let gaps_from = gaps.len();
        gaps.extend(customer_days.windows(2).map(|pair| pair[1] - pair[0]));
        // In place: the global median below reads the same gaps in any order.
        let own_gap = median(&mut gaps[gaps_from..]);

        // Cohort cells: periods are non-decreasing along the customer's sorted days.
        let first_period = period_index(period, first_day);
        let span = (as_of_period - first_period + 1).max(1) as usize;
        let cohort = cohorts
            .entry(first_period)
            .or_insert_with(|| CohortAccumulator {
                size: 0,
                last_offsets: vec![0; span],
                active: vec![0; span],
                revenue: vec![0; span],
            });
        cohort.size += 1;
        let mut previous_offset = usize::MAX;
        for (&day, &amount) in customer_days.iter().zip(customer_amounts) {
            let offset = ((period_index(period, day) - first_period).max(0) as usize).min(span - 1);
            if offset != previous_offset {
                cohort.active[offset] += 1;
                previous_offset = offset;
            }
            cohort.revenue[offset] = cohort.revenue[offset].saturating_add(amount);
        }
        cohort.last_offsets[previous_offset.min(span - 1)] += 1;

        let active_days = (end - start) as i64;
        table.customer.push(customer);
        table.first_day.push(first_day);
        table.last_day.push(last_day);
        table.active_days.push(active_days);
        table
            .purchases
            .push(days.purchases[start..end].iter().sum());
        table.revenue.push(revenue);
        table.first_day_revenue.push(customer_amounts[0]);
        table.tier_window_spend.push(tier_window_spend);
        table.median_gap.push(own_gap);
        histories.push((
            (active_days - 1) as u32,
            last_day - first_day,
            as_of_day - first_day,
        ));
        start = end;
    }

    Ok(Aggregates {
        customers: table,
        cohorts: cohort_rows(period, cohorts),
        median_gap_days: median(&mut gaps),
        histories,
    })
}

/// Identical (x, t_x, T) histories with their counts: integer sort and run-length count,
/// much cheaper than letting the summary sort a million float triples.
fn distinct_histories(
    histories: &[(u32, i32, i32)],
) -> impl Iterator<Item = ((u32, i32, i32), u64)> {
    let mut sorted = histories.to_vec();
    sorted.sort_unstable();
    let mut counted: Vec<((u32, i32, i32), u64)> = Vec::new();
    for history in sorted {
        match counted.last_mut() {
            Some((last, count)) if *last == history => *count += 1,
            _ => counted.push((history, 1)),
        }
    }
    counted.into_iter()
}

fn i64_values(frame: &DataFrame, name: &str) -> Result<Vec<i64>, AnalyticsError> {
    let column = frame.column(name)?.cast(&DataType::Int64)?;
    let values = column.i64()?;
    if values.null_count() > 0 {
        return Err(AnalyticsError::Internal(format!("column {name} has nulls")));
    }
    Ok(values.into_no_null_iter().collect())
}

fn i32_values(frame: &DataFrame, name: &str) -> Result<Vec<i32>, AnalyticsError> {
    let column = frame.column(name)?.cast(&DataType::Int32)?;
    let values = column.i32()?;
    if values.null_count() > 0 {
        return Err(AnalyticsError::Internal(format!("column {name} has nulls")));
    }
    Ok(values.into_no_null_iter().collect())
}

fn build_output(
    request: &MetricsRequest,
    as_of_day: i32,
    purchase_count: u64,
    ignored_before_first_year: u64,
    aggregates: Aggregates,
    points: &PointsTotals,
) -> Result<MetricsOutput, AnalyticsError> {
    let table = &aggregates.customers;
    let customer_count = table.customer.len();

    let revenue = table
        .revenue
        .iter()
        .try_fold(0_i64, |total, value| total.checked_add(*value))
        .ok_or(AnalyticsError::Overflow {
            what: "total revenue",
        })?;
    let repeat_customers = table.active_days.iter().filter(|days| **days >= 2).count() as u64;
    let totals = Totals {
        customers: customer_count as u64,
        purchases: purchase_count,
        revenue: MinorAmount(revenue),
        repeat_customers,
        repeat_purchase_rate: if customer_count == 0 {
            0.0
        } else {
            repeat_customers as f64 / customer_count as f64
        },
        median_days_between_purchases: aggregates.median_gap_days,
    };

    let cohorts = aggregates.cohorts;

    // RFM.
    let recency: Vec<i32> = table.last_day.iter().map(|last| as_of_day - last).collect();
    let mean_amount: Vec<f64> = table
        .revenue
        .iter()
        .zip(&table.purchases)
        .map(|(revenue, purchases)| *revenue as f64 / (*purchases).max(1) as f64)
        .collect();
    let r_scores = quintile_scores(&recency, false);
    let f_scores = quintile_scores(&table.active_days, true);
    let m_scores = quintile_scores(&mean_amount, true);
    let mut segments = SegmentCounts::default();

    // Models.
    let summary = BgNbdSummary::from_weighted(distinct_histories(&aggregates.histories).map(
        |((x, recency_days, age_days), customers)| {
            (
                BgNbdHistory::from_days(x, recency_days, age_days),
                customers,
            )
        },
    ));
    let churn_fit = fit_bg_nbd(&summary);
    let usable_churn: Option<BgNbdParams> = match &churn_fit {
        Ok(fit) if fit.converged => Some(fit.params),
        _ => None,
    };
    let monetary_major: Vec<f64> = (0..customer_count)
        .map(|i| {
            let repeat_days = table.active_days[i] - 1;
            if repeat_days > 0 {
                (table.revenue[i] - table.first_day_revenue[i]) as f64 / repeat_days as f64 / 100.0
            } else {
                0.0
            }
        })
        .collect();
    let spend_data = GammaGammaData::new(
        (0..customer_count).map(|i| ((table.active_days[i] - 1).max(0) as u32, monetary_major[i])),
    );
    let spend_fit = fit_gamma_gamma(&spend_data);
    let clv_inputs = clv_inputs(&usable_churn, &spend_fit);

    let forecast_weeks = f64::from(FORECAST_DAYS) / 7.0;
    let mut growth_cache: HashMap<(u32, i32), Option<(f64, f64)>> = HashMap::new();
    let mut customers_at_risk = 0_u64;
    let mut expected_purchases_total = 0.0;
    let mut clv_total_major = 0.0;
    let mut tiers = TierCounts::default();
    let mut scores = Vec::with_capacity(customer_count);

    for i in 0..customer_count {
        let segment = Segment::from_scores(r_scores[i], f_scores[i]);
        segments.add(segment);
        let tier = tier_for(table.tier_window_spend[i], &request.tiers);
        match tier {
            Tier::Bronze => tiers.bronze += 1,
            Tier::Silver => tiers.silver += 1,
            Tier::Gold => tiers.gold += 1,
        }
        let frequency_days = table.active_days[i].max(1) as u32;
        let age_days = as_of_day - table.first_day[i];
        let history = BgNbdHistory::from_days(
            frequency_days - 1,
            table.last_day[i] - table.first_day[i],
            age_days,
        );

        let mut p_alive = None;
        let mut expected_purchases_90d = None;
        let mut clv_12m_minor = None;
        if let Some(params) = &usable_churn {
            let alive = params.p_alive(&history);
            p_alive = Some(alive);
            if history.frequency > 0 && alive < P_ALIVE_THRESHOLD {
                customers_at_risk += 1;
            }
            // Both growth factors depend on (x, T) only; a failed evaluation leaves this
            // customer's forecasts null rather than failing the run.
            let growth = *growth_cache
                .entry((history.frequency, age_days))
                .or_insert_with(|| {
                    let forecast = params
                        .purchase_growth(history.frequency, history.age_weeks, forecast_weeks)
                        .ok()?;
                    let discounted =
                        discounted_purchase_growth(params, history.frequency, history.age_weeks)
                            .ok()?;
                    Some((forecast, discounted))
                });
            if let Some((forecast, discounted)) = growth {
                let expected = forecast * alive;
                if expected.is_finite() {
                    expected_purchases_90d = Some(expected);
                    expected_purchases_total += expected;
                }
                if let Ok(spend) = &clv_inputs {
                    if let Some(value) = spend
                        .conditional_expected_average_profit(history.frequency, monetary_major[i])
                    {
                        let clv = value * alive * discounted;
                        if clv.is_finite() {
                            clv_total_major += clv;
                            clv_12m_minor = Some((clv * 100.0).round() as i64);
                        }
                    }
                }
            }
        }

        let purchases = table.purchases[i].max(0);
        let first_day = table.first_day[i];
        let last_day = table.last_day[i];
        scores.push(CustomerScore {
            customer: table.customer[i],
            recency_days: recency[i],
            frequency_days,
            monetary_minor: rounded_mean(table.revenue[i], purchases),
            purchases: purchases as u64,
            revenue_minor: table.revenue[i],
            first_purchase_day: date_of_epoch_day(first_day).unwrap_or(request.as_of),
            last_purchase_day: date_of_epoch_day(last_day).unwrap_or(request.as_of),
            r_score: r_scores[i],
            f_score: f_scores[i],
            m_score: m_scores[i],
            segment,
            tier,
            p_alive,
            expected_purchases_90d,
            clv_12m_minor,
            median_gap_days: table.median_gap[i],
        });
    }

    let churn = churn_report(&churn_fit, customers_at_risk, expected_purchases_total);
    let clv = clv_report(&spend_fit, &clv_inputs, clv_total_major);

    let report = MetricsReport {
        schema: SCHEMA_VERSION,
        merchant_id: request.merchant_id.clone(),
        as_of: request.as_of,
        timezone: request.timezone,
        period: request.period,
        totals,
        cohorts,
        rfm: RfmReport { segments },
        churn,
        clv,
        loyalty: LoyaltyReport {
            points_issued: points.issued,
            points_redeemed: points.redeemed,
            points_expired: points.expired,
            points_outstanding: points.outstanding,
            members_by_tier: tiers,
        },
    };
    Ok(MetricsOutput {
        report,
        customer_scores: scores,
        ignored_before_first_year,
    })
}

/// Mean of `total` over `count`, rounded half away from zero.
fn rounded_mean(total: i64, count: i64) -> i64 {
    if count <= 0 {
        return 0;
    }
    let (total, count) = (i128::from(total), i128::from(count));
    let rounded = (2 * total.abs() + count) / (2 * count);
    (rounded * total.signum()) as i64
}

fn cohort_rows(period: Period, cohorts: BTreeMap<i32, CohortAccumulator>) -> Vec<CohortRow> {
    cohorts
        .into_iter()
        .map(|(first, cohort)| {
            let size = cohort.size as f64;
            // Active in some period ≥ cohort+k ⇔ last purchase period ≥ cohort+k.
            let mut still_buying = vec![0_u64; cohort.last_offsets.len()];
            let mut running = 0;
            for k in (0..cohort.last_offsets.len()).rev() {
                running += cohort.last_offsets[k];
                still_buying[k] = running;
            }
            CohortRow {
                cohort: period_label(period, first),
                size: cohort.size,
                retention: cohort.active.iter().map(|n| *n as f64 / size).collect(),
                retention_unbounded: still_buying.iter().map(|n| *n as f64 / size).collect(),
                revenue: cohort.revenue.into_iter().map(MinorAmount).collect(),
            }
        })
        .collect()
}

/// The spend parameters CLV can use, or why there are none.
fn clv_inputs(
    churn: &Option<BgNbdParams>,
    spend_fit: &Result<GammaGammaFit, FitError>,
) -> Result<crate::gamma_gamma::GammaGammaParams, String> {
    let fit = match spend_fit {
        Err(error) => return Err(error.to_string()),
        Ok(fit) if !fit.converged => {
            return Err(fit
                .note
                .clone()
                .unwrap_or_else(|| "the Gamma-Gamma fit did not converge".to_owned()))
        }
        Ok(fit) => fit,
    };
    if churn.is_none() {
        return Err("CLV needs the BG/NBD churn model, which is not fitted".to_owned());
    }
    if fit.params.population_mean().is_none() {
        return Err(ClvError::InfiniteMeanSpend(fit.params.q).to_string());
    }
    Ok(fit.params)
}

fn churn_report(
    fit: &Result<BgNbdFit, FitError>,
    customers_at_risk: u64,
    expected_purchases: f64,
) -> ChurnReport {
    let (params, log_likelihood, converged, reason) = match fit {
        Ok(fit) => (
            ChurnParams::fitted(&fit.params),
            Some(fit.log_likelihood),
            fit.converged,
            fit.note.clone(),
        ),
        Err(error) => (ChurnParams::default(), None, false, Some(error.to_string())),
    };
    ChurnReport {
        model: ChurnModel::BgNbd,
        params: finite_churn_params(params),
        log_likelihood: log_likelihood.filter(|value| value.is_finite()),
        converged,
        reason,
        customers_at_risk,
        p_alive_threshold: P_ALIVE_THRESHOLD,
        expected_purchases_next_90d: if expected_purchases.is_finite() {
            expected_purchases
        } else {
            0.0
        },
    }
}

fn finite_churn_params(params: ChurnParams) -> ChurnParams {
    let finite = |value: Option<f64>| value.filter(|v| v.is_finite());
    ChurnParams {
        r: finite(params.r),
        alpha: finite(params.alpha),
        a: finite(params.a),
        b: finite(params.b),
    }
}

fn clv_report(
    spend_fit: &Result<GammaGammaFit, FitError>,
    clv_inputs: &Result<crate::gamma_gamma::GammaGammaParams, String>,
    clv_total_major: f64,
) -> ClvReport {
    let params = match spend_fit {
        Ok(fit) => {
            let finite = |value: f64| Some(value).filter(|v| v.is_finite());
            ClvParams {
                p: finite(fit.params.p),
                q: finite(fit.params.q),
                v: finite(fit.params.v),
            }
        }
        Err(_) => ClvParams::default(),
    };
    let total_minor = (clv_total_major * 100.0).round();
    match clv_inputs {
        Ok(_) if total_minor.is_finite() && total_minor.abs() < 9.0e18 => ClvReport {
            model: ClvModel::GammaGamma,
            params,
            expected_12m_total: Some(MinorAmount(total_minor as i64)),
            reason: None,
        },
        Ok(_) => ClvReport {
            model: ClvModel::GammaGamma,
            params,
            expected_12m_total: None,
            reason: Some("the CLV total is not a finite amount".to_owned()),
        },
        Err(reason) => ClvReport {
            model: ClvModel::GammaGamma,
            params,
            expected_12m_total: None,
            reason: Some(reason.clone()),
        },
    }
}
