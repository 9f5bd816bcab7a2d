//! A list of customers as a CSV download, for a marketing team's other tools (a broadcast
//! list, an ads audience, a spreadsheet).
//!
//! The file is RFC 4180 CSV in UTF-8 with a header line, numbers with a decimal point, money
//! in rupiah as the API writes it: the format of setia's own import files, which
//! spreadsheets and pandas read as they are. Text a customer or a shop typed (external id,
//! name, email) that a spreadsheet would run as a formula (it starts with `=`, `+`, `-`,
//! `@`, a tab or a carriage return) is written with a leading `'`, which spreadsheets show
//! as text (OWASP's advice on CSV injection).

use std::borrow::Cow;

use axum::body::{Body, Bytes};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use futures_util::Stream;
use setia_store::dashboard::CustomerListRow;

/// The columns, in order.
pub const HEADER: [&str; 15] = [
    "external_id",
    "name",
    "email",
    "marketing_consent",
    "segment",
    "r",
    "f",
    "m",
    "recency_days",
    "frequency_days",
    "monetary",
    "p_alive",
    "expected_purchases_90d",
    "clv_12m",
    "scored_as_of",
];

/// Why an export stopped part-way.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The nightly run stored a new day's scores while the list was read: the rows read
    /// so far and the rest would describe different days.
    #[error("the scores changed during the export (from {first} to {now}); download it again")]
    ScoresChanged { first: String, now: String },
    #[error("writing the CSV: {0}")]
    Csv(#[from] csv::Error),
}

/// Text that a spreadsheet would take for a formula, made text.
pub fn guard_cell(text: &str) -> Cow<'_, str> {
    match text.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => Cow::Owned(format!("'{text}")),
        _ => Cow::Borrowed(text),
    }
}

/// Writes pages of rows as CSV: the header before the first, and every row of the export
/// from the same day's scores.
#[derive(Debug, Default)]
pub struct CsvRows {
    header_written: bool,
    as_of: Option<String>,
    rows: u64,
}

impl CsvRows {
    /// The bytes of one page's rows (with the header when it is the first page).
    pub fn encode(&mut self, rows: &[CustomerListRow]) -> Result<Bytes, ExportError> {
        let mut out = csv::Writer::from_writer(Vec::with_capacity(rows.len() * 160 + 200));
        if !self.header_written {
            out.write_record(HEADER)?;
            self.header_written = true;
        }
        for row in rows {
            if let Some(scores) = &row.scores {
                match &self.as_of {
                    None => self.as_of = Some(scores.as_of.clone()),
                    Some(first) if *first != scores.as_of => {
                        return Err(ExportError::ScoresChanged {
                            first: first.clone(),
                            now: scores.as_of.clone(),
                        })
                    }
                    Some(_) => {}
                }
            }
            out.write_record(record(row).iter().map(|cell| cell.as_ref()))?;
            self.rows += 1;
        }
        let bytes = out
            .into_inner()
            .map_err(|e| csv::Error::from(e.into_error()))?;
        Ok(Bytes::from(bytes))
    }

    pub fn rows(&self) -> u64 {
        self.rows
    }
}

/// One customer's cells, in [`HEADER`]'s order; a customer the batch has not scored yet
/// has the score cells empty.
fn record(row: &CustomerListRow) -> [Cow<'_, str>; 15] {
    fn text(value: Option<&str>) -> Cow<'_, str> {
        guard_cell(value.unwrap_or(""))
    }
    let float =
        |value: Option<f64>| Cow::Owned(value.map(|v| format!("{v:.4}")).unwrap_or_default());
    let s = row.scores.as_ref();
    let int = |value: Option<i64>| Cow::Owned(value.map(|v| v.to_string()).unwrap_or_default());
    [
        guard_cell(&row.external_id),
        text(row.name.as_deref()),
        text(row.email.as_deref()),
        Cow::Borrowed(if row.marketing_consent {
            "true"
        } else {
            "false"
        }),
        Cow::Borrowed(s.map(|s| s.segment.as_str()).unwrap_or("")),
        int(s.map(|s| s.r)),
        int(s.map(|s| s.f)),
        int(s.map(|s| s.m)),
        int(s.map(|s| s.recency_days)),
        int(s.map(|s| s.frequency_days)),
        Cow::Owned(s.map(|s| s.monetary.to_string()).unwrap_or_default()),
        float(s.and_then(|s| s.p_alive)),
        float(s.and_then(|s| s.expected_purchases_90d)),
        Cow::Owned(
            s.and_then(|s| s.clv_12m)
                .map(|m| m.to_string())
                .unwrap_or_default(),
        ),
        Cow::Borrowed(s.map(|s| s.as_of.as_str()).unwrap_or("")),
    ]
}

