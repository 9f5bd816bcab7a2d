//! Campaigns (*Kampanye*): what setia does to bring customers back, and what it earned.
//! Its first section is win-back (DESIGN §8): whether it is on and its steps, the result
//! against the holdout over the episodes entered in the last 365 days (per 30- and 60-day
//! window and per month of entry), a chart of the revenue difference per cohort with its
//! interval, the episodes in progress and the ones that ended lately.
//!
//! The rule of the page: no difference is shown without its 95% interval and the groups'
//! sizes; when a group is too small for an interval, the cell says so instead of a number.
//! The figures are setia-analytics' [`winback_results`], from the same outcomes the JSON
//! API reads (`winback_api::outcome` maps them).

use axum::extract::{Query, State};
use axum::response::Response;
use chrono::{TimeDelta, Utc};
use minijinja::context;
use minijinja::value::Value;
use serde::Deserialize;
use setia_analytics::winback::{Difference, GroupComparison, GroupWindow, WindowComparison};
use setia_analytics::{winback_results, MinorAmount, WinbackOutcome};
use setia_core::{format_rupiah, Money};
use setia_store::winback::Episode;
use setia_store::PageRequest;

use super::auth::Session;
use super::customers::id_cursor;
use super::format::{self, number};
use super::i18n::{texts, Lang};
use super::render::{ser, PageError};
use super::{charts, Dash};
use crate::winback_api::{outcome, DEFAULT_RESULTS_DAYS};

/// Episodes in progress per page.
const EPISODES_PAGE: u32 = 25;
/// Episodes read to find the ones that ended lately, and how many of those are shown.
const RECENT_SCAN: u32 = 100;
const RECENT_SHOWN: usize = 20;

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct CampaignsQuery {
    /// Older episodes in progress.
    cursor: String,
}

/// The sign of a difference: `+`, `−` (a true minus) or nothing for zero as shown.
fn signed(value: f64, shown: String) -> String {
    let zero = shown.chars().all(|c| !c.is_ascii_digit() || c == '0');
    if zero {
        shown
    } else if value > 0.0 {
        format!("+{shown}")
    } else {
        format!("−{}", shown.trim_start_matches('-'))
    }
}

/// An amount in whole rupiah (means have sen nobody needs to read).
fn rupiah(minor: i64) -> String {
    let whole = (minor as f64 / 100.0).round() as i64 * 100;
    format_rupiah(Money::from_minor(whole))
}

fn signed_rupiah(amount: MinorAmount) -> String {
    signed(amount.0 as f64, rupiah(amount.0.abs()))
}

/// A difference with its interval, each bound formatted by `show`; or, without an
/// interval, only that there is not enough data (never a bare estimate).
fn difference<T: Copy>(value: &Difference<T>, show: impl Fn(T) -> String) -> Value {
    match (value.estimate, value.low, value.high) {
        (Some(estimate), Some(low), Some(high)) => context! {
            enough => true,
            estimate => show(estimate),
            low => show(low),
            high => show(high),
        },
        _ => context! { enough => false },
    }
}

fn group(window: &GroupWindow, lang: Lang) -> Value {
    context! {
        n => window.n,
        pending => window.pending,
        bought => window.bought,
        share_bought => window.share_bought,
        purchases => window.purchases_per_customer.map(|v| number(v, 2, lang)),
        revenue => window.revenue_per_customer.map(|m| rupiah(m.0)),
        expected => window.expected_purchases_per_customer.map(|v| number(v, 2, lang)),
        with_expectation => window.with_expectation,
    }
}

fn window(comparison: &WindowComparison, lang: Lang) -> Value {
    let points = |v: f64| signed(v, format!("{} pp", number(v.abs() * 100.0, 1, lang)));
    let count = |decimals: u32| move |v: f64| signed(v, number(v.abs(), decimals, lang));
    let difference_of = &comparison.difference;
    let incremental = &comparison.incremental;
    context! {
        days => comparison.days,
        treated => group(&comparison.treated, lang),
        holdout => group(&comparison.holdout, lang),
        share_bought => difference(&difference_of.share_bought, points),
        purchases => difference(&difference_of.purchases_per_customer, count(2)),
        revenue => difference(&difference_of.revenue_per_customer, signed_rupiah),
        incremental_customers => difference(&incremental.customers, count(1)),
        incremental_purchases => difference(&incremental.purchases, count(1)),
        incremental_revenue => difference(&incremental.revenue, signed_rupiah),
    }
}

fn comparison(comparison: &GroupComparison, lang: Lang) -> Value {
    context! {
        treated => comparison.treated,
        holdout => comparison.holdout,
        vouchers_redeemed => comparison.vouchers_redeemed,
        windows => [window(&comparison.days_30, lang), window(&comparison.days_60, lang)],
    }
}

