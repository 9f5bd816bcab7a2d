//! The metrics report (DESIGN §4, `"schema": 1`) and the per-customer scores.

use std::fmt;

use chrono::NaiveDate;
use chrono_tz::Tz;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::bgnbd::BgNbdParams;
use crate::gamma_gamma::GammaGammaParams;
use crate::input::Period;
use crate::rfm::Segment;

/// The version of the JSON layout below.
pub const SCHEMA_VERSION: u32 = 1;
/// Repeat customers with P(alive) below this are "at risk".
pub const P_ALIVE_THRESHOLD: f64 = 0.5;
/// The churn report's forecast horizon.
pub const FORECAST_DAYS: u32 = 90;

/// An amount in minor units that appears in JSON as a decimal string, "2500315.63".
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct MinorAmount(pub i64);

impl fmt::Display for MinorAmount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let magnitude = self.0.unsigned_abs();
        write!(f, "{sign}{}.{:02}", magnitude / 100, magnitude % 100)
    }
}

impl Serialize for MinorAmount {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for MinorAmount {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        parse_minor_amount(&text).map(MinorAmount).ok_or_else(|| {
            serde::de::Error::custom(format!("{text:?} is not an amount like \"12.34\""))
        })
    }
}

fn parse_minor_amount(text: &str) -> Option<i64> {
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (whole, cents) = digits.split_once('.')?;
    if whole.is_empty()
        || cents.len() != 2
        || !whole
            .bytes()
            .chain(cents.bytes())
            .all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let magnitude = whole
        .parse::<i64>()
        .ok()?
        .checked_mul(100)?
        .checked_add(cents.parse::<i64>().ok()?)?;
    Some(if negative { -magnitude } else { magnitude })
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricsReport {
    pub schema: u32,
    pub merchant_id: String,
    pub as_of: NaiveDate,
    pub timezone: Tz,
    pub period: Period,
    pub totals: Totals,
    pub cohorts: Vec<CohortRow>,
    pub rfm: RfmReport,
    pub churn: ChurnReport,
    pub clv: ClvReport,
    pub loyalty: LoyaltyReport,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Totals {
    pub customers: u64,
    pub purchases: u64,
    pub revenue: MinorAmount,
    pub repeat_customers: u64,
    /// repeat_customers / customers; 0 when there are no customers.
    pub repeat_purchase_rate: f64,
    /// Median gap in days between consecutive distinct purchase days, over every gap of
    /// every customer; null when nobody has two purchase days.
    pub median_days_between_purchases: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CohortRow {
    /// "1997-01" or "2025-W01".
    pub cohort: String,
    pub size: u64,
    /// Share of the cohort with a purchase in period cohort+k, k = 0..=period of as_of.
    pub retention: Vec<f64>,
    /// Share of the cohort with a purchase in any period ≥ cohort+k.
    pub retention_unbounded: Vec<f64>,
    /// The cohort's revenue in period cohort+k.
    pub revenue: Vec<MinorAmount>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RfmReport {
    pub segments: SegmentCounts,
}

/// Customers per segment; every key is always present.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SegmentCounts {
    pub champions: u64,
    pub loyal: u64,
    pub potential_loyalists: u64,
    pub new_customers: u64,
    pub promising: u64,
    pub need_attention: u64,
    pub about_to_sleep: u64,
    pub at_risk: u64,
    pub cant_lose: u64,
    pub hibernating: u64,
}

impl SegmentCounts {
    pub fn get(&self, segment: Segment) -> u64 {
        match segment {
            Segment::Champions => self.champions,
            Segment::Loyal => self.loyal,
            Segment::PotentialLoyalists => self.potential_loyalists,
            Segment::NewCustomers => self.new_customers,
            Segment::Promising => self.promising,
            Segment::NeedAttention => self.need_attention,
            Segment::AboutToSleep => self.about_to_sleep,
            Segment::AtRisk => self.at_risk,
            Segment::CantLose => self.cant_lose,
            Segment::Hibernating => self.hibernating,
        }
    }

    pub(crate) fn add(&mut self, segment: Segment) {
        let counter = match segment {
            Segment::Champions => &mut self.champions,
            Segment::Loyal => &mut self.loyal,
            Segment::PotentialLoyalists => &mut self.potential_loyalists,
            Segment::NewCustomers => &mut self.new_customers,
            Segment::Promising => &mut self.promising,
            Segment::NeedAttention => &mut self.need_attention,
            Segment::AboutToSleep => &mut self.about_to_sleep,
            Segment::AtRisk => &mut self.at_risk,
            Segment::CantLose => &mut self.cant_lose,
            Segment::Hibernating => &mut self.hibernating,
        };
        *counter += 1;
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ChurnModel {
    #[serde(rename = "bg_nbd")]
    BgNbd,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClvModel {
    #[serde(rename = "gamma_gamma")]
    GammaGamma,
}

/// BG/NBD parameters as reported; all null when the model was not fitted.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct ChurnParams {
    pub r: Option<f64>,
    pub alpha: Option<f64>,
    pub a: Option<f64>,
    pub b: Option<f64>,
}

impl ChurnParams {
    pub fn fitted(params: &BgNbdParams) -> ChurnParams {
        ChurnParams {
            r: Some(params.r),
            alpha: Some(params.alpha),
            a: Some(params.a),
            b: Some(params.b),
        }
    }

    pub fn params(&self) -> Option<BgNbdParams> {
        Some(BgNbdParams {
            r: self.r?,
            alpha: self.alpha?,
            a: self.a?,
            b: self.b?,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChurnReport {
    pub model: ChurnModel,
    pub params: ChurnParams,
    pub log_likelihood: Option<f64>,
    pub converged: bool,
    /// Why the model is not (fully) fitted; absent when `converged`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub customers_at_risk: u64,
    pub p_alive_threshold: f64,
    pub expected_purchases_next_90d: f64,
}

/// Gamma-Gamma parameters as reported (v in major currency units); null when not fitted.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct ClvParams {
    pub p: Option<f64>,
    pub q: Option<f64>,
    pub v: Option<f64>,
}

impl ClvParams {
    pub fn fitted(params: &GammaGammaParams) -> ClvParams {
        ClvParams {
            p: Some(params.p),
            q: Some(params.q),
            v: Some(params.v),
        }
    }

    pub fn params(&self) -> Option<GammaGammaParams> {
        Some(GammaGammaParams {
            p: self.p?,
            q: self.q?,
            v: self.v?,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClvReport {
    pub model: ClvModel,
    pub params: ClvParams,
    /// Sum of every customer's 12-month CLV; null when it cannot be computed.
    pub expected_12m_total: Option<MinorAmount>,
    /// Why the model or the CLV is missing; absent when both are there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoyaltyReport {
    /// Σ points of earn and bonus entries.
    pub points_issued: i64,
    /// Points spent on redemptions (a positive number).
    pub points_redeemed: i64,
    /// Points that lapsed (a positive number).
    pub points_expired: i64,
    /// The liability: Σ of every entry's signed points, i.e. issued − redeemed − expired
    /// + reversals (reversals are negative when a refund takes points back).
    pub points_outstanding: i64,
    pub members_by_tier: TierCounts,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct TierCounts {
    pub bronze: u64,
    pub silver: u64,
    pub gold: u64,
}

/// A loyalty tier, from spend in the 365 days ending on `as_of`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Tier {
    Bronze,
    Silver,
    Gold,
}

/// One customer's scores, for storage next to the snapshot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CustomerScore {
    pub customer: i64,
    /// Days from the last purchase day to `as_of`.
    pub recency_days: i32,
    /// Distinct purchase days.
    pub frequency_days: u32,
    /// Mean purchase amount, minor units, rounded half away from zero.
    pub monetary_minor: i64,
    pub purchases: u64,
    pub revenue_minor: i64,
    pub first_purchase_day: NaiveDate,
    pub last_purchase_day: NaiveDate,
    pub r_score: u8,
    pub f_score: u8,
    pub m_score: u8,
    pub segment: Segment,
    pub tier: Tier,
    /// Null when the BG/NBD model is not fitted.
    pub p_alive: Option<f64>,
    pub expected_purchases_90d: Option<f64>,
    /// Null when the CLV is not available.
    pub clv_12m_minor: Option<i64>,
    /// The median of the gaps between the customer's purchase days; null with one day.
    pub median_gap_days: Option<f64>,
}

/// Everything one run produces.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricsOutput {
    pub report: MetricsReport,
    /// One per customer with a purchase on or before `as_of`, ascending customer key.
    pub customer_scores: Vec<CustomerScore>,
    /// Purchases left out for a local day before 1970 (`setia_core::time::FIRST_YEAR`):
    /// stored before every source refused them, they are reported, not computed.
    pub ignored_before_first_year: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_are_decimal_strings_both_ways() {
        for (minor, text) in [
            (250_031_563, "2500315.63"),
            (5, "0.05"),
            (-1_205, "-12.05"),
            (0, "0.00"),
        ] {
            let json = serde_json::to_string(&MinorAmount(minor)).unwrap();
            assert_eq!(json, format!("\"{text}\""));
            assert_eq!(
                serde_json::from_str::<MinorAmount>(&json).unwrap(),
                MinorAmount(minor)
            );
        }
        assert_eq!(MinorAmount(i64::MIN).to_string(), "-92233720368547758.08");
        assert!(serde_json::from_str::<MinorAmount>("\"12.3\"").is_err());
    }
}
