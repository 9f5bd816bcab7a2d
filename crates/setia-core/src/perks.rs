//! Membership perks (DESIGN §8, `[perks]`): the rules that decide when a purchase makes a
//! customer cross into a higher tier (and so earns the tier's entry award and a welcome), and
//! when a customer is close enough to the next tier to be nudged. The tiers themselves are
//! the loyalty program's (trailing-365-day spend, [`LoyaltyProgram::tier_for`]).

use crate::loyalty::{LoyaltyProgram, Tier};
use crate::Money;

/// What one verified purchase did to its customer's tier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Crossing {
    /// The tiers reached for the first time (no standing entry yet), lowest first: each
    /// earns its entry award.
    pub entered: Vec<Tier>,
    /// The tier the welcome email is for: the highest entered.
    pub welcome: Option<Tier>,
}

/// The tiers above the member tier, the only ones a customer can enter.
const ENTERED_TIERS: [Tier; 2] = [Tier::Silver, Tier::Gold];

/// The crossing a purchase of `amount` makes for a customer who had spent `spent_before` in
/// the 365 days before it. `standing` are the tiers the customer already holds an entry for
/// (reached before and not taken back by a refund): reaching one of them again, after a
/// downgrade, is no crossing. A downgrade is never one either.
pub fn tier_crossing(
    program: &LoyaltyProgram,
    spent_before: Money,
    amount: Money,
    standing: &[Tier],
) -> Crossing {
    let before = program.tier_for(spent_before);
    let after = program.tier_for(Money::from_minor(
        spent_before.minor().saturating_add(amount.minor().max(0)),
    ));
    let entered: Vec<Tier> = ENTERED_TIERS
        .into_iter()
        .filter(|tier| before < *tier && *tier <= after && !standing.contains(tier))
        .collect();
    Crossing {
        welcome: entered.last().copied(),
        entered,
    }
}

/// The spend, in `[from, until)`, at which a customer is nudged towards `tier`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NudgeWindow {
    pub tier: Tier,
    pub from: Money,
    pub until: Money,
}

impl NudgeWindow {
    /// Whether a trailing spend falls in the window: `from` included, `until` not.
    pub fn contains(&self, spend: Money) -> bool {
        self.from <= spend && spend < self.until
    }
}

/// The windows of trailing spend that are within `within_percent` of the next tier's
/// threshold and below it: one per tier above member, none when the percent is 0. The gold
/// window starts no lower than the silver threshold, so a customer is only ever nudged
/// towards their own next tier.
pub fn nudge_windows(program: &LoyaltyProgram, within_percent: u32) -> Vec<NudgeWindow> {
    let percent = i64::from(within_percent.min(100));
    let mut floor = 0;
    let mut windows = Vec::new();
    for tier in ENTERED_TIERS {
        let Some((_, threshold)) = program.next_tier(previous(tier)) else {
            continue;
        };
        let until = threshold.minor();
        let below = i128::from(until) * i128::from(100 - percent) / 100;
        let from = i64::try_from(below).unwrap_or(until).max(floor);
        if percent > 0 && from < until {
            windows.push(NudgeWindow {
                tier,
                from: Money::from_minor(from),
                until: Money::from_minor(until),
            });
        }
        floor = until;
    }
    windows
}

fn previous(tier: Tier) -> Tier {
    match tier {
        Tier::Bronze | Tier::Silver => Tier::Bronze,
        Tier::Gold => Tier::Silver,
    }
}

/// The tier a customer with `trailing_spend` is nudged towards, and what is left to spend to
/// reach it; `None` outside every window.
pub fn nudge_due(
    program: &LoyaltyProgram,
    within_percent: u32,
    trailing_spend: Money,
) -> Option<(Tier, Money)> {
    nudge_windows(program, within_percent)
        .into_iter()
        .find(|w| w.contains(trailing_spend))
        .map(|w| {
            (
                w.tier,
                // Saturating: a threshold may be the saturated i64::MAX of `next_tier`.
                Money::from_minor(w.until.minor().saturating_sub(trailing_spend.minor())),
            )
        })
}