/// An episode as the lists show it.
fn episode(episode: &Episode) -> Value {
    context! {
        id => episode.id,
        customer_id => episode.customer_id.to_string(),
        customer => episode.customer_name.as_deref().unwrap_or(&episode.customer_external_id),
        external_id => &episode.customer_external_id,
        number => episode.number,
        reason => &episode.reason,
        holdout => episode.holdout,
        entered_at => ser(episode.entered_at),
        last_step_at => ser(episode.last_step_at),
        p_alive => episode.p_alive,
        ended_at => episode.ended_at.map(ser),
        end_reason => &episode.end_reason,
        vouchers => ser(&episode.vouchers),
    }
}

pub async fn campaigns(
    State(dash): State<Dash>,
    session: Session,
    Query(query): Query<CampaignsQuery>,
) -> Result<Response, PageError> {
    let before = id_cursor(&query.cursor)?;
    let lang = session.lang;
    let tr = texts(lang);
    let store = &*dash.store;
    let merchant = &session.merchant.id;
    let settings = store.engagement_program(merchant).await?.winback;

    // The results over the episodes entered in the last year, as of now.
    let now = Utc::now();
    let from = now - TimeDelta::days(DEFAULT_RESULTS_DAYS);
    let outcomes: Vec<WinbackOutcome> = store
        .winback_outcomes(merchant, from, now)
        .await?
        .iter()
        .map(outcome)
        .collect();
    let results = winback_results(&outcomes, now, session.merchant.timezone.tz());

    // Per month of entry: the 30-day revenue difference per customer with its interval.
    let labels: Vec<String> = results
        .cohorts
        .iter()
        .map(|c| format::period_label(&c.month, lang))
        .collect();
    let points: Vec<Option<(f64, f64, f64)>> = results
        .cohorts
        .iter()
        .map(|c| {
            let d = &c.comparison.days_30.difference.revenue_per_customer;
            let rp = |m: MinorAmount| m.0 as f64 / 100.0;
            Some((rp(d.estimate?), rp(d.low?), rp(d.high?)))
        })
        .collect();
    let chart = if points.iter().any(Option::is_some) {
        Some(charts::intervals(
            tr.get("winback_chart"),
            &labels,
            &points,
            &|v| {
                let shown = format_rupiah(Money::from_minor((v.abs() * 100.0).round() as i64));
                signed(v, shown)
            },
        )?)
    } else {
        None
    };
    let cohorts: Vec<Value> = results
        .cohorts
        .iter()
        .rev()
        .map(|c| {
            context! {
                month => &c.month,
                comparison => comparison(&c.comparison, lang),
            }
        })
        .collect();

    // Episodes in progress, newest first; and the ones that ended lately.
    let open = store
        .winback_episodes(
            merchant,
            true,
            PageRequest {
                before,
                limit: EPISODES_PAGE,
            },
        )
        .await?;
    let recent = store
        .winback_episodes(
            merchant,
            false,
            PageRequest {
                before: None,
                limit: RECENT_SCAN,
            },
        )
        .await?;
    let mut ended: Vec<&Episode> = recent
        .items
        .iter()
        .filter(|e| e.ended_at.is_some())
        .collect();
    ended.sort_by_key(|e| std::cmp::Reverse(e.ended_at));
    ended.truncate(RECENT_SHOWN);

    let page = context! {
        winback => context! {
            enabled => settings.enabled,
            holdout_percent => settings.holdout_percent,
            voucher_percent => settings.voucher_percent,
            voucher_days => settings.voucher_days,
            cooldown_days => settings.cooldown_days,
            p_alive_below => settings.p_alive_below,
            overdue_factor => settings.overdue_factor,
            min_purchases => settings.min_purchases,
            steps => settings.steps.iter().map(|s| context! { day => s.day, voucher => s.voucher }).collect::<Vec<_>>(),
        },
        results => context! {
            days => DEFAULT_RESULTS_DAYS,
            confidence => results.confidence,
            total => comparison(&results.total, lang),
            cohorts => cohorts,
            chart => chart,
        },
        open => context! {
            items => open.items.iter().map(episode).collect::<Vec<_>>(),
            next_cursor => open.next_cursor,
        },
        ended => ended.into_iter().map(episode).collect::<Vec<_>>(),
        base => "/dashboard/campaigns",
    };
    dash.page(&session, "campaigns", "campaigns.html", page)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn differences_carry_a_sign_and_a_true_minus() {
        assert_eq!(signed_rupiah(MinorAmount(1_230_000)), "+Rp 12.300");
        assert_eq!(signed_rupiah(MinorAmount(-200_000)), "−Rp 2.000");
        assert_eq!(signed_rupiah(MinorAmount(-20)), "Rp 0");
        assert_eq!(signed(0.0, number(0.0, 2, Lang::Id)), "0,00");
        assert_eq!(signed(-0.5, number(0.5, 1, Lang::En)), "−0.5");
    }

    #[test]
    fn no_interval_no_number() {
        let bare = Difference {
            estimate: Some(0.2),
            low: None,
            high: None,
        };
        let shown = difference(&bare, |v: f64| v.to_string());
        assert_eq!(shown.get_attr("enough").unwrap(), Value::from(false));
        assert!(shown.get_attr("estimate").unwrap().is_undefined());
    }
}
