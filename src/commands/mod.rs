//! One module per command family; each takes parsed arguments and the settings.

mod campaign;
mod customer_rights;
mod demo;
mod import;
mod mail;
mod merchant;
mod metrics;
mod moota;
mod sandbox;
mod serve;

use std::sync::Arc;

use anyhow::Context;
use setia_core::MerchantId;
use setia_store::{Merchant, Store};

use crate::cli::{
    CampaignCommand, Cli, Command, CustomersCommand, ItemsCommand, MerchantCommand, MootaCommand,
    TransactionsCommand,
};
use crate::config::Settings;
use crate::exit::CliError;

pub async fn run(cli: Cli) -> Result<(), CliError> {
    let settings = Settings::load(cli.config.as_deref(), cli.database_url.as_deref())?;
    if let Command::Sandbox(command) = cli.command {
        return sandbox::run(command).await;
    }
    if let Command::Demo(args) = &cli.command {
        if args.reset {
            demo::reset(&settings)?;
        }
    }
    let store = open_store(&settings).await?;
    let outcome = run_command(cli.command, store.clone(), &settings).await;
    close_store(&*store).await;
    outcome
}

async fn run_command(
    command: Command,
    store: Arc<dyn Store>,
    settings: &Settings,
) -> Result<(), CliError> {
    match command {
        Command::Metrics(args) => metrics::metrics(store, args).await,
        // Handled above: it needs no database.
        Command::Sandbox(_) => Ok(()),
        Command::Mail(command) => mail::run(store, settings, command).await,
        Command::Demo(args) => demo::demo(store, settings, args).await,
        Command::Serve(args) => serve::serve(store, settings, args).await,
        Command::Migrate => {
            // open_store has applied them.
            println!("{}", serde_json::json!({"migrated": true}));
            Ok(())
        }
        Command::Merchant(MerchantCommand::Create(args)) => merchant::create(&*store, args).await,
        Command::Merchant(MerchantCommand::List) => merchant::list(&*store).await,
        Command::Merchant(MerchantCommand::Loyalty(args)) => merchant::loyalty(&*store, args).await,
        Command::Merchant(MerchantCommand::Engagement(args)) => {
            merchant::engagement(&*store, args).await
        }
        Command::Merchant(MerchantCommand::Moota(args)) => moota::settings(&*store, args).await,
        Command::Merchant(MerchantCommand::Rotate(args)) => merchant::rotate(&*store, args).await,
        Command::Moota(MootaCommand::Sync(args)) => moota::sync(&*store, settings, args).await,
        Command::Worker => serve::work(store, settings).await,
        Command::Campaign(CampaignCommand::Create(args)) => campaign::create(&*store, args).await,
        Command::Campaign(CampaignCommand::List(args)) => campaign::list(&*store, args).await,
        Command::Campaign(CampaignCommand::Show(args)) => campaign::show(&*store, args).await,
        Command::Customers(CustomersCommand::Import(args)) => import::customers(store, args).await,
        Command::Customers(CustomersCommand::Erase(args)) => {
            customer_rights::erase(&*store, args).await
        }
        Command::Customers(CustomersCommand::Export(args)) => {
            customer_rights::export(&*store, args).await
        }
        Command::Items(ItemsCommand::Import(args)) => import::items(store, args).await,
        Command::Transactions(TransactionsCommand::Import(args)) => {
            import::transactions(store, args).await
        }
    }
}

/// How long closing may take: on SQLite it copies what the command wrote from the log into
/// the database file (seconds after an import of millions of rows). Past it the process exits
/// anyway, and the next process's background checkpoints finish the copy.
const CLOSE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

async fn close_store(store: &dyn Store) {
    if tokio::time::timeout(CLOSE_TIMEOUT, store.close())
        .await
        .is_err()
    {
        tracing::warn!("the database did not close within {CLOSE_TIMEOUT:?}");
    }
}

/// Connects and applies pending migrations: every command runs on an up-to-date schema.
async fn open_store(settings: &Settings) -> Result<Arc<dyn Store>, CliError> {
    let store = setia_store::connect(&settings.database_url)
        .await
        .with_context(|| {
            format!(
                "cannot open the database {}",
                setia_store::redacted_url(&settings.database_url)
            )
        })?;
    store
        .migrate()
        .await
        .context("cannot migrate the database")?;
    Ok(store)
}

async fn find_merchant(store: &dyn Store, id: &str) -> Result<Merchant, CliError> {
    let id = MerchantId::parse(id).map_err(|e| CliError::BadInput(format!("--merchant: {e}")))?;
    store
        .merchant(&id)
        .await?
        .ok_or_else(|| CliError::BadInput(format!("--merchant: no merchant {id} in this database")))
}

fn print_json(value: &impl serde::Serialize) -> Result<(), CliError> {
    let text = serde_json::to_string_pretty(value).context("cannot serialise the output")?;
    println!("{text}");
    Ok(())
}
