//! Money as an integer count of minor units (sen). Never a float inside setia.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An amount in minor units (1/100 of a Rupiah). Display and JSON use a decimal string
/// (`"2500315.63"`) so no consumer has to trust a float.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Money(i64);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("amount is empty")]
    Empty,
    #[error("amount {0:?} is not a decimal number")]
    NotANumber(String),
    #[error("amount {0:?} has more than 2 decimals")]
    TooManyDecimals(String),
    #[error("amount {0:?} is too large")]
    Overflow(String),
    #[error("amount {0:?} is negative")]
    Negative(String),
    #[error("amount {0:?} is over the maximum, {max} (Rp 1 trillion)", max = Money::MAX_EXTERNAL)]
    AboveMaximum(String),
}

impl Money {
    pub const ZERO: Money = Money(0);

    /// The largest amount setia takes from outside (a webhook, an import, an order, a
    /// price): Rp 1e12, far above any Indonesian transfer, and small enough that the
    /// arithmetic after it (an order's unique code, points) stays inside i64 and that
    /// 92,000 such amounts still sum inside one.
    pub const MAX_EXTERNAL: Money = Money(1_000_000_000_000 * 100);

    pub const fn from_minor(minor: i64) -> Money {
        Money(minor)
    }

    pub const fn minor(self) -> i64 {
        self.0
    }

    /// Whole Rupiah, rounded toward zero.
    pub const fn whole_units(self) -> i64 {
        self.0 / 100
    }

    pub fn checked_add(self, other: Money) -> Option<Money> {
        self.0.checked_add(other.0).map(Money)
    }

    /// Parses a decimal amount that may be negative (`-1500.50`), of any size an i64 holds:
    /// for text setia wrote itself (reports, snapshots). Amounts from outside go through
    /// [`Money::parse_non_negative`] or [`Money::from_json`], which cap them.
    pub fn parse_signed(text: &str) -> Result<Money, MoneyError> {
        let trimmed = text.trim();
        let (negative, digits) = match trimmed.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, trimmed.strip_prefix('+').unwrap_or(trimmed)),
        };
        let magnitude = parse_magnitude(digits, text)?;
        Ok(Money(if negative { -magnitude } else { magnitude }))
    }

    /// Parses an amount that must be zero or more: what a purchase or an import row carries.
    /// At most [`Money::MAX_EXTERNAL`].
    pub fn parse_non_negative(text: &str) -> Result<Money, MoneyError> {
        let money = Money::parse_external(text)?;
        if money.0 < 0 {
            return Err(MoneyError::Negative(text.to_owned()));
        }
        Ok(money)
    }

    /// Reads Moota's `amount`, which is a JSON number in webhooks and a string in the REST
    /// API. Numbers are read from their decimal text, never through arithmetic on a float.
    /// Also what `Deserialize` uses, so the API's amounts and prices are capped the same way:
    /// at most [`Money::MAX_EXTERNAL`] either side of zero.
    pub fn from_json(value: &serde_json::Value) -> Result<Money, MoneyError> {
        match value {
            serde_json::Value::String(text) => Money::parse_external(text),
            serde_json::Value::Number(number) => Money::parse_external(&number.to_string()),
            other => Err(MoneyError::NotANumber(other.to_string())),
        }
    }

    /// [`Money::parse_signed`], refusing a size beyond [`Money::MAX_EXTERNAL`]: one rule for
    /// every amount that comes from outside.
    fn parse_external(text: &str) -> Result<Money, MoneyError> {
        let money = Money::parse_signed(text).map_err(|error| match error {
            // Beyond i64 is beyond the maximum too; say which rule refused it.
            MoneyError::Overflow(text) => MoneyError::AboveMaximum(text),
            other => other,
        })?;
        if money.0.unsigned_abs() > Money::MAX_EXTERNAL.0.unsigned_abs() {
            return Err(MoneyError::AboveMaximum(text.to_owned()));
        }
        Ok(money)
    }
}

fn parse_magnitude(digits: &str, original: &str) -> Result<i64, MoneyError> {
    if digits.is_empty() {
        return Err(if original.trim().is_empty() {
            MoneyError::Empty
        } else {
            MoneyError::NotANumber(original.to_owned())
        });
    }
    let (whole, fraction) = match digits.split_once('.') {
        Some((whole, fraction)) => (whole, fraction),
        None => (digits, ""),
    };
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() && fraction.is_empty()
        || !all_digits(whole)
        || !all_digits(fraction)
        || (digits.contains('.') && fraction.is_empty())
    {
        return Err(MoneyError::NotANumber(original.to_owned()));
    }
    // "100123.00" and "100123.0" are exact; "1.005" is not money.
    let significant_fraction = fraction.trim_end_matches('0');
    if significant_fraction.len() > 2 {
        return Err(MoneyError::TooManyDecimals(original.to_owned()));
    }
    let overflow = || MoneyError::Overflow(original.to_owned());
    let whole_value: i64 = if whole.is_empty() {
        0
    } else {
        whole.parse().map_err(|_| overflow())?
    };
    let mut cents_text = significant_fraction.to_owned();
    while cents_text.len() < 2 {
        cents_text.push('0');
    }
    let cents: i64 = cents_text.parse().map_err(|_| overflow())?;
    whole_value
        .checked_mul(100)
        .and_then(|v| v.checked_add(cents))
        .ok_or_else(overflow)
}

