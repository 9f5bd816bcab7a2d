//! The weekly churn report's figures, computed when the report is enqueued: the last 7 days
//! against the 7 before, customers newly at risk, the win-back list, the loyalty
//! liability, customer feedback, the payments reconciliation found that no webhook
//! brought, and what the win-back emails earned against their holdout.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use setia_core::MerchantTimezone;
use setia_store::Store;

use chrono::{Offset, TimeDelta};
use setia_core::engagement::EngagementProgram;
use setia_core::feedback::satisfaction;
use setia_core::stats::{welch, Sample};
use setia_store::PageRequest;

use crate::context::{
    AtRiskEntry, Estimate, FeedbackWeeks, ReportPayload, WeekFigures, WinbackFigures,
};
use crate::schedule::ReportWindow;

/// P(alive) under this (for a repeat customer) is "at risk", as in the metrics report.
pub const P_ALIVE_THRESHOLD: f64 = 0.5;
/// At-risk customers kept in a report's payload, most valuable first: the win-back list
/// comes from them, and next week's "newly at risk" compares against them.
pub const AT_RISK_KEPT: u32 = 1_000;
/// The win-back line covers the episodes that entered this many days before the report's
/// week ended, at least and at most: each one's 30 days after entry are over, and two
/// months of entrants make groups large enough to say something. Consecutive reports'
/// ranges overlap (a moving view, not weekly increments).
pub const WINBACK_ENTERED_DAYS: (i64, i64) = (30, 90);
/// Its intervals' confidence.
pub const WINBACK_CONFIDENCE: f64 = 0.95;

pub async fn compute(
    store: &dyn Store,
    merchant: &setia_core::MerchantId,
    zone: MerchantTimezone,
    window: &ReportWindow,
) -> Result<ReportPayload, setia_store::StoreError> {
    let purchases = store
        .window_purchases(merchant, window.previous_from, window.until)
        .await?;
    let mut daily = vec![0i64; window.days.len()];
    let mut current = WeekFigures::default();
    let mut previous = WeekFigures::default();
    let mut seen: [HashMap<i64, bool>; 2] = [HashMap::new(), HashMap::new()];
    for purchase in &purchases {
        let day = zone.local_day(purchase.occurred_at);
        if let Some(index) = window.days.iter().position(|d| *d == day) {
            daily[index] += purchase.amount.minor();
        }
        let (figures, week_start, slot) = if purchase.occurred_at >= window.from {
            (&mut current, window.from, 1)
        } else {
            (&mut previous, window.previous_from, 0)
        };
        figures.purchases += 1;
        figures.revenue_minor += purchase.amount.minor();
        // New: the customer's first purchase ever falls in this week.
        seen[slot]
            .entry(purchase.customer)
            .or_insert(purchase.first_purchase_at >= week_start);
    }
    for (slot, figures) in [(0, &mut previous), (1, &mut current)] {
        let new = seen[slot].values().filter(|is_new| **is_new).count() as u64;
        figures.new_customers = new;
        figures.returning_customers = seen[slot].len() as u64 - new;
    }

    let (at_risk_total, at_risk) = store
        .at_risk_customers(merchant, P_ALIVE_THRESHOLD, AT_RISK_KEPT)
        .await?;
    let scores_as_of = at_risk.first().map(|c| c.as_of.clone());
    let scores_as_of = match scores_as_of {
        Some(day) => Some(day),
        None => store
            .latest_snapshot(merchant, None)
            .await?
            .map(|snapshot| snapshot.as_of),
    };
    let before: HashSet<i64> = match store
        .report_payload(merchant, &window.previous_period_key)
        .await?
        .and_then(|text| serde_json::from_str::<ReportPayload>(&text).ok())
    {
        Some(previous_report) => previous_report.at_risk.iter().map(|c| c.customer).collect(),
        None => HashSet::new(),
    };
    let at_risk: Vec<AtRiskEntry> = at_risk
        .into_iter()
        .map(|c| AtRiskEntry {
            customer: c.customer.key(),
            external_id: c.external_id,
            name: c.name,
            p_alive: c.p_alive,
            clv_12m_minor: c.clv_12m.map(|m| m.minor()),
            monetary_minor: c.monetary.minor(),
            recency_days: c.recency_days,
        })
        .collect();
    let newly_at_risk = at_risk
        .iter()
        .map(|c| c.customer)
        .filter(|id| !before.contains(id))
        .collect();
    let loyalty = store
        .loyalty_totals(merchant, window.from, window.until)
        .await?;
    let program = store.engagement_program(merchant).await?;
    let feedback = feedback_weeks(store, &program, merchant, zone, window).await?;
    let winback = winback_figures(store, &program, merchant, zone, window).await?;
    let missed = store
        .missed_by_webhook(merchant, window.from, window.until)
        .await?;
    let reconciled = store.moota_settings(merchant).await?.token.is_some();
    Ok(ReportPayload {
        week: window.period_key.clone(),
        days: window.days.clone(),
        daily_revenue_minor: daily,
        current,
        previous,
        scores_as_of,
        at_risk_total,
        at_risk,
        newly_at_risk,
        loyalty,
        feedback,
        missed_by_webhook: (reconciled || missed > 0).then_some(missed),
        winback,
    })
}

