//! Merchant time zones and the local day of an instant.
//!
//! Every calendar rule in setia (a purchase's day, cohorts, birthdays, the Monday report)
//! is in the merchant's zone; Moota's `date` is Asia/Jakarta wall time.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Datelike, LocalResult, NaiveDate, NaiveDateTime, TimeDelta, TimeZone, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The zone Moota reports its wall-clock `date` in.
pub const MOOTA_ZONE: Tz = chrono_tz::Asia::Jakarta;

/// The years a date from outside (a webhook, an import, a query, a form) may name. setia's
/// oldest data is the CDNOW set of 1997, so nothing before 1970 is real; four digits is what
/// every format setia reads writes. chrono's `%Y` alone reads signed years of any width
/// (`-262143`, `+200000`), which later overflow date arithmetic.
pub const FIRST_YEAR: i32 = 1970;
pub const LAST_YEAR: i32 = 9999;

/// How far past the receiving clock a purchase may be dated: clocks of the bank, the shop
/// and setia disagree, and a day covers any zone mix-up. Later is a typo, not a purchase.
pub const PURCHASE_CLOCK_GRACE: TimeDelta = TimeDelta::days(1);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MerchantTimezone(Tz);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimeError {
    #[error("{0:?} is not an IANA time zone (e.g. Asia/Jakarta)")]
    UnknownZone(String),
    #[error("{0:?} is not a date-time (use YYYY-MM-DD, YYYY-MM-DD HH:MM:SS or RFC 3339)")]
    BadDateTime(String),
    #[error("{text:?} does not exist in {zone} (a daylight-saving gap)")]
    NonexistentLocalTime { text: String, zone: String },
    #[error("{0:?} is not a day (YYYY-MM-DD) or an RFC 3339 instant")]
    BadDayOrInstant(String),
    #[error("{0:?} is not a year from {FIRST_YEAR} to {LAST_YEAR} written with four digits")]
    YearOutOfRange(String),
    #[error("{at} is in the future (after {latest}); a purchase cannot be")]
    InTheFuture {
        at: DateTime<Utc>,
        latest: DateTime<Utc>,
    },
}

/// Refuses a date read from `text` (as `year`, the year the text names in its own zone)
/// unless `text` starts with a plain four-digit year from [`FIRST_YEAR`] to [`LAST_YEAR`].
/// For every parser of outside dates: chrono's `%Y` reads any signed year.
pub fn check_year(text: &str, year: i32) -> Result<(), TimeError> {
    let text = text.trim();
    let bytes = text.as_bytes();
    let four_digits =
        bytes.len() > 4 && bytes[..4].iter().all(u8::is_ascii_digit) && bytes[4] == b'-';
    if four_digits && (FIRST_YEAR..=LAST_YEAR).contains(&year) {
        Ok(())
    } else {
        Err(TimeError::YearOutOfRange(text.to_owned()))
    }
}

/// Refuses a purchase dated after `now` plus [`PURCHASE_CLOCK_GRACE`]. Core reads no clock,
/// so whoever receives the purchase (the import, the webhook worker) passes its `now`.
pub fn check_not_future(at: DateTime<Utc>, now: DateTime<Utc>) -> Result<(), TimeError> {
    // `now` comes from the caller's clock; a clock near chrono's end cannot panic here.
    match now.checked_add_signed(PURCHASE_CLOCK_GRACE) {
        Some(latest) if at > latest => Err(TimeError::InTheFuture { at, latest }),
        _ => Ok(()),
    }
}

impl Default for MerchantTimezone {
    fn default() -> Self {
        MerchantTimezone(MOOTA_ZONE)
    }
}

impl MerchantTimezone {
    /// UTC, for dates that belong to no merchant's wall clock (a product's release).
    pub const UTC: MerchantTimezone = MerchantTimezone(chrono_tz::UTC);

    pub fn parse(name: &str) -> Result<MerchantTimezone, TimeError> {
        name.trim()
            .parse::<Tz>()
            .map(MerchantTimezone)
            .map_err(|_| TimeError::UnknownZone(name.to_owned()))
    }

