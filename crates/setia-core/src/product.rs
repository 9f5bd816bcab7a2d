//! Products and order lines (DESIGN §8): a bank transfer carries no basket, so what a customer
//! bought comes from the store, as lines of SKUs. Each field is parsed once at the edge.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Serialize, Serializer};

use crate::customer::{checked_text, text_newtype, TextProblem};
use crate::money::{Money, MoneyError};
use crate::time::{MerchantTimezone, TimeError};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProductFieldError {
    #[error("is empty")]
    Empty,
    #[error("is longer than {max} characters")]
    TooLong { max: usize },
    #[error("contains a control character")]
    ControlCharacter,
    #[error("{0:?} is not a SKU (letters, digits and . _ - / : # only, no spaces)")]
    BadSku(String),
    #[error("{0:?} is not an http:// or https:// address")]
    BadLink(String),
    #[error("{0:?} is not a whole number from 1 to {max}", max = Quantity::MAX)]
    BadQuantity(String),
    #[error("{0}")]
    BadPrice(MoneyError),
    #[error("{0:?} is not a date (YYYY-MM-DD) or an RFC 3339 instant")]
    BadDate(String),
    #[error("{0}")]
    ImplausibleDate(TimeError),
}

impl From<TextProblem> for ProductFieldError {
    fn from(problem: TextProblem) -> Self {
        match problem {
            TextProblem::Empty => ProductFieldError::Empty,
            TextProblem::TooLong { max } => ProductFieldError::TooLong { max },
            TextProblem::ControlCharacter => ProductFieldError::ControlCharacter,
        }
    }
}

/// The merchant's stock-keeping unit: what products upsert on and lines name. It appears in
/// URLs (`/api/v1/products/{sku}/related`), so it holds no space or character that needs
/// escaping beyond `/`, `:` and `#`, which the router's percent-decoding gives back.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Sku(String);
text_newtype!(Sku);

impl Sku {
    pub const MAX_LEN: usize = 64;
    pub fn parse(text: &str) -> Result<Sku, ProductFieldError> {
        let text = checked_text::<ProductFieldError>(text, Self::MAX_LEN)?;
        if text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-/:#".contains(c))
        {
            Ok(Sku(text.to_owned()))
        } else {
            Err(ProductFieldError::BadSku(text.to_owned()))
        }
    }
}

/// What a product is called in the shop and in emails.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProductName(String);
text_newtype!(ProductName, max = 200, error = ProductFieldError);

impl ProductName {
    /// A product created from a line that named no product: the SKU is the best name known.
    pub fn of_sku(sku: &Sku) -> ProductName {
        ProductName(sku.0.clone())
    }
}

/// A product's category in the merchant's own words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Category(String);
text_newtype!(Category, max = 100, error = ProductFieldError);

/// A link to a product page or image: http or https only, so an email or a page never
/// carries a `javascript:` or `data:` address from a merchant's feed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebLink(String);
text_newtype!(WebLink);

impl WebLink {
    pub const MAX_LEN: usize = 2000;
    pub fn parse(text: &str) -> Result<WebLink, ProductFieldError> {
        let text = checked_text::<ProductFieldError>(text, Self::MAX_LEN)?;
        let bad = || ProductFieldError::BadLink(text.to_owned());
        let lower = text.to_ascii_lowercase();
        let rest = lower
            .strip_prefix("https://")
            .or_else(|| lower.strip_prefix("http://"))
            .ok_or_else(bad)?;
        let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
        if host.is_empty()
            || text
                .chars()
                .any(|c| c.is_whitespace() || "\"'<>\\`".contains(c))
        {
            return Err(bad());
        }
        Ok(WebLink(text.to_owned()))
    }
}

/// How many of a product a line holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Quantity(u32);

impl Quantity {
    pub const MAX: u32 = 100_000;
    pub fn parse(text: &str) -> Result<Quantity, ProductFieldError> {
        let text = text.trim();
        match text.parse::<u32>() {
            Ok(n) if (1..=Self::MAX).contains(&n) => Ok(Quantity(n)),
            _ => Err(ProductFieldError::BadQuantity(text.to_owned())),
        }
    }

