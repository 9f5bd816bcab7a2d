//! Reading metric snapshots (the metrics JSON, schema 1) for pages: the latest report, and a
//! short history for trends. Pages never compute metrics; they read what the batch stored.

use std::collections::BTreeMap;

use chrono::{Datelike, NaiveDate, TimeDelta};
use serde::{Deserialize, Serialize};
use setia_core::{MerchantId, Money};
use setia_store::analytics::Snapshot;
use setia_store::Store;

use super::render::PageError;

/// RFM segments in the order the grid reads (best first).
pub const SEGMENTS: [&str; 10] = [
    "champions",
    "loyal",
    "potential_loyalists",
    "new_customers",
    "promising",
    "need_attention",
    "about_to_sleep",
    "at_risk",
    "cant_lose",
    "hibernating",
];

pub const TIERS: [&str; 3] = ["bronze", "silver", "gold"];

/// How many snapshots a trend shows (one per week when there are more).
pub const TREND_POINTS: usize = 26;
/// Snapshots looked at to choose them (a year of nightly runs, and some recomputations).
const HEADS_READ: u32 = 500;

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct Totals {
    pub customers: u64,
    pub purchases: u64,
    pub revenue: String,
    pub repeat_customers: u64,
    pub repeat_purchase_rate: f64,
    pub median_days_between_purchases: Option<f64>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct Cohort {
    pub cohort: String,
    pub size: u64,
    pub retention: Vec<f64>,
    pub retention_unbounded: Vec<f64>,
    pub revenue: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct Rfm {
    pub segments: BTreeMap<String, u64>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct Churn {
    pub converged: bool,
    pub customers_at_risk: u64,
    pub p_alive_threshold: Option<f64>,
    pub expected_purchases_next_90d: Option<f64>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct Clv {
    pub expected_12m_total: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct Loyalty {
    pub points_issued: i64,
    pub points_redeemed: i64,
    pub points_expired: i64,
    pub points_outstanding: i64,
    pub members_by_tier: BTreeMap<String, u64>,
}

/// A report without its cohorts: what trends need, cheap to read.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct Summary {
    pub as_of: String,
    pub period: String,
    pub totals: Totals,
    pub rfm: Rfm,
    pub churn: Churn,
    pub clv: Clv,
    pub loyalty: Loyalty,
}

/// A whole report.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct Report {
    #[serde(flatten)]
    pub summary: Summary,
    pub cohorts: Vec<Cohort>,
}

fn corrupt(snapshot: &Snapshot, error: serde_json::Error) -> PageError {
    PageError::Internal(format!("snapshot {} is not readable: {error}", snapshot.id))
}

pub fn summary_of(snapshot: &Snapshot) -> Result<Summary, PageError> {
    serde_json::from_str(&snapshot.report).map_err(|e| corrupt(snapshot, e))
}

pub fn report_of(snapshot: &Snapshot) -> Result<Report, PageError> {
    serde_json::from_str(&snapshot.report).map_err(|e| corrupt(snapshot, e))
}

/// The latest snapshot of a period, whole.
pub async fn latest(
    store: &dyn Store,
    merchant: &MerchantId,
    period: &str,
) -> Result<Option<(Snapshot, Report)>, PageError> {
    let heads = store.snapshot_heads(merchant, period, 1).await?;
    let Some(head) = heads.first() else {
        return Ok(None);
    };
    let snapshot = store
        .snapshots_by_id(merchant, &[head.id])
        .await?
        .into_iter()
        .next()
        .ok_or(PageError::NotFound)?;
    let report = report_of(&snapshot)?;
    Ok(Some((snapshot, report)))
}

/// Monthly snapshots over time, oldest first: at most [`TREND_POINTS`], one per as-of day
/// (the last computed), one per week when there are more; and the one a week before the
/// latest, to say what changed.
#[derive(Debug, Default)]
pub struct History {
    pub points: Vec<Summary>,
    pub week_before: Option<Summary>,
}

impl History {
    pub fn latest(&self) -> Option<&Summary> {
        self.points.last()
    }
}

fn parse_day(text: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()
}

pub async fn history(store: &dyn Store, merchant: &MerchantId) -> Result<History, PageError> {
    let heads = store.snapshot_heads(merchant, "month", HEADS_READ).await?;
    // Newest id first: the first head of each day is that day's latest computation.
    let mut by_day: BTreeMap<NaiveDate, i64> = BTreeMap::new();
    for head in &heads {
        if let Some(day) = parse_day(&head.as_of) {
            by_day.entry(day).or_insert(head.id);
        }
    }
    let days: Vec<(NaiveDate, i64)> = by_day.into_iter().collect();
    let Some(&(latest_day, _)) = days.last() else {
        return Ok(History::default());
    };
    let mut chosen: Vec<(NaiveDate, i64)> = if days.len() > TREND_POINTS {
        // The last day of each ISO week.
        let mut weekly: BTreeMap<(i32, u32), (NaiveDate, i64)> = BTreeMap::new();
        for (day, id) in &days {
            let week = day.iso_week();
            weekly.insert((week.year(), week.week()), (*day, *id));
        }
        weekly.into_values().collect()
    } else {
        days.clone()
    };
    if chosen.len() > TREND_POINTS {
        chosen.drain(..chosen.len() - TREND_POINTS);
    }
    let week_before = days
        .iter()
        .rev()
        .find(|(day, _)| *day <= latest_day - TimeDelta::days(7))
        .copied();
    let mut ids: Vec<i64> = chosen.iter().map(|(_, id)| *id).collect();
    if let Some((_, id)) = week_before {
        ids.push(id);
    }
    let snapshots = store.snapshots_by_id(merchant, &ids).await?;
    let mut summaries: BTreeMap<i64, Summary> = BTreeMap::new();
    for snapshot in &snapshots {
        summaries.insert(snapshot.id, summary_of(snapshot)?);
    }
    Ok(History {
        points: chosen
            .iter()
            .filter_map(|(_, id)| summaries.get(id).cloned())
            .collect(),
        week_before: week_before.and_then(|(_, id)| summaries.get(&id).cloned()),
    })
}

/// A decimal amount from the report ("2500315.63") in minor units.
pub fn minor(amount: &str) -> i64 {
    Money::parse_signed(amount).map_or(0, |m| m.minor())
}

/// `1997-03` as a month number, for arithmetic on cohort labels.
fn month_index(label: &str) -> Option<i64> {
    let (year, month) = label.split_once('-')?;
    let (year, month): (i64, i64) = (year.parse().ok()?, month.parse().ok()?);
    (1..=12).contains(&month).then_some(year * 12 + month - 1)
}

fn month_label(index: i64) -> String {
    format!(
        "{:04}-{:02}",
        index.div_euclid(12),
        index.rem_euclid(12) + 1
    )
}

/// Revenue per calendar month from customers in their first month (new) and from
/// customers who came before (returning), for the last `months` months of a monthly
/// report: (month, new, returning) in minor units, oldest first.
pub fn new_vs_returning(report: &Report, months: usize) -> Vec<(String, i64, i64)> {
    let mut by_month: BTreeMap<i64, (i64, i64)> = BTreeMap::new();
    for cohort in &report.cohorts {
        let Some(start) = month_index(&cohort.cohort) else {
            continue;
        };
        for (k, amount) in cohort.revenue.iter().enumerate() {
            let entry = by_month.entry(start + k as i64).or_default();
            if k == 0 {
                entry.0 += minor(amount);
            } else {
                entry.1 += minor(amount);
            }
        }
    }
    let all: Vec<(String, i64, i64)> = by_month
        .into_iter()
        .map(|(month, (new, returning))| (month_label(month), new, returning))
        .collect();
    let skip = all.len().saturating_sub(months);
    all.into_iter().skip(skip).collect()
}

/// Whether the report's last period (the one containing `as_of`) was still running on
/// `as_of`.
pub fn last_period_in_progress(report: &Report) -> bool {
    let Some(as_of) = parse_day(&report.summary.as_of) else {
        return false;
    };
    let next = as_of + TimeDelta::days(1);
    match report.summary.period.as_str() {
        "week" => as_of.weekday() != chrono::Weekday::Sun,
        _ => next.month() == as_of.month(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(cohorts: Vec<(&str, Vec<&str>)>, as_of: &str, period: &str) -> Report {
        Report {
            summary: Summary {
                as_of: as_of.into(),
                period: period.into(),
                ..Summary::default()
            },
            cohorts: cohorts
                .into_iter()
                .map(|(label, revenue)| Cohort {
                    cohort: label.into(),
                    size: 1,
                    revenue: revenue.into_iter().map(String::from).collect(),
                    ..Cohort::default()
                })
                .collect(),
        }
    }

    #[test]
    fn revenue_splits_into_first_month_and_returning_customers() {
        let r = report(
            vec![
                ("2024-11", vec!["100.00", "10.00", "5.00"]),
                ("2024-12", vec!["200.00", "20.00"]),
                ("2025-01", vec!["300.00"]),
            ],
            "2025-01-31",
            "month",
        );
        assert_eq!(
            new_vs_returning(&r, 12),
            vec![
                ("2024-11".into(), 10_000, 0),
                ("2024-12".into(), 20_000, 1_000),
                ("2025-01".into(), 30_000, 500 + 2_000),
            ]
        );
        assert_eq!(new_vs_returning(&r, 1).len(), 1);
    }

    #[test]
    fn the_last_period_is_in_progress_unless_as_of_ends_it() {
        assert!(!last_period_in_progress(&report(
            vec![],
            "1997-09-30",
            "month"
        )));
        assert!(last_period_in_progress(&report(
            vec![],
            "1997-09-29",
            "month"
        )));
        assert!(!last_period_in_progress(&report(
            vec![],
            "2025-01-05",
            "week"
        )));
        assert!(last_period_in_progress(&report(
            vec![],
            "2025-01-04",
            "week"
        )));
    }

    #[test]
    fn reports_read_leniently_and_keep_every_figure() {
        let text = r#"{"schema":1,"as_of":"1997-09-30","period":"month","totals":{"customers":3,
            "purchases":5,"revenue":"10.50","repeat_customers":1,"repeat_purchase_rate":0.3333,
            "median_days_between_purchases":null},"cohorts":[{"cohort":"1997-01","size":3,
            "retention":[1.0,0.5],"retention_unbounded":[1.0,0.5],"revenue":["1.00","2.00"]}],
            "rfm":{"segments":{"champions":1}},"churn":{"model":"bg_nbd","customers_at_risk":2},
            "clv":{"expected_12m_total":"99.00"},"loyalty":{"points_outstanding":7,
            "members_by_tier":{"bronze":3}}}"#;
        let parsed: Report = serde_json::from_str(text).unwrap();
        assert_eq!(parsed.summary.totals.customers, 3);
        assert_eq!(parsed.cohorts[0].retention, vec![1.0, 0.5]);
        assert_eq!(parsed.summary.churn.customers_at_risk, 2);
        assert_eq!(parsed.summary.loyalty.members_by_tier["bronze"], 3);
        assert_eq!(minor(&parsed.summary.totals.revenue), 1050);
    }
}
