//! Times the simulator and the metrics batch on synthetic data.
//!
//! `cargo run --release -p setia-analytics --example metrics_bench -- [CUSTOMERS] [PURCHASES]`
//! (defaults: 1 000 000 customers, 10 000 000 purchases).

use std::time::Instant;

use setia_analytics::simulate::{
    simulate_columns, write_import_csv, SimulationConfig, SimulationParams, SimulationWindow,
};
use setia_analytics::{
    compute_metrics, fit_bg_nbd, BgNbdHistory, BgNbdSummary, MetricsRequest, Period,
};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let customers: u64 = args
        .next()
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(1_000_000);
    let purchases: u64 = args
        .next()
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(10_000_000);
    let window = SimulationWindow::default();
    let zone = chrono_tz::Asia::Jakarta;

    let started = Instant::now();
    let config = SimulationConfig::targeting(
        customers,
        purchases,
        window,
        SimulationParams::default(),
        42,
    )?;
    println!(
        "target {purchases} purchases: alpha {:.5} ({:.2?})",
        config.params.churn.alpha,
        started.elapsed()
    );

    let started = Instant::now();
    let summary = write_import_csv(&config, std::io::sink())?;
    println!(
        "CSV of {} rows to a sink: {:.2?}",
        summary.purchases,
        started.elapsed()
    );

    let started = Instant::now();
    let columns = simulate_columns(&config, zone)?;
    println!(
        "{} purchase columns: {:.2?}",
        columns.len(),
        started.elapsed()
    );

    let request = MetricsRequest::new("mer_bench", window.last_day(), zone, Period::Month);
    let started = Instant::now();
    let output = compute_metrics(&request, columns, &[])?;
    println!("compute_metrics: {:.2?}", started.elapsed());
    let missing = |pick: fn(&setia_analytics::CustomerScore) -> bool| {
        output
            .customer_scores
            .iter()
            .filter(|score| pick(score))
            .count()
    };
    println!(
        "customers without P(alive) {}, without a 90-day forecast {}, without a CLV {}",
        missing(|s| s.p_alive.is_none()),
        missing(|s| s.expected_purchases_90d.is_none()),
        missing(|s| s.clv_12m_minor.is_none())
    );

    let histories: Vec<BgNbdHistory> = output
        .customer_scores
        .iter()
        .map(|score| {
            let first = score.first_purchase_day;
            BgNbdHistory::from_days(
                score.frequency_days - 1,
                (score.last_purchase_day - first).num_days() as i32,
                (window.last_day() - first).num_days() as i32,
            )
        })
        .collect();
    let started = Instant::now();
    let summary = BgNbdSummary::from_histories(&histories);
    let compressed = started.elapsed();
    let started = Instant::now();
    let fit = fit_bg_nbd(&summary)?;
    println!(
        "BG/NBD: {} customers -> {} distinct histories ({compressed:.2?}); fit {:.2?}, {} iterations, {:?}",
        summary.customers(),
        summary.distinct_histories(),
        started.elapsed(),
        fit.iterations,
        fit.params
    );
    println!("{}", output.report.to_table());
    Ok(())
}
