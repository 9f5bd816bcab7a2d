//! `setia merchant create|list|loyalty|engagement`.

use rand::RngCore;
use serde::Serialize;
use setia_core::engagement::EngagementProgram;
use setia_core::loyalty::LoyaltyProgram;
use setia_core::merchant::parse_report_emails;
use setia_core::{ApiToken, MerchantId, MerchantName, MerchantTimezone, WebhookSecret};
use setia_store::{Merchant, NewMerchant, Store};

use super::find_merchant;
use super::print_json;
use crate::cli::{MerchantCreate, MerchantProgram};
use crate::exit::CliError;

fn webhook_path(id: &MerchantId) -> String {
    format!("/webhooks/moota/{id}")
}

pub async fn create(store: &dyn Store, args: MerchantCreate) -> Result<(), CliError> {
    let bad = |flag: &str, e: &dyn std::fmt::Display| CliError::BadInput(format!("--{flag}: {e}"));
    let name = MerchantName::parse(&args.name).map_err(|e| bad("name", &e))?;
    let timezone = MerchantTimezone::parse(&args.timezone).map_err(|e| bad("timezone", &e))?;
    let report_emails =
        parse_report_emails(&args.report_emails).map_err(|e| bad("report-email", &e))?;
    let mut rng = rand::rng();
    let webhook_secret = match &args.webhook_secret {
        Some(text) => WebhookSecret::parse(text).map_err(|e| bad("webhook-secret", &e))?,
        None => WebhookSecret::from_random_bytes(random_bytes(&mut rng)),
    };
    // Both files are read before anything is written: a bad one creates no merchant.
    let program = args
        .loyalty
        .as_deref()
        .map(|path| read_program(path, LoyaltyProgram::from_toml))
        .transpose()?;
    let engagement = args
        .engagement
        .as_deref()
        .map(|path| read_program(path, EngagementProgram::from_toml))
        .transpose()?;
    let api_token = ApiToken::from_random_bytes(random_bytes(&mut rng));
    let merchant = store
        .create_merchant(NewMerchant {
            id: MerchantId::from_random_bytes(random_bytes(&mut rng)),
            name,
            timezone,
            webhook_secret,
            api_token_hash: api_token.hash(),
            report_emails,
            sandbox: args.sandbox,
        })
        .await?;
    if let Some(program) = &program {
        store.set_loyalty_program(&merchant.id, program).await?;
    }
    if let Some(engagement) = &engagement {
        store
            .set_engagement_program(&merchant.id, engagement)
            .await?;
    }

    #[derive(Serialize)]
    struct Created<'a> {
        id: &'a MerchantId,
        name: &'a str,
        timezone: &'a str,
        webhook_path: String,
        webhook_secret: &'a str,
        api_token: &'a str,
    }
    print_json(&Created {
        id: &merchant.id,
        name: &merchant.name,
        timezone: merchant.timezone.name(),
        webhook_path: webhook_path(&merchant.id),
        webhook_secret: merchant.webhook_secret.expose(),
        api_token: api_token.expose(),
    })
}

pub async fn list(store: &dyn Store) -> Result<(), CliError> {
    #[derive(Serialize)]
    struct Listed<'a> {
        #[serde(flatten)]
        merchant: &'a Merchant,
        webhook_path: String,
    }
    let merchants = store.list_merchants().await?;
    let listed: Vec<Listed> = merchants
        .iter()
        .map(|merchant| Listed {
            merchant,
            webhook_path: webhook_path(&merchant.id),
        })
        .collect();
    print_json(&listed)
}

/// A program's TOML file, parsed; any problem names the file.
fn read_program<T, E: std::fmt::Display>(
    path: &std::path::Path,
    parse: impl FnOnce(&str) -> Result<T, E>,
) -> Result<T, CliError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| CliError::BadInput(format!("cannot read {}: {e}", path.display())))?;
    parse(&text).map_err(|e| CliError::BadInput(format!("{}: {e}", path.display())))
}

/// `setia merchant loyalty`: replaces the program; prints the program now in force.
pub async fn loyalty(store: &dyn Store, args: MerchantProgram) -> Result<(), CliError> {
    let merchant = find_merchant(store, &args.merchant).await?;
    let program = read_program(&args.file, LoyaltyProgram::from_toml)?;
    store.set_loyalty_program(&merchant.id, &program).await?;
    print_json(&store.loyalty_program(&merchant.id).await?)
}

/// `setia merchant engagement`: replaces the engagement program; prints the program now in
/// force, defaults included.
pub async fn engagement(store: &dyn Store, args: MerchantProgram) -> Result<(), CliError> {
    let merchant = find_merchant(store, &args.merchant).await?;
    let program = read_program(&args.file, EngagementProgram::from_toml)?;
    store.set_engagement_program(&merchant.id, &program).await?;
    print_json(&store.engagement_program(&merchant.id).await?)
}

fn random_bytes<const N: usize>(rng: &mut impl RngCore) -> [u8; N] {
    let mut bytes = [0u8; N];
    rng.fill_bytes(&mut bytes);
    bytes
}
