//! When each email is due, in the merchant's time zone: pure functions of a zone and an
//! instant, so every calendar rule is tested without a clock or a database.

use chrono::{DateTime, Datelike, Days, NaiveDate, NaiveTime, TimeDelta, Timelike, Utc, Weekday};
use setia_core::MerchantTimezone;

/// Birthday offers are due from this local time until the end of the birthday.
pub const BIRTHDAY_FROM_HOUR: u32 = 9;
/// The weekly report is due from Monday at this local time until the end of that week.
pub const REPORT_FROM_HOUR: u32 = 8;
/// A birthday offer code is valid this many days, the birthday included.
pub const OFFER_VALID_DAYS: u64 = 14;

/// Marketing email (feedback requests) goes out from this local hour…
pub const MARKETING_FROM_HOUR: u32 = 9;
/// …until this one: a customer is not asked for a favour at night.
pub const MARKETING_UNTIL_HOUR: u32 = 20;
/// A purchase whose feedback request fell due more than this many days ago (setia was down,
/// or the purchase was attributed late) is no longer asked about: the memory is gone.
pub const FEEDBACK_CATCH_UP_DAYS: i64 = 7;

/// The instant of a local wall-clock time; in a daylight-saving gap, the first instant
/// after it (the gap is at most a few hours).
pub fn local_instant(zone: MerchantTimezone, day: NaiveDate, time: NaiveTime) -> DateTime<Utc> {
    let mut local = day.and_time(time);
    for _ in 0..4 {
        if let Ok(instant) = zone.instant_of(local) {
            return instant;
        }
        local += TimeDelta::hours(1);
    }
    // No zone has a gap this long; UTC wall time is the least surprising fallback.
    day.and_time(time).and_utc()
}

/// `[start, end)` of a local day.
pub fn day_bounds(zone: MerchantTimezone, day: NaiveDate) -> (DateTime<Utc>, DateTime<Utc>) {
    let next = day.checked_add_days(Days::new(1)).unwrap_or(day);
    (
        local_instant(zone, day, NaiveTime::MIN),
        local_instant(zone, next, NaiveTime::MIN),
    )
}

/// Today's birthday offers, when `now` is inside their window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BirthdayWindow {
    /// The local day whose birthdays are celebrated.
    pub day: NaiveDate,
    /// `MM-DD` of the birthdays celebrated that day: 29 February birthdays are celebrated on
    /// 28 February in years without one.
    pub month_days: Vec<String>,
    /// The offer's period key: one offer per customer per year.
    pub year: i32,
    /// 09:00 on that day.
    pub due_at: DateTime<Utc>,
    /// The last day the offer code is valid.
    pub offer_expires_on: NaiveDate,
}

fn is_leap(year: i32) -> bool {
    NaiveDate::from_ymd_opt(year, 2, 29).is_some()
}

/// The birthdays due at `now`: from 09:00 until the end of the local day. A day missed
/// entirely is not caught up later.
pub fn birthday_window(zone: MerchantTimezone, now: DateTime<Utc>) -> Option<BirthdayWindow> {
    let local = now.with_timezone(&zone.tz());
    let day = local.date_naive();
    let from = NaiveTime::from_hms_opt(BIRTHDAY_FROM_HOUR, 0, 0)?;
    let due_at = local_instant(zone, day, from);
    if now < due_at {
        return None;
    }
    let mut month_days = vec![day.format("%m-%d").to_string()];
    if day.month() == 2 && day.day() == 28 && !is_leap(day.year()) {
        month_days.push("02-29".to_owned());
    }
    Some(BirthdayWindow {
        day,
        month_days,
        year: day.year(),
        due_at,
        offer_expires_on: day
            .checked_add_days(Days::new(OFFER_VALID_DAYS - 1))
            .unwrap_or(day),
    })
}

