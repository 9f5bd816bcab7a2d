//! Points-ledger totals up to `as_of`, and the tier rule.

use crate::calendar::LocalDayConverter;
use crate::error::AnalyticsError;
use crate::input::{PointsEntry, PointsKind, TierThresholds};
use crate::report::Tier;

/// Sums of the ledger up to and including the local day `as_of_day`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct PointsTotals {
    pub issued: i64,
    pub redeemed: i64,
    pub expired: i64,
    pub outstanding: i64,
}

pub(crate) fn points_totals(
    entries: &[PointsEntry],
    as_of_day: i32,
    converter: &mut LocalDayConverter,
) -> Result<PointsTotals, AnalyticsError> {
    let (mut issued, mut redeemed, mut expired, mut outstanding) = (0_i128, 0_i128, 0_i128, 0_i128);
    for (index, entry) in entries.iter().enumerate() {
        let sign_rule = match entry.kind {
            PointsKind::Earn | PointsKind::Bonus if entry.points < 0 => Some("not be negative"),
            PointsKind::Redeem | PointsKind::Expire if entry.points > 0 => Some("not be positive"),
            _ => None,
        };
        if let Some(rule) = sign_rule {
            return Err(AnalyticsError::PointsSign {
                index,
                kind: entry.kind.as_str(),
                rule,
                points: entry.points,
            });
        }
        let day =
            converter
                .local_day(entry.at_micros)
                .ok_or(AnalyticsError::PointsTimeOutOfRange {
                    index,
                    micros: entry.at_micros,
                })?;
        if day > as_of_day {
            continue;
        }
        let points = i128::from(entry.points);
        match entry.kind {
            PointsKind::Earn | PointsKind::Bonus => issued += points,
            PointsKind::Redeem => redeemed -= points,
            PointsKind::Expire => expired -= points,
            PointsKind::Reverse => {}
        }
        outstanding += points;
    }
    let fit = |value: i128| {
        i64::try_from(value).map_err(|_| AnalyticsError::Overflow {
            what: "the points ledger total",
        })
    };
    Ok(PointsTotals {
        issued: fit(issued)?,
        redeemed: fit(redeemed)?,
        expired: fit(expired)?,
        outstanding: fit(outstanding)?,
    })
}

/// Gold at ≥ gold threshold, silver at ≥ silver threshold, otherwise bronze.
pub(crate) fn tier_for(spend_minor: i64, thresholds: &TierThresholds) -> Tier {
    if spend_minor >= thresholds.gold_minor {
        Tier::Gold
    } else if spend_minor >= thresholds.silver_minor {
        Tier::Silver
    } else {
        Tier::Bronze
    }
}
