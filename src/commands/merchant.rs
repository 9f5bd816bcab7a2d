//! `setia merchant create|list|loyalty|engagement|rotate`.

use rand::RngCore;
use serde::Serialize;
use setia_core::engagement::EngagementProgram;
use setia_core::loyalty::LoyaltyProgram;
use setia_core::merchant::parse_report_emails;
use setia_core::{ApiToken, MerchantId, MerchantName, MerchantTimezone, WebhookSecret};
use setia_store::{Merchant, NewMerchant, Store};

use super::find_merchant;
use super::print_json;
use crate::cli::{MerchantCreate, MerchantProgram, MerchantRotate};
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
    let webhook_secret = match (&args.webhook_secret, &args.webhook_secret_file) {
        (Some(text), _) => WebhookSecret::parse(text).map_err(|e| bad("webhook-secret", &e))?,
        (None, Some(path)) => read_secret(path)?,
        (None, None) => WebhookSecret::from_random_bytes(random_bytes(&mut rng)),
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

/// A webhook secret from a file: its one line, without the line ending.
fn read_secret(path: &std::path::Path) -> Result<WebhookSecret, CliError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| CliError::BadInput(format!("cannot read {}: {e}", path.display())))?;
    WebhookSecret::parse(text.trim_end_matches(['\r', '\n']))
        .map_err(|e| CliError::BadInput(format!("{}: {e}", path.display())))
}

/// `setia merchant rotate`: new credentials, printed once.
pub async fn rotate(store: &dyn Store, args: MerchantRotate) -> Result<(), CliError> {
    let merchant = find_merchant(store, &args.merchant).await?;
    let mut rng = rand::rng();
    // Read before anything changes: a bad file rotates nothing.
    let webhook_secret = match (&args.webhook_secret_file, args.webhook_secret) {
        (Some(path), _) => Some(read_secret(path)?),
        (None, true) => Some(WebhookSecret::from_random_bytes(random_bytes(&mut rng))),
        (None, false) => None,
    };
    let api_token = args
        .api_token
        .then(|| ApiToken::from_random_bytes(random_bytes(&mut rng)));
    let sessions_ended = store
        .rotate_credentials(
            &merchant.id,
            api_token.as_ref().map(ApiToken::hash).as_ref(),
            webhook_secret.as_ref(),
        )
        .await?;
    tracing::info!(
        merchant = %merchant.id,
        api_token = api_token.is_some(),
        webhook_secret = webhook_secret.is_some(),
        sessions_ended,
        "credentials rotated"
    );

    #[derive(Serialize)]
    struct Rotated<'a> {
        id: &'a MerchantId,
        #[serde(skip_serializing_if = "Option::is_none")]
        api_token: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        webhook_secret: Option<&'a str>,
        sessions_ended: u64,
    }
    print_json(&Rotated {
        id: &merchant.id,
        api_token: api_token.as_ref().map(ApiToken::expose),
        webhook_secret: webhook_secret.as_ref().map(WebhookSecret::expose),
        sessions_ended,
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
