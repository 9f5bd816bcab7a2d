//! The weekly churn report's figures, computed when the report is enqueued: the last 7 days
//! against the 7 before, customers newly at risk, the win-back list, the loyalty
//! liability, customer feedback and the payments reconciliation found that no webhook
//! brought.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use setia_core::MerchantTimezone;
use setia_store::Store;

use chrono::Offset;
use setia_core::feedback::satisfaction;

use crate::context::{AtRiskEntry, FeedbackWeeks, ReportPayload, WeekFigures};
use crate::schedule::ReportWindow;

/// P(alive) under this (for a repeat customer) is "at risk", as in the metrics report.
pub const P_ALIVE_THRESHOLD: f64 = 0.5;
/// At-risk customers kept in a report's payload, most valuable first: the win-back list
/// comes from them, and next week's "newly at risk" compares against them.
pub const AT_RISK_KEPT: u32 = 1_000;

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
    let feedback = feedback_weeks(store, merchant, zone, window).await?;
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
    })
}

/// The answers of the two weeks on the program's scale, and the complaints; `None` when the
/// merchant asks for no feedback and has none of it.
async fn feedback_weeks(
    store: &dyn Store,
    merchant: &setia_core::MerchantId,
    zone: MerchantTimezone,
    window: &ReportWindow,
) -> Result<Option<FeedbackWeeks>, setia_store::StoreError> {
    let program = store.engagement_program(merchant).await?;
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

/// The window a preview shows: this week's report if it is due, else last week's.
pub fn preview_window(zone: MerchantTimezone, now: DateTime<Utc>) -> Option<ReportWindow> {
    crate::schedule::report_window(zone, now)
        .or_else(|| crate::schedule::report_window(zone, now - chrono::TimeDelta::days(7)))
}
