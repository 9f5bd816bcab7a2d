//! The crate's typed errors.

/// Why a metrics run could not produce a report. Models that cannot be fitted are *not*
/// errors: the report says `converged: false` with a reason instead.
#[derive(Debug, thiserror::Error)]
pub enum AnalyticsError {
    #[error(
        "purchase columns differ in length: customer {customer}, occurred_at_micros {occurred_at}, amount_minor {amount}"
    )]
    ColumnLengthMismatch {
        customer: usize,
        occurred_at: usize,
        amount: usize,
    },
    #[error("basket columns differ in length: customer {customer}, product {product}")]
    BasketLengthMismatch { customer: usize, product: usize },
    #[error("catalogue columns differ in length: product {product}, in_stock {in_stock}")]
    CatalogueLengthMismatch { product: usize, in_stock: usize },
    #[error("purchase row {row}: amount {amount_minor} (minor units) is negative")]
    NegativeAmount { row: usize, amount_minor: i64 },
    #[error("purchase row {row}: timestamp {micros} µs is outside the supported calendar")]
    PurchaseTimeOutOfRange { row: usize, micros: i64 },
    #[error("points entry {index}: timestamp {micros} µs is outside the supported calendar")]
    PointsTimeOutOfRange { index: usize, micros: i64 },
    #[error("points entry {index}: a {kind} entry must {rule}, got {points} points")]
    PointsSign {
        index: usize,
        kind: &'static str,
        rule: &'static str,
        points: i64,
    },
    #[error("{what} overflows 64-bit integers")]
    Overflow { what: &'static str },
    #[error("dataframe computation failed: {0}")]
    Polars(#[from] polars::prelude::PolarsError),
    #[error("internal error: {0}")]
    Internal(String),
}
