//! `setia metrics`.

use std::sync::Arc;

use chrono::{NaiveDate, Utc};
use setia_analytics::Period;
use setia_store::Store;

use super::{find_merchant, print_json};
use crate::cli::{CohortPeriod, MetricsArgs, OutputFormat};
use crate::exit::CliError;

pub async fn metrics(store: Arc<dyn Store>, args: MetricsArgs) -> Result<(), CliError> {
    let merchant = find_merchant(&*store, &args.merchant).await?;
    let today = merchant.timezone.local_day(Utc::now());
    let as_of = match &args.as_of {
        Some(text) => NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d").map_err(|_| {
            CliError::BadInput(format!("--as-of: {text:?} is not a date (YYYY-MM-DD)"))
        })?,
        None => today,
    };
    // A snapshot of days that have not happened would read as the latest, hold back the
    // nightly run and measure every customer's recency to that day.
    if as_of > today {
        return Err(CliError::BadInput(format!(
            "--as-of {as_of} is after today ({today} in {}); metrics are of days that have happened",
            merchant.timezone.name()
        )));
    }
    let period = match args.period {
        CohortPeriod::Month => Period::Month,
        CohortPeriod::Week => Period::Week,
    };
    let output = crate::metrics_job::run(&store, &merchant, as_of, period).await?;
    match args.format {
        OutputFormat::Json => print_json(&output.report),
        OutputFormat::Table => {
            print!("{}", output.report.to_table());
            Ok(())
        }
    }
}
