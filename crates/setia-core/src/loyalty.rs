//! The loyalty program (DESIGN §4): points per purchase by amount and tier, a bonus on
//! every n-th purchase, birthday points, first-in-first-out expiry.

use std::fmt::Display;
use std::ops::RangeInclusive;

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

use crate::Money;

/// A merchant's program, read from TOML; every field has the DESIGN default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LoyaltyProgram {
    /// Rupiah per point, before the tier multiplier.
    pub rupiah_per_point: i64,
    pub silver_threshold_rupiah: i64,
    pub silver_multiplier: f64,
    pub gold_threshold_rupiah: i64,
    pub gold_multiplier: f64,
    /// Every this-many-th purchase earns `bonus_points`.
    pub bonus_every: u32,
    pub bonus_points: i64,
    pub birthday_points: i64,
    pub expiry_days: i64,
}

impl Default for LoyaltyProgram {
    fn default() -> Self {
        LoyaltyProgram {
            rupiah_per_point: 10_000,
            silver_threshold_rupiah: 2_000_000,
            silver_multiplier: 1.25,
            gold_threshold_rupiah: 10_000_000,
            gold_multiplier: 1.5,
            bonus_every: 5,
            bonus_points: 50,
            birthday_points: 100,
            expiry_days: 365,
        }
    }
}

// The bounds of the program's numbers. Each is far beyond what a shop means, and together
// they keep every sum and product setia makes of them inside i64 and every date inside
// chrono's range: thresholds × 100 sen, points added up over millions of purchases, an
// earning date plus the expiry.

/// Rupiah per point: Rp 1 to Rp 1 billion.
pub const RUPIAH_PER_POINT_RANGE: RangeInclusive<i64> = 1..=1_000_000_000;
/// A tier threshold: up to Rp 10 trillion (10^15 sen, far inside i64).
pub const THRESHOLD_RUPIAH_RANGE: RangeInclusive<i64> = 0..=10_000_000_000_000;
/// A bonus on every purchase up to every 10,000th.
pub const BONUS_EVERY_RANGE: RangeInclusive<u32> = 1..=10_000;
/// Points of one bonus or one birthday: up to a billion.
pub const EVENT_POINTS_RANGE: RangeInclusive<i64> = 0..=1_000_000_000;
/// Expiry: a day to 100 years.
pub const EXPIRY_DAYS_RANGE: RangeInclusive<i64> = 1..=36_500;
/// The most points one purchase earns: a trillion. Without it, Rp 1 a point and the
/// largest amount would give i64::MAX points, which the next sum overflows.
pub const MAX_PURCHASE_POINTS: i64 = 1_000_000_000_000;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProgramError {
    #[error("loyalty program: {0}")]
    Toml(String),
    #[error("loyalty program: {0}")]
    Invalid(String),
}

/// A points total that does not fit in i64: within the program's bounds only data setia did
/// not write can get there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a points total does not fit in 64 bits")]
pub struct PointsOverflow;

/// `field` must lie in `range`; the error names both, like the other program messages.
fn within<T: PartialOrd + Display>(
    field: &str,
    value: T,
    range: &RangeInclusive<T>,
) -> Result<(), ProgramError> {
    if range.contains(&value) {
        Ok(())
    } else {
        Err(ProgramError::Invalid(format!(
            "{field} must be {} to {}, not {value}",
            range.start(),
            range.end()
        )))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Tier {
    Bronze,
    Silver,
    Gold,
}

impl Tier {
    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Bronze => "bronze",
            Tier::Silver => "silver",
            Tier::Gold => "gold",
        }
    }

    pub fn parse(text: &str) -> Option<Tier> {
        [Tier::Bronze, Tier::Silver, Tier::Gold]
            .into_iter()
            .find(|tier| tier.as_str() == text)
    }
}

impl LoyaltyProgram {
    pub fn from_toml(text: &str) -> Result<LoyaltyProgram, ProgramError> {
        let program: LoyaltyProgram =
            toml::from_str(text).map_err(|e| ProgramError::Toml(e.to_string()))?;
        program.validated()
    }