    pub fn new(count: i64) -> Result<Quantity, ProductFieldError> {
        Quantity::parse(&count.to_string())
    }

    pub fn get(self) -> u32 {
        self.0
    }
}

/// A price or unit price: a decimal of Rupiah, at least zero (a gift is a line too) and at
/// most [`Money::MAX_EXTERNAL`].
pub fn parse_price(text: &str) -> Result<Money, ProductFieldError> {
    Money::parse_non_negative(text).map_err(ProductFieldError::BadPrice)
}

/// When a product went on sale: a date (midnight UTC) or an RFC 3339 instant, in a year
/// [`crate::time::check_year`] takes.
pub fn parse_released_at(text: &str) -> Result<DateTime<Utc>, ProductFieldError> {
    MerchantTimezone::UTC
        .parse_day_or_instant(text.trim())
        .map_err(|error| match error {
            TimeError::BadDayOrInstant(text) => ProductFieldError::BadDate(text),
            implausible => ProductFieldError::ImplausibleDate(implausible),
        })
}

/// One line of an order or of an imported purchase. `name` and `category` describe a product
/// setia does not know yet; for a known SKU they are ignored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineItem {
    pub sku: Sku,
    pub name: Option<ProductName>,
    pub category: Option<Category>,
    pub quantity: Quantity,
    pub unit_price: Money,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skus_are_printable_without_spaces() {
        assert_eq!(Sku::parse(" FSH-001 ").unwrap().as_str(), "FSH-001");
        assert!(Sku::parse("kopi/gayo:250g#2").is_ok());
        assert_eq!(Sku::parse(""), Err(ProductFieldError::Empty));
        assert!(matches!(
            Sku::parse("a b"),
            Err(ProductFieldError::BadSku(_))
        ));
        assert!(matches!(
            Sku::parse("<script>"),
            Err(ProductFieldError::BadSku(_))
        ));
        assert!(matches!(
            Sku::parse(&"x".repeat(65)),
            Err(ProductFieldError::TooLong { max: 64 })
        ));
    }

    #[test]
    fn links_are_http_or_https_and_never_script() {
        assert!(WebLink::parse("https://toko.example/p/1?x=2").is_ok());
        assert!(WebLink::parse("HTTP://toko.example").is_ok());
        for bad in [
            "javascript:alert(1)",
            "data:text/html,<b>",
            "https://",
            "https:///path",
            "https://toko.example/a b",
            "https://toko.example/\"onload=",
            "ftp://toko.example",
        ] {
            assert!(
                matches!(WebLink::parse(bad), Err(ProductFieldError::BadLink(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn quantities_are_whole_and_positive() {
        assert_eq!(Quantity::parse("3").unwrap().get(), 3);
        for bad in ["0", "-1", "1.5", "", "100001", "x"] {
            assert!(Quantity::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn prices_and_dates() {
        assert_eq!(parse_price("125000.50").unwrap().minor(), 12_500_050);
        assert!(parse_price("-1").is_err());
        assert_eq!(
            parse_released_at("2026-11-01").unwrap().to_rfc3339(),
            "2026-11-01T00:00:00+00:00"
        );
        assert!(parse_released_at("2026-11-01T09:00:00+07:00").is_ok());
        assert!(parse_released_at("01/11/2026").is_err());
        // Signed and pre-1970 years and prices over Rp 1e12.
        for bad in [
            "+200000-01-01",
            "-262143-01-05",
            "1969-12-31",
            "0000-01-01T00:00:00Z",
        ] {
            assert!(
                matches!(
                    parse_released_at(bad),
                    Err(ProductFieldError::ImplausibleDate(_))
                ),
                "{bad}"
            );
        }
        assert!(matches!(
            parse_price("92233720368547758.07"),
            Err(ProductFieldError::BadPrice(MoneyError::AboveMaximum(_)))
        ));
        assert_eq!(
            ProductName::of_sku(&Sku::parse("A-1").unwrap()).as_str(),
            "A-1"
        );
    }
}