    pub fn tz(self) -> Tz {
        self.0
    }

    pub fn name(self) -> &'static str {
        self.0.name()
    }

    /// The calendar day of `instant` on the merchant's wall clock.
    pub fn local_day(self, instant: DateTime<Utc>) -> NaiveDate {
        instant.with_timezone(&self.0).date_naive()
    }

    /// The instant of a wall-clock time in this zone. In a repeated hour the earlier
    /// instant is taken; a time skipped by a daylight-saving change is an error.
    pub fn instant_of(self, local: NaiveDateTime) -> Result<DateTime<Utc>, TimeError> {
        match self.0.from_local_datetime(&local) {
            LocalResult::Single(t) => Ok(t.with_timezone(&Utc)),
            LocalResult::Ambiguous(earlier, _) => Ok(earlier.with_timezone(&Utc)),
            LocalResult::None => Err(TimeError::NonexistentLocalTime {
                text: local.to_string(),
                zone: self.name().to_owned(),
            }),
        }
    }

    /// Reads an import's `occurred_at`: `YYYY-MM-DD` (midnight), `YYYY-MM-DD HH:MM:SS`
    /// (both merchant wall time) or RFC 3339 with its own offset. The year must be one of
    /// [`check_year`]'s; whether the instant is in the future is [`check_not_future`]'s to
    /// say, with the receiver's clock.
    pub fn parse_occurred_at(self, text: &str) -> Result<DateTime<Utc>, TimeError> {
        let text = text.trim();
        if let Ok(instant) = DateTime::parse_from_rfc3339(text) {
            check_year(text, instant.year())?;
            return Ok(instant.with_timezone(&Utc));
        }
        if let Ok(local) = NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S") {
            check_year(text, local.year())?;
            return self.instant_of(local);
        }
        if text.len() == 10 {
            if let Ok(day) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
                check_year(text, day.year())?;
                return self.instant_of(day.and_time(chrono::NaiveTime::MIN));
            }
        }
        Err(TimeError::BadDateTime(text.to_owned()))
    }

    /// Reads a day (`YYYY-MM-DD`, midnight in this zone) or an RFC 3339 instant, in a year
    /// [`check_year`] takes: the form of a query's or a field's point in time.
    pub fn parse_day_or_instant(self, text: &str) -> Result<DateTime<Utc>, TimeError> {
        if let Ok(at) = DateTime::parse_from_rfc3339(text) {
            check_year(text, at.year())?;
            return Ok(at.to_utc());
        }
        let day = NaiveDate::parse_from_str(text, "%Y-%m-%d")
            .map_err(|_| TimeError::BadDayOrInstant(text.to_owned()))?;
        check_year(text, day.year())?;
        self.instant_of(day.and_time(chrono::NaiveTime::MIN))
    }
}

impl fmt::Display for MerchantTimezone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for MerchantTimezone {
    type Err = TimeError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        MerchantTimezone::parse(s)
    }
}

impl Serialize for MerchantTimezone {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for MerchantTimezone {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        MerchantTimezone::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jakarta() -> MerchantTimezone {
        MerchantTimezone::parse("Asia/Jakarta").unwrap()
    }

    #[test]
    fn late_and_early_jakarta_purchases_land_on_their_local_day() {
        let tz = jakarta();
        let late = tz.parse_occurred_at("2024-12-31 23:59:00").unwrap();
        let early = tz.parse_occurred_at("2025-01-01 00:01:00").unwrap();
        // 23:59 in Jakarta is 16:59 UTC: still the 31st in both, but only local time
        // tells the 00:01 purchase (17:01 UTC on the 31st) belongs to the new year.
        assert_eq!(late.to_rfc3339(), "2024-12-31T16:59:00+00:00");
        assert_eq!(early.to_rfc3339(), "2024-12-31T17:01:00+00:00");
        assert_eq!(tz.local_day(late).to_string(), "2024-12-31");
        assert_eq!(tz.local_day(early).to_string(), "2025-01-01");
    }