    /// A program as the store kept it. One saved before the upper bounds existed is brought
    /// down to them rather than refused, so the merchant's pipeline keeps running: the bounds
    /// are far beyond any real program, so a "never" expiry of 100 million days becomes 100
    /// years and a threshold of Rp 10^17 stays out of reach at Rp 10^13. Values that were
    /// always refused (a negative one, a multiplier off 1–100) still are.
    pub fn from_stored_toml(text: &str) -> Result<LoyaltyProgram, ProgramError> {
        let program: LoyaltyProgram =
            toml::from_str(text).map_err(|e| ProgramError::Toml(e.to_string()))?;
        program.capped().validated()
    }

    pub fn to_toml(&self) -> String {
        toml::to_string(self).expect("a program serialises")
    }

    /// Every number at most its bound's upper end.
    fn capped(self) -> LoyaltyProgram {
        LoyaltyProgram {
            rupiah_per_point: self.rupiah_per_point.min(*RUPIAH_PER_POINT_RANGE.end()),
            silver_threshold_rupiah: self
                .silver_threshold_rupiah
                .min(*THRESHOLD_RUPIAH_RANGE.end()),
            gold_threshold_rupiah: self
                .gold_threshold_rupiah
                .min(*THRESHOLD_RUPIAH_RANGE.end()),
            bonus_every: self.bonus_every.min(*BONUS_EVERY_RANGE.end()),
            bonus_points: self.bonus_points.min(*EVENT_POINTS_RANGE.end()),
            birthday_points: self.birthday_points.min(*EVENT_POINTS_RANGE.end()),
            expiry_days: self.expiry_days.min(*EXPIRY_DAYS_RANGE.end()),
            ..self
        }
    }

    fn validated(self) -> Result<LoyaltyProgram, ProgramError> {
        let finite = |m: f64| m.is_finite() && (1.0..=100.0).contains(&m);
        within(
            "rupiah_per_point",
            self.rupiah_per_point,
            &RUPIAH_PER_POINT_RANGE,
        )?;
        if !finite(self.silver_multiplier) || !finite(self.gold_multiplier) {
            return Err(ProgramError::Invalid(
                "multipliers must be between 1 and 100".into(),
            ));
        }
        within(
            "silver_threshold_rupiah",
            self.silver_threshold_rupiah,
            &THRESHOLD_RUPIAH_RANGE,
        )?;
        within(
            "gold_threshold_rupiah",
            self.gold_threshold_rupiah,
            &THRESHOLD_RUPIAH_RANGE,
        )?;
        if self.gold_threshold_rupiah < self.silver_threshold_rupiah {
            return Err(ProgramError::Invalid(
                "the gold threshold must be at least the silver one".into(),
            ));
        }
        within("bonus_every", self.bonus_every, &BONUS_EVERY_RANGE)?;
        within("bonus_points", self.bonus_points, &EVENT_POINTS_RANGE)?;
        within("birthday_points", self.birthday_points, &EVENT_POINTS_RANGE)?;
        within("expiry_days", self.expiry_days, &EXPIRY_DAYS_RANGE)?;
        Ok(self)
    }

    /// The tier earned by what a customer spent in the 365 days before a purchase.
    pub fn tier_for(&self, trailing_spend: Money) -> Tier {
        let rupiah = trailing_spend.whole_units();
        if rupiah >= self.gold_threshold_rupiah {
            Tier::Gold
        } else if rupiah >= self.silver_threshold_rupiah {
            Tier::Silver
        } else {
            Tier::Bronze
        }
    }

    /// The tier's points multiplier: its built-in perk.
    pub fn multiplier(&self, tier: Tier) -> f64 {
        match tier {
            Tier::Bronze => 1.0,
            Tier::Silver => self.silver_multiplier,
            Tier::Gold => self.gold_multiplier,
        }
    }

    /// Points for a purchase: floor(amount / rupiah_per_point) × the tier multiplier, floored,
    /// and at most [`MAX_PURCHASE_POINTS`].
    pub fn points_for(&self, amount: Money, tier: Tier) -> i64 {
        // Checked: a program built in code may skip validation (rupiah_per_point 0).
        let base = amount
            .whole_units()
            .checked_div(self.rupiah_per_point)
            .unwrap_or(0);
        // Multipliers are quarters and halves: exact in binary, so floor is exact too.
        let points = (base as f64 * self.multiplier(tier)).floor() as i64;
        points.min(MAX_PURCHASE_POINTS)
    }

    /// The bonus for a customer's n-th purchase (1-based), if it is one.
    pub fn bonus_for(&self, purchase_number: u64) -> Option<i64> {
        (purchase_number > 0
            && purchase_number % u64::from(self.bonus_every) == 0
            && self.bonus_points > 0)
            .then_some(self.bonus_points)
    }

