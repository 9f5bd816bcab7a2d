//! Numbers, money and dates as Indonesians (and English readers) write them, as template
//! filters: `rupiah` (minor units), `money` (a decimal string such as the API's), `num`,
//! `pct` (a share 0–1), `datetime` (an RFC 3339 instant, shown in the merchant's zone),
//! `day` (YYYY-MM-DD) and `period` (a cohort label). Money is always `Rp 1.250.000`, but for
//! `money_short`, the compact form of a card (`Rp 416,9 jt` / `Rp 416.9 M`) whose exact
//! value the page shows beside it.

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use chrono_tz::Tz;
use minijinja::{Environment, Error, ErrorKind, State, Value};
use setia_core::{format_rupiah, Money};

use super::i18n::Lang;

const MONTHS_ID: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "Mei", "Jun", "Jul", "Agu", "Sep", "Okt", "Nov", "Des",
];
const MONTHS_EN: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

fn month_name(lang: Lang, month: u32) -> &'static str {
    let months = match lang {
        Lang::Id => &MONTHS_ID,
        Lang::En => &MONTHS_EN,
    };
    months[(month.clamp(1, 12) - 1) as usize]
}

/// Digits grouped by three: `1.234.567` (Indonesian) or `1,234,567` (English).
pub fn group(whole: u64, lang: Lang) -> String {
    let separator = match lang {
        Lang::Id => '.',
        Lang::En => ',',
    };
    let digits = whole.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(separator);
        }
        out.push(digit);
    }
    out
}

/// A number with `decimals` places: `1.234,5` or `1,234.5`.
pub fn number(value: f64, decimals: u32, lang: Lang) -> String {
    if !value.is_finite() {
        return "–".into();
    }
    let scale = 10f64.powi(decimals as i32);
    let rounded = (value.abs() * scale).round();
    let whole = (rounded / scale).trunc() as u64;
    let fraction = (rounded - whole as f64 * scale).round() as u64;
    let sign = if value < 0.0 && rounded > 0.0 {
        "-"
    } else {
        ""
    };
    let mut out = format!("{sign}{}", group(whole, lang));
    if decimals > 0 {
        out.push(match lang {
            Lang::Id => ',',
            Lang::En => '.',
        });
        out.push_str(&format!("{fraction:0width$}", width = decimals as usize));
    }
    out
}

/// A share (0.123) as a percentage: `12,3%` / `12.3%`.
pub fn percent(share: f64, decimals: u32, lang: Lang) -> String {
    format!("{}%", number(share * 100.0, decimals, lang))
}

pub fn day(date: NaiveDate, lang: Lang) -> String {
    format!(
        "{} {} {}",
        date.day(),
        month_name(lang, date.month()),
        date.year()
    )
}

pub fn datetime(at: DateTime<Utc>, zone: Tz, lang: Lang) -> String {
    let local = at.with_timezone(&zone);
    format!(
        "{} {} {} {}",
        local.day(),
        month_name(lang, local.month()),
        local.year(),
        local.format("%H:%M")
    )
}

/// `1997-01` → `Jan 1997`; a week label (`2025-W03`) stays as it is.
pub fn period_label(label: &str, lang: Lang) -> String {
    match label.split_once('-') {
        Some((year, month)) if !month.starts_with('W') => match month.parse::<u32>() {
            Ok(m) if (1..=12).contains(&m) => format!("{} {year}", month_name(lang, m)),
            _ => label.to_owned(),
        },
        _ => label.to_owned(),
    }
}

