//! Win-back (DESIGN §8, `[winback]`): the pass that starts episodes after a metrics
//! snapshot is stored, and what a step's email says. Who enters and who is held out are
//! `setia_core::winback`'s rules; this module feeds them and writes what they decide.

use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;
use setia_core::engagement::EngagementProgram;
use setia_core::mail_token::winback_voucher_code;
use setia_core::winback::{
    entry_decision, in_holdout, step_due_at, voucher_valid_until, WinbackCandidate,
};
use setia_core::{CustomerId, MerchantId};
use setia_store::mail::DeliveryOutcome;
use setia_store::winback::{Episode, NewEpisode, NewStep, NewVoucher};
use setia_store::Store;

use crate::context::{long_date, Common};
use crate::{schedule, MailError};

/// A customer as the latest metrics run scored them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScoredCustomer {
    pub customer: CustomerId,
    pub purchase_days: u32,
    pub recency_days: i64,
    pub p_alive: Option<f64>,
    pub median_gap_days: Option<f64>,
    /// The BG/NBD expected purchases in the next 30 and 60 days.
    pub expected_30d: Option<f64>,
    pub expected_60d: Option<f64>,
}

/// What an entry pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Entered {
    pub treated: u64,
    pub held_out: u64,
}

/// Starts an episode for every scored customer the rule lets in, after ending the open
/// episodes of customers who unsubscribed. Run after each stored metrics snapshot.
pub async fn enter(
    store: &dyn Store,
    merchant: &MerchantId,
    program: &EngagementProgram,
    scored: &[ScoredCustomer],
    now: DateTime<Utc>,
) -> Result<Entered, MailError> {
    let settings = &program.winback;
    if !settings.enabled {
        return Ok(Entered::default());
    }
    store.end_unsubscribed_episodes(merchant, now).await?;
    // The score-based half of the rule first, so the store is asked about few customers.
    let slipping: Vec<&ScoredCustomer> = scored
        .iter()
        .filter(|s| {
            let open = WinbackCandidate {
                purchase_days: s.purchase_days,
                p_alive: s.p_alive,
                recency_days: s.recency_days,
                median_gap_days: s.median_gap_days,
                reachable: true,
                open_complaint: false,
                in_episode: false,
                last_episode_ended: None,
            };
            entry_decision(settings, &open, now).is_ok()
        })
        .collect();
    if slipping.is_empty() {
        return Ok(Entered::default());
    }
    let Some(mail) = store.mail_merchant(merchant).await? else {
        return Ok(Entered::default());
    };
    let zone = mail.merchant.timezone;
    let ids: Vec<CustomerId> = slipping.iter().map(|s| s.customer).collect();
    let states = store.winback_states(merchant, &ids, now).await?;
    let last_day = settings.steps.last().map_or(0, |s| s.day);
    let mut episodes = Vec::new();
    let mut entered = Entered::default();
    for scored in slipping {
        let Some(state) = states.get(&scored.customer) else {
            continue;
        };
        let candidate = WinbackCandidate {
            purchase_days: scored.purchase_days,
            p_alive: scored.p_alive,
            recency_days: scored.recency_days,
            median_gap_days: scored.median_gap_days,
            reachable: state.reachable,
            open_complaint: state.open_complaint,
            in_episode: state.in_episode,
            last_episode_ended: state.last_ended,
        };
        let Ok(reason) = entry_decision(settings, &candidate, now) else {
            continue;
        };
        let number = state.episodes + 1;
        let holdout = in_holdout(merchant, scored.customer, number, settings.holdout_percent);
        let steps = settings
            .steps
            .iter()
            .enumerate()
            .map(|(index, step)| {
                let due_at = schedule::marketing_hours(zone, step_due_at(now, step));
                NewStep {
                    due_at,
                    voucher: step.voucher.then(|| NewVoucher {
                        code: winback_voucher_code(
                            &mail.secret,
                            merchant,
                            scored.customer,
                            number,
                            index,
                        ),
                        percent: settings.voucher_percent,
                        valid_until: voucher_valid_until(
                            zone.local_day(due_at),
                            settings.voucher_days,
                        ),
                    }),
                }
            })
            .collect();
        if holdout {
            entered.held_out += 1;
        } else {
            entered.treated += 1;
        }
        episodes.push(NewEpisode {
            customer: scored.customer,
            number,
            reason,
            holdout,
            entered_at: now,
            counts_from: schedule::day_bounds(zone, zone.local_day(now)).0,
            last_step_at: now + TimeDelta::days(i64::from(last_day)),
            p_alive: scored.p_alive,
            expected_30d: scored.expected_30d,
            expected_60d: scored.expected_60d,
            steps,
        });
    }
    store
        .start_winback_episodes(merchant, &episodes, now)
        .await?;
    Ok(entered)
}

