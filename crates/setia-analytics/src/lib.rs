//! setia-analytics: the metrics batch of setia.
//!
//! Given one merchant's purchases (as in-memory columns) and points ledger, it computes
//! repeat purchase, cohorts, RFM segments, BG/NBD churn, Gamma-Gamma CLV and loyalty totals,
//! and returns a typed [`MetricsReport`] (DESIGN §4, JSON `"schema": 1`) plus one
//! [`CustomerScore`] per customer. It also simulates purchase histories from the same
//! models ([`simulate`]).
//!
//! **Architecture invariant:** this crate knows nothing of SQL, HTTP or files at run time.
//! It is pure computation on in-memory input (callers hand in columns; the simulator writes
//! to any `std::io::Write`), it reads no clock, and its API is synchronous: async callers
//! run it inside `spawn_blocking`. Polars does the column work; the model fits are plain
//! Rust on compressed summaries.
//!
//! Entry point: [`compute_metrics`]. Besides the batch, [`winback_results`] compares the
//! win-back flow's treated customers with its holdout (plain Rust, no Polars).

mod batch;
pub mod bgnbd;
mod calendar;
mod error;
pub mod gamma_gamma;
pub mod hyp2f1;
mod input;
mod loyalty;
mod optimize;
mod recommend;
mod report;
mod rfm;
pub mod simulate;
mod table;
pub mod winback;

pub use batch::compute_metrics;
pub use bgnbd::{
    fit_bg_nbd, BgNbdFit, BgNbdHistory, BgNbdParams, BgNbdSummary, FitError, ModelFit,
};
pub use error::AnalyticsError;
pub use gamma_gamma::{
    customer_lifetime_value, fit_gamma_gamma, GammaGammaData, GammaGammaFit, GammaGammaParams,
};
pub use input::{
    MetricsRequest, Period, PointsEntry, PointsKind, PurchaseColumns, TierThresholds, UnknownPeriod,
};
pub use recommend::{recommend, BasketColumns, CatalogueColumns, RecommendConfig, Recommendations};
pub use report::{
    ChurnModel, ChurnParams, ChurnReport, ClvModel, ClvParams, ClvReport, CohortRow, CustomerScore,
    LoyaltyReport, MetricsOutput, MetricsReport, MinorAmount, RfmReport, SegmentCounts, Tier,
    TierCounts, Totals, FORECAST_DAYS, P_ALIVE_THRESHOLD, SCHEMA_VERSION,
};
pub use rfm::Segment;
pub use winback::{holdout_window, winback_results, WinbackOutcome, WinbackResults, WindowOutcome};
