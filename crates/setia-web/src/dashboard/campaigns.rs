//! Campaigns (*Kampanye*): what setia does to bring customers back, and what it earned.
//! Its first section is win-back (DESIGN §8): whether it is on and its steps, the result
//! against the holdout over the episodes entered in the last 365 days (per 30- and 60-day
//! window and per month of entry), a chart of the revenue difference per cohort with its
//! interval, the episodes in progress and the ones that ended lately.
//!
//! Above it, the merchant's campaigns (issue 25): the list with status, delivery and the
//! revenue result; a form that is previewed first (the email for a sample recipient, the
//! recipients it reaches now by wave, and about how many the holdout keeps out) and created
//! from the preview; and each campaign's own page with its delivery and its result over
//! `result_days`, from the same `campaign_api::report` as the API and the CLI.
//!
//! The rule of the page: no difference is shown without its 95% interval and the groups'
//! sizes; when a group is too small for an interval, the cell says so instead of a number.
//! The figures are setia-analytics' [`winback_results`], from the same outcomes the JSON
//! API reads (`winback_api::outcome` maps them).

use axum::extract::Path;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::response::{IntoResponse, Redirect};
use chrono::{DateTime, Datelike, NaiveDateTime, TimeDelta, Utc};
use minijinja::context;
use minijinja::value::Value;
use serde::{Deserialize, Serialize};
use setia_analytics::winback::{Difference, GroupComparison, GroupWindow, WindowComparison};
use setia_analytics::{winback_results, MinorAmount, WinbackOutcome};
use setia_core::campaign::{Audience, CampaignDraft, CampaignInput};
use setia_core::time::check_year;
use setia_core::{format_rupiah, Money};
use setia_core::{CampaignId, ExternalId, MerchantTimezone};
use setia_mail::campaign::{count_audience, AudienceCount};
use setia_mail::templates::RenderedEmail;
use setia_store::campaign::CampaignStatus;
use setia_store::winback::Episode;
use setia_store::PageRequest;

use super::auth::{CsrfForm, Session};
use super::customers::id_cursor;
use super::format::{self, number};
use super::i18n::{texts, Lang};
use super::render::{ser, PageError};
use super::{charts, Dash};
use crate::campaign_api::{create_campaign, report, CampaignReport, CreateError};
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
    /// Older campaigns.
    campaigns: String,
}

/// A form with a body of 100 KB of Markdown, URL-encoded, with room to spare.
pub const CAMPAIGN_FORM_LIMIT: usize = 512 * 1024;

/// Campaigns per page of the list (each reads its delivery and its result).
const CAMPAIGNS_PAGE: u32 = 10;

/// The campaign form as typed; every field a string, so that what was typed comes back.
#[derive(Debug, Default, Clone, Deserialize, Serialize)]
#[serde(default)]
pub struct CampaignForm {
    name: String,
    audience: String,
    subject: String,
    body: String,
    send_at: String,
    early_access_days: String,
    sample: String,
}

