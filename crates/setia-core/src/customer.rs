//! Customer fields, each parsed once at the edge into a type that cannot hold a bad value.

use std::fmt;

use chrono::{Datelike, NaiveDate};
use serde::{Serialize, Serializer};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CustomerFieldError {
    #[error("is empty")]
    Empty,
    #[error("is longer than {max} characters")]
    TooLong { max: usize },
    #[error("contains a control character")]
    ControlCharacter,
    #[error("{0:?} is not an email address")]
    BadEmail(String),
    #[error("{0:?} is not a birthday (use YYYY-MM-DD or MM-DD)")]
    BadBirthday(String),
    #[error("{0:?} is not a date that exists")]
    ImpossibleBirthday(String),
    #[error("{0:?} is not true or false")]
    BadConsent(String),
    #[error("{0:?} has no letters or digits")]
    BadPayerName(String),
    #[error("{0:?} is not a virtual account number (letters and digits only)")]
    BadVirtualAccount(String),
    #[error("is not a referral code (8 letters and digits)")]
    BadReferralCode,
}

/// Why a free-text field was refused; each field type's error says it in its own words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TextProblem {
    Empty,
    TooLong { max: usize },
    ControlCharacter,
}

impl From<TextProblem> for CustomerFieldError {
    fn from(problem: TextProblem) -> Self {
        match problem {
            TextProblem::Empty => CustomerFieldError::Empty,
            TextProblem::TooLong { max } => CustomerFieldError::TooLong { max },
            TextProblem::ControlCharacter => CustomerFieldError::ControlCharacter,
        }
    }
}

/// The text trimmed, if it is not empty, at most `max` characters and free of control
/// characters.
pub(crate) fn checked_text<E: From<TextProblem>>(text: &str, max: usize) -> Result<&str, E> {
    let text = text.trim();
    if text.is_empty() {
        return Err(TextProblem::Empty.into());
    }
    if text.chars().count() > max {
        return Err(TextProblem::TooLong { max }.into());
    }
    if text.chars().any(char::is_control) {
        return Err(TextProblem::ControlCharacter.into());
    }
    Ok(text)
}

/// `as_str`, `Display` and `Serialize` for a newtype over `String`.
macro_rules! text_newtype {
    // A free text of at most `max` printable characters, read by `parse`.
    ($name:ident, max = $max:expr, error = $error:ty) => {
        text_newtype!($name);

        impl $name {
            pub const MAX_LEN: usize = $max;
            pub fn parse(text: &str) -> Result<$name, $error> {
                checked_text(text, Self::MAX_LEN).map(|t| $name(t.to_owned()))
            }
        }
    };
    ($name:ident) => {
        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.0)
            }
        }
    };
}
pub(crate) use text_newtype;

/// The merchant's own id for a customer: what imports and the API upsert on.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ExternalId(String);
text_newtype!(ExternalId, max = 128, error = CustomerFieldError);

/// A customer's display name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomerName(String);
text_newtype!(CustomerName, max = 200, error = CustomerFieldError);

/// An email address as RFC 5321 allows it, with a domain that has a dot (mail to
/// `user@localhost` is a typo in a merchant's customer list). Stored as given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomerEmail(String);
text_newtype!(CustomerEmail);

impl CustomerEmail {
    pub fn parse(text: &str) -> Result<CustomerEmail, CustomerFieldError> {
        let text = checked_text::<CustomerFieldError>(text, 254)?;
        let bad = || CustomerFieldError::BadEmail(text.to_owned());
        let address: email_address::EmailAddress = text.parse().map_err(|_| bad())?;
        let domain = address.domain();
        if !domain.contains('.') || domain.starts_with('[') || text.contains(['<', '>', ' ']) {
            return Err(bad());
        }
        Ok(CustomerEmail(text.to_owned()))
    }
}

/// A birthday with or without the year (`YYYY-MM-DD` or `MM-DD`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Birthday {
    year: Option<i32>,
    month: u32,
    day: u32,
}

impl Birthday {
    pub fn parse(text: &str) -> Result<Birthday, CustomerFieldError> {
        let text = text.trim();
        let bad = || CustomerFieldError::BadBirthday(text.to_owned());
        let impossible = || CustomerFieldError::ImpossibleBirthday(text.to_owned());
        let digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
        let parts: Vec<&str> = text.split('-').collect();
        let (year, month, day) = match parts.as_slice() {
            [y, m, d] if digits(y, 4) && digits(m, 2) && digits(d, 2) => {
                (Some(y.parse::<i32>().map_err(|_| bad())?), *m, *d)
            }
            [m, d] if digits(m, 2) && digits(d, 2) => (None, *m, *d),
            _ => return Err(bad()),
        };
        let month: u32 = month.parse().map_err(|_| bad())?;
        let day: u32 = day.parse().map_err(|_| bad())?;
        // Without a year, 2000 (a leap year) decides whether the day exists: 02-29 does.
        NaiveDate::from_ymd_opt(year.unwrap_or(2000), month, day).ok_or_else(impossible)?;
        if year.is_some_and(|y| y < 1900) {
            return Err(impossible());
        }
        Ok(Birthday { year, month, day })
    }

    pub fn year(self) -> Option<i32> {
        self.year
    }
    pub fn month(self) -> u32 {
        self.month
    }
    pub fn day(self) -> u32 {
        self.day
    }

    /// The day the birthday is celebrated in `year`: 29 February falls on 28 February in
    /// years that lack it.
    pub fn in_year(self, year: i32) -> NaiveDate {
        NaiveDate::from_ymd_opt(year, self.month, self.day)
            .or_else(|| NaiveDate::from_ymd_opt(year, self.month, self.day - 1))
            .expect("a parsed birthday exists in every year, give or take 29 February")
    }

