//! `setia campaign create|list|show`: the same parsing, writing and results as the API's.

use chrono::{DateTime, Utc};
use setia_core::campaign::{CampaignInput, MAX_BODY_BYTES};
use setia_core::CampaignId;
use setia_store::{PageRequest, Store};
use setia_web::campaign_api::{create_campaign, report, CreateError};

use super::{find_merchant, print_json};
use crate::cli::{CampaignCreateArgs, CampaignListArgs, CampaignShowArgs};
use crate::exit::CliError;

pub async fn create(store: &dyn Store, args: CampaignCreateArgs) -> Result<(), CliError> {
    let merchant = find_merchant(store, &args.merchant).await?;
    let path = args.body.display();
    // Read no more than one byte past the limit: a huge file is refused without loading it.
    let file = std::fs::File::open(&args.body)
        .map_err(|e| CliError::BadInput(format!("--body {path}: {e}")))?;
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(
        &mut std::io::Read::take(file, MAX_BODY_BYTES as u64 + 1),
        &mut bytes,
    )
    .map_err(|e| CliError::BadInput(format!("--body {path}: {e}")))?;
    let body = String::from_utf8(bytes)
        .map_err(|_| CliError::BadInput(format!("--body {path}: not UTF-8 text")))?;
    let send_at = args
        .send_at
        .as_deref()
        .map(|text| {
            DateTime::parse_from_rfc3339(text.trim())
                .map(|at| at.to_utc())
                .map_err(|_| {
                    CliError::BadInput(format!(
                        "--send-at: {text:?} is not an RFC 3339 instant (e.g. 2027-03-01T09:00:00+07:00)"
                    ))
                })
        })
        .transpose()?;
    let input = CampaignInput {
        name: &args.name,
        audience: &args.audience,
        subject: &args.subject,
        body: &body,
        send_at,
        early_access_days: args.early_access_days,
    };
    let created = create_campaign(store, &merchant.id, &input, Utc::now())
        .await
        .map_err(|error| match error {
            CreateError::Invalid(error) => CliError::BadInput(format!("campaign: {error}")),
            CreateError::Store(error) => error.into(),
        })?;
    print_json(&created)
}

pub async fn list(store: &dyn Store, args: CampaignListArgs) -> Result<(), CliError> {
    let merchant = find_merchant(store, &args.merchant).await?;
    let mut all = Vec::new();
    let mut before = None;
    loop {
        let page = store
            .campaigns(&merchant.id, PageRequest { before, limit: 500 })
            .await?;
        all.extend(page.items);
        match page.next_cursor {
            Some(cursor) => before = Some(cursor),
            None => break,
        }
    }
    print_json(&all)
}

pub async fn show(store: &dyn Store, args: CampaignShowArgs) -> Result<(), CliError> {
    let merchant = find_merchant(store, &args.merchant).await?;
    let id = CampaignId::parse(&args.id).map_err(|e| CliError::BadInput(format!("{e}")))?;
    let campaign = store
        .campaign(&merchant.id, id)
        .await?
        .ok_or_else(|| CliError::BadInput(format!("no campaign {id} for this merchant")))?;
    print_json(&report(store, &merchant.id, campaign, Utc::now()).await?)
}
