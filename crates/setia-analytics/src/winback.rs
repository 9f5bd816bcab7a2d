//! Win-back results (DESIGN §8 "Holdout"): what the win-back emails earned, measured in
//! verified payments against the holdout, for all episodes and for each month's entrants.
//!
//! **Input.** One [`WinbackOutcome`] per episode: when it entered, whether it was held out
//! (drawn before anything was sent), the customer's verified purchases and their amount in
//! the 30 and 60 days from the entry day (the store counts from midnight of that day in the
//! merchant's zone: banks often date a payment 00:00), the BG/NBD expected purchases over
//! those windows at entry, and the vouchers used. The caller reads them from the store (plain rows; this
//! crate knows no SQL).
//!
//! **Windows.** Each window (30 and 60 days) counts only the episodes entered at least that
//! many days before `as_of` (their window, which began at the entry day's midnight, is then
//! over); the others are `pending`, so a young episode never looks like one that bought
//! nothing. An episode is the unit: a customer who entered twice counts twice.
//!
//! **Per group** (treated, holdout) and window: n, the share who bought at least once,
//! purchases and revenue per customer, and the mean BG/NBD expectation (over the episodes
//! that had one: a fit that failed leaves it out), which shows the two groups were alike
//! before the emails.
//!
//! **Differences** treated − holdout of the share who bought, purchases per customer and
//! revenue per customer, each with a 95% Welch interval (unequal variances, t with
//! Welch–Satterthwaite degrees of freedom; see `setia_core::stats`). The incremental totals
//! are those per-customer differences times the treated group's n, the interval scaled
//! alike: customers brought back, purchases, revenue. With fewer than two customers in a
//! group (or no variation in either) there is no interval, and the estimate is shown with
//! "not enough data"; with an empty group there is no estimate either.

use std::collections::BTreeMap;

use chrono::{DateTime, TimeDelta, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use setia_core::stats::{welch, Sample, WelchInterval};

use crate::report::MinorAmount;

/// The interval's confidence.
pub const CONFIDENCE: f64 = 0.95;
/// The windows after entry that results are reported over.
pub const WINDOW_DAYS: [u32; 2] = [30, 60];

/// One episode and what followed it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WinbackOutcome {
    pub entered_at: DateTime<Utc>,
    pub holdout: bool,
    /// Verified purchases in the 30 days from the entry day, and their total in minor units.
    pub purchases_30d: u32,
    pub revenue_30d_minor: i64,
    pub purchases_60d: u32,
    pub revenue_60d_minor: i64,
    /// BG/NBD expected purchases within 30 and 60 days, as of entry.
    pub expected_30d: Option<f64>,
    pub expected_60d: Option<f64>,
    pub vouchers_redeemed: u32,
}

impl WinbackOutcome {
    fn window(&self, days: u32) -> (u32, i64, Option<f64>) {
        if days <= 30 {
            (
                self.purchases_30d,
                self.revenue_30d_minor,
                self.expected_30d,
            )
        } else {
            (
                self.purchases_60d,
                self.revenue_60d_minor,
                self.expected_60d,
            )
        }
    }
}

/// The results of every episode given, and of each month's entrants.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WinbackResults {
    /// A window counts once it has ended by this instant.
    pub as_of: DateTime<Utc>,
    /// 0.95: the intervals are 95% intervals.
    pub confidence: f64,
    pub total: GroupComparison,
    /// By the month of entry in the merchant's time zone, oldest first.
    pub cohorts: Vec<CohortComparison>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CohortComparison {
    /// `2026-11`.
    pub month: String,
    #[serde(flatten)]
    pub comparison: GroupComparison,
}