impl FromStr for Money {
    type Err = MoneyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Money::parse_signed(s)
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let abs = self.0.unsigned_abs();
        write!(f, "{sign}{}.{:02}", abs / 100, abs % 100)
    }
}

impl Serialize for Money {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Money {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = serde_json::Value::deserialize(deserializer)?;
        Money::from_json(&value).map_err(serde::de::Error::custom)
    }
}

impl std::iter::Sum for Money {
    fn sum<I: Iterator<Item = Money>>(iter: I) -> Money {
        Money(iter.map(|m| m.0).sum())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_mootas_forms_exactly() {
        assert_eq!(Money::parse_signed("50000").unwrap().minor(), 5_000_000);
        assert_eq!(
            Money::parse_signed("100123.00").unwrap().minor(),
            10_012_300
        );
        assert_eq!(
            Money::parse_signed("3799460.89").unwrap().minor(),
            379_946_089
        );
        assert_eq!(Money::parse_signed("0.5").unwrap().minor(), 50);
        assert_eq!(Money::parse_signed(" 12 ").unwrap().minor(), 1200);
        assert_eq!(Money::parse_signed("-1500.50").unwrap().minor(), -150_050);
        assert_eq!(Money::parse_signed("1.2500").unwrap().minor(), 125);
    }

    #[test]
    fn reads_json_numbers_and_strings() {
        let body: serde_json::Value =
            serde_json::from_str(r#"[50000, 100123.00, "100123.00", 3799460.89]"#).unwrap();
        let parsed: Vec<i64> = body
            .as_array()
            .unwrap()
            .iter()
            .map(|v| Money::from_json(v).unwrap().minor())
            .collect();
        assert_eq!(parsed, vec![5_000_000, 10_012_300, 10_012_300, 379_946_089]);
        assert!(Money::from_json(&serde_json::json!(null)).is_err());
        assert!(Money::from_json(&serde_json::json!(true)).is_err());
    }

    #[test]
    fn rejects_what_is_not_money() {
        for bad in [
            "", "  ", "abc", "NaN", "nan", "inf", "1e5", "1.", ".", "1.2.3", "--1", "1,000",
        ] {
            assert!(
                Money::parse_signed(bad).is_err(),
                "{bad:?} should be rejected"
            );
        }
        assert_eq!(
            Money::parse_signed("1.005"),
            Err(MoneyError::TooManyDecimals("1.005".into()))
        );
        assert!(matches!(
            Money::parse_signed("92233720368547758.08"),
            Err(MoneyError::Overflow(_))
        ));
        assert!(matches!(
            Money::parse_signed("99999999999999999999"),
            Err(MoneyError::Overflow(_))
        ));
        assert_eq!(
            Money::parse_non_negative("-1"),
            Err(MoneyError::Negative("-1".into()))
        );
        assert_eq!(Money::parse_non_negative("0").unwrap(), Money::ZERO);
    }

    #[test]
    fn amounts_from_outside_are_capped_at_rp_1e12() {
        // i64::MAX minor units, which overflowed the order's unique code.
        for huge in [
            "92233720368547758.07",
            "1000000000000.01",
            "99999999999999999999",
        ] {
            assert_eq!(
                Money::parse_non_negative(huge),
                Err(MoneyError::AboveMaximum(huge.into())),
                "{huge}"
            );
            assert_eq!(
                Money::from_json(&serde_json::json!(huge)),
                Err(MoneyError::AboveMaximum(huge.into())),
                "{huge}"
            );
        }
        assert!(matches!(
            Money::from_json(&serde_json::json!(-2_000_000_000_000i64)),
            Err(MoneyError::AboveMaximum(_))
        ));
        assert!(matches!(
            Money::from_json(&serde_json::json!(92233720368547758u64)),
            Err(MoneyError::AboveMaximum(_))
        ));
        // Deserialize (the API's order amounts and prices) is from_json.
        assert!(serde_json::from_str::<Money>(r#""92233720368547758.07""#).is_err());
        assert_eq!(
            Money::parse_non_negative("1000000000000").unwrap(),
            Money::MAX_EXTERNAL
        );
        assert_eq!(
            Money::from_json(&serde_json::json!(1_000_000_000_000i64)).unwrap(),
            Money::MAX_EXTERNAL
        );
        assert_eq!(
            MoneyError::AboveMaximum("1e13".into()).to_string(),
            "amount \"1e13\" is over the maximum, 1000000000000.00 (Rp 1 trillion)"
        );
        // setia's own text (reports) still reads any i64.
        assert_eq!(
            Money::parse_signed("92233720368547758.07").unwrap().minor(),
            i64::MAX
        );
    }

    #[test]
    fn displays_as_decimal_string() {
        assert_eq!(Money::from_minor(250_031_563).to_string(), "2500315.63");
        assert_eq!(Money::from_minor(5).to_string(), "0.05");
        assert_eq!(Money::from_minor(-150_050).to_string(), "-1500.50");
        assert_eq!(
            serde_json::to_string(&Money::from_minor(100)).unwrap(),
            "\"1.00\""
        );
    }

    proptest! {
        #[test]
        fn display_round_trips(minor in -i64::MAX..=i64::MAX) {
            let money = Money::from_minor(minor);
            prop_assert_eq!(Money::parse_signed(&money.to_string()), Ok(money));
        }

        #[test]
        fn never_panics(text in ".{0,40}") {
            let _ = Money::parse_signed(&text);
        }
    }
}