/// What is left to spend to reach the next tier, and that tier; `None` at the top.
pub fn to_next_tier(program: &LoyaltyProgram, trailing_spend: Money) -> Option<(Tier, Money)> {
    let (next, threshold) = program.next_tier(program.tier_for(trailing_spend))?;
    Some((
        next,
        // Saturating: a threshold may be the saturated i64::MAX of `next_tier`.
        Money::from_minor(
            threshold
                .minor()
                .saturating_sub(trailing_spend.minor())
                .max(0),
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rp(rupiah: i64) -> Money {
        Money::from_minor(rupiah * 100)
    }

    /// Silver from Rp 2.000.000, gold from Rp 10.000.000.
    fn program() -> LoyaltyProgram {
        LoyaltyProgram::default()
    }

    #[test]
    fn a_purchase_that_stays_in_its_tier_crosses_nothing() {
        let none = Crossing {
            entered: vec![],
            welcome: None,
        };
        assert_eq!(tier_crossing(&program(), rp(0), rp(1_999_999), &[]), none);
        assert_eq!(
            tier_crossing(&program(), rp(3_000_000), rp(1_000_000), &[]),
            none,
            "already silver before the purchase"
        );
        assert_eq!(tier_crossing(&program(), rp(12_000_000), rp(5), &[]), none);
    }

    #[test]
    fn reaching_silver_enters_silver() {
        let crossing = tier_crossing(&program(), rp(1_500_000), rp(500_000), &[]);
        assert_eq!(crossing.entered, vec![Tier::Silver]);
        assert_eq!(crossing.welcome, Some(Tier::Silver));
        let gold = tier_crossing(&program(), rp(9_000_000), rp(1_000_000), &[Tier::Silver]);
        assert_eq!(gold.entered, vec![Tier::Gold]);
        assert_eq!(gold.welcome, Some(Tier::Gold));
    }

    #[test]
    fn bronze_to_gold_in_one_purchase_enters_both_and_welcomes_to_gold() {
        let crossing = tier_crossing(&program(), rp(100_000), rp(10_000_000), &[]);
        assert_eq!(crossing.entered, vec![Tier::Silver, Tier::Gold]);
        assert_eq!(crossing.welcome, Some(Tier::Gold));
    }

    #[test]
    fn a_standing_entry_is_not_entered_again() {
        // Silver two years ago, back to member by the trailing rule, silver again: the
        // entry stands, so nothing is awarded or mailed.
        let again = tier_crossing(&program(), rp(0), rp(2_500_000), &[Tier::Silver]);
        assert_eq!(again.entered, vec![]);
        assert_eq!(again.welcome, None);
        // Straight to gold with silver standing: only gold.
        let gold = tier_crossing(&program(), rp(0), rp(10_000_000), &[Tier::Silver]);
        assert_eq!(gold.entered, vec![Tier::Gold]);
    }

    #[test]
    fn a_refund_or_downgrade_crosses_nothing() {
        let refund = tier_crossing(&program(), rp(3_000_000), rp(-2_000_000), &[]);
        assert_eq!(refund.entered, vec![]);
    }

    #[test]
    fn nudge_windows_sit_just_below_each_threshold() {
        assert_eq!(
            nudge_windows(&program(), 20),
            vec![
                NudgeWindow {
                    tier: Tier::Silver,
                    from: rp(1_600_000),
                    until: rp(2_000_000)
                },
                NudgeWindow {
                    tier: Tier::Gold,
                    from: rp(8_000_000),
                    until: rp(10_000_000)
                },
            ]
        );
        assert_eq!(nudge_windows(&program(), 0), vec![], "0 is off");
        // A wide window towards gold starts at the silver threshold: a member is nudged
        // towards silver only.
        let wide = nudge_windows(&program(), 90);
        assert_eq!(wide[0].from, rp(200_000));
        assert_eq!(wide[1].from, rp(2_000_000));
        // Thresholds that meet leave no window towards gold.
        let flat = LoyaltyProgram {
            gold_threshold_rupiah: 2_000_000,
            ..program()
        };
        assert_eq!(nudge_windows(&flat, 20).len(), 1);
    }

    #[test]
    fn a_nudge_is_due_inside_a_window_and_says_what_is_left() {
        let p = program();
        assert_eq!(nudge_due(&p, 20, rp(1_599_999)), None);
        assert_eq!(
            nudge_due(&p, 20, rp(1_600_000)),
            Some((Tier::Silver, rp(400_000)))
        );
        assert_eq!(
            nudge_due(&p, 20, rp(1_999_999)),
            Some((Tier::Silver, rp(1)))
        );
        assert_eq!(nudge_due(&p, 20, rp(2_000_000)), None, "reached");
        assert_eq!(
            nudge_due(&p, 20, rp(9_250_000)),
            Some((Tier::Gold, rp(750_000)))
        );
        assert_eq!(nudge_due(&p, 20, rp(10_000_000)), None, "gold is the top");
        assert_eq!(nudge_due(&p, 0, rp(1_999_999)), None);
    }

    #[test]
    fn the_next_tier_is_what_is_left_to_spend() {
        let p = program();
        assert_eq!(to_next_tier(&p, rp(0)), Some((Tier::Silver, rp(2_000_000))));
        assert_eq!(
            to_next_tier(&p, rp(2_500_000)),
            Some((Tier::Gold, rp(7_500_000)))
        );
        assert_eq!(to_next_tier(&p, rp(10_000_000)), None);
    }

    #[test]
    fn thresholds_at_the_edge_of_i64_overflow_nothing() {
        // Unvalidated thresholds saturate in `next_tier`; what is left to spend must not
        // overflow on a spend below zero (a refund larger than the year's purchases).
        let unreachable = LoyaltyProgram {
            silver_threshold_rupiah: i64::MAX,
            gold_threshold_rupiah: i64::MAX,
            ..program()
        };
        let negative = Money::from_minor(-100);
        assert_eq!(
            to_next_tier(&unreachable, negative),
            Some((Tier::Silver, Money::from_minor(i64::MAX)))
        );
        let windows = nudge_windows(&unreachable, 100);
        assert_eq!(windows.len(), 1, "gold's window is silver's, so empty");
        assert_eq!(
            nudge_due(&unreachable, 100, Money::ZERO),
            Some((Tier::Silver, Money::from_minor(i64::MAX)))
        );
        // The highest valid thresholds.
        let top = LoyaltyProgram {
            silver_threshold_rupiah: 10_000_000_000_000,
            gold_threshold_rupiah: 10_000_000_000_000,
            ..program()
        };
        assert_eq!(
            to_next_tier(&top, rp(0)),
            Some((Tier::Silver, rp(10_000_000_000_000)))
        );
    }
}