    /// The spend in the tier window on and above which a customer holds `tier` (nothing for
    /// bronze). Saturating: validated thresholds fit in sen with room, but a program built
    /// in code may not be validated; past i64 the tier is out of reach anyway.
    pub fn threshold(&self, tier: Tier) -> Money {
        let rupiah = match tier {
            Tier::Bronze => 0,
            Tier::Silver => self.silver_threshold_rupiah,
            Tier::Gold => self.gold_threshold_rupiah,
        };
        Money::from_minor(rupiah.saturating_mul(100))
    }

    /// The spend on and above which a customer reaches the next tier, if there is one.
    pub fn next_tier(&self, tier: Tier) -> Option<(Tier, Money)> {
        let next = match tier {
            Tier::Bronze => Tier::Silver,
            Tier::Silver => Tier::Gold,
            Tier::Gold => return None,
        };
        Some((next, self.threshold(next)))
    }

    /// How long points last. A span past what chrono holds (only a program built in code
    /// skips the bound) is the longest one: such points never expire.
    pub fn expiry(&self) -> TimeDelta {
        TimeDelta::try_days(self.expiry_days).unwrap_or(TimeDelta::MAX)
    }
}

/// When points earned at `earned_at` expire; `None` when that instant is past the last date
/// chrono holds: such points never expire.
pub fn expires_at(earned_at: DateTime<Utc>, expiry: TimeDelta) -> Option<DateTime<Utc>> {
    earned_at.checked_add_signed(expiry)
}

/// Whether points earned at `earned_at` have expired by `now`.
fn expired_by(earned_at: DateTime<Utc>, expiry: TimeDelta, now: DateTime<Utc>) -> bool {
    expires_at(earned_at, expiry).is_some_and(|end| end <= now)
}

/// One points-ledger entry as the balance rules see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PointsMovement {
    pub id: i64,
    pub at: DateTime<Utc>,
    /// Positive for awards, negative for everything else.
    pub points: i64,
    pub effect: Effect,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Points earned from `source` (a purchase, a birthday): a lot that expires.
    Award { source: String },
    /// A redemption: spends the oldest unexpired points first.
    Spend,
    /// Takes back the awards of `source` (a refunded purchase).
    Reverse { source: String },
    /// Writes off what is left of one award.
    Expire { lot: i64 },
}

/// Points of an award that are still unspent and have passed their expiry at `now`: what
/// an expiry run must write off, award by award.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DueExpiry {
    pub lot: i64,
    pub earned_at: DateTime<Utc>,
    /// When the points expired: `earned_at` plus the expiry.
    pub expired_at: DateTime<Utc>,
    pub points: i64,
}

/// An award as the balance rules track it: what is left of it.
struct Lot<'a> {
    award: i64,
    source: &'a str,
    earned_at: DateTime<Utc>,
    left: i64,
}

fn spend_oldest(lots: &mut [Lot<'_>], mut points: i64, at: DateTime<Utc>, expiry: TimeDelta) {
    for lot in lots
        .iter_mut()
        .filter(|l| !expired_by(l.earned_at, expiry, at))
    {
        let used = lot.left.min(points);
        lot.left -= used;
        points -= used;
        if points == 0 {
            return;
        }
    }
}

/// The awards up to `now`, oldest first, with what is left of each.
fn lots_at(movements: &[PointsMovement], now: DateTime<Utc>, expiry: TimeDelta) -> Vec<Lot<'_>> {
    let mut sorted: Vec<&PointsMovement> = movements.iter().filter(|m| m.at <= now).collect();
    sorted.sort_by_key(|m| (m.at, m.id));
    let mut lots: Vec<Lot> = Vec::new();
    for movement in sorted {
        match &movement.effect {
            Effect::Award { source } => lots.push(Lot {
                award: movement.id,
                source,
                earned_at: movement.at,
                left: movement.points,
            }),
            // Saturating: the points come from the database; i64::MIN has no negation.
            Effect::Spend => spend_oldest(
                &mut lots,
                movement.points.saturating_neg(),
                movement.at,
                expiry,
            ),
            Effect::Reverse { source } => {
                let mut points = movement.points.saturating_neg();
                for lot in lots.iter_mut().filter(|l| l.source == source) {
                    let taken = lot.left.min(points);
                    lot.left -= taken;
                    points -= taken;
                }
                spend_oldest(&mut lots, points, movement.at, expiry);
            }
            Effect::Expire { lot } => {
                if let Some(lot) = lots.iter_mut().find(|l| l.award == *lot) {
                    lot.left = lot.left.saturating_add(movement.points).max(0);
                }
            }
        }
    }
    lots
}

