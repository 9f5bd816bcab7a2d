//! `setia sandbox push|generate`.

use std::fs::File;
use std::io::Write;

use anyhow::Context;
use chrono::{TimeDelta, Utc};
use setia_analytics::simulate::{
    write_import_csv, SimulationConfig, SimulationParams, SimulationWindow,
};
use setia_core::WebhookSecret;
use setia_sandbox::{population, Simulator};

use super::print_json;
use crate::cli::{SandboxCommand, SandboxGenerate, SandboxPush};
use crate::exit::CliError;

/// The simulated store's customers: `setia demo` imports the same ones, so pushed payments
/// find their customers there.
pub const POPULATION_SEED: u64 = 2026;
pub const POPULATION_SIZE: usize = 300;

pub async fn run(command: SandboxCommand) -> Result<(), CliError> {
    match command {
        SandboxCommand::Push(args) => push(args).await,
        SandboxCommand::Generate(args) => generate(args).await,
    }
}

async fn push(args: SandboxPush) -> Result<(), CliError> {
    let secret = WebhookSecret::parse(&args.secret)
        .map_err(|e| CliError::BadInput(format!("--secret: {e}")))?;
    if !(args.url.starts_with("http://") || args.url.starts_with("https://")) {
        return Err(CliError::BadInput(format!(
            "--url: {:?} is not an http(s) URL",
            args.url
        )));
    }
    let today = Utc::now().date_naive();
    let mut simulator = Simulator::new(
        rand::random(),
        population(POPULATION_SEED, POPULATION_SIZE, today),
    );
    let summary = setia_sandbox::push(
        &mut simulator,
        &args.url,
        &secret,
        args.mutations,
        args.rate,
    )
    .await
    .map_err(|e| CliError::BadInput(e.to_string()))?;
    print_json(&summary)
}

/// Two years of history to yesterday: long enough for cohorts and the churn model.
pub fn history_window(days: u32) -> Result<SimulationWindow, CliError> {
    let yesterday = Utc::now().date_naive() - TimeDelta::days(1);
    SimulationWindow::ending_on(yesterday, days).map_err(|e| CliError::Failed(e.into()))
}

async fn generate(args: SandboxGenerate) -> Result<(), CliError> {
    let config = SimulationConfig::targeting(
        args.customers,
        args.purchases,
        history_window(730)?,
        SimulationParams::default(),
        args.seed,
    )
    .map_err(|e| CliError::BadInput(e.to_string()))?;
    let (path, items_path, seed) = (args.out.clone(), args.items_out.clone(), args.seed);
    let (summary, items) = tokio::task::spawn_blocking(move || -> Result<_, CliError> {
        let cannot = |what: &str, path: &std::path::Path, e: std::io::Error| {
            CliError::BadInput(format!("cannot {what} {}: {e}", path.display()))
        };
        let file = File::create(&path).map_err(|e| cannot("write", &path, e))?;
        let summary = write_import_csv(&config, file).map_err(|e| CliError::Failed(e.into()))?;
        // The items are drawn from the history as written, so the two files always match.
        let items = match &items_path {
            Some(items_path) => {
                let history = File::open(&path).map_err(|e| cannot("read", &path, e))?;
                let out = File::create(items_path).map_err(|e| cannot("write", items_path, e))?;
                let written = setia_sandbox::write_items_csv(history, out, seed)
                    .map_err(|e| CliError::Failed(e.into()))?;
                Some(written)
            }
            None => None,
        };
        Ok((summary, items))
    })
    .await
    .context("the generator stopped")??;
    std::io::stdout().flush().ok();
    let mut printed = serde_json::json!({
        "customers": summary.customers,
        "purchases": summary.purchases,
        "revenue": setia_core::Money::from_minor(summary.revenue_minor),
        "out": args.out.display().to_string(),
    });
    if let (Some(items), Some(items_out)) = (items, &args.items_out) {
        printed["lines"] = items.lines.into();
        printed["items_out"] = items_out.display().to_string().into();
    }
    print_json(&printed)
}