    #[test]
    fn reads_every_import_form() {
        let tz = jakarta();
        assert_eq!(
            tz.parse_occurred_at("1997-01-01").unwrap().to_rfc3339(),
            "1996-12-31T17:00:00+00:00"
        );
        assert_eq!(
            tz.parse_occurred_at("2025-03-04T10:00:00+09:00")
                .unwrap()
                .to_rfc3339(),
            "2025-03-04T01:00:00+00:00"
        );
        for bad in [
            "",
            "1997-02-31",
            "1997-1-1",
            "yesterday",
            "2025-03-04 25:00:00",
            "19970101",
        ] {
            assert!(tz.parse_occurred_at(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn years_outside_1970_to_9999_or_not_four_digits_are_refused() {
        let tz = jakarta();
        // chrono's `%Y` reads these, and `- 365 days` then panics.
        for bad in [
            "-262143-01-05 00:00:00",
            "+200000-01-01 00:00:00",
            "+200000-01-01",
            "+2025-01-01 00:00:00",
            "0001-01-01 00:00:00",
            "1969-12-31 23:59:59",
            "1969-12-31",
            "1900-01-01T00:00:00Z",
            "0000-01-01T00:00:00+07:00",
        ] {
            let parsed = tz.parse_occurred_at(bad);
            assert!(parsed.is_err(), "{bad:?} parsed as {parsed:?}");
        }
        assert_eq!(
            tz.parse_occurred_at("-262143-01-05 00:00:00"),
            Err(TimeError::YearOutOfRange("-262143-01-05 00:00:00".into()))
        );
        // The edges, as written in the text's own zone.
        assert_eq!(
            tz.parse_occurred_at("1970-01-01").unwrap().to_rfc3339(),
            "1969-12-31T17:00:00+00:00"
        );
        assert!(tz.parse_occurred_at("1970-01-01T00:00:00+07:00").is_ok());
        assert!(tz.parse_occurred_at("9999-12-31 23:59:59").is_ok());
        assert!(tz.parse_occurred_at("9999-12-31T23:59:59-12:00").is_ok());
        assert_eq!(
            TimeError::YearOutOfRange("1900-01-01".into()).to_string(),
            "\"1900-01-01\" is not a year from 1970 to 9999 written with four digits"
        );
    }

    #[test]
    fn a_purchase_may_be_a_day_ahead_of_the_clock_and_no_more() {
        let now = DateTime::parse_from_rfc3339("2026-12-08T00:00:00Z")
            .unwrap()
            .to_utc();
        assert_eq!(check_not_future(now, now), Ok(()));
        assert_eq!(check_not_future(now + PURCHASE_CLOCK_GRACE, now), Ok(()));
        let late = now + PURCHASE_CLOCK_GRACE + TimeDelta::seconds(1);
        assert_eq!(
            check_not_future(late, now),
            Err(TimeError::InTheFuture {
                at: late,
                latest: now + PURCHASE_CLOCK_GRACE
            })
        );
        // A clock at chrono's end cannot make the check panic.
        assert_eq!(
            check_not_future(DateTime::<Utc>::MAX_UTC, DateTime::<Utc>::MAX_UTC),
            Ok(())
        );
    }

    #[test]
    fn daylight_saving_gaps_are_errors_and_overlaps_take_the_first() {
        let berlin = MerchantTimezone::parse("Europe/Berlin").unwrap();
        assert!(matches!(
            berlin.parse_occurred_at("2025-03-30 02:30:00"),
            Err(TimeError::NonexistentLocalTime { .. })
        ));
        assert_eq!(
            berlin
                .parse_occurred_at("2025-10-26 02:30:00")
                .unwrap()
                .to_rfc3339(),
            "2025-10-26T00:30:00+00:00"
        );
    }

    #[test]
    fn unknown_zones_are_rejected() {
        assert!(MerchantTimezone::parse("Asia/Bandung").is_err());
        assert_eq!(MerchantTimezone::default().name(), "Asia/Jakarta");
    }
}
