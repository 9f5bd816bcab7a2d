//! Win-back rules (DESIGN §8, `[winback]`): who enters an episode and why, who is held out,
//! when each step is due and how long its voucher is valid. Pure functions: the metrics job
//! feeds them the latest scores, the store keeps the episodes, setia-mail sends the steps.

use chrono::{DateTime, NaiveDate, TimeDelta, Utc};

use crate::engagement::{WinbackSettings, WinbackStep};
use crate::{CustomerId, MerchantId};

/// What the entry rule needs to know of a customer, from the latest snapshot and the store.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WinbackCandidate {
    /// Distinct purchase days.
    pub purchase_days: u32,
    /// From the latest snapshot; None when the churn model was not fitted.
    pub p_alive: Option<f64>,
    /// Days since the last purchase day, as of the snapshot.
    pub recency_days: i64,
    /// The median of the customer's gaps between purchase days.
    pub median_gap_days: Option<f64>,
    /// Consented, has an address, did not unsubscribe.
    pub reachable: bool,
    pub open_complaint: bool,
    /// An episode of theirs has not ended.
    pub in_episode: bool,
    /// When their latest episode ended, if they had one.
    pub last_episode_ended: Option<DateTime<Utc>>,
}

/// Why a customer entered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryReason {
    /// P(alive) fell under `p_alive_below`.
    PAlive,
    /// Days since the last purchase reached `overdue_factor` times the median gap.
    Overdue,
}

impl EntryReason {
    pub fn as_str(self) -> &'static str {
        match self {
            EntryReason::PAlive => "p_alive",
            EntryReason::Overdue => "overdue",
        }
    }

    pub fn parse(text: &str) -> Option<EntryReason> {
        [EntryReason::PAlive, EntryReason::Overdue]
            .into_iter()
            .find(|r| r.as_str() == text)
    }
}

/// Why a customer did not enter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotEntered {
    Disabled,
    TooFewPurchases,
    /// Neither rule holds.
    NotSlipping,
    Unreachable,
    OpenComplaint,
    InEpisode,
    /// Their last episode ended less than `cooldown_days` ago.
    CoolingDown,
}

/// Whether `customer` starts an episode at `now`.
pub fn entry_decision(
    settings: &WinbackSettings,
    customer: &WinbackCandidate,
    now: DateTime<Utc>,
) -> Result<EntryReason, NotEntered> {
    if !settings.enabled {
        return Err(NotEntered::Disabled);
    }
    if customer.purchase_days < settings.min_purchases {
        return Err(NotEntered::TooFewPurchases);
    }
    if customer.in_episode {
        return Err(NotEntered::InEpisode);
    }
    let cooldown = TimeDelta::days(i64::from(settings.cooldown_days));
    if customer
        .last_episode_ended
        .is_some_and(|ended| now < ended + cooldown)
    {
        return Err(NotEntered::CoolingDown);
    }
    // P(alive) speaks of repeat customers only: a one-day customer's is 1 by definition.
    let slipping = settings.p_alive_below > 0.0
        && customer.purchase_days >= 2
        && customer.p_alive.is_some_and(|p| p < settings.p_alive_below);
    let overdue = settings.overdue_factor > 0.0
        && customer.median_gap_days.is_some_and(|gap| {
            gap > 0.0 && customer.recency_days as f64 >= settings.overdue_factor * gap
        });
    let reason = match (slipping, overdue) {
        (true, _) => EntryReason::PAlive,
        (false, true) => EntryReason::Overdue,
        (false, false) => return Err(NotEntered::NotSlipping),
    };
    if !customer.reachable {
        return Err(NotEntered::Unreachable);
    }
    if customer.open_complaint {
        return Err(NotEntered::OpenComplaint);
    }
    Ok(reason)
}

/// Whether the customer's `number`th episode (1 for their first) is held out: a seeded
/// hash of merchant, customer and episode, so the same episode always lands in the same
/// group, and the draw is made before anything is sent.
pub fn in_holdout(
    merchant: &MerchantId,
    customer: CustomerId,
    number: u32,
    holdout_percent: u32,
) -> bool {
    crate::holdout::held_out(
        "setia-winback-holdout-v1",
        merchant,
        customer,
        &number.to_le_bytes(),
        holdout_percent,
    )
}

/// When a step of an episode entered at `entered_at` is due (before marketing hours and the
/// cap, which the sender applies).
pub fn step_due_at(entered_at: DateTime<Utc>, step: &WinbackStep) -> DateTime<Utc> {
    entered_at + TimeDelta::days(i64::from(step.day))
}

