//! Win-back results on simulated populations whose true uplift is known: the 95% interval
//! must hold the truth (about 95 times in 100 across many draws), be narrow enough to tell a
//! real uplift from none, and be absent when a group is too small to have one.

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Gamma, LogNormal, Poisson};
use setia_analytics::winback::{Difference, WindowComparison};
use setia_analytics::{winback_results, MinorAmount, WinbackOutcome, WinbackResults};
use setia_core::stats::students_t_quantile;
use statrs::distribution::{ContinuousCDF, StudentsT};

use crate::support::jakarta;

/// A simulated population: the holdout buys within 30 days with probability `p`, the
/// treated with `p + uplift`; a buyer makes 1 + Poisson(0.5) purchases of a log-normal
/// amount averaging Rp 150.000. Between day 30 and 60 both groups buy again alike.
struct World {
    p: f64,
    uplift: f64,
    /// The log-normal's σ: how skewed an amount is.
    sigma: f64,
}

/// Rp 150.000 in minor units.
const MEAN_AMOUNT: f64 = 15_000_000.0;
const EXTRA_PURCHASES: f64 = 0.5;
/// The chance of buying between day 30 and 60, in both groups.
const LATER: f64 = 0.1;

impl World {
    fn purchases_per_buyer() -> f64 {
        1.0 + EXTRA_PURCHASES
    }

    fn true_share_uplift_30(&self) -> f64 {
        self.uplift
    }

    /// Bought by day 60: 1 − (1 − q)(1 − LATER), so the uplift shrinks by 1 − LATER.
    fn true_share_uplift_60(&self) -> f64 {
        self.uplift * (1.0 - LATER)
    }

    fn true_purchase_uplift(&self) -> f64 {
        self.uplift * World::purchases_per_buyer()
    }

    fn true_revenue_uplift(&self) -> f64 {
        self.true_purchase_uplift() * MEAN_AMOUNT
    }

    fn draw(
        &self,
        rng: &mut ChaCha8Rng,
        treated: usize,
        holdout: usize,
        as_of: DateTime<Utc>,
    ) -> Vec<WinbackOutcome> {
        let amount =
            LogNormal::new(MEAN_AMOUNT.ln() - self.sigma * self.sigma / 2.0, self.sigma).unwrap();
        let extra = Poisson::new(EXTRA_PURCHASES).unwrap();
        let expectation = Gamma::new(2.0, 0.1).unwrap();
        let buys = |rng: &mut ChaCha8Rng, chance: f64| -> (u32, i64) {
            if !rng.random_bool(chance) {
                return (0, 0);
            }
            let n = 1 + extra.sample(rng) as u32;
            let revenue = (0..n).map(|_| amount.sample(rng).round() as i64).sum();
            (n, revenue)
        };
        (0..treated + holdout)
            .map(|i| {
                let holdout = i >= treated;
                let chance = if holdout {
                    self.p
                } else {
                    self.p + self.uplift
                };
                let (purchases_30d, revenue_30d_minor) = buys(rng, chance);
                let (later, later_revenue) = buys(rng, LATER);
                let expected_30d = expectation.sample(rng);
                WinbackOutcome {
                    // Spread over three months, every window complete.
                    entered_at: as_of - TimeDelta::days(61 + (i % 90) as i64),
                    holdout,
                    purchases_30d,
                    revenue_30d_minor,
                    purchases_60d: purchases_30d + later,
                    revenue_60d_minor: revenue_30d_minor + later_revenue,
                    expected_30d: Some(expected_30d),
                    expected_60d: Some(expected_30d * 2.0),
                    vouchers_redeemed: u32::from(!holdout && purchases_30d > 0),
                }
            })
            .collect()
    }
}

fn as_of() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2027, 3, 1, 0, 0, 0).unwrap()
}

fn results(world: &World, seed: u64, treated: usize, holdout: usize) -> WinbackResults {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let outcomes = world.draw(&mut rng, treated, holdout, as_of());
    winback_results(&outcomes, as_of(), jakarta())
}

fn bounds(difference: &Difference<f64>) -> (f64, f64) {
    (
        difference.low.expect("an interval"),
        difference.high.expect("an interval"),
    )
}

fn money_bounds(difference: &Difference<MinorAmount>) -> (f64, f64) {
    (
        difference.low.expect("an interval").0 as f64,
        difference.high.expect("an interval").0 as f64,
    )
}

fn holds(bounds: (f64, f64), truth: f64) -> bool {
    bounds.0 <= truth && truth <= bounds.1
}

