//! Overview, cohorts and loyalty: pages drawn from the metric snapshots, and the loyalty
//! page's referral section (the store's counts, top advocates and latest referrals).

use axum::extract::{Query, State};
use axum::response::Response;
use chrono::NaiveDate;
use minijinja::context;
use minijinja::value::Value;
use serde::{Deserialize, Serialize};
use setia_core::referral::ReferralStatus;
use setia_core::MerchantId;
use setia_store::{PageRequest, Store};

use super::auth::Session;
use super::customers::id_cursor;
use super::format::{self, number, percent};
use super::i18n::{texts, Lang};
use super::render::{ser, PageError};
use super::snapshot::{self, Report, Summary, SEGMENTS, TIERS};
use super::{charts, Dash};

/// Months of revenue the overview's chart shows.
const REVENUE_MONTHS: usize = 12;
/// Cohorts (rows) and periods (columns) a heatmap shows: the most recent cohorts.
const HEATMAP_ROWS: usize = 24;
const HEATMAP_COLUMNS: usize = 24;

fn short_day(as_of: &str, lang: Lang) -> String {
    match NaiveDate::parse_from_str(as_of, "%Y-%m-%d") {
        Ok(day) => {
            let long = format::day(day, lang);
            // "30 Sep 1997" → "30 Sep"; the year is in the page's heading.
            long.rsplit_once(' ')
                .map_or(long.clone(), |(d, _)| d.to_owned())
        }
        Err(_) => as_of.to_owned(),
    }
}

/// Rupiah for a chart axis: `Rp 1,2 jt` / `Rp 1.2M`, `Rp 350 rb` / `Rp 350K`.
fn compact_rupiah(minor: f64, lang: Lang) -> String {
    let rupiah = minor / 100.0;
    let (million, thousand) = match lang {
        Lang::Id => ("jt", "rb"),
        Lang::En => ("M", "K"),
    };
    if rupiah.abs() >= 1_000_000_000.0 {
        let unit = if lang == Lang::Id { "M" } else { "B" };
        format!("Rp {} {unit}", number(rupiah / 1e9, 1, lang))
    } else if rupiah.abs() >= 1_000_000.0 {
        format!("Rp {} {million}", number(rupiah / 1e6, 1, lang))
    } else if rupiah.abs() >= 1_000.0 {
        format!("Rp {} {thousand}", number(rupiah / 1e3, 0, lang))
    } else {
        format!("Rp {}", number(rupiah, 0, lang))
    }
}

#[derive(Debug, Serialize)]
struct Change {
    key: &'static str,
    now: String,
    before: String,
    delta: String,
    /// up, down or flat; `good` says whether up is good news.
    direction: &'static str,
    good: bool,
}

fn change(
    key: &'static str,
    now: f64,
    before: f64,
    good_when_up: bool,
    show: &dyn Fn(f64) -> String,
    show_delta: &dyn Fn(f64) -> String,
) -> Change {
    let delta = now - before;
    let direction = if delta.abs() < 1e-9 {
        "flat"
    } else if delta > 0.0 {
        "up"
    } else {
        "down"
    };
    let sign = if delta > 0.0 { "+" } else { "" };
    Change {
        key,
        now: show(now),
        before: show(before),
        delta: format!("{sign}{}", show_delta(delta)),
        direction,
        good: (delta > 0.0) == good_when_up,
    }
}

fn changes(now: &Summary, before: &Summary, lang: Lang) -> Vec<Change> {
    let count = |v: f64| number(v, 0, lang);
    let rupiah = |v: f64| setia_core::format_rupiah(setia_core::Money::from_minor(v as i64));
    let rate = |v: f64| percent(v, 1, lang);
    let points = |v: f64| number(v, 0, lang);
    let pp = |v: f64| format!("{} pp", number(v * 100.0, 1, lang));
    let minor = |s: &Summary| snapshot::minor(&s.totals.revenue) as f64;
    vec![
        change(
            "customers",
            now.totals.customers as f64,
            before.totals.customers as f64,
            true,
            &count,
            &count,
        ),
        change(
            "purchases",
            now.totals.purchases as f64,
            before.totals.purchases as f64,
            true,
            &count,
            &count,
        ),
        change("revenue", minor(now), minor(before), true, &rupiah, &rupiah),
        change(
            "repeat_purchase_rate",
            now.totals.repeat_purchase_rate,
            before.totals.repeat_purchase_rate,
            true,
            &rate,
            &pp,
        ),
        change(
            "customers_at_risk",
            now.churn.customers_at_risk as f64,
            before.churn.customers_at_risk as f64,
            false,
            &count,
            &count,
        ),
        change(
            "points_outstanding",
            now.loyalty.points_outstanding as f64,
            before.loyalty.points_outstanding as f64,
            false,
            &points,
            &points,
        ),
    ]
}