/// An amount short enough for a card: `Rp 416,9 jt` (Indonesian: rb, jt, M for miliar, T)
/// or `Rp 416.9 M` (English: K, M, B, T), to one decimal, which is left out when it is 0.
/// Amounts under Rp 1.000 are shown exactly.
pub fn compact_rupiah(amount: Money, lang: Lang) -> String {
    const UNITS_ID: [(f64, &str); 4] = [(1e3, "rb"), (1e6, "jt"), (1e9, "M"), (1e12, "T")];
    const UNITS_EN: [(f64, &str); 4] = [(1e3, "K"), (1e6, "M"), (1e9, "B"), (1e12, "T")];
    let rupiah = amount.minor().unsigned_abs() as f64 / 100.0;
    if rupiah < 1e3 {
        return format_rupiah(amount);
    }
    let units = match lang {
        Lang::Id => &UNITS_ID,
        Lang::En => &UNITS_EN,
    };
    // The smallest unit whose figure, once rounded, stays under a thousand: Rp 999.960 is
    // `Rp 1 jt`, not `Rp 1.000 rb`.
    let scaled =
        |&(scale, suffix): &(f64, &'static str)| (((rupiah / scale) * 10.0).round() / 10.0, suffix);
    let (figure, suffix) = units
        .iter()
        .map(scaled)
        .find(|(figure, _)| *figure < 1e3)
        .unwrap_or_else(|| scaled(&units[units.len() - 1]));
    let decimals = if figure.fract() == 0.0 { 0 } else { 1 };
    let sign = if amount.minor() < 0 { "-" } else { "" };
    format!("{sign}Rp {} {suffix}", number(figure, decimals, lang))
}

fn lang_of(state: &State) -> Lang {
    state
        .lookup("lang")
        .and_then(|v| v.as_str().and_then(Lang::parse))
        .unwrap_or_default()
}

fn zone_of(state: &State) -> Tz {
    state
        .lookup("tz")
        .and_then(|v| v.as_str().and_then(|name| name.parse::<Tz>().ok()))
        .unwrap_or(chrono_tz::Asia::Jakarta)
}

fn invalid(what: &str, value: &Value) -> Error {
    Error::new(
        ErrorKind::InvalidOperation,
        format!("{what}: cannot format {value}"),
    )
}

fn as_f64(value: &Value) -> Option<f64> {
    if let Ok(v) = i64::try_from(value.clone()) {
        return Some(v as f64);
    }
    f64::try_from(value.clone()).ok()
}

fn rupiah_filter(value: Value) -> Result<String, Error> {
    let minor = i64::try_from(value.clone()).map_err(|_| invalid("rupiah", &value))?;
    Ok(format_rupiah(Money::from_minor(minor)))
}

fn money_filter(value: Value) -> Result<String, Error> {
    if value.is_none() || value.is_undefined() {
        return Ok("–".into());
    }
    let text = value.as_str().ok_or_else(|| invalid("money", &value))?;
    let money = Money::parse_signed(text).map_err(|_| invalid("money", &value))?;
    Ok(format_rupiah(money))
}

fn money_short_filter(state: &State, value: Value) -> Result<String, Error> {
    if value.is_none() || value.is_undefined() {
        return Ok("–".into());
    }
    let text = value
        .as_str()
        .ok_or_else(|| invalid("money_short", &value))?;
    let money = Money::parse_signed(text).map_err(|_| invalid("money_short", &value))?;
    Ok(compact_rupiah(money, lang_of(state)))
}

fn num_filter(state: &State, value: Value, decimals: Option<u32>) -> Result<String, Error> {
    if value.is_none() || value.is_undefined() {
        return Ok("–".into());
    }
    let v = as_f64(&value).ok_or_else(|| invalid("num", &value))?;
    Ok(number(v, decimals.unwrap_or(0), lang_of(state)))
}

fn pct_filter(state: &State, value: Value, decimals: Option<u32>) -> Result<String, Error> {
    if value.is_none() || value.is_undefined() {
        return Ok("–".into());
    }
    let v = as_f64(&value).ok_or_else(|| invalid("pct", &value))?;
    Ok(percent(v, decimals.unwrap_or(1), lang_of(state)))
}

fn datetime_filter(state: &State, value: Value) -> Result<String, Error> {
    if value.is_none() || value.is_undefined() {
        return Ok("–".into());
    }
    let text = value.as_str().ok_or_else(|| invalid("datetime", &value))?;
    let at = DateTime::parse_from_rfc3339(text)
        .map_err(|_| invalid("datetime", &value))?
        .with_timezone(&Utc);
    Ok(datetime(at, zone_of(state), lang_of(state)))
}

fn day_filter(state: &State, value: Value) -> Result<String, Error> {
    if value.is_none() || value.is_undefined() {
        return Ok("–".into());
    }
    let text = value.as_str().ok_or_else(|| invalid("day", &value))?;
    let date = NaiveDate::parse_from_str(text, "%Y-%m-%d").map_err(|_| invalid("day", &value))?;
    Ok(day(date, lang_of(state)))
}

fn period_filter(state: &State, value: Value) -> Result<String, Error> {
    let text = value.as_str().ok_or_else(|| invalid("period", &value))?;
    Ok(period_label(text, lang_of(state)))
}

pub fn register(env: &mut Environment<'static>) {
    env.add_filter("rupiah", rupiah_filter);
    env.add_filter("money", money_filter);
    env.add_filter("money_short", money_short_filter);
    env.add_filter("num", num_filter);
    env.add_filter("pct", pct_filter);
    env.add_filter("datetime", datetime_filter);
    env.add_filter("day", day_filter);
    env.add_filter("period", period_filter);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_group_thousands_the_local_way() {
        assert_eq!(group(1_250_000, Lang::Id), "1.250.000");
        assert_eq!(group(1_250_000, Lang::En), "1,250,000");
        assert_eq!(group(999, Lang::Id), "999");
        assert_eq!(number(1234.56, 1, Lang::Id), "1.234,6");
        assert_eq!(number(1234.56, 1, Lang::En), "1,234.6");
        assert_eq!(number(-0.04, 1, Lang::En), "0.0");
        assert_eq!(number(-2.5, 0, Lang::Id), "-3");
        assert_eq!(number(f64::NAN, 1, Lang::Id), "–");
        assert_eq!(percent(0.12345, 1, Lang::Id), "12,3%");
        assert_eq!(percent(1.0, 0, Lang::En), "100%");
    }

    #[test]
    fn dates_use_the_merchants_zone_and_language() {
        let at: DateTime<Utc> = "2025-05-31T18:30:00Z".parse().unwrap();
        // 01:30 the next day in Jakarta (UTC+7).
        assert_eq!(
            datetime(at, chrono_tz::Asia::Jakarta, Lang::Id),
            "1 Jun 2025 01:30"
        );
        assert_eq!(datetime(at, chrono_tz::UTC, Lang::En), "31 May 2025 18:30");
        let d = NaiveDate::from_ymd_opt(1997, 8, 17).unwrap();
        assert_eq!(day(d, Lang::Id), "17 Agu 1997");
        assert_eq!(day(d, Lang::En), "17 Aug 1997");
        assert_eq!(period_label("1997-05", Lang::Id), "Mei 1997");
        assert_eq!(period_label("2025-W03", Lang::Id), "2025-W03");
    }

    #[test]
    fn money_is_rupiah_in_both_languages() {
        assert_eq!(
            rupiah_filter(Value::from(125_000_000)).unwrap(),
            "Rp 1.250.000"
        );
        assert_eq!(
            money_filter(Value::from("2500315.63")).unwrap(),
            "Rp 2.500.315,63"
        );
        assert_eq!(money_filter(Value::from(())).unwrap(), "–");
        assert!(money_filter(Value::from("abc")).is_err());
    }

    #[test]
    fn large_amounts_are_compact_in_each_language() {
        let rp = |rupiah: i64| Money::from_minor(rupiah * 100);
        // The demo's revenue, which broke its card in two at 1280 px.
        assert_eq!(compact_rupiah(rp(416_857_430), Lang::Id), "Rp 416,9 jt");
        assert_eq!(compact_rupiah(rp(416_857_430), Lang::En), "Rp 416.9 M");
        assert_eq!(compact_rupiah(rp(2_500_000_000), Lang::Id), "Rp 2,5 M");
        assert_eq!(compact_rupiah(rp(2_500_000_000), Lang::En), "Rp 2.5 B");
        assert_eq!(compact_rupiah(rp(12_000), Lang::Id), "Rp 12 rb");
        assert_eq!(compact_rupiah(rp(12_345), Lang::En), "Rp 12.3 K");
        assert_eq!(
            compact_rupiah(rp(999_960), Lang::Id),
            "Rp 1 jt",
            "rounding moves up a unit"
        );
        assert_eq!(
            compact_rupiah(rp(999), Lang::Id),
            "Rp 999",
            "exact under a thousand"
        );
        assert_eq!(
            compact_rupiah(Money::from_minor(99_950), Lang::Id),
            "Rp 999,50"
        );
        assert_eq!(compact_rupiah(rp(-1_500_000), Lang::Id), "-Rp 1,5 jt");
        assert_eq!(
            compact_rupiah(rp(4_200_000_000_000_000), Lang::En),
            "Rp 4,200 T",
            "past the largest unit the figure grows"
        );
        assert_eq!(
            compact_rupiah(Money::from_minor(i64::MIN), Lang::Id),
            "-Rp 92.233,7 T"
        );
    }
}