/// Treated against holdout for a set of episodes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupComparison {
    /// Episodes in each group, whether or not their windows have ended.
    pub treated: u64,
    pub holdout: u64,
    /// Vouchers the treated used (the holdout gets none).
    pub vouchers_redeemed: u64,
    pub days_30: WindowComparison,
    pub days_60: WindowComparison,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WindowComparison {
    pub days: u32,
    pub treated: GroupWindow,
    pub holdout: GroupWindow,
    /// Treated − holdout, per customer.
    pub difference: PerCustomer,
    /// The per-customer differences times the treated n.
    pub incremental: Incremental,
}

/// One group over one window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupWindow {
    /// Episodes whose window has ended: the ones counted.
    pub n: u64,
    /// Episodes whose window has not ended yet.
    pub pending: u64,
    /// How many of the n bought at least once in the window.
    pub bought: u64,
    pub share_bought: Option<f64>,
    pub purchases_per_customer: Option<f64>,
    pub revenue_per_customer: Option<MinorAmount>,
    /// Mean BG/NBD expected purchases in the window, at entry, over `with_expectation`.
    pub expected_purchases_per_customer: Option<f64>,
    pub with_expectation: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PerCustomer {
    pub share_bought: Difference<f64>,
    pub purchases_per_customer: Difference<f64>,
    pub revenue_per_customer: Difference<MinorAmount>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Incremental {
    /// More customers who bought than the holdout's share would have given.
    pub customers: Difference<f64>,
    pub purchases: Difference<f64>,
    pub revenue: Difference<MinorAmount>,
}

/// An estimate and its interval: none when a group is empty; no interval (`low`, `high`
/// null) when a group has fewer than two customers or neither group varies.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Difference<T> {
    pub estimate: Option<T>,
    pub low: Option<T>,
    pub high: Option<T>,
}

impl<T: Copy> Difference<T> {
    fn of(estimate: Option<f64>, interval: Option<WelchInterval>, unit: impl Fn(f64) -> T) -> Self {
        Difference {
            estimate: estimate.map(&unit),
            low: interval.map(|i| unit(i.low)),
            high: interval.map(|i| unit(i.high)),
        }
    }
}

/// Computes the results of `outcomes` as of `as_of`, with cohorts by month in `zone`.
pub fn winback_results(
    outcomes: &[WinbackOutcome],
    as_of: DateTime<Utc>,
    zone: Tz,
) -> WinbackResults {
    let mut total = Tally::default();
    let mut months: BTreeMap<String, Tally> = BTreeMap::new();
    for outcome in outcomes {
        let month = outcome
            .entered_at
            .with_timezone(&zone)
            .format("%Y-%m")
            .to_string();
        total.add(outcome, as_of);
        months.entry(month).or_default().add(outcome, as_of);
    }
    WinbackResults {
        as_of,
        confidence: CONFIDENCE,
        total: total.comparison(),
        cohorts: months
            .into_iter()
            .map(|(month, tally)| CohortComparison {
                month,
                comparison: tally.comparison(),
            })
            .collect(),
    }
}

#[derive(Debug, Default)]
struct Tally {
    /// Index 0 the treated, 1 the holdout.
    episodes: [u64; 2],
    vouchers_redeemed: u64,
    windows: [[GroupTally; 2]; 2],
}

#[derive(Debug, Default)]
struct GroupTally {
    pending: u64,
    buyers: u64,
    bought: Sample,
    purchases: Sample,
    revenue: Sample,
    expected: Sample,
}

impl Tally {
    fn add(&mut self, outcome: &WinbackOutcome, as_of: DateTime<Utc>) {
        let group = usize::from(outcome.holdout);
        self.episodes[group] += 1;
        self.vouchers_redeemed += u64::from(outcome.vouchers_redeemed);
        for (window, days) in WINDOW_DAYS.into_iter().enumerate() {
            let tally = &mut self.windows[window][group];
            if outcome.entered_at + TimeDelta::days(i64::from(days)) > as_of {
                tally.pending += 1;
                continue;
            }
            let (purchases, revenue, expected) = outcome.window(days);
            tally.add(purchases, revenue, expected);
        }
    }