/// The interval holds `truth` and is narrower than `width`.
fn assert_holds(name: &str, bounds: (f64, f64), truth: f64, width: f64) {
    assert!(holds(bounds, truth), "{name}: {bounds:?} misses {truth}");
    assert!(
        bounds.1 - bounds.0 < width,
        "{name}: {bounds:?} is wider than {width}"
    );
}

#[test]
fn a_real_uplift_is_inside_the_interval_and_told_apart_from_none() {
    let world = World {
        p: 0.20,
        uplift: 0.05,
        sigma: 0.8,
    };
    let results = results(&world, 2027, 4_000, 4_000);
    let total = &results.total;
    assert_eq!((total.treated, total.holdout), (4_000, 4_000));
    let d30 = &total.days_30;
    assert_eq!((d30.treated.n, d30.holdout.n), (4_000, 4_000));
    assert_eq!((d30.treated.pending, d30.holdout.pending), (0, 0));
    // Share who bought: se ≈ √(.25·.75/4000 + .2·.8/4000) ≈ 0.0093, so ±0.018.
    let share = bounds(&d30.difference.share_bought);
    assert_holds("share", share, world.true_share_uplift_30(), 0.045);
    assert!(
        share.0 > 0.0,
        "a 5-point uplift is told apart from none: {share:?}"
    );
    assert_holds(
        "purchases",
        bounds(&d30.difference.purchases_per_customer),
        world.true_purchase_uplift(),
        0.12,
    );
    assert_holds(
        "revenue",
        money_bounds(&d30.difference.revenue_per_customer),
        world.true_revenue_uplift(),
        0.12 * MEAN_AMOUNT * 1.5,
    );
    // The totals are the per-customer figures times the treated n.
    assert_holds(
        "customers brought back",
        bounds(&d30.incremental.customers),
        world.true_share_uplift_30() * 4_000.0,
        0.045 * 4_000.0,
    );
    let revenue = money_bounds(&d30.incremental.revenue);
    assert_holds(
        "incremental revenue",
        revenue,
        world.true_revenue_uplift() * 4_000.0,
        0.12 * MEAN_AMOUNT * 1.5 * 4_000.0,
    );
    let per_customer = money_bounds(&d30.difference.revenue_per_customer);
    assert!((revenue.0 / 4_000.0 - per_customer.0).abs() < 1.0);
    // 60 days: the later purchases are the same in both groups.
    assert_holds(
        "share at 60 days",
        bounds(&total.days_60.difference.share_bought),
        world.true_share_uplift_60(),
        0.045,
    );
    // The BG/NBD expectation shows the groups alike.
    let (t, h) = (
        d30.treated.expected_purchases_per_customer.unwrap(),
        d30.holdout.expected_purchases_per_customer.unwrap(),
    );
    assert!((t - 0.2).abs() < 0.01 && (h - 0.2).abs() < 0.01, "{t} {h}");
    assert_eq!(d30.treated.with_expectation, 4_000);
    assert_eq!(total.vouchers_redeemed, d30.treated.bought);
    assert_eq!(total.days_60.days, 60);
    // Three months of entrants, adding up to the total.
    assert_eq!(months(&results), ["2026-10", "2026-11", "2026-12"]);
    assert_eq!(
        results
            .cohorts
            .iter()
            .map(|c| c.comparison.treated + c.comparison.holdout)
            .sum::<u64>(),
        8_000
    );
}

fn months(results: &WinbackResults) -> Vec<&str> {
    results.cohorts.iter().map(|c| c.month.as_str()).collect()
}

#[test]
fn no_uplift_gives_an_interval_around_zero_with_a_ninety_ten_split() {
    let world = World {
        p: 0.15,
        uplift: 0.0,
        sigma: 1.0,
    };
    let results = results(&world, 7, 18_000, 2_000);
    let d30 = &results.total.days_30;
    assert_eq!((d30.treated.n, d30.holdout.n), (18_000, 2_000));
    // se ≈ √(.15·.85/2000 + .15·.85/18000) ≈ 0.0084.
    assert_holds("share", bounds(&d30.difference.share_bought), 0.0, 0.04);
    assert_holds(
        "purchases",
        bounds(&d30.difference.purchases_per_customer),
        0.0,
        0.1,
    );
    assert_holds(
        "revenue",
        money_bounds(&d30.difference.revenue_per_customer),
        0.0,
        0.1 * MEAN_AMOUNT * 1.5,
    );
    assert_holds(
        "customers",
        bounds(&d30.incremental.customers),
        0.0,
        0.04 * 18_000.0,
    );
    let d60 = &results.total.days_60;
    assert_holds(
        "share at 60",
        bounds(&d60.difference.share_bought),
        0.0,
        0.04,
    );
}