    pub fn is_on(self, date: NaiveDate) -> bool {
        self.in_year(date.year()) == date
    }
}

impl fmt::Display for Birthday {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.year {
            Some(year) => write!(f, "{year:04}-{:02}-{:02}", self.month, self.day),
            None => write!(f, "{:02}-{:02}", self.month, self.day),
        }
    }
}

impl Serialize for Birthday {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// A virtual account number: what Moota puts in `account_number` for a VA payment.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct VirtualAccount(String);
text_newtype!(VirtualAccount);

impl VirtualAccount {
    pub fn parse(text: &str) -> Result<VirtualAccount, CustomerFieldError> {
        let text = checked_text::<CustomerFieldError>(text, 64)?;
        if !text.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(CustomerFieldError::BadVirtualAccount(text.to_owned()));
        }
        Ok(VirtualAccount(text.to_owned()))
    }
}

/// A payer name as banks print it, normalised so that `Budi  Santoso` and `BUDI SANTOSO`
/// are one name: upper case, letters and digits only, single spaces.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PayerName(String);
text_newtype!(PayerName);

impl PayerName {
    pub fn parse(text: &str) -> Result<PayerName, CustomerFieldError> {
        checked_text::<CustomerFieldError>(text, 200)?;
        let cleaned: String = text
            .chars()
            .map(|c| if c.is_alphanumeric() { c } else { ' ' })
            .collect::<String>()
            .to_uppercase();
        let normal = cleaned.split_whitespace().collect::<Vec<_>>().join(" ");
        if normal.is_empty() {
            return Err(CustomerFieldError::BadPayerName(text.to_owned()));
        }
        Ok(PayerName(normal))
    }

    /// A `;`-separated list, as the customers CSV carries it; repeats are dropped.
    pub fn parse_list(text: &str) -> Result<Vec<PayerName>, CustomerFieldError> {
        let mut names = Vec::new();
        for part in text.split(';').filter(|p| !p.trim().is_empty()) {
            let name = PayerName::parse(part)?;
            if !names.contains(&name) {
                names.push(name);
            }
        }
        Ok(names)
    }
}

/// Whether the customer agreed to receive email.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Consent(pub bool);

impl Consent {
    pub fn parse(text: &str) -> Result<Consent, CustomerFieldError> {
        match text.trim().to_ascii_lowercase().as_str() {
            "true" | "yes" | "1" | "y" => Ok(Consent(true)),
            "false" | "no" | "0" | "n" => Ok(Consent(false)),
            _ => Err(CustomerFieldError::BadConsent(text.to_owned())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails() {
        assert!(CustomerEmail::parse("siti@example.co.id").is_ok());
        assert!(CustomerEmail::parse(" budi.s+promo@toko.id ").is_ok());
        for bad in [
            "",
            "siti",
            "siti@",
            "@example.com",
            "siti@localhost",
            "si ti@example.com",
            "a@b@c.id",
            "Siti <s@example.com>",
        ] {
            assert!(CustomerEmail::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn birthdays() {
        let b = Birthday::parse("1990-02-28").unwrap();
        assert_eq!((b.year(), b.month(), b.day()), (Some(1990), 2, 28));
        assert_eq!(Birthday::parse("02-29").unwrap().to_string(), "02-29");
        assert_eq!(
            Birthday::parse("1997-02-31"),
            Err(CustomerFieldError::ImpossibleBirthday("1997-02-31".into()))
        );
        assert!(Birthday::parse("1997-02-29").is_err());
        assert!(Birthday::parse("02-31").is_err());
        for bad in [
            "",
            "1990/02/28",
            "2-28",
            "1990-2-28",
            "13-01",
            "00-10",
            "1850-01-01",
            "990-01-01",
        ] {
            assert!(Birthday::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn leap_day_birthdays_fall_on_28_february_in_common_years() {
        let leap = Birthday::parse("2000-02-29").unwrap();
        assert_eq!(leap.in_year(2027).to_string(), "2027-02-28");
        assert_eq!(leap.in_year(2028).to_string(), "2028-02-29");
        assert!(leap.is_on(NaiveDate::from_ymd_opt(2027, 2, 28).unwrap()));
        assert!(!leap.is_on(NaiveDate::from_ymd_opt(2028, 2, 28).unwrap()));
    }

    #[test]
    fn payer_names_are_normalised() {
        assert_eq!(
            PayerName::parse(" budi   santoso ").unwrap().as_str(),
            "BUDI SANTOSO"
        );
        assert_eq!(
            PayerName::parse("Siti-Rahma.").unwrap().as_str(),
            "SITI RAHMA"
        );
        assert!(PayerName::parse("--").is_err());
        let list = PayerName::parse_list("Budi;BUDI ; siti;;").unwrap();
        assert_eq!(list.len(), 2);
    }

    #[test]
    fn other_fields() {
        assert!(ExternalId::parse("C-001").is_ok());
        assert_eq!(ExternalId::parse("  "), Err(CustomerFieldError::Empty));
        assert!(ExternalId::parse("a\u{0}b").is_err());
        assert!(ExternalId::parse(&"x".repeat(129)).is_err());
        assert!(VirtualAccount::parse("8808123456").is_ok());
        assert!(VirtualAccount::parse("8808-12").is_err());
        assert_eq!(Consent::parse("TRUE").unwrap(), Consent(true));
        assert!(Consent::parse("maybe").is_err());
    }
}