    fn comparison(&self) -> GroupComparison {
        let [days_30, days_60] =
            [0, 1].map(|window| window_comparison(WINDOW_DAYS[window], &self.windows[window]));
        GroupComparison {
            treated: self.episodes[0],
            holdout: self.episodes[1],
            vouchers_redeemed: self.vouchers_redeemed,
            days_30,
            days_60,
        }
    }
}

impl GroupTally {
    fn add(&mut self, purchases: u32, revenue_minor: i64, expected: Option<f64>) {
        self.buyers += u64::from(purchases > 0);
        self.bought.push(if purchases > 0 { 1.0 } else { 0.0 });
        self.purchases.push(f64::from(purchases));
        self.revenue.push(revenue_minor as f64);
        if let Some(expected) = expected.filter(|e| e.is_finite()) {
            self.expected.push(expected);
        }
    }
}

fn minor(value: f64) -> MinorAmount {
    MinorAmount(value.round() as i64)
}

fn group_window(tally: &GroupTally) -> GroupWindow {
    GroupWindow {
        n: tally.bought.n(),
        pending: tally.pending,
        bought: tally.buyers,
        share_bought: tally.bought.mean(),
        purchases_per_customer: tally.purchases.mean(),
        revenue_per_customer: tally.revenue.mean().map(minor),
        expected_purchases_per_customer: tally.expected.mean(),
        with_expectation: tally.expected.n(),
    }
}

fn bought(group: &GroupTally) -> &Sample {
    &group.bought
}

fn purchases(group: &GroupTally) -> &Sample {
    &group.purchases
}

fn revenue(group: &GroupTally) -> &Sample {
    &group.revenue
}

fn window_comparison(days: u32, groups: &[GroupTally; 2]) -> WindowComparison {
    let [treated, holdout] = groups;
    let treated_n = treated.bought.n() as f64;
    let estimate = |of: fn(&GroupTally) -> &Sample| Some(of(treated).mean()? - of(holdout).mean()?);
    let interval = |of: fn(&GroupTally) -> &Sample| welch(of(treated), of(holdout), CONFIDENCE);
    let per_customer = |of: fn(&GroupTally) -> &Sample| (estimate(of), interval(of));
    let total = |of: fn(&GroupTally) -> &Sample| {
        (
            estimate(of).map(|x| x * treated_n),
            interval(of).map(|i| i.scaled(treated_n)),
        )
    };
    let plain = |(estimate, interval)| Difference::of(estimate, interval, |x| x);
    let money = |(estimate, interval)| Difference::of(estimate, interval, minor);
    WindowComparison {
        days,
        treated: group_window(treated),
        holdout: group_window(holdout),
        difference: PerCustomer {
            share_bought: plain(per_customer(bought)),
            purchases_per_customer: plain(per_customer(purchases)),
            revenue_per_customer: money(per_customer(revenue)),
        },
        incremental: Incremental {
            customers: plain(total(bought)),
            purchases: plain(total(purchases)),
            revenue: money(total(revenue)),
        },
    }
}

/// One unit of a holdout comparison over a single window (a campaign's recipient): when
/// its window began, its group, and its verified purchases in the window.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WindowOutcome {
    pub started_at: DateTime<Utc>,
    pub holdout: bool,
    pub purchases: u32,
    pub revenue_minor: i64,
}

