//! What a metrics run reads: purchases as columns, the request, the points ledger.

use std::fmt;
use std::str::FromStr;

use chrono::NaiveDate;
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

/// One merchant's purchases as parallel columns (row `i` is one purchase).
///
/// `customer` is any stable integer key (the store's customer row id); `occurred_at_micros`
/// is the UTC instant in Unix microseconds; `amount_minor` is the amount in minor units
/// (sen), never negative. Rows after the request's `as_of` may be included: they are
/// ignored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PurchaseColumns {
    pub customer: Vec<i64>,
    pub occurred_at_micros: Vec<i64>,
    pub amount_minor: Vec<i64>,
}

impl PurchaseColumns {
    pub fn with_capacity(rows: usize) -> PurchaseColumns {
        PurchaseColumns {
            customer: Vec::with_capacity(rows),
            occurred_at_micros: Vec::with_capacity(rows),
            amount_minor: Vec::with_capacity(rows),
        }
    }

    pub fn push(&mut self, customer: i64, occurred_at_micros: i64, amount_minor: i64) {
        self.customer.push(customer);
        self.occurred_at_micros.push(occurred_at_micros);
        self.amount_minor.push(amount_minor);
    }

    /// Number of rows (of the `customer` column; the run checks the others match).
    pub fn len(&self) -> usize {
        self.customer.len()
    }

    pub fn is_empty(&self) -> bool {
        self.customer.is_empty()
    }
}

/// The calendar unit of cohorts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Period {
    /// Calendar months, labelled "1997-01".
    #[default]
    Month,
    /// ISO weeks (Monday to Sunday), labelled with the ISO week-numbering year: "2025-W01".
    Week,
}

impl Period {
    pub fn as_str(self) -> &'static str {
        match self {
            Period::Month => "month",
            Period::Week => "week",
        }
    }
}

impl fmt::Display for Period {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a period (expected \"month\" or \"week\")")]
pub struct UnknownPeriod(pub String);

impl FromStr for Period {
    type Err = UnknownPeriod;
    fn from_str(text: &str) -> Result<Period, UnknownPeriod> {
        match text.trim().to_ascii_lowercase().as_str() {
            "month" => Ok(Period::Month),
            "week" => Ok(Period::Week),
            _ => Err(UnknownPeriod(text.to_owned())),
        }
    }
}

/// Spend thresholds of the loyalty tiers, in minor units, over the 365 days ending on
/// `as_of` (both ends included).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TierThresholds {
    pub silver_minor: i64,
    pub gold_minor: i64,
}

impl Default for TierThresholds {
    /// Rp 2 000 000 for silver, Rp 10 000 000 for gold.
    fn default() -> Self {
        TierThresholds {
            silver_minor: 200_000_000,
            gold_minor: 1_000_000_000,
        }
    }
}

/// What to compute: one merchant, up to and including the local day `as_of`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricsRequest {
    pub merchant_id: String,
    pub as_of: NaiveDate,
    pub timezone: Tz,
    pub period: Period,
    pub tiers: TierThresholds,
}

impl MetricsRequest {
    /// A request with the default tier thresholds.
    pub fn new(
        merchant_id: impl Into<String>,
        as_of: NaiveDate,
        timezone: Tz,
        period: Period,
    ) -> Self {
        MetricsRequest {
            merchant_id: merchant_id.into(),
            as_of,
            timezone,
            period,
            tiers: TierThresholds::default(),
        }
    }
}

/// What a points-ledger entry records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PointsKind {
    /// Points earned by a purchase (`points` ≥ 0).
    Earn,
    /// Bonus points: every 5th purchase, birthday (`points` ≥ 0).
    Bonus,
    /// Points spent (`points` ≤ 0).
    Redeem,
    /// Points that lapsed (`points` ≤ 0).
    Expire,
    /// A correction, e.g. a refund taking back a purchase's points (any sign).
    Reverse,
}

impl PointsKind {
    pub fn as_str(self) -> &'static str {
        match self {
            PointsKind::Earn => "earn",
            PointsKind::Bonus => "bonus",
            PointsKind::Redeem => "redeem",
            PointsKind::Expire => "expire",
            PointsKind::Reverse => "reverse",
        }
    }
}

/// One append-only points-ledger entry. `points` is the signed change to the customer's
/// balance, so a customer's balance is the sum of their entries' `points`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PointsEntry {
    pub customer: i64,
    pub at_micros: i64,
    pub points: i64,
    pub kind: PointsKind,
}
