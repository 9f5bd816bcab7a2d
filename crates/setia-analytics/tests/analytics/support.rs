use chrono::{NaiveDate, NaiveDateTime, TimeZone};
use chrono_tz::Tz;
use setia_analytics::{MetricsOutput, MetricsReport};

pub fn jakarta() -> Tz {
    chrono_tz::Asia::Jakarta
}

pub fn date(text: &str) -> NaiveDate {
    NaiveDate::parse_from_str(text, "%Y-%m-%d").expect("test date")
}

/// UTC microseconds of a wall-clock time ("YYYY-MM-DD HH:MM") in `zone`.
pub fn local_micros(zone: Tz, text: &str) -> i64 {
    let naive = NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M").expect("test time");
    zone.from_local_datetime(&naive)
        .single()
        .expect("unambiguous local time")
        .timestamp_micros()
}

/// Serialises the report, checks the text is JSON without NaN or infinities and that it
/// reads back to the same report; returns the parsed value.
pub fn clean_json(output: &MetricsOutput) -> serde_json::Value {
    let text = serde_json::to_string(&output.report).expect("report serialises");
    for forbidden in ["NaN", "nan", "inf", "Infinity"] {
        assert!(!text.contains(forbidden), "{forbidden} in {text}");
    }
    // Reads back (floats may differ in the last bit: serde_json's default float parsing).
    let back: MetricsReport = serde_json::from_str(&text).expect("report deserialises");
    assert_eq!(back.totals.customers, output.report.totals.customers);
    assert_eq!(back.cohorts.len(), output.report.cohorts.len());
    assert_eq!(back.churn.converged, output.report.churn.converged);
    let value: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
    assert_finite_numbers(&value, &text);
    value
}

fn assert_finite_numbers(value: &serde_json::Value, text: &str) {
    match value {
        serde_json::Value::Number(number) => {
            assert!(
                number.as_f64().is_some_and(f64::is_finite),
                "{number} in {text}"
            )
        }
        serde_json::Value::Array(items) => items
            .iter()
            .for_each(|item| assert_finite_numbers(item, text)),
        serde_json::Value::Object(fields) => fields
            .values()
            .for_each(|item| assert_finite_numbers(item, text)),
        _ => {}
    }
}

pub fn assert_close(actual: f64, expected: f64, tolerance: f64, what: &str) {
    assert!(
        (actual - expected).abs() <= tolerance,
        "{what}: got {actual}, expected {expected} ± {tolerance}"
    );
}
