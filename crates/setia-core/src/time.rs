//! Merchant time zones and the local day of an instant.
//!
//! Every calendar rule in setia (a purchase's day, cohorts, birthdays, the Monday report)
//! is in the merchant's zone; Moota's `date` is Asia/Jakarta wall time.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, LocalResult, NaiveDate, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The zone Moota reports its wall-clock `date` in.
pub const MOOTA_ZONE: Tz = chrono_tz::Asia::Jakarta;

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
}

impl Default for MerchantTimezone {
    fn default() -> Self {
        MerchantTimezone(MOOTA_ZONE)
    }
}

impl MerchantTimezone {
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
    /// (both merchant wall time) or RFC 3339 with its own offset.
    pub fn parse_occurred_at(self, text: &str) -> Result<DateTime<Utc>, TimeError> {
        let text = text.trim();
        if let Ok(instant) = DateTime::parse_from_rfc3339(text) {
            return Ok(instant.with_timezone(&Utc));
        }
        if let Ok(local) = NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S") {
            return self.instant_of(local);
        }
        if text.len() == 10 {
            if let Ok(day) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
                return self.instant_of(day.and_hms_opt(0, 0, 0).expect("midnight exists"));
            }
        }
        Err(TimeError::BadDateTime(text.to_owned()))
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
