//! `setia customers erase`: a customer's right to erasure, from the command line.

use chrono::Utc;
use setia_core::customer::ExternalId;
use setia_store::Store;

use super::{find_merchant, print_json};
use crate::cli::CustomerEraseArgs;
use crate::exit::CliError;

pub async fn erase(store: &dyn Store, args: CustomerEraseArgs) -> Result<(), CliError> {
    let merchant = find_merchant(store, &args.merchant).await?;
    let external_id = ExternalId::parse(&args.external_id)
        .map_err(|e| CliError::BadInput(format!("external id: {e}")))?;
    let erasure = store
        .erase_customer(&merchant.id, &external_id, Utc::now())
        .await?
        .ok_or_else(|| {
            CliError::BadInput(format!(
                "merchant {} has no customer {external_id} (or they were erased already)",
                merchant.id
            ))
        })?;
    // The log line names the anonymous row only: the old id may itself identify the person.
    tracing::info!(merchant = %merchant.id, customer = %erasure.customer, "customer erased");
    print_json(&erasure)
}