pub async fn overview(State(dash): State<Dash>, session: Session) -> Result<Response, PageError> {
    let lang = session.lang;
    let store = &*dash.store;
    let merchant = &session.merchant.id;
    let history = snapshot::history(store, merchant).await?;
    let latest_month = snapshot::latest(store, merchant, "month").await?;
    let page = match (history.latest(), &latest_month) {
        (Some(latest), Some((snapshot, report))) => {
            let tr = texts(lang);
            let trend_labels: Vec<String> = history
                .points
                .iter()
                .map(|s| short_day(&s.as_of, lang))
                .collect();
            let trend_values: Vec<f64> = history
                .points
                .iter()
                .map(|s| s.totals.repeat_purchase_rate)
                .collect();
            let trend_svg = charts::line(
                tr.get("chart_repeat_rate"),
                &trend_labels,
                &trend_values,
                None,
                &|v| percent(v, 0, lang),
            )?;
            let revenue = snapshot::new_vs_returning(report, REVENUE_MONTHS);
            let revenue_labels: Vec<String> = revenue
                .iter()
                .map(|(m, _, _)| format::period_label(m, lang))
                .collect();
            let revenue_svg = charts::stacked_bars(
                tr.get("chart_new_vs_returning"),
                &revenue_labels,
                &[
                    revenue.iter().map(|r| r.1 as f64).collect(),
                    revenue.iter().map(|r| r.2 as f64).collect(),
                ],
                &|v| compact_rupiah(v, lang),
            )?;
            let revenue_rows: Vec<Value> = revenue
                .iter()
                .rev()
                .map(|(month, new, returning)| {
                    context! { month => month, new => new, returning => returning }
                })
                .collect();
            let changes = history
                .week_before
                .as_ref()
                .map(|before| (before.as_of.clone(), changes(latest, before, lang)));
            context! {
                has_snapshot => true,
                as_of => &latest.as_of,
                computed_at => snapshot.computed_at.to_rfc3339(),
                totals => ser(&latest.totals),
                churn => ser(&latest.churn),
                clv => ser(&latest.clv),
                loyalty => ser(&latest.loyalty),
                trend_points => history.points.len(),
                trend_svg => trend_svg,
                revenue_svg => revenue_svg,
                revenue_rows => revenue_rows,
                changes_since => changes.as_ref().map(|c| c.0.clone()),
                changes => changes.map(|c| ser(c.1)),
            }
        }
        _ => context! { has_snapshot => false },
    };
    dash.page(&session, "overview", "overview.html", page).await
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct CohortQuery {
    period: String,
}

#[derive(Debug, Serialize)]
struct CohortRow {
    cohort: String,
    size: u64,
    revenue_minor: i64,
    second_period: Option<f64>,
    returned_ever: Option<f64>,
}

fn heatmaps(report: &Report, lang: Lang) -> Result<Value, PageError> {
    let tr = texts(lang);
    let start = report.cohorts.len().saturating_sub(HEATMAP_ROWS);
    let shown = &report.cohorts[start..];
    let labels: Vec<String> = shown
        .iter()
        .map(|c| format::period_label(&c.cohort, lang))
        .collect();
    let longest = shown.iter().map(|c| c.retention.len()).max().unwrap_or(0);
    let columns = longest.min(HEATMAP_COLUMNS);
    let in_progress = snapshot::last_period_in_progress(report);
    let cell = |v: f64| percent(v, 0, lang);
    let retention: Vec<Vec<f64>> = shown.iter().map(|c| c.retention.clone()).collect();
    let unbounded: Vec<Vec<f64>> = shown
        .iter()
        .map(|c| c.retention_unbounded.clone())
        .collect();
    let rows: Vec<CohortRow> = report
        .cohorts
        .iter()
        .rev()
        .map(|c| CohortRow {
            cohort: c.cohort.clone(),
            size: c.size,
            revenue_minor: c.revenue.iter().map(|r| snapshot::minor(r)).sum(),
            second_period: c.retention.get(1).copied(),
            returned_ever: c.retention_unbounded.get(1).copied(),
        })
        .collect();
    Ok(context! {
        retention_svg => charts::heatmap(tr.get("chart_retention"), &labels, &retention, columns, in_progress, &cell)?,
        unbounded_svg => charts::heatmap(tr.get("chart_retention_unbounded"), &labels, &unbounded, columns, in_progress, &cell)?,
        in_progress => in_progress,
        in_progress_visible => in_progress && longest <= HEATMAP_COLUMNS,
        shown_cohorts => shown.len(),
        total_cohorts => report.cohorts.len(),
        shown_columns => columns,
        total_columns => longest,
        rows => ser(&rows),
    })
}

pub async fn cohorts(
    State(dash): State<Dash>,
    session: Session,
    Query(query): Query<CohortQuery>,
) -> Result<Response, PageError> {
    let period = match query.period.as_str() {
        "" | "month" => "month",
        "week" => "week",
        _ => return Err(PageError::BadRequest("period".into())),
    };
    let latest = snapshot::latest(&*dash.store, &session.merchant.id, period).await?;
    let page = match latest {
        Some((snapshot, report)) => context! {
            period => period,
            has_snapshot => true,
            as_of => &report.summary.as_of,
            computed_at => snapshot.computed_at.to_rfc3339(),
            heatmaps => heatmaps(&report, session.lang)?,
        },
        None => context! { period => period, has_snapshot => false },
    };
    dash.page(&session, "cohorts", "cohorts.html", page).await
}

/// Advocates the referral section lists.
const TOP_ADVOCATES: u32 = 10;
/// Referrals per page in the section's list.
const REFERRALS_PAGE: u32 = 20;

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct LoyaltyQuery {
    /// Older referrals: an id cursor.
    referrals: String,
    /// Only the referrals of this status.
    referral_status: String,
}

/// The referral section: shown while the program is on, or once any referral exists (a
/// program turned off keeps its history visible).
async fn referral_section(
    store: &dyn Store,
    merchant: &MerchantId,
    query: &LoyaltyQuery,
) -> Result<Option<Value>, PageError> {
    let status = match query.referral_status.trim() {
        "" => None,
        text => Some(
            ReferralStatus::parse(text)
                .ok_or_else(|| PageError::BadRequest("referral_status".into()))?,
        ),
    };
    let before = id_cursor(&query.referrals)?;
    let settings = store.engagement_program(merchant).await?.referral;
    let summary = store.referral_summary(merchant, TOP_ADVOCATES).await?;
    if !settings.enabled && summary.counts.is_empty() {
        return Ok(None);
    }
    let by_status: Vec<Value> = ReferralStatus::ALL
        .iter()
        .map(|s| {
            let count: u64 = summary
                .counts
                .iter()
                .filter(|c| c.status == s.as_str())
                .map(|c| c.count)
                .sum();
            context! { status => s.as_str(), count => count }
        })
        .collect();
    let mut by_reason: Vec<_> = summary
        .counts
        .iter()
        .filter_map(|c| c.reason.map(|reason| (reason, c.status, c.count)))
        .collect();
    by_reason.sort_by(|a, b| b.2.cmp(&a.2).then(a.0.cmp(b.0)));
    let by_reason: Vec<Value> = by_reason
        .into_iter()
        .map(|(reason, status, count)| context! { reason => reason, status => status, count => count })
        .collect();
    let latest = store
        .referrals(
            merchant,
            status,
            PageRequest {
                before,
                limit: REFERRALS_PAGE,
            },
        )
        .await?;
    Ok(Some(context! {
        enabled => settings.enabled,
        settings => context! {
            advocate_points => settings.advocate_points,
            friend_voucher_percent => settings.friend_voucher_percent,
            min_first_order_minor => settings.min_first_order().minor(),
            max_rewards_per_month => settings.max_rewards_per_month,
            hold_days => settings.hold_days,
        },
        total => summary.counts.iter().map(|c| c.count).sum::<u64>(),
        by_status => by_status,
        by_reason => by_reason,
        top_advocates => ser(&summary.top_advocates),
        referred_customers => summary.referred_customers,
        referred_revenue => ser(summary.referred_revenue),
        referred_payments => summary.referred_payments,
        statuses => ReferralStatus::ALL.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
        status_filter => status.map(ReferralStatus::as_str),
        latest => context! {
            items => ser(&latest.items),
            next_cursor => latest.next_cursor.map(|c| c.to_string()),
        },
    }))
}

pub async fn loyalty(
    State(dash): State<Dash>,
    session: Session,
    Query(query): Query<LoyaltyQuery>,
) -> Result<Response, PageError> {
    let lang = session.lang;
    let store = &*dash.store;
    let merchant = &session.merchant.id;
    let referral = referral_section(store, merchant, &query).await?;
    let program = store.loyalty_program(merchant).await?;
    let history = snapshot::history(store, merchant).await?;
    let page = match history.latest() {
        Some(latest) => {
            let tr = texts(lang);
            let labels: Vec<String> = history
                .points
                .iter()
                .map(|s| short_day(&s.as_of, lang))
                .collect();
            let series: Vec<Vec<f64>> = TIERS
                .iter()
                .map(|tier| {
                    history
                        .points
                        .iter()
                        .map(|s| s.loyalty.members_by_tier.get(*tier).copied().unwrap_or(0) as f64)
                        .collect()
                })
                .collect();
            let members: u64 = latest.loyalty.members_by_tier.values().sum();
            let tiers: Vec<Value> = TIERS
                .iter()
                .map(|tier| {
                    let count = latest
                        .loyalty
                        .members_by_tier
                        .get(*tier)
                        .copied()
                        .unwrap_or(0);
                    context! {
                        tier => *tier,
                        count => count,
                        share => if members > 0 { count as f64 / members as f64 } else { 0.0 },
                    }
                })
                .collect();
            context! {
                has_snapshot => true,
                as_of => &latest.as_of,
                loyalty => ser(&latest.loyalty),
                tiers => tiers,
                tiers_svg => charts::stacked_bars(
                    tr.get("chart_tiers_over_time"),
                    &labels,
                    &series,
                    &|v| number(v, 0, lang),
                )?,
            }
        }
        None => context! { has_snapshot => false },
    };
    let program = context! {
        rupiah_per_point => program.rupiah_per_point,
        silver_threshold_minor => program.silver_threshold_rupiah.saturating_mul(100),
        silver_multiplier => program.silver_multiplier,
        gold_threshold_minor => program.gold_threshold_rupiah.saturating_mul(100),
        gold_multiplier => program.gold_multiplier,
        bonus_every => program.bonus_every,
        bonus_points => program.bonus_points,
        birthday_points => program.birthday_points,
        expiry_days => program.expiry_days,
        rupiah_per_point_minor => program.rupiah_per_point.saturating_mul(100),
    };
    dash.page(
        &session,
        "loyalty",
        "loyalty.html",
        context! { ..page, ..context! { program => program, segments => SEGMENTS, referral => referral } },
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axis_money_is_short() {
        assert_eq!(compact_rupiah(125_000_000.0, Lang::Id), "Rp 1,3 jt");
        assert_eq!(compact_rupiah(125_000_000.0, Lang::En), "Rp 1.3 M");
        assert_eq!(compact_rupiah(35_000_000.0, Lang::Id), "Rp 350 rb");
        assert_eq!(compact_rupiah(50_000.0, Lang::En), "Rp 500");
        assert_eq!(compact_rupiah(0.0, Lang::En), "Rp 0");
    }

    #[test]
    fn changes_say_which_way_and_whether_that_is_good() {
        let mut before = Summary::default();
        before.totals.customers = 100;
        before.totals.repeat_purchase_rate = 0.25;
        before.churn.customers_at_risk = 10;
        let mut now = before.clone();
        now.totals.customers = 110;
        now.totals.repeat_purchase_rate = 0.3;
        now.churn.customers_at_risk = 12;
        let rows = changes(&now, &before, Lang::En);
        let customers = rows.iter().find(|c| c.key == "customers").unwrap();
        assert_eq!(
            (
                customers.delta.as_str(),
                customers.direction,
                customers.good
            ),
            ("+10", "up", true)
        );
        let rate = rows
            .iter()
            .find(|c| c.key == "repeat_purchase_rate")
            .unwrap();
        assert_eq!(rate.delta, "+5.0 pp");
        let risk = rows.iter().find(|c| c.key == "customers_at_risk").unwrap();
        assert_eq!((risk.direction, risk.good), ("up", false));
        let revenue = rows.iter().find(|c| c.key == "revenue").unwrap();
        assert_eq!(revenue.direction, "flat");
    }
}