/// A campaign's line in the list: its delivery and its revenue difference.
fn campaign_line(report: &CampaignReport, lang: Lang) -> Value {
    let c = &report.campaign;
    let d = &report.delivery;
    let x = window(&report.results.window, lang);
    context! {
        id => c.id.to_string(),
        name => &c.name,
        audience => &c.audience,
        send_at => ser(c.send_at),
        early_access_days => c.early_access_days,
        status => c.status.as_str(),
        treated => d.treated,
        holdout => d.holdout,
        sent => d.sent,
        failed => d.failed,
        deferred => d.deferred,
        revenue => x.get_attr("revenue").unwrap_or_default(),
        n_treated => report.results.window.treated.n,
        n_holdout => report.results.window.holdout.n,
    }
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

    let campaign_page = store
        .campaigns(
            merchant,
            PageRequest {
                before: id_cursor(&query.campaigns)?,
                limit: CAMPAIGNS_PAGE,
            },
        )
        .await?;
    let mut campaign_lines = Vec::with_capacity(campaign_page.items.len());
    for campaign in campaign_page.items {
        let report = report(store, merchant, campaign, now).await?;
        campaign_lines.push(campaign_line(&report, lang));
    }

    let page = context! {
        campaigns => context! {
            items => campaign_lines,
            next_cursor => campaign_page.next_cursor,
        },
        form => ser(CampaignForm::default()),
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

/// A send time as the form takes it: `YYYY-MM-DD HH:MM` (or the `T` of a datetime input) in
/// the merchant's zone, or RFC 3339; empty is now. The year is a plain four digits
/// ([`check_year`]: chrono's `%Y` reads `+200000`); how far ahead is the draft's rule.
fn send_at(text: &str, zone: MerchantTimezone) -> Result<Option<DateTime<Utc>>, String> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    let implausible = |error| format!("send_at: {error}");
    if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        check_year(text, at.year()).map_err(implausible)?;
        return Ok(Some(at.to_utc()));
    }
    let local = ["%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M"]
        .iter()
        .find_map(|format| NaiveDateTime::parse_from_str(text, format).ok())
        .ok_or_else(|| format!("send_at {text:?} is not YYYY-MM-DD HH:MM"))?;
    check_year(text, local.year()).map_err(implausible)?;
    zone.instant_of(local).map(Some).map_err(implausible)
}

fn early_access_days(text: &str) -> Result<Option<u32>, String> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    text.parse::<u32>()
        .map(Some)
        .map_err(|_| format!("early_access_days {text:?} is not a whole number of days"))
}

/// Renders the preview page: the error (status 400), or the email and the counts.
async fn preview_page(
    dash: &Dash,
    session: &Session,
    form: &CampaignForm,
    error: Option<String>,
    preview: Option<(AudienceCount, u32, Option<RenderedEmail>)>,
) -> Result<Response, PageError> {
    let failed = error.is_some();
    let page = context! {
        error => error,
        form => ser(form),
        count => preview.as_ref().map(|p| ser(p.0)),
        holdout_percent => preview.as_ref().map(|p| p.1),
        email => preview.as_ref().and_then(|p| p.2.as_ref()).map(ser),
    };
    let mut response = dash
        .page(session, "campaigns", "campaign_new.html", page)
        .await?;
    if failed {
        *response.status_mut() = StatusCode::BAD_REQUEST;
    }
    Ok(response)
}

/// The typed form as the campaign's input, or the reason its send time or early access
/// cannot be read.
fn read_form(form: &CampaignForm, zone: MerchantTimezone) -> Result<CampaignInput<'_>, String> {
    Ok(CampaignInput {
        name: &form.name,
        audience: &form.audience,
        subject: &form.subject,
        body: &form.body,
        send_at: send_at(&form.send_at, zone)?,
        early_access_days: early_access_days(&form.early_access_days)?,
    })
}

/// `POST /dashboard/campaigns/preview`: the email for a sample recipient (the one named,
/// or the audience's first) and the counts, with the form to create it. Writes nothing.
pub async fn preview(
    State(dash): State<Dash>,
    posted: CsrfForm<CampaignForm>,
) -> Result<Response, PageError> {
    let CsrfForm { session, form } = posted;
    let merchant = &session.merchant.id;
    let store = &*dash.store;
    let now = Utc::now();
    let input = match read_form(&form, session.merchant.timezone) {
        Ok(input) => input,
        Err(error) => return preview_page(&dash, &session, &form, Some(error), None).await,
    };
    let program = store.engagement_program(merchant).await?;
    let draft = match CampaignDraft::parse(&input, &program.campaigns, now) {
        Ok(draft) => draft,
        Err(error) => {
            return preview_page(&dash, &session, &form, Some(error.to_string()), None).await
        }
    };
    let sample = match form.sample.trim() {
        "" => None,
        text => match ExternalId::parse(text) {
            Ok(id) => Some(id),
            Err(error) => {
                let error = format!("sample: {error}");
                return preview_page(&dash, &session, &form, Some(error), None).await;
            }
        },
    };
    let count = count_audience(
        store,
        merchant,
        &draft.audience,
        None,
        draft.holdout_percent,
        now,
    )
    .await
    .map_err(|e| PageError::Internal(e.to_string()))?;
    let sample = match &sample {
        Some(external) => match store.customer(merchant, external).await? {
            Some(found) => Some(found.id),
            None => {
                let error = format!("sample: no customer {external}");
                return preview_page(&dash, &session, &form, Some(error), None).await;
            }
        },
        None => count.first,
    };
    // Without a mailer (a server started without email settings) the counts still show.
    let email = match &dash.config.mailer {
        Some(mailer) => Some(
            mailer
                .preview_campaign(merchant, &draft.subject, &draft.body, sample, now)
                .await
                .map_err(|e| PageError::Internal(e.to_string()))?,
        ),
        None => None,
    };
    preview_page(
        &dash,
        &session,
        &form,
        None,
        Some((count, draft.holdout_percent, email)),
    )
    .await
}