/// The lots at `now`, split into what is left of the unexpired ones and the expiries still
/// to be written.
fn live_and_due(
    movements: &[PointsMovement],
    now: DateTime<Utc>,
    expiry: TimeDelta,
) -> (Vec<i64>, Vec<DueExpiry>) {
    let mut live = Vec::new();
    let mut due = Vec::new();
    for lot in lots_at(movements, now, expiry) {
        match expires_at(lot.earned_at, expiry).filter(|end| *end <= now) {
            None => live.push(lot.left),
            Some(expired_at) if lot.left > 0 => due.push(DueExpiry {
                lot: lot.award,
                earned_at: lot.earned_at,
                expired_at,
                points: lot.left,
            }),
            Some(_) => {}
        }
    }
    (live, due)
}

/// First in, first out: spending uses the oldest points that had not expired at the time;
/// a reversal takes back the points of the awards it reverses (and, if some were already
/// spent, the rest from the oldest lots). Returns the balance at `now`, due expiries
/// applied, and the expiries still to be written; [`PointsOverflow`] when the balance does
/// not fit in i64.
pub fn checked_balance_at(
    movements: &[PointsMovement],
    now: DateTime<Utc>,
    expiry: TimeDelta,
) -> Result<(i64, Vec<DueExpiry>), PointsOverflow> {
    let (live, due) = live_and_due(movements, now, expiry);
    let balance = live
        .iter()
        .try_fold(0i64, |sum, left| sum.checked_add(*left))
        .ok_or(PointsOverflow)?;
    Ok((balance, due))
}

/// [`checked_balance_at`] for showing a balance: one past i64 (the program's bounds keep it
/// out of reach) saturates instead of failing the page or the email.
pub fn balance_at(
    movements: &[PointsMovement],
    now: DateTime<Utc>,
    expiry: TimeDelta,
) -> (i64, Vec<DueExpiry>) {
    let (live, due) = live_and_due(movements, now, expiry);
    let balance = live
        .iter()
        .fold(0i64, |sum, left| sum.saturating_add(*left));
    (balance, due)
}

/// The points that expire first among those held at `now`: when, and how many (the oldest
/// unexpired award's unspent rest). `None` when nothing is held.
pub fn next_expiry(
    movements: &[PointsMovement],
    now: DateTime<Utc>,
    expiry: TimeDelta,
) -> Option<(DateTime<Utc>, i64)> {
    // Lots are oldest first and share one expiry: once the first live lot never expires,
    // no later one does either.
    lots_at(movements, now, expiry)
        .iter()
        .find(|l| l.left > 0 && !expired_by(l.earned_at, expiry, now))
        .and_then(|l| Some((expires_at(l.earned_at, expiry)?, l.left)))
}

