//! `setia customers erase` and `setia customers export`: a customer's rights to erasure and
//! of access, from the command line.

use chrono::Utc;
use setia_core::customer::ExternalId;
use setia_store::{Merchant, Store};

use super::{find_merchant, print_json};
use crate::cli::CustomerArgs;
use crate::exit::CliError;

async fn merchant_and_id(
    store: &dyn Store,
    args: &CustomerArgs,
) -> Result<(Merchant, ExternalId), CliError> {
    let merchant = find_merchant(store, &args.merchant).await?;
    let external_id = ExternalId::parse(&args.external_id)
        .map_err(|e| CliError::BadInput(format!("external id: {e}")))?;
    Ok((merchant, external_id))
}

fn no_customer(merchant: &Merchant, external_id: &ExternalId) -> CliError {
    CliError::BadInput(format!(
        "merchant {} has no customer {external_id} (or they were erased already)",
        merchant.id
    ))
}

pub async fn erase(store: &dyn Store, args: CustomerArgs) -> Result<(), CliError> {
    let (merchant, external_id) = merchant_and_id(store, &args).await?;
    let erasure = store
        .erase_customer(&merchant.id, &external_id, Utc::now())
        .await?
        .ok_or_else(|| no_customer(&merchant, &external_id))?;
    // The log line names the anonymous row only: the old id may itself identify the person.
    tracing::info!(merchant = %merchant.id, customer = %erasure.customer, "customer erased");
    print_json(&erasure)
}

pub async fn export(store: &dyn Store, args: CustomerArgs) -> Result<(), CliError> {
    let (merchant, external_id) = merchant_and_id(store, &args).await?;
    let data = setia_web::customer_data::gather(store, &merchant.id, &external_id, Utc::now())
        .await?
        .ok_or_else(|| no_customer(&merchant, &external_id))?;
    tracing::info!(merchant = %merchant.id, customer = %data.customer.id, "customer data exported");
    print_json(&data)
}
