//! One module per command family; each takes parsed arguments and the settings.

mod import;
mod merchant;
mod serve;

use std::sync::Arc;

use anyhow::Context;
use setia_core::MerchantId;
use setia_store::{Merchant, Store};

use crate::cli::{Cli, Command, CustomersCommand, MerchantCommand, TransactionsCommand};
use crate::config::Settings;
use crate::exit::CliError;

pub async fn run(cli: Cli) -> Result<(), CliError> {
    let settings = Settings::load(cli.config.as_deref(), cli.database_url.as_deref())?;
    let store = open_store(&settings).await?;
    match cli.command {
        Command::Serve(args) => serve::serve(store, &settings, args).await,
        Command::Migrate => {
            // open_store has applied them.
            println!("{}", serde_json::json!({"migrated": true}));
            Ok(())
        }
        Command::Merchant(MerchantCommand::Create(args)) => merchant::create(&*store, args).await,
        Command::Merchant(MerchantCommand::List) => merchant::list(&*store).await,
        Command::Merchant(MerchantCommand::Loyalty(args)) => merchant::loyalty(&*store, args).await,
        Command::Worker => serve::work(store, &settings).await,
        Command::Customers(CustomersCommand::Import(args)) => import::customers(store, args).await,
        Command::Transactions(TransactionsCommand::Import(args)) => {
            import::transactions(store, args).await
        }
    }
}

/// Connects and applies pending migrations: every command runs on an up-to-date schema.
async fn open_store(settings: &Settings) -> Result<Arc<dyn Store>, CliError> {
    let store = setia_store::connect(&settings.database_url)
        .await
        .with_context(|| {
            format!(
                "cannot open the database {}",
                redact(&settings.database_url)
            )
        })?;
    store
        .migrate()
        .await
        .context("cannot migrate the database")?;
    Ok(store)
}

/// A database URL without its password, for messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let credentials = &url[scheme + 3..at];
            match credentials.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
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

#[cfg(test)]
mod tests {
    #[test]
    fn passwords_are_hidden_in_database_urls() {
        assert_eq!(
            super::redact("postgres://setia:s3cret@db:5432/setia"),
            "postgres://setia:***@db:5432/setia"
        );
        assert_eq!(
            super::redact("postgres://postgres@db/x"),
            "postgres://postgres@db/x"
        );
        assert_eq!(super::redact("sqlite://./a.db"), "sqlite://./a.db");
    }
}
