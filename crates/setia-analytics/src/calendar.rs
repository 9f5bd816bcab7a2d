//! Calendar arithmetic on "epoch days" (days since 1970-01-01 in the merchant's zone).
//!
//! The batch works on integer days so that grouping, gaps and periods are integer
//! operations on whole columns; `chrono` is only used at the edges (labels, time zones).

use chrono::{DateTime, Datelike, NaiveDate, Offset, TimeZone};
use chrono_tz::Tz;

use crate::input::Period;

pub(crate) const MICROS_PER_DAY: i64 = 86_400_000_000;
const MICROS_PER_HOUR: i64 = 3_600_000_000;

/// Days since 1970-01-01.
pub(crate) fn epoch_day(date: NaiveDate) -> i32 {
    // NaiveDate spans ±262 000 years, well inside i32 days.
    date.signed_duration_since(NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or(NaiveDate::MIN))
        .num_days() as i32
}

pub(crate) fn date_of_epoch_day(day: i32) -> Option<NaiveDate> {
    NaiveDate::from_ymd_opt(1970, 1, 1)?.checked_add_signed(chrono::Duration::days(i64::from(day)))
}

/// (year, month 1–12) of an epoch day: Howard Hinnant's `civil_from_days`, integer only, so
/// it can run over millions of rows without building dates.
pub(crate) fn year_month(day: i32) -> (i64, i64) {
    let z = i64::from(day) + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let month = if shifted_month < 10 {
        shifted_month + 3
    } else {
        shifted_month - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month)
}

/// Consecutive integers for consecutive periods: months since year 0, or ISO weeks (Monday
/// to Sunday) since the week of 1970-01-01, so "cohort + k" is plain addition.
pub(crate) fn period_index(period: Period, day: i32) -> i32 {
    match period {
        Period::Month => {
            let (year, month) = year_month(day);
            (year * 12 + month - 1) as i32
        }
        // 1970-01-01 was a Thursday: shifting by 3 puts Mondays on multiples of 7.
        Period::Week => (day + 3).div_euclid(7),
    }
}

/// "1997-01" for months, "2025-W01" for ISO weeks (ISO week-numbering year).
pub(crate) fn period_label(period: Period, index: i32) -> String {
    match period {
        Period::Month => {
            let year = index.div_euclid(12);
            let month = index.rem_euclid(12) + 1;
            format!("{year:04}-{month:02}")
        }
        Period::Week => match date_of_epoch_day(index * 7 - 3) {
            Some(monday) => {
                let week = monday.iso_week();
                format!("{:04}-W{:02}", week.year(), week.week())
            }
            None => format!("week-{index}"),
        },
    }
}

/// Converts UTC instants to the merchant's local day. Offsets are cached per UTC hour, so
/// ten million rows cost ten million divisions rather than ten million zone look-ups.
pub(crate) struct LocalDayConverter {
    zone: Tz,
    slots: Vec<CachedHour>,
}

#[derive(Clone, Copy)]
struct CachedHour {
    hour: i64,
    /// Seconds east of UTC for the whole hour, or `None` when an offset change falls inside it.
    offset_seconds: Option<i32>,
}

const CACHE_SLOTS: usize = 4096;

impl LocalDayConverter {
    pub(crate) fn new(zone: Tz) -> LocalDayConverter {
        LocalDayConverter {
            zone,
            slots: vec![
                CachedHour {
                    hour: i64::MIN,
                    offset_seconds: None,
                };
                CACHE_SLOTS
            ],
        }
    }

    /// The local epoch day of a UTC instant, or `None` if it is outside chrono's calendar.
    pub(crate) fn local_day(&mut self, utc_micros: i64) -> Option<i32> {
        let hour = utc_micros.div_euclid(MICROS_PER_HOUR);
        let slot = (hour.rem_euclid(CACHE_SLOTS as i64)) as usize;
        let cached = self.slots[slot];
        let offset_seconds = if cached.hour == hour {
            cached.offset_seconds
        } else {
            let start = self.offset_at(hour.checked_mul(MICROS_PER_HOUR)?)?;
            let end = self.offset_at(hour.checked_mul(MICROS_PER_HOUR)? + MICROS_PER_HOUR - 1)?;
            let offset_seconds = (start == end).then_some(start);
            self.slots[slot] = CachedHour {
                hour,
                offset_seconds,
            };
            offset_seconds
        };
        let offset_seconds = match offset_seconds {
            Some(offset) => offset,
            None => self.offset_at(utc_micros)?,
        };
        let local_micros = utc_micros.checked_add(i64::from(offset_seconds) * 1_000_000)?;
        i32::try_from(local_micros.div_euclid(MICROS_PER_DAY)).ok()
    }