/// `POST /dashboard/campaigns`: creates the campaign the preview showed and opens its page;
/// bad input shows the form again with the reason (400) and creates nothing.
pub async fn create(
    State(dash): State<Dash>,
    posted: CsrfForm<CampaignForm>,
) -> Result<Response, PageError> {
    let CsrfForm { session, form } = posted;
    let input = match read_form(&form, session.merchant.timezone) {
        Ok(input) => input,
        Err(error) => return preview_page(&dash, &session, &form, Some(error), None).await,
    };
    match create_campaign(&*dash.store, &session.merchant.id, &input, Utc::now()).await {
        Ok(created) => {
            tracing::info!(merchant = %session.merchant.id, campaign = %created.campaign.id, "campaign created in the dashboard");
            Ok(
                Redirect::to(&format!("/dashboard/campaigns/{}", created.campaign.id))
                    .into_response(),
            )
        }
        Err(CreateError::Invalid(error)) => {
            preview_page(&dash, &session, &form, Some(error.to_string()), None).await
        }
        Err(CreateError::Store(error)) => Err(error.into()),
    }
}

/// `GET /dashboard/campaigns/{id}`: a campaign's delivery and its result.
pub async fn campaign(
    State(dash): State<Dash>,
    session: Session,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let merchant = &session.merchant.id;
    let store = &*dash.store;
    let id = CampaignId::parse(&id).map_err(|_| PageError::NotFound)?;
    let found = store
        .campaign(merchant, id)
        .await?
        .ok_or(PageError::NotFound)?;
    let now = Utc::now();
    // Before its first wave nobody is chosen: the audience as it stands, with the exact draw.
    let audience_now = if found.status == CampaignStatus::Scheduled {
        let audience =
            Audience::parse(&found.audience).map_err(|e| PageError::Internal(e.to_string()))?;
        Some(
            count_audience(
                store,
                merchant,
                &audience,
                Some(id),
                found.holdout_percent,
                now,
            )
            .await
            .map_err(|e| PageError::Internal(e.to_string()))?,
        )
    } else {
        None
    };
    let report = report(store, merchant, found, now).await?;
    let page = context! {
        campaign => ser(&report.campaign),
        delivery => ser(&report.delivery),
        audience_now => audience_now.map(ser),
        result => window(&report.results.window, session.lang),
    };
    dash.page(&session, "campaigns", "campaign.html", page)
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
    fn send_at_reads_the_form_and_refuses_signed_years() {
        let zone = MerchantTimezone::default();
        assert_eq!(send_at(" ", zone), Ok(None));
        assert_eq!(
            send_at("2027-01-05T09:30", zone)
                .unwrap()
                .unwrap()
                .to_rfc3339(),
            "2027-01-05T02:30:00+00:00"
        );
        // A signed year was once stored and sat "scheduled" for ever.
        for bad in [
            "+200000-01-01 00:00",
            "0001-01-01T00:00:00Z",
            "-262143-01-05 00:00",
            "+2027-01-05 09:30",
        ] {
            let error = send_at(bad, zone).unwrap_err();
            assert!(error.contains("1970 to 9999"), "{bad}: {error}");
        }
        assert!(send_at("tomorrow", zone)
            .unwrap_err()
            .contains("is not YYYY-MM-DD HH:MM"));
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