/// `12-1` → (episode 12, step 1).
pub(crate) fn parse_period(period: &str) -> Option<(i64, usize)> {
    let (episode, step) = period.split_once('-')?;
    Some((episode.parse().ok()?, step.parse().ok()?))
}

/// Why a step is not sent now, if it is not.
pub(crate) fn step_hold(episode: &Episode) -> Option<DeliveryOutcome> {
    let suppressed = |reason: &str| {
        Some(DeliveryOutcome::Suppressed {
            reason: reason.to_owned(),
        })
    };
    if episode.holdout {
        return suppressed("the customer is in the holdout group");
    }
    match episode.end_reason.as_deref() {
        Some("purchase") => suppressed("the customer bought again"),
        Some(_) => suppressed("the customer unsubscribed"),
        None => None,
    }
}

/// A step's voucher as the email shows it.
#[derive(Debug, Clone, Serialize)]
pub struct VoucherView {
    pub code: String,
    pub percent: u32,
    /// The last day it is valid, written out.
    pub valid_until: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct WinbackContext {
    #[serde(flatten)]
    pub common: Common,
    pub customer_name: String,
    /// 0 for the first step.
    pub step: usize,
    /// The step's personal voucher, if it carries one.
    pub voucher: Option<VoucherView>,
}

pub(crate) fn context(
    language: setia_store::mail::EmailLanguage,
    episode: &Episode,
    step: usize,
    customer_name: String,
    common: Common,
) -> WinbackContext {
    let voucher = episode
        .vouchers
        .iter()
        .find(|v| v.step as usize == step)
        .map(|v| VoucherView {
            code: v.code.clone(),
            percent: v.percent,
            valid_until: long_date(language, v.valid_until),
        });
    WinbackContext {
        common,
        customer_name,
        step,
        voucher,
    }
}

/// An episode for previews: its first voucher step (or the first step), with a voucher
/// code no customer has.
pub(crate) fn sample(
    program: &EngagementProgram,
    customer: CustomerId,
    zone: setia_core::MerchantTimezone,
    now: DateTime<Utc>,
) -> (Episode, usize) {
    let settings = &program.winback;
    let step = settings.steps.iter().position(|s| s.voucher).unwrap_or(0);
    let vouchers = settings
        .steps
        .get(step)
        .filter(|s| s.voucher)
        .map(|s| setia_store::winback::Voucher {
            code: "WB-CONTOH00".into(),
            customer_id: customer,
            episode_id: 0,
            step: step as u32,
            percent: settings.voucher_percent,
            valid_until: voucher_valid_until(
                zone.local_day(step_due_at(now, s)),
                settings.voucher_days,
            ),
            redeemed_at: None,
            redeemed_order: None,
        })
        .into_iter()
        .collect();
    let episode = Episode {
        id: 0,
        customer_id: customer,
        customer_external_id: String::new(),
        customer_name: None,
        number: 1,
        reason: "p_alive".into(),
        holdout: false,
        entered_at: now,
        last_step_at: now,
        p_alive: Some(0.3),
        expected_30d: None,
        expected_60d: None,
        ended_at: None,
        end_reason: None,
        vouchers,
    };
    (episode, step)
}