    fn offset_at(&self, utc_micros: i64) -> Option<i32> {
        let instant = DateTime::from_timestamp_micros(utc_micros)?;
        Some(
            self.zone
                .offset_from_utc_datetime(&instant.naive_utc())
                .fix()
                .local_minus_utc(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    #[test]
    fn year_month_agrees_with_chrono_over_centuries() {
        let mut day = epoch_day(date(1899, 12, 25));
        let end = epoch_day(date(2101, 1, 5));
        while day <= end {
            let expected = date_of_epoch_day(day).unwrap();
            assert_eq!(
                year_month(day),
                (i64::from(expected.year()), i64::from(expected.month())),
                "{expected}"
            );
            day += 1;
        }
    }

    #[test]
    fn iso_week_labels_cross_the_year_boundary() {
        let week = |y, m, d| {
            period_label(
                Period::Week,
                period_index(Period::Week, epoch_day(date(y, m, d))),
            )
        };
        assert_eq!(week(2024, 12, 30), "2025-W01");
        assert_eq!(week(2025, 1, 5), "2025-W01");
        assert_eq!(week(2024, 12, 29), "2024-W52");
        assert_eq!(week(2021, 1, 3), "2020-W53");
        assert_eq!(week(1970, 1, 1), "1970-W01");
        assert_eq!(
            period_index(Period::Week, epoch_day(date(2025, 1, 6)))
                - period_index(Period::Week, epoch_day(date(2025, 1, 5))),
            1
        );
        let month = |y, m, d| {
            period_label(
                Period::Month,
                period_index(Period::Month, epoch_day(date(y, m, d))),
            )
        };
        assert_eq!(month(1997, 1, 31), "1997-01");
        assert_eq!(month(1969, 12, 31), "1969-12");
    }

    #[test]
    fn local_day_follows_daylight_saving() {
        let zone: Tz = "America/New_York".parse().unwrap();
        let mut converter = LocalDayConverter::new(zone);
        // 2024-03-10 06:59:59 UTC = 01:59:59 EST; 07:00 UTC = 03:00 EDT, both on the 10th.
        // 2024-03-11 03:30 UTC = 23:30 EDT on the 10th.
        let micros = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().timestamp_micros();
        for (instant, expected) in [
            ("2024-03-10T04:59:59Z", date(2024, 3, 9)),
            ("2024-03-10T05:00:00Z", date(2024, 3, 10)),
            ("2024-03-11T03:30:00Z", date(2024, 3, 10)),
            ("2024-03-11T04:00:00Z", date(2024, 3, 11)),
            ("2024-11-03T04:30:00Z", date(2024, 11, 3)),
            ("2024-11-04T04:59:00Z", date(2024, 11, 3)),
            ("2024-11-04T05:00:00Z", date(2024, 11, 4)),
        ] {
            let day = converter.local_day(micros(instant)).unwrap();
            assert_eq!(date_of_epoch_day(day).unwrap(), expected, "{instant}");
        }
        // Kathmandu sits at +05:45: the day changes at 18:15 UTC.
        let mut kathmandu = LocalDayConverter::new("Asia/Kathmandu".parse().unwrap());
        let day = kathmandu.local_day(micros("2024-06-30T18:15:00Z")).unwrap();
        assert_eq!(date_of_epoch_day(day).unwrap(), date(2024, 7, 1));
        let day = kathmandu.local_day(micros("2024-06-30T18:14:59Z")).unwrap();
        assert_eq!(date_of_epoch_day(day).unwrap(), date(2024, 6, 30));
    }
}
