//! The loyalty program (DESIGN §4): points per purchase by amount and tier, a bonus on
//! every n-th purchase, birthday points, first-in-first-out expiry.

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

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProgramError {
    #[error("loyalty program: {0}")]
    Toml(String),
    #[error("loyalty program: {0}")]
    Invalid(&'static str),
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

    pub fn to_toml(&self) -> String {
        toml::to_string(self).expect("a program serialises")
    }

    fn validated(self) -> Result<LoyaltyProgram, ProgramError> {
        let finite = |m: f64| m.is_finite() && (1.0..=100.0).contains(&m);
        if self.rupiah_per_point <= 0 {
            return Err(ProgramError::Invalid("rupiah_per_point must be positive"));
        }
        if !finite(self.silver_multiplier) || !finite(self.gold_multiplier) {
            return Err(ProgramError::Invalid(
                "multipliers must be between 1 and 100",
            ));
        }
        if self.silver_threshold_rupiah < 0
            || self.gold_threshold_rupiah < self.silver_threshold_rupiah
        {
            return Err(ProgramError::Invalid(
                "the gold threshold must be at least the silver one",
            ));
        }
        if self.bonus_every == 0 || self.bonus_points < 0 || self.birthday_points < 0 {
            return Err(ProgramError::Invalid(
                "bonus_every must be positive and points not negative",
            ));
        }
        if self.expiry_days <= 0 {
            return Err(ProgramError::Invalid("expiry_days must be positive"));
        }
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

    /// Points for a purchase: floor(amount / rupiah_per_point) × the tier multiplier, floored.
    pub fn points_for(&self, amount: Money, tier: Tier) -> i64 {
        let base = amount.whole_units() / self.rupiah_per_point;
        // Multipliers are quarters and halves: exact in binary, so floor is exact too.
        (base as f64 * self.multiplier(tier)).floor() as i64
    }

    /// The bonus for a customer's n-th purchase (1-based), if it is one.
    pub fn bonus_for(&self, purchase_number: u64) -> Option<i64> {
        (purchase_number > 0
            && purchase_number % u64::from(self.bonus_every) == 0
            && self.bonus_points > 0)
            .then_some(self.bonus_points)
    }

    /// The spend on and above which a customer reaches the next tier, if there is one.
    pub fn next_tier(&self, tier: Tier) -> Option<(Tier, Money)> {
        match tier {
            Tier::Bronze => Some((
                Tier::Silver,
                Money::from_minor(self.silver_threshold_rupiah * 100),
            )),
            Tier::Silver => Some((
                Tier::Gold,
                Money::from_minor(self.gold_threshold_rupiah * 100),
            )),
            Tier::Gold => None,
        }
    }

    pub fn expiry(&self) -> TimeDelta {
        TimeDelta::days(self.expiry_days)
    }
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
    for lot in lots.iter_mut().filter(|l| l.earned_at + expiry > at) {
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
            Effect::Spend => spend_oldest(&mut lots, -movement.points, movement.at, expiry),
            Effect::Reverse { source } => {
                let mut points = -movement.points;
                for lot in lots.iter_mut().filter(|l| l.source == source) {
                    let taken = lot.left.min(points);
                    lot.left -= taken;
                    points -= taken;
                }
                spend_oldest(&mut lots, points, movement.at, expiry);
            }
            Effect::Expire { lot } => {
                if let Some(lot) = lots.iter_mut().find(|l| l.award == *lot) {
                    lot.left = (lot.left + movement.points).max(0);
                }
            }
        }
    }
    lots
}

/// First in, first out: spending uses the oldest points that had not expired at the time;
/// a reversal takes back the points of the awards it reverses (and, if some were already
/// spent, the rest from the oldest lots). Returns the balance at `now`, due expiries
/// applied, and the expiries still to be written.
pub fn balance_at(
    movements: &[PointsMovement],
    now: DateTime<Utc>,
    expiry: TimeDelta,
) -> (i64, Vec<DueExpiry>) {
    let lots = lots_at(movements, now, expiry);
    let (expired, live): (Vec<&Lot>, Vec<&Lot>) =
        lots.iter().partition(|l| l.earned_at + expiry <= now);
    let due = expired
        .iter()
        .filter(|l| l.left > 0)
        .map(|l| DueExpiry {
            lot: l.award,
            earned_at: l.earned_at,
            points: l.left,
        })
        .collect();
    (live.iter().map(|l| l.left).sum(), due)
}

/// The points that expire first among those held at `now`: when, and how many (the oldest
/// unexpired award's unspent rest). `None` when nothing is held.
pub fn next_expiry(
    movements: &[PointsMovement],
    now: DateTime<Utc>,
    expiry: TimeDelta,
) -> Option<(DateTime<Utc>, i64)> {
    lots_at(movements, now, expiry)
        .iter()
        .find(|l| l.left > 0 && l.earned_at + expiry > now)
        .map(|l| (l.earned_at + expiry, l.left))
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
}