/// Across many independent draws the interval holds the truth about 95% of the time: not
/// much less (too narrow) and not much more (too wide). Small, unequal groups (270 against
/// 30 is a 10% holdout of a small shop) are where Welch's degrees of freedom matter.
#[test]
fn the_interval_holds_the_truth_about_95_times_in_100() {
    let world = World {
        p: 0.25,
        uplift: 0.08,
        sigma: 0.5,
    };
    for (treated, holdout, seed) in [(300, 300, 11), (540, 60, 12)] {
        let replicates = 400;
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let (mut share, mut purchases, mut revenue) = (0, 0, 0);
        for _ in 0..replicates {
            let outcomes = world.draw(&mut rng, treated, holdout, as_of());
            let results = winback_results(&outcomes, as_of(), jakarta());
            let d30: &WindowComparison = &results.total.days_30;
            share += usize::from(holds(
                bounds(&d30.difference.share_bought),
                world.true_share_uplift_30(),
            ));
            purchases += usize::from(holds(
                bounds(&d30.difference.purchases_per_customer),
                world.true_purchase_uplift(),
            ));
            revenue += usize::from(holds(
                money_bounds(&d30.difference.revenue_per_customer),
                world.true_revenue_uplift(),
            ));
        }
        for (name, covered) in [
            ("share", share),
            ("purchases", purchases),
            ("revenue", revenue),
        ] {
            let coverage = covered as f64 / replicates as f64;
            // 400 draws: the coverage's own standard error is about 0.011, and with 60 in
            // the holdout and skewed amounts Welch's true coverage is a little under 95%.
            assert!(
                (0.91..=0.98).contains(&coverage),
                "{name} at {treated}/{holdout}: {coverage}"
            );
        }
    }
}

#[test]
fn groups_under_two_have_no_interval() {
    let world = World {
        p: 0.5,
        uplift: 0.1,
        sigma: 0.5,
    };
    let one = results(&world, 3, 50, 1);
    let d30 = &one.total.days_30;
    assert_eq!(d30.holdout.n, 1);
    let share = &d30.difference.share_bought;
    assert!(share.estimate.is_some(), "the difference is still shown");
    assert_eq!((share.low, share.high), (None, None), "but no interval");
    assert_eq!(d30.incremental.revenue.low, None);
    let none = results(&world, 3, 5, 0);
    let d30 = &none.total.days_30;
    assert_eq!(d30.holdout.n, 0);
    assert_eq!(d30.holdout.share_bought, None);
    assert_eq!(d30.difference.revenue_per_customer.estimate, None);
    assert_eq!(d30.incremental.customers.estimate, None);
    // Nobody at all: empty, and clean JSON.
    let empty = winback_results(&[], as_of(), jakarta());
    assert!(empty.cohorts.is_empty());
    for results in [&one, &none, &empty] {
        let text = serde_json::to_string(results).unwrap();
        for forbidden in ["NaN", "nan", "inf"] {
            assert!(!text.contains(forbidden), "{text}");
        }
        let back: WinbackResults = serde_json::from_str(&text).unwrap();
        assert_eq!(back.total.treated, results.total.treated);
    }
    let value = serde_json::to_value(&one).unwrap();
    assert!(
        value["total"]["days_30"]["treated"]["revenue_per_customer"]
            .as_str()
            .unwrap()
            .contains('.'),
        "money is a decimal string"
    );
    assert!(value["cohorts"][0]["month"].is_string());
    assert!(value["cohorts"][0]["days_30"].is_object(), "flattened");
}

/// setia-core's own t quantile (Welch's ν is fractional) against statrs'.
#[test]
fn t_quantiles_agree_with_statrs() {
    for df in [1.0, 1.7, 2.0, 3.3, 7.9, 24.988, 99.5, 1_000.0, 123_456.7] {
        let reference = StudentsT::new(0.0, 1.0, df).unwrap();
        for p in [0.9, 0.95, 0.975, 0.995, 0.025] {
            let ours = students_t_quantile(p, df);
            let theirs = reference.inverse_cdf(p);
            assert!(
                (ours - theirs).abs() < 1e-6 * theirs.abs().max(1.0),
                "ν {df}, p {p}: {ours} against {theirs}"
            );
        }
    }
}
