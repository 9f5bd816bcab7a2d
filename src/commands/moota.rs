//! `setia merchant moota` (the token and banks) and `setia moota sync` (one reconciliation).

use anyhow::Context;
use chrono::{NaiveDate, Utc};
use setia_core::moota_api::{MootaBankId, MootaToken, SyncWindow};
use setia_core::MerchantTimezone;
use setia_ingest::reconcile::SyncError;
use setia_store::reconcile::SyncStarter;
use setia_store::{Merchant, Store};

use super::{find_merchant, print_json};
use crate::cli::{MerchantMoota, MootaSyncArgs};
use crate::config::Settings;
use crate::exit::CliError;

pub async fn settings(store: &dyn Store, args: MerchantMoota) -> Result<(), CliError> {
    let merchant = find_merchant(store, &args.merchant).await?;
    let token = match &args.token_file {
        None => None,
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| CliError::BadInput(format!("--token-file {}: {e}", path.display())))?;
            Some(
                MootaToken::parse(&text).map_err(|e| {
                    CliError::BadInput(format!("--token-file {}: {e}", path.display()))
                })?,
            )
        }
    };
    let banks = args.banks.as_deref().map(parse_banks).transpose()?;
    if token.is_none() && banks.is_none() {
        return Err(CliError::BadInput(
            "give --token-file, --banks or both".into(),
        ));
    }
    store
        .set_moota_settings(&merchant.id, token.as_ref(), banks.as_deref())
        .await?;
    let stored = store.moota_settings(&merchant.id).await?;
    print_json(&serde_json::json!({
        "merchant": merchant.id,
        "token": if stored.token.is_some() { "set" } else { "not set" },
        "banks": if stored.banks.is_empty() { serde_json::json!("all") } else { serde_json::json!(stored.banks) },
    }))
}

/// `all`, or bank ids separated by commas.
fn parse_banks(text: &str) -> Result<Vec<MootaBankId>, CliError> {
    if text.trim().eq_ignore_ascii_case("all") {
        return Ok(Vec::new());
    }
    let mut banks = text
        .split(',')
        .map(|id| MootaBankId::parse(id).map_err(|e| CliError::BadInput(format!("--banks: {e}"))))
        .collect::<Result<Vec<_>, _>>()?;
    banks.sort();
    banks.dedup();
    Ok(banks)
}

fn day(flag: &str, text: &str) -> Result<NaiveDate, CliError> {
    NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d")
        .map_err(|_| CliError::BadInput(format!("{flag}: {text:?} is not a day as YYYY-MM-DD")))
}

/// The window a scheduled sync of this merchant would take at `now`.
pub async fn scheduled_window(
    store: &dyn Store,
    merchant: &Merchant,
    now: chrono::DateTime<Utc>,
) -> Result<SyncWindow, setia_store::StoreError> {
    let moota_days = MerchantTimezone::default();
    let last = store.last_synced_day(&merchant.id).await?;
    Ok(SyncWindow::scheduled(
        last,
        moota_days.local_day(merchant.created_at),
        moota_days.local_day(now),
    ))
}

pub async fn sync(
    store: &dyn Store,
    settings: &Settings,
    args: MootaSyncArgs,
) -> Result<(), CliError> {
    let merchant = find_merchant(store, &args.merchant).await?;
    let since = args
        .since
        .as_deref()
        .map(|t| day("--since", t))
        .transpose()?;
    let until = args
        .until
        .as_deref()
        .map(|t| day("--until", t))
        .transpose()?;
    let now = Utc::now();
    let default = scheduled_window(store, &merchant, now).await?;
    // Today in Moota's zone, as the scheduled window's end.
    let window = SyncWindow::requested(
        since.unwrap_or(default.since),
        until.unwrap_or(default.until),
        MerchantTimezone::default().local_day(now),
    )
    .map_err(|e| CliError::BadInput(e.to_string()))?;
    let api = settings.moota_api()?;
    match setia_ingest::reconcile::sync(
        store,
        &api,
        &merchant.id,
        window,
        SyncStarter::Command,
        now,
    )
    .await
    {
        Ok(report) => print_json(&report),
        Err(error @ SyncError::NoToken(_)) => Err(CliError::BadInput(error.to_string())),
        Err(error) => Err(CliError::Failed(
            anyhow::Error::new(error).context("the Moota sync failed"),
        )),
    }
}

/// The scheduled sync in `setia serve` and `setia worker`: every merchant with a token,
/// each claimed under a lease so that one process syncs it, every `every`.
pub async fn scheduled(
    store: std::sync::Arc<dyn Store>,
    api: setia_ingest::reconcile::MootaApi,
    every: chrono::TimeDelta,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    // Longer than a sync of a busy month with every retry; a process that dies holding a
    // merchant gives it up when the lease runs out.
    let lease = chrono::TimeDelta::minutes(15);
    while !*stop.borrow() {
        if let Err(error) = scheduled_step(&*store, &api, every, lease).await {
            tracing::error!(error = %format!("{error:#}"), "scheduled Moota sync failed");
        }
        tokio::select! {
            _ = tokio::time::sleep(std::time::Duration::from_secs(30)) => {}
            _ = stop.changed() => {}
        }
    }
}

async fn scheduled_step(
    store: &dyn Store,
    api: &setia_ingest::reconcile::MootaApi,
    every: chrono::TimeDelta,
    lease: chrono::TimeDelta,
) -> anyhow::Result<()> {
    let claim = hex::encode(rand::random::<[u8; 16]>());
    for id in store.moota_merchants().await? {
        let now = Utc::now();
        if !store.claim_moota_sync(&id, &claim, now, lease).await? {
            continue;
        }
        let outcome = async {
            let merchant = store.merchant(&id).await?.context("the merchant")?;
            let window = scheduled_window(store, &merchant, now).await?;
            // A failed sync is recorded with its reason; the next one retries its window.
            let _ =
                setia_ingest::reconcile::sync(store, api, &id, window, SyncStarter::Schedule, now)
                    .await;
            anyhow::Ok(())
        }
        .await;
        store
            .release_moota_sync(&id, &claim, Utc::now() + every)
            .await?;
        outcome?;
    }
    Ok(())
}