/// This week's report, when `now` is on or after Monday 08:00 of the local week.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportWindow {
    /// The ISO week of the Monday the report is sent (`2027-W10`): one report per week.
    pub period_key: String,
    /// The previous week's key, whose report lists the customers already at risk.
    pub previous_period_key: String,
    pub due_at: DateTime<Utc>,
    /// The 14 local days the report covers, oldest first: the 7 before the last 7, then the
    /// last 7 (Monday to Sunday before the report's Monday).
    pub days: Vec<NaiveDate>,
    /// `[from, until)` of the last 7 days, and the start of the 7 before.
    pub previous_from: DateTime<Utc>,
    pub from: DateTime<Utc>,
    pub until: DateTime<Utc>,
}

fn iso_week_key(day: NaiveDate) -> String {
    let week = day.iso_week();
    format!("{}-W{:02}", week.year(), week.week())
}

/// The report due at `now`, if any: from Monday 08:00 until the end of Sunday (a late
/// start or a restart catches up within the week), for the 7 days before that Monday.
pub fn report_window(zone: MerchantTimezone, now: DateTime<Utc>) -> Option<ReportWindow> {
    let local = now.with_timezone(&zone.tz());
    let today = local.date_naive();
    let monday = today - TimeDelta::days(i64::from(today.weekday().num_days_from_monday()));
    debug_assert_eq!(monday.weekday(), Weekday::Mon);
    let due_at = local_instant(
        zone,
        monday,
        NaiveTime::from_hms_opt(REPORT_FROM_HOUR, 0, 0)?,
    );
    if now < due_at {
        return None;
    }
    let first = monday - TimeDelta::days(14);
    let days: Vec<NaiveDate> = (0..14).map(|i| first + TimeDelta::days(i)).collect();
    Some(ReportWindow {
        period_key: iso_week_key(monday),
        previous_period_key: iso_week_key(monday - TimeDelta::days(7)),
        due_at,
        days,
        previous_from: local_instant(zone, first, NaiveTime::MIN),
        from: local_instant(zone, monday - TimeDelta::days(7), NaiveTime::MIN),
        until: local_instant(zone, monday, NaiveTime::MIN),
    })
}

/// `at`, or the next 09:00 local when `at` falls at night (20:00–09:00).
pub fn marketing_hours(zone: MerchantTimezone, at: DateTime<Utc>) -> DateTime<Utc> {
    let local = at.with_timezone(&zone.tz());
    let day = local.date_naive();
    let opening = |day: NaiveDate| {
        local_instant(
            zone,
            day,
            NaiveTime::from_hms_opt(MARKETING_FROM_HOUR, 0, 0).unwrap_or(NaiveTime::MIN),
        )
    };
    if local.hour() < MARKETING_FROM_HOUR {
        opening(day)
    } else if local.hour() >= MARKETING_UNTIL_HOUR {
        opening(day.checked_add_days(Days::new(1)).unwrap_or(day))
    } else {
        at
    }
}

/// `[from, until)` of the purchase times whose feedback request is due at `now` and not yet
/// past catching up: made `delay_days` (plus up to [`FEEDBACK_CATCH_UP_DAYS`]) before.
pub fn feedback_purchase_window(
    now: DateTime<Utc>,
    delay_days: u32,
) -> (DateTime<Utc>, DateTime<Utc>) {
    let until = now - TimeDelta::days(i64::from(delay_days));
    (until - TimeDelta::days(FEEDBACK_CATCH_UP_DAYS), until)
}

/// The wait before the next attempt after `attempts` failed ones with a temporary error
/// (DESIGN §4: 1 m, 5 m, 30 m, 2 h, 6 h); `None` once they are used up and the email fails.
pub fn retry_delay(attempts: u32) -> Option<TimeDelta> {
    match attempts {
        0 | 1 => Some(TimeDelta::minutes(1)),
        2 => Some(TimeDelta::minutes(5)),
        3 => Some(TimeDelta::minutes(30)),
        4 => Some(TimeDelta::hours(2)),
        5 => Some(TimeDelta::hours(6)),
        _ => None,
    }
}

