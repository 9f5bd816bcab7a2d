//! Rupiah as Indonesians write it: `Rp 1.250.000` (dots between thousands, no decimals),
//! `Rp 1.250.000,50` when there are sen. Emails and the dashboard both show money this way.

use std::fmt;

use crate::Money;

/// Displays an amount in Indonesian notation: `Rupiah(Money::from_minor(125_000_050))`
/// shows `Rp 1.250.000,50`; a negative amount shows `-Rp 5.000`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rupiah(pub Money);

impl fmt::Display for Rupiah {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let minor = self.0.minor();
        let abs = minor.unsigned_abs();
        let (whole, sen) = (abs / 100, abs % 100);
        if minor < 0 {
            f.write_str("-")?;
        }
        f.write_str("Rp ")?;
        let digits = whole.to_string();
        for (i, digit) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i) % 3 == 0 {
                f.write_str(".")?;
            }
            write!(f, "{digit}")?;
        }
        if sen != 0 {
            write!(f, ",{sen:02}")?;
        }
        Ok(())
    }
}

/// `Rp 1.250.000`: see [`Rupiah`].
pub fn format_rupiah(amount: Money) -> String {
    Rupiah(amount).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn rp(minor: i64) -> String {
        format_rupiah(Money::from_minor(minor))
    }

    #[test]
    fn whole_rupiah_have_dots_between_thousands_and_no_decimals() {
        assert_eq!(rp(0), "Rp 0");
        assert_eq!(rp(100), "Rp 1");
        assert_eq!(rp(99_900), "Rp 999");
        assert_eq!(rp(100_000), "Rp 1.000");
        assert_eq!(rp(12_345_600), "Rp 123.456");
        assert_eq!(rp(125_000_000), "Rp 1.250.000");
        assert_eq!(rp(1_000_000_000_000), "Rp 10.000.000.000");
    }

    #[test]
    fn sen_show_after_a_comma_only_when_not_zero() {
        assert_eq!(rp(125_000_050), "Rp 1.250.000,50");
        assert_eq!(rp(5), "Rp 0,05");
        assert_eq!(rp(99), "Rp 0,99");
        assert_eq!(rp(100_001), "Rp 1.000,01");
    }

    #[test]
    fn negative_amounts_put_the_sign_before_rp() {
        assert_eq!(rp(-500_000), "-Rp 5.000");
        assert_eq!(rp(-1), "-Rp 0,01");
        assert_eq!(
            rp(i64::MIN),
            "-Rp 92.233.720.368.547.758,08",
            "the most negative amount does not overflow"
        );
        assert_eq!(rp(i64::MAX), "Rp 92.233.720.368.547.758,07");
    }

    proptest! {
        #[test]
        fn removing_the_notation_gives_back_the_amount(minor in -i64::MAX..=i64::MAX) {
            let text = rp(minor);
            let plain: String = text
                .replace("Rp ", "")
                .replace('.', "")
                .replace(',', ".");
            let parsed = Money::parse_signed(&plain).unwrap();
            prop_assert_eq!(parsed.minor(), minor);
            // Groups between dots are exactly three digits.
            let whole = text.trim_start_matches('-').trim_start_matches("Rp ");
            let whole = whole.split(',').next().unwrap();
            let groups: Vec<&str> = whole.split('.').collect();
            prop_assert!(!groups[0].is_empty() && groups[0].len() <= 3);
            prop_assert!(groups[1..].iter().all(|g| g.len() == 3));
        }
    }
}