/// Treated against holdout over one window of `days`, by the same rules as win-back's
/// windows: a unit whose window has not ended by `as_of` is pending, not counted.
pub fn holdout_window(
    days: u32,
    outcomes: impl IntoIterator<Item = WindowOutcome>,
    as_of: DateTime<Utc>,
) -> WindowComparison {
    let mut groups: [GroupTally; 2] = Default::default();
    for outcome in outcomes {
        let tally = &mut groups[usize::from(outcome.holdout)];
        if outcome.started_at + TimeDelta::days(i64::from(days)) > as_of {
            tally.pending += 1;
            continue;
        }
        tally.add(outcome.purchases, outcome.revenue_minor, None);
    }
    window_comparison(days, &groups)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn one_window_compares_like_win_back_and_waits_for_its_end() {
        let start = at(1, 3);
        let units = |holdout: bool, bought: &[u32]| -> Vec<WindowOutcome> {
            bought
                .iter()
                .map(|&purchases| WindowOutcome {
                    started_at: start,
                    holdout,
                    purchases,
                    revenue_minor: i64::from(purchases) * 10_000_000,
                })
                .collect()
        };
        let mut all = units(false, &[1, 0, 1, 1, 0, 1, 2, 0]);
        all.extend(units(true, &[0, 1, 0, 0]));
        let early = holdout_window(14, all.clone(), start + TimeDelta::days(13));
        assert_eq!((early.treated.n, early.treated.pending), (0, 8));
        let done = holdout_window(14, all, start + TimeDelta::days(14));
        assert_eq!((done.treated.n, done.holdout.n), (8, 4));
        assert_eq!(done.treated.bought, 5);
        let share = done.difference.share_bought;
        assert!((share.estimate.unwrap() - (5.0 / 8.0 - 0.25)).abs() < 1e-9);
        assert!(share.low.unwrap() < share.estimate.unwrap());
        assert!(share.high.unwrap() > share.estimate.unwrap());
    }

    fn at(day: u32, month: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, month, day, 3, 0, 0).unwrap()
    }

    fn outcome(entered_at: DateTime<Utc>, holdout: bool, purchases: u32) -> WinbackOutcome {
        WinbackOutcome {
            entered_at,
            holdout,
            purchases_30d: purchases,
            revenue_30d_minor: i64::from(purchases) * 10_000_000,
            purchases_60d: purchases,
            revenue_60d_minor: i64::from(purchases) * 10_000_000,
            expected_30d: Some(0.2),
            expected_60d: None,
            vouchers_redeemed: u32::from(!holdout && purchases > 0),
        }
    }

    #[test]
    fn young_episodes_wait_for_their_window_and_months_follow_the_zone() {
        let as_of = at(15, 12);
        let outcomes = [
            // 31 Oct 20:00 UTC is 1 Nov in Jakarta.
            outcome(
                Utc.with_ymd_and_hms(2026, 10, 31, 20, 0, 0).unwrap(),
                false,
                1,
            ),
            outcome(at(10, 10), true, 0),
            outcome(at(1, 11), false, 0),
            // 44 days before as_of: counted at 30 days, pending at 60.
            outcome(at(1, 11) + TimeDelta::days(1), true, 2),
        ];
        let results = winback_results(&outcomes, as_of, chrono_tz::Asia::Jakarta);
        assert_eq!(
            results
                .cohorts
                .iter()
                .map(|c| (c.month.as_str(), c.comparison.treated, c.comparison.holdout))
                .collect::<Vec<_>>(),
            [("2026-10", 0, 1), ("2026-11", 2, 1)]
        );
        let total = &results.total;
        assert_eq!(
            (total.treated, total.holdout, total.vouchers_redeemed),
            (2, 2, 1)
        );
        assert_eq!((total.days_30.treated.n, total.days_30.holdout.n), (2, 2));
        assert_eq!(
            (total.days_60.holdout.n, total.days_60.holdout.pending),
            (1, 1)
        );
        let treated = &total.days_30.treated;
        assert_eq!(treated.bought, 1);
        assert_eq!(treated.share_bought, Some(0.5));
        assert_eq!(treated.revenue_per_customer, Some(MinorAmount(5_000_000)));
        assert_eq!(treated.expected_purchases_per_customer, Some(0.2));
        assert_eq!(total.days_60.treated.with_expectation, 0);
        assert_eq!(total.days_60.treated.expected_purchases_per_customer, None);
    }
}