/// The local time of an instant as `HH:MM`.
pub fn local_clock(zone: MerchantTimezone, at: DateTime<Utc>) -> String {
    let local = at.with_timezone(&zone.tz());
    format!("{:02}:{:02}", local.hour(), local.minute())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zone(name: &str) -> MerchantTimezone {
        MerchantTimezone::parse(name).unwrap()
    }

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().to_utc()
    }

    #[test]
    fn birthdays_are_due_from_nine_until_the_end_of_the_local_day() {
        let jakarta = zone("Asia/Jakarta");
        // 08:59 and 09:00 in Jakarta (UTC+7).
        assert_eq!(birthday_window(jakarta, at("2027-03-14T01:59:59Z")), None);
        let window = birthday_window(jakarta, at("2027-03-14T02:00:00Z")).unwrap();
        assert_eq!(window.day.to_string(), "2027-03-14");
        assert_eq!(window.month_days, vec!["03-14"]);
        assert_eq!(window.year, 2027);
        assert_eq!(window.due_at, at("2027-03-14T02:00:00Z"));
        assert_eq!(window.offer_expires_on.to_string(), "2027-03-27");
        // 23:59 is still the birthday; 00:00 is the next day's.
        let late = birthday_window(jakarta, at("2027-03-14T16:59:00Z")).unwrap();
        assert_eq!(late.month_days, vec!["03-14"]);
        assert_eq!(birthday_window(jakarta, at("2027-03-14T17:00:00Z")), None);
        assert_eq!(
            birthday_window(jakarta, at("2027-03-15T02:00:00Z"))
                .unwrap()
                .month_days,
            vec!["03-15"],
            "the 14th is not caught up on the 15th"
        );
    }

    #[test]
    fn the_merchants_zone_decides_not_the_servers() {
        // 09:00 in Jayapura (UTC+9) is 07:00 in Jakarta: not yet due for a Jakarta merchant.
        let jayapura_nine = at("2027-03-14T00:00:00Z");
        assert!(birthday_window(zone("Asia/Jayapura"), jayapura_nine).is_some());
        assert_eq!(birthday_window(zone("Asia/Jakarta"), jayapura_nine), None);
        assert!(birthday_window(zone("Asia/Jakarta"), at("2027-03-14T02:00:00Z")).is_some());
    }

    #[test]
    fn leap_day_birthdays_are_celebrated_on_28_february_in_common_years() {
        let jakarta = zone("Asia/Jakarta");
        let common = birthday_window(jakarta, at("2027-02-28T02:00:00Z")).unwrap();
        assert_eq!(common.month_days, vec!["02-28", "02-29"]);
        let leap_28 = birthday_window(jakarta, at("2028-02-28T02:00:00Z")).unwrap();
        assert_eq!(leap_28.month_days, vec!["02-28"]);
        let leap_29 = birthday_window(jakarta, at("2028-02-29T02:00:00Z")).unwrap();
        assert_eq!(leap_29.month_days, vec!["02-29"]);
        assert_eq!(
            birthday_window(jakarta, at("2027-03-01T02:00:00Z"))
                .unwrap()
                .month_days,
            vec!["03-01"]
        );
    }

    #[test]
    fn the_report_is_due_from_monday_eight_and_caught_up_within_the_week() {
        let jakarta = zone("Asia/Jakarta");
        // Monday 2027-03-08, 07:59 and 08:00 in Jakarta.
        assert_eq!(report_window(jakarta, at("2027-03-08T00:59:00Z")), None);
        let window = report_window(jakarta, at("2027-03-08T01:00:00Z")).unwrap();
        assert_eq!(window.period_key, "2027-W10");
        assert_eq!(window.previous_period_key, "2027-W09");
        assert_eq!(window.due_at, at("2027-03-08T01:00:00Z"));
        assert_eq!(window.days.first().unwrap().to_string(), "2027-02-22");
        assert_eq!(window.days.last().unwrap().to_string(), "2027-03-07");
        assert_eq!(window.from, at("2027-02-28T17:00:00Z"));
        assert_eq!(window.until, at("2027-03-07T17:00:00Z"));
        assert_eq!(window.previous_from, at("2027-02-21T17:00:00Z"));
        // Wednesday and Sunday night of the same week: the same report.
        for later in ["2027-03-10T05:00:00Z", "2027-03-14T16:59:00Z"] {
            assert_eq!(
                report_window(jakarta, at(later)).unwrap().period_key,
                "2027-W10"
            );
        }
        // Sunday before 08:00 on Monday belongs to the previous week's report.
        assert_eq!(
            report_window(jakarta, at("2027-03-07T10:00:00Z"))
                .unwrap()
                .period_key,
            "2027-W09"
        );
    }

    #[test]
    fn a_preview_before_monday_eight_shows_last_weeks_report() {
        let jakarta = zone("Asia/Jakarta");
        // Monday 2027-03-08 from 00:00 to 07:59 in Jakarta: nothing due, last week's shown.
        for before in ["2027-03-07T17:00:00Z", "2027-03-08T00:59:00Z"] {
            assert_eq!(report_window(jakarta, at(before)), None);
            assert_eq!(
                crate::report::preview_window(jakarta, at(before))
                    .unwrap()
                    .period_key,
                "2027-W09"
            );
        }
        assert_eq!(
            crate::report::preview_window(jakarta, at("2027-03-08T01:00:00Z"))
                .unwrap()
                .period_key,
            "2027-W10"
        );
    }

    #[test]
    fn iso_weeks_cross_years() {
        // Monday 2027-01-04 is in ISO week 2027-W01; Monday 2026-12-28 in 2026-W53.
        let utc = zone("UTC");
        assert_eq!(
            report_window(utc, at("2027-01-04T09:00:00Z"))
                .unwrap()
                .period_key,
            "2027-W01"
        );
        assert_eq!(
            report_window(utc, at("2027-01-04T09:00:00Z"))
                .unwrap()
                .previous_period_key,
            "2026-W53"
        );
    }

    #[test]
    fn retries_back_off_then_give_up() {
        let minutes: Vec<Option<i64>> = (1..=6)
            .map(|a| retry_delay(a).map(|d| d.num_minutes()))
            .collect();
        assert_eq!(
            minutes,
            vec![Some(1), Some(5), Some(30), Some(120), Some(360), None]
        );
    }

    #[test]
    fn marketing_waits_for_the_morning() {
        let jakarta = zone("Asia/Jakarta");
        // 08:59, 09:00, 19:59 and 20:00 in Jakarta.
        assert_eq!(
            marketing_hours(jakarta, at("2027-03-14T01:59:00Z")),
            at("2027-03-14T02:00:00Z")
        );
        for open in ["2027-03-14T02:00:00Z", "2027-03-14T12:59:00Z"] {
            assert_eq!(marketing_hours(jakarta, at(open)), at(open));
        }
        assert_eq!(
            marketing_hours(jakarta, at("2027-03-14T13:00:00Z")),
            at("2027-03-15T02:00:00Z")
        );
        // 23:30 in Jayapura is 21:30 in Jakarta: both wait for their own morning.
        assert_eq!(
            marketing_hours(zone("Asia/Jayapura"), at("2027-03-14T14:30:00Z")),
            at("2027-03-15T00:00:00Z")
        );
    }

    #[test]
    fn feedback_looks_back_a_week_past_the_delay() {
        let (from, until) = feedback_purchase_window(at("2027-03-14T02:00:00Z"), 3);
        assert_eq!(until, at("2027-03-11T02:00:00Z"));
        assert_eq!(from, at("2027-03-04T02:00:00Z"));
    }

    #[test]
    fn days_have_local_bounds_even_across_daylight_saving() {
        let jakarta = zone("Asia/Jakarta");
        let day = NaiveDate::from_ymd_opt(2027, 3, 14).unwrap();
        let (from, until) = day_bounds(jakarta, day);
        assert_eq!(from, at("2027-03-13T17:00:00Z"));
        assert_eq!(until, at("2027-03-14T17:00:00Z"));
        // Santiago springs forward at midnight: that day starts at 01:00 local.
        let santiago = zone("America/Santiago");
        let spring = NaiveDate::from_ymd_opt(2024, 9, 8).unwrap();
        let (from, until) = day_bounds(santiago, spring);
        assert_eq!(until - from, TimeDelta::hours(23));
        assert_eq!(local_clock(santiago, from), "01:00");
    }
}