/// A CSV download named `file` (ASCII) whose body is `body`.
pub fn csv_response<S, E>(file: &str, body: S) -> Response
where
    S: Stream<Item = Result<Bytes, E>> + Send + 'static,
    E: Into<axum::BoxError>,
{
    download(file, "text/csv; charset=utf-8", Body::from_stream(body))
}

/// A download named `file` (ASCII) of `content_type`. Personal data: never cached.
pub fn download(file: &str, content_type: &'static str, body: Body) -> Response {
    let disposition = HeaderValue::from_str(&format!("attachment; filename=\"{file}\""))
        .unwrap_or(HeaderValue::from_static("attachment"));
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (header::CONTENT_DISPOSITION, disposition),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        body,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use setia_core::{CustomerId, Money};
    use setia_store::dashboard::CustomerScores;

    fn row(id: i64, name: &str, as_of: Option<&str>) -> CustomerListRow {
        CustomerListRow {
            id: CustomerId::from_key(id),
            external_id: format!("c{id}"),
            name: Some(name.into()),
            email: None,
            marketing_consent: id % 2 == 0,
            scores: as_of.map(|as_of| CustomerScores {
                as_of: as_of.into(),
                recency_days: 12,
                frequency_days: 3,
                monetary: Money::from_minor(15_000_050),
                r: 4,
                f: 3,
                m: 5,
                segment: "loyal".into(),
                p_alive: Some(0.912_345),
                expected_purchases_90d: None,
                clv_12m: Some(Money::from_minor(-5)),
            }),
        }
    }

    fn read(bytes: &[u8]) -> Vec<Vec<String>> {
        csv::ReaderBuilder::new()
            .has_headers(false)
            .from_reader(bytes)
            .records()
            .map(|r| r.unwrap().iter().map(str::to_owned).collect())
            .collect()
    }

    #[test]
    fn formulas_are_written_as_text() {
        for formula in ["=1+1", "+62812", "-2", "@SUM(A1)", "\tx", "\rx"] {
            assert_eq!(guard_cell(formula), format!("'{formula}"));
        }
        for plain in ["", "Budi", "a=b", "'quoted", "62812"] {
            assert_eq!(guard_cell(plain), plain);
        }
    }

    #[test]
    fn the_header_comes_once_and_cells_follow_it() {
        let mut csv = CsvRows::default();
        let first = csv
            .encode(&[row(2, "=HYPERLINK(\"http://x\")", Some("2026-12-01"))])
            .unwrap();
        let second = csv.encode(&[row(3, "Siti, \"Ibu\"\nline", None)]).unwrap();
        let mut all = first.to_vec();
        all.extend_from_slice(&second);
        let lines = read(&all);
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[0], HEADER);
        assert_eq!(
            lines[1],
            [
                "c2",
                "'=HYPERLINK(\"http://x\")",
                "",
                "true",
                "loyal",
                "4",
                "3",
                "5",
                "12",
                "3",
                "150000.50",
                "0.9123",
                "",
                "-0.05",
                "2026-12-01"
            ]
        );
        assert_eq!(lines[2][1], "Siti, \"Ibu\"\nline");
        assert_eq!(lines[2][3], "false");
        assert!(lines[2][4..].iter().all(String::is_empty));
        assert_eq!(csv.rows(), 2);
    }

    #[test]
    fn scores_of_two_days_stop_the_export() {
        let mut csv = CsvRows::default();
        csv.encode(&[row(1, "a", Some("2026-12-01")), row(2, "b", None)])
            .unwrap();
        let err = csv.encode(&[row(3, "c", Some("2026-12-02"))]).unwrap_err();
        assert!(matches!(err, ExportError::ScoresChanged { .. }), "{err}");
    }
}