/// The last day a voucher is valid, counting the day its email is due.
pub fn voucher_valid_until(due_day: NaiveDate, voucher_days: u32) -> NaiveDate {
    due_day + TimeDelta::days(i64::from(voucher_days.max(1)) - 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2027, 3, 1, 3, 0, 0).unwrap()
    }

    fn on() -> WinbackSettings {
        WinbackSettings {
            enabled: true,
            ..WinbackSettings::default()
        }
    }

    fn slipping() -> WinbackCandidate {
        WinbackCandidate {
            purchase_days: 4,
            p_alive: Some(0.3),
            recency_days: 40,
            median_gap_days: Some(30.0),
            reachable: true,
            open_complaint: false,
            in_episode: false,
            last_episode_ended: None,
        }
    }

    #[test]
    fn a_slipping_repeat_customer_enters() {
        assert_eq!(
            entry_decision(&on(), &slipping(), now()),
            Ok(EntryReason::PAlive)
        );
        let overdue = WinbackCandidate {
            p_alive: Some(0.9),
            recency_days: 60,
            ..slipping()
        };
        assert_eq!(
            entry_decision(&on(), &overdue, now()),
            Ok(EntryReason::Overdue)
        );
        let early = WinbackCandidate {
            recency_days: 59,
            ..overdue
        };
        assert_eq!(
            entry_decision(&on(), &early, now()),
            Err(NotEntered::NotSlipping)
        );
        // Either rule can be switched off.
        let no_overdue = WinbackSettings {
            overdue_factor: 0.0,
            ..on()
        };
        assert_eq!(
            entry_decision(&no_overdue, &overdue, now()),
            Err(NotEntered::NotSlipping)
        );
        let no_p_alive = WinbackSettings {
            p_alive_below: 0.0,
            ..on()
        };
        assert_eq!(
            entry_decision(&no_p_alive, &slipping(), now()),
            Err(NotEntered::NotSlipping)
        );
    }

    #[test]
    fn who_never_enters() {
        let off = WinbackSettings::default();
        assert_eq!(
            entry_decision(&off, &slipping(), now()),
            Err(NotEntered::Disabled)
        );
        for (customer, why) in [
            (
                WinbackCandidate {
                    purchase_days: 1,
                    ..slipping()
                },
                NotEntered::TooFewPurchases,
            ),
            (
                WinbackCandidate {
                    reachable: false,
                    ..slipping()
                },
                NotEntered::Unreachable,
            ),
            (
                WinbackCandidate {
                    open_complaint: true,
                    ..slipping()
                },
                NotEntered::OpenComplaint,
            ),
            (
                WinbackCandidate {
                    in_episode: true,
                    ..slipping()
                },
                NotEntered::InEpisode,
            ),
            (
                WinbackCandidate {
                    p_alive: None,
                    median_gap_days: None,
                    ..slipping()
                },
                NotEntered::NotSlipping,
            ),
        ] {
            assert_eq!(entry_decision(&on(), &customer, now()), Err(why));
        }
    }

    #[test]
    fn an_ended_episode_cools_down_before_the_next() {
        let ended = |days_ago| WinbackCandidate {
            last_episode_ended: Some(now() - TimeDelta::days(days_ago)),
            ..slipping()
        };
        assert_eq!(
            entry_decision(&on(), &ended(89), now()),
            Err(NotEntered::CoolingDown)
        );
        assert_eq!(
            entry_decision(&on(), &ended(90), now()),
            Ok(EntryReason::PAlive)
        );
    }

    #[test]
    fn the_holdout_is_stable_and_about_its_share() {
        let merchant = MerchantId::from_random_bytes([7; 20]);
        let held: Vec<bool> = (1..=20_000)
            .map(|c| in_holdout(&merchant, CustomerId::from_key(c), 1, 10))
            .collect();
        let again: Vec<bool> = (1..=20_000)
            .map(|c| in_holdout(&merchant, CustomerId::from_key(c), 1, 10))
            .collect();
        assert_eq!(held, again, "the same episode lands in the same group");
        let share = held.iter().filter(|h| **h).count() as f64 / held.len() as f64;
        assert!((0.09..0.11).contains(&share), "{share}");
        // A later episode is drawn afresh; 0% and 100% are exact.
        let second: Vec<bool> = (1..=20_000)
            .map(|c| in_holdout(&merchant, CustomerId::from_key(c), 2, 10))
            .collect();
        assert_ne!(held, second);
        assert!(!(1..1_000).any(|c| in_holdout(&merchant, CustomerId::from_key(c), 1, 0)));
        assert!((1..1_000).all(|c| in_holdout(&merchant, CustomerId::from_key(c), 1, 100)));
    }

    #[test]
    fn steps_and_vouchers_count_days() {
        let entered = now();
        let step = WinbackStep {
            day: 7,
            voucher: true,
        };
        assert_eq!(step_due_at(entered, &step), entered + TimeDelta::days(7));
        let day = NaiveDate::from_ymd_opt(2027, 3, 8).unwrap();
        assert_eq!(
            voucher_valid_until(day, 14),
            NaiveDate::from_ymd_opt(2027, 3, 21).unwrap()
        );
    }
}