/// The win-back flow's 30-day result for the episodes that entered 30 to 90 days before the
/// report's week ended, treated against held out (DESIGN §8 "Holdout"); `None` when the
/// merchant has win-back off and never had an episode.
async fn winback_figures(
    store: &dyn Store,
    program: &EngagementProgram,
    merchant: &setia_core::MerchantId,
    zone: MerchantTimezone,
    window: &ReportWindow,
) -> Result<Option<WinbackFigures>, setia_store::StoreError> {
    let (youngest, oldest) = WINBACK_ENTERED_DAYS;
    let from = window.until - TimeDelta::days(oldest);
    let until = window.until - TimeDelta::days(youngest);
    let outcomes = store.winback_outcomes(merchant, from, until).await?;
    if !program.winback.enabled && outcomes.is_empty() {
        let first = PageRequest {
            before: None,
            limit: 1,
        };
        if store
            .winback_episodes(merchant, false, first)
            .await?
            .items
            .is_empty()
        {
            return Ok(None);
        }
    }
    // Index 0 the treated, 1 the holdout; each episode bought or not, and what it paid.
    let mut bought = [Sample::default(); 2];
    let mut revenue = [Sample::default(); 2];
    for outcome in &outcomes {
        let group = usize::from(outcome.holdout);
        bought[group].push(if outcome.purchases_30d > 0 { 1.0 } else { 0.0 });
        revenue[group].push(outcome.revenue_30d.minor() as f64);
    }
    // Per customer, then times the treated group: what the emails brought in all.
    let treated = bought[0].n() as f64;
    let extra = |samples: &[Sample; 2]| {
        welch(&samples[0], &samples[1], WINBACK_CONFIDENCE).map(|interval| {
            let total = interval.scaled(treated);
            Estimate {
                value: total.difference,
                margin: total.margin(),
            }
        })
    };
    Ok(Some(WinbackFigures {
        entered_from: zone.local_day(from),
        entered_until: zone.local_day(until - TimeDelta::microseconds(1)),
        treated: bought[0].n(),
        holdout: bought[1].n(),
        extra_customers: extra(&bought),
        extra_revenue_minor: extra(&revenue),
    }))
}

/// The answers of the two weeks on the program's scale, and the complaints; `None` when the
/// merchant asks for no feedback and has none of it.
async fn feedback_weeks(
    store: &dyn Store,
    program: &EngagementProgram,
    merchant: &setia_core::MerchantId,
    zone: MerchantTimezone,
    window: &ReportWindow,
) -> Result<Option<FeedbackWeeks>, setia_store::StoreError> {
    let kind = program.feedback.kind;
    let offset = window
        .until
        .with_timezone(&zone.tz())
        .offset()
        .fix()
        .local_minus_utc();
    let daily = store
        .daily_scores(merchant, window.previous_from, window.until, offset)
        .await?;
    let complaints = store
        .complaint_counts(merchant, window.from, window.until)
        .await?;
    let current_from = zone.local_day(window.from);
    let week = |current: bool| {
        daily
            .iter()
            .filter(move |d| d.kind == kind && (d.day >= current_from) == current)
            .map(|d| (d.score, d.answers))
    };
    let responses = |current: bool| week(current).map(|(_, n)| n).sum::<u64>();
    let weeks = FeedbackWeeks {
        kind,
        responses: responses(true),
        previous_responses: responses(false),
        satisfaction: satisfaction(kind, week(true)),
        previous_satisfaction: satisfaction(kind, week(false)),
        new_complaints: complaints.opened,
        unresolved_complaints: complaints.unresolved,
    };
    let nothing = weeks.responses + weeks.previous_responses + complaints.unresolved == 0;
    Ok((program.feedback.enabled || !nothing).then_some(weeks))
}

/// The window a preview shows: this week's report if it is due, else last week's. A report
/// is only not due on Monday before its hour, and a day earlier, Sunday, last week's was.
pub fn preview_window(zone: MerchantTimezone, now: DateTime<Utc>) -> Option<ReportWindow> {
    crate::schedule::report_window(zone, now)
        .or_else(|| crate::schedule::report_window(zone, now - chrono::TimeDelta::days(1)))
}