/// Every award with points left at `now`, expired or not, and how many: what a forfeiture
/// writes off (an erased customer's points, which nobody can redeem any more), lot by lot, so
/// that the expiry run finds nothing left of them.
pub fn unspent_lots(
    movements: &[PointsMovement],
    now: DateTime<Utc>,
    expiry: TimeDelta,
) -> Vec<(i64, i64)> {
    lots_at(movements, now, expiry)
        .iter()
        .filter(|lot| lot.left > 0)
        .map(|lot| (lot.award, lot.left))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn rp(rupiah: i64) -> Money {
        Money::from_minor(rupiah * 100)
    }

    #[test]
    fn points_by_amount_and_tier() {
        let program = LoyaltyProgram::default();
        assert_eq!(program.points_for(rp(99_999), Tier::Bronze), 9);
        assert_eq!(program.points_for(rp(100_000), Tier::Silver), 12); // 10 × 1.25 = 12.5
        assert_eq!(program.points_for(rp(100_000), Tier::Gold), 15);
        assert_eq!(program.points_for(rp(9_999), Tier::Gold), 0);
        assert_eq!(program.tier_for(rp(1_999_999)), Tier::Bronze);
        assert_eq!(program.tier_for(rp(2_000_000)), Tier::Silver);
        assert_eq!(program.tier_for(rp(10_000_000)), Tier::Gold);
        assert_eq!(program.bonus_for(5), Some(50));
        assert_eq!(program.bonus_for(10), Some(50));
        assert_eq!(program.bonus_for(4), None);
    }

    #[test]
    fn programs_come_from_toml_with_defaults() {
        let program =
            LoyaltyProgram::from_toml("rupiah_per_point = 5000\nbonus_every = 3\n").unwrap();
        assert_eq!(
            (
                program.rupiah_per_point,
                program.bonus_every,
                program.bonus_points
            ),
            (5000, 3, 50)
        );
        assert!(
            LoyaltyProgram::from_toml("rupiah_per_poin = 1").is_err(),
            "typos are errors"
        );
        assert!(LoyaltyProgram::from_toml("silver_multiplier = -1.0").is_err());
        assert!(LoyaltyProgram::from_toml("expiry_days = 0").is_err());
        assert_eq!(
            LoyaltyProgram::from_toml(&LoyaltyProgram::default().to_toml()).unwrap(),
            LoyaltyProgram::default()
        );
    }

    #[test]
    fn expiry_is_first_in_first_out() {
        let day = |d: i64| Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap() + TimeDelta::days(d);
        let award = |id, d, points, source: &str| PointsMovement {
            id,
            at: day(d),
            points,
            effect: Effect::Award {
                source: source.into(),
            },
        };
        let year = TimeDelta::days(365);
        // 100 on day 0, 50 on day 100, 70 spent on day 200: the spend comes out of the
        // first award, so on day 366 only its last 30 expire.
        let spend = PointsMovement {
            id: 3,
            at: day(200),
            points: -70,
            effect: Effect::Spend,
        };
        let movements = [award(1, 0, 100, "pur_1"), award(2, 100, 50, "pur_2"), spend];
        assert_eq!(balance_at(&movements, day(364), year), (80, vec![]));
        let (balance, due) = balance_at(&movements, day(366), year);
        assert_eq!(balance, 50);
        assert_eq!(
            due,
            vec![DueExpiry {
                lot: 1,
                earned_at: day(0),
                expired_at: day(365),
                points: 30
            }]
        );
        // Once written, the expiry is not due again and the balance is unchanged.
        let expire = PointsMovement {
            id: 4,
            at: day(365),
            points: -30,
            effect: Effect::Expire { lot: 1 },
        };
        let written = [&movements[..], &[expire]].concat();
        assert_eq!(balance_at(&written, day(366), year), (50, vec![]));
        assert_eq!(balance_at(&written, day(470), year).0, 0);
        // The first points to expire: the first award's unspent 30 on day 365, then the
        // second award once the first has expired, then nothing.
        assert_eq!(
            next_expiry(&movements, day(300), year),
            Some((day(365), 30))
        );
        assert_eq!(next_expiry(&written, day(366), year), Some((day(465), 50)));
        assert_eq!(next_expiry(&written, day(470), year), None);
        assert_eq!(next_expiry(&movements[..1], day(-1), year), None);
    }

    #[test]
    fn a_reversal_takes_back_its_own_award() {
        let day = |d: i64| Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap() + TimeDelta::days(d);
        let year = TimeDelta::days(365);
        let movements = [
            PointsMovement {
                id: 1,
                at: day(0),
                points: 60,
                effect: Effect::Award {
                    source: "pur_1".into(),
                },
            },
            PointsMovement {
                id: 2,
                at: day(5),
                points: 75,
                effect: Effect::Award {
                    source: "pur_2".into(),
                },
            },
            PointsMovement {
                id: 3,
                at: day(6),
                points: -75,
                effect: Effect::Reverse {
                    source: "pur_2".into(),
                },
            },
        ];
        assert_eq!(balance_at(&movements, day(7), year).0, 60);
        // The first award is untouched and expires whole.
        assert_eq!(balance_at(&movements, day(366), year).1[0].points, 60);
    }

    /// The program's TOML with one key changed.
    fn with(key: &str, value: impl Display) -> Result<LoyaltyProgram, ProgramError> {
        LoyaltyProgram::from_toml(&format!("{key} = {value}\n"))
    }

    #[test]
    fn every_number_of_the_program_is_bounded_and_the_error_says_how() {
        let bounds: [(&str, i64, i64); 7] = [
            ("rupiah_per_point", 1, 1_000_000_000),
            // Gold at its top, so that silver may reach it.
            (
                "gold_threshold_rupiah = 10000000000000\nsilver_threshold_rupiah",
                0,
                10_000_000_000_000,
            ),
            ("bonus_every", 1, 10_000),
            ("bonus_points", 0, 1_000_000_000),
            ("birthday_points", 0, 1_000_000_000),
            ("expiry_days", 1, 36_500),
            // Silver at 0, so that gold may go down to it.
            (
                "silver_threshold_rupiah = 0\ngold_threshold_rupiah",
                0,
                10_000_000_000_000,
            ),
        ];
        for (key, low, high) in bounds {
            assert!(with(key, low).is_ok(), "{key} = {low}");
            assert!(with(key, high).is_ok(), "{key} = {high}");
            let Err(ProgramError::Invalid(message)) = with(key, high + 1) else {
                panic!("{key} = {} is accepted", high + 1);
            };
            let field = key.rsplit('\n').next().unwrap_or(key);
            assert_eq!(
                message,
                format!("{field} must be {low} to {high}, not {}", high + 1)
            );
            assert!(with(key, low - 1).is_err(), "{key} = {}", low - 1);
        }
        // The values the audit found accepted: a natural "never expires", i64::MAX, 10^17.
        assert!(with("expiry_days", 100_000_000).is_err());
        assert!(with("expiry_days", i64::MAX).is_err());
        assert!(with("bonus_points", i64::MAX).is_err());
        assert!(with("gold_threshold_rupiah", 100_000_000_000_000_000_i64).is_err());
    }

    #[test]
    fn a_stored_program_from_before_the_bounds_is_brought_within_them() {
        let legacy = "rupiah_per_point = 9223372036854775807\n\
                      silver_threshold_rupiah = 100000000000000000\n\
                      gold_threshold_rupiah = 9223372036854775807\n\
                      bonus_every = 4294967295\n\
                      bonus_points = 9223372036854775807\n\
                      birthday_points = 9223372036854775807\n\
                      expiry_days = 100000000\n";
        assert!(LoyaltyProgram::from_toml(legacy).is_err(), "refused as new");
        let program = LoyaltyProgram::from_stored_toml(legacy).unwrap();
        assert_eq!(
            program,
            LoyaltyProgram {
                rupiah_per_point: 1_000_000_000,
                silver_threshold_rupiah: 10_000_000_000_000,
                gold_threshold_rupiah: 10_000_000_000_000,
                bonus_every: 10_000,
                bonus_points: 1_000_000_000,
                birthday_points: 1_000_000_000,
                expiry_days: 36_500,
                ..LoyaltyProgram::default()
            }
        );
        // What was always refused still is.
        assert!(LoyaltyProgram::from_stored_toml("expiry_days = -1").is_err());
        assert!(LoyaltyProgram::from_stored_toml("rupiah_per_point = 0").is_err());
        assert_eq!(
            LoyaltyProgram::from_stored_toml(&LoyaltyProgram::default().to_toml()).unwrap(),
            LoyaltyProgram::default()
        );
    }

    #[test]
    fn one_purchase_earns_at_most_a_trillion_points() {
        let generous = LoyaltyProgram {
            rupiah_per_point: 1,
            gold_multiplier: 100.0,
            ..LoyaltyProgram::default()
        };
        let largest = Money::from_minor(i64::MAX);
        assert_eq!(
            generous.points_for(largest, Tier::Gold),
            MAX_PURCHASE_POINTS
        );
        assert_eq!(generous.points_for(rp(1_000), Tier::Gold), 100_000);
        // Millions of the largest awards still add up inside i64.
        assert!(MAX_PURCHASE_POINTS
            .checked_mul(9_000_000)
            .is_some_and(|sum| sum < i64::MAX));
        // A program built in code without validation divides by nothing without a panic.
        let unvalidated = LoyaltyProgram {
            rupiah_per_point: 0,
            ..LoyaltyProgram::default()
        };
        assert_eq!(unvalidated.points_for(rp(100_000), Tier::Bronze), 0);
    }

    #[test]
    fn the_next_tier_of_the_highest_thresholds_does_not_overflow() {
        let top = *THRESHOLD_RUPIAH_RANGE.end();
        let highest = with("gold_threshold_rupiah", top)
            .and_then(|_| {
                LoyaltyProgram::from_toml(&format!(
                    "silver_threshold_rupiah = {top}\ngold_threshold_rupiah = {top}\n"
                ))
            })
            .unwrap();
        assert_eq!(
            highest.next_tier(Tier::Silver),
            Some((Tier::Gold, Money::from_minor(top * 100)))
        );
        // Unvalidated: saturates to a threshold no one reaches.
        let unvalidated = LoyaltyProgram {
            silver_threshold_rupiah: i64::MAX,
            gold_threshold_rupiah: i64::MAX,
            ..LoyaltyProgram::default()
        };
        assert_eq!(
            unvalidated.next_tier(Tier::Bronze),
            Some((Tier::Silver, Money::from_minor(i64::MAX)))
        );
    }

    fn award(id: i64, at: DateTime<Utc>, points: i64) -> PointsMovement {
        PointsMovement {
            id,
            at,
            points,
            effect: Effect::Award {
                source: format!("pur_{id}"),
            },
        }
    }

    #[test]
    fn points_whose_expiry_is_past_the_last_date_never_expire() {
        let expiry = with("expiry_days", 36_500).unwrap().expiry();
        let late = DateTime::<Utc>::MAX_UTC - TimeDelta::days(400);
        let now = DateTime::<Utc>::MAX_UTC;
        let spend = PointsMovement {
            id: 2,
            at: late + TimeDelta::days(1),
            points: -30,
            effect: Effect::Spend,
        };
        let movements = [award(1, late, 100), spend];
        assert_eq!(balance_at(&movements, now, expiry), (70, vec![]));
        assert_eq!(
            checked_balance_at(&movements, now, expiry),
            Ok((70, vec![]))
        );
        assert_eq!(next_expiry(&movements, now, expiry), None);
        assert_eq!(expires_at(late, expiry), None);
        // An unvalidated expiry past chrono's range is the longest span, not a panic.
        let forever = LoyaltyProgram {
            expiry_days: i64::MAX,
            ..LoyaltyProgram::default()
        }
        .expiry();
        assert_eq!(forever, TimeDelta::MAX);
        let early = DateTime::<Utc>::MIN_UTC + TimeDelta::days(1);
        assert_eq!(balance_at(&[award(1, early, 5)], now, forever).0, 5);
        assert_eq!(next_expiry(&[award(1, early, 5)], now, forever), None);
    }

    #[test]
    fn a_balance_past_i64_is_an_error_or_saturates_for_display() {
        let day = Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap();
        let half = i64::MAX / 2 + 1;
        let movements = [award(1, day, half), award(2, day, half)];
        let year = TimeDelta::days(365);
        assert_eq!(
            checked_balance_at(&movements, day, year),
            Err(PointsOverflow)
        );
        assert_eq!(balance_at(&movements, day, year).0, i64::MAX);
        // Stored entries at i64's edges neither panic nor wrap.
        let odd = [
            award(1, day, 10),
            PointsMovement {
                id: 2,
                at: day,
                points: i64::MIN,
                effect: Effect::Spend,
            },
            PointsMovement {
                id: 3,
                at: day,
                points: i64::MIN,
                effect: Effect::Expire { lot: 1 },
            },
        ];
        assert_eq!(balance_at(&odd, day, year).0, 0);
    }

    #[test]
    fn a_forfeiture_takes_every_lot_left_and_leaves_nothing_to_expire() {
        let day = |d: u32| Utc.with_ymd_and_hms(2025, 1, d, 0, 0, 0).unwrap();
        let expiry = TimeDelta::days(10);
        let spend = PointsMovement {
            id: 3,
            at: day(3),
            points: -40,
            effect: Effect::Spend,
        };
        // Lot 1 (100, half spent) is past its expiry on the 20th and not yet written off;
        // lot 2 (50) is live; lot 4 was spent whole.
        let mut movements = vec![
            award(1, day(1), 100),
            award(2, day(15), 50),
            spend,
            award(4, day(2), 0),
        ];
        let now = day(20);
        assert_eq!(
            unspent_lots(&movements, now, expiry),
            vec![(1, 60), (2, 50)]
        );
        for (id, (lot, points)) in [(5, (1, 60)), (6, (2, 50))] {
            movements.push(PointsMovement {
                id,
                at: now,
                points: -points,
                effect: Effect::Expire { lot },
            });
        }
        assert_eq!(unspent_lots(&movements, now, expiry), vec![]);
        assert_eq!(balance_at(&movements, now, expiry), (0, vec![]));
        assert_eq!(balance_at(&movements, day(31), expiry), (0, vec![]));
    }
}
