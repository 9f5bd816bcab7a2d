//! `setia customers import`, `setia transactions import` and `setia items import`.
//!
//! A file is read twice: first to check every row (nothing is written if one is bad, unless
//! --skip-invalid), then to stream the rows in batches into one database transaction. So a
//! file of any size imports in constant memory and all or nothing.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use setia_core::import::{CustomersCsv, ItemsCsv, RowError, TransactionsCsv};
use setia_store::{ImportBatches, ImportMessage, Store, StoreError};
use tokio::sync::mpsc;

use super::{find_merchant, print_json};
use crate::cli::{ImportArgs, TransactionImportArgs};
use crate::exit::CliError;

const BATCH_ROWS: usize = 5_000;
/// How many bad rows a failed import lists before it says how many more there are.
const ERRORS_SHOWN: usize = 20;
/// How many bad rows the summary of a `--skip-invalid` import lists: a file of millions of
/// bad rows must not be held in memory, nor printed.
const REJECTED_LISTED: usize = 1_000;

#[derive(Debug, Serialize)]
struct Summary {
    rows: u64,
    inserted: u64,
    updated: u64,
    skipped_duplicates: u64,
    customers_created: u64,
    #[serde(flatten)]
    rejected: Rejected,
}

pub async fn customers(store: Arc<dyn Store>, args: ImportArgs) -> Result<(), CliError> {
    let merchant = find_merchant(&*store, &args.merchant).await?;
    let checked = check_file(&args, CustomersCsv::new).await?;
    let (batches, reader) = stream_rows(&args, CustomersCsv::new);
    let counts = finish(
        &args.file,
        store.import_customers(&merchant.id, batches).await,
        reader,
    )
    .await?;
    print_json(&Summary {
        rows: checked.rows,
        inserted: counts.inserted,
        updated: counts.updated,
        skipped_duplicates: counts.unchanged,
        customers_created: counts.inserted,
        rejected: checked.rejected,
    })
}

pub async fn transactions(
    store: Arc<dyn Store>,
    args: TransactionImportArgs,
) -> Result<(), CliError> {
    let TransactionImportArgs {
        import: args,
        award_points,
    } = args;
    let merchant = find_merchant(&*store, &args.merchant).await?;
    let zone = merchant.timezone;
    // A purchase after tomorrow is a typo in the file, not history.
    let now = chrono::Utc::now();
    let csv =
        move |source: Source| TransactionsCsv::new(source, zone).map(|csv| csv.not_after(now));
    let checked = check_file(&args, csv).await?;
    let (batches, reader) = stream_rows(&args, csv);
    let counts = finish(
        &args.file,
        store.import_transactions(&merchant.id, batches).await,
        reader,
    )
    .await?;
    if award_points {
        // Idempotent: a rerun after a crash here awards what is still missing.
        let (purchases, points) = store
            .award_missing_points(&merchant.id, chrono::Utc::now())
            .await?;
        tracing::info!(
            purchases,
            points,
            "loyalty points awarded for imported purchases"
        );
    }
    print_json(&Summary {
        rows: checked.rows,
        inserted: counts.inserted,
        updated: 0,
        skipped_duplicates: counts.skipped_duplicates,
        customers_created: counts.customers_created,
        rejected: checked.rejected,
    })
}

#[derive(Debug, Serialize)]
struct ItemsSummary {
    rows: u64,
    inserted: u64,
    skipped_duplicates: u64,
    products_created: u64,
    #[serde(flatten)]
    rejected: Rejected,
}

pub async fn items(store: Arc<dyn Store>, args: ImportArgs) -> Result<(), CliError> {
    let merchant = find_merchant(&*store, &args.merchant).await?;
    let checked = check_file(&args, ItemsCsv::new).await?;
    let (batches, reader) = stream_rows(&args, ItemsCsv::new);
    let counts = finish(
        &args.file,
        store
            .import_items(&merchant.id, batches, chrono::Utc::now())
            .await,
        reader,
    )
    .await?;
    print_json(&ItemsSummary {
        rows: checked.rows,
        inserted: counts.inserted,
        skipped_duplicates: counts.skipped_duplicates,
        products_created: counts.products_created,
        rejected: checked.rejected,
    })
}

/// A boxed byte source that draws a progress bar on a terminal and nothing when piped.
type Source = Box<dyn Read + Send>;

fn open(path: &Path, label: &'static str) -> Result<Source, CliError> {
    let file = File::open(path)
        .map_err(|e| CliError::BadInput(format!("cannot read {}: {e}", path.display())))?;
    let length = file.metadata().map(|m| m.len()).unwrap_or(0);
    // indicatif hides the bar by itself when stderr is not a terminal.
    let bar = ProgressBar::new(length).with_message(label);
    bar.set_style(
        ProgressStyle::with_template("{msg:10} [{bar:40}] {bytes}/{total_bytes} ({eta})")
            .expect("a valid template")
            .progress_chars("=> "),
    );
    Ok(Box::new(BufReader::with_capacity(
        1 << 20,
        bar.wrap_read(file),
    )))
}

fn bad_row(file: &Path, error: &RowError) -> String {
    format!("{}: {error}", file.display())
}

struct Checked {
    rows: u64,
    rejected: Rejected,
}

/// The bad rows of a file: the first [`REJECTED_LISTED`], and how many in all when there
/// were more (`rejected_total` appears only then, so the usual summary keeps its shape).
#[derive(Debug, Default, Serialize)]
struct Rejected {
    rejected: Vec<RowError>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rejected_total: Option<u64>,
}

impl Rejected {
    fn push(&mut self, error: RowError) {
        let total = self.total() + 1;
        if self.rejected.len() < REJECTED_LISTED {
            self.rejected.push(error);
        } else {
            self.rejected_total = Some(total);
        }
    }

    fn total(&self) -> u64 {
        self.rejected_total.unwrap_or(self.rejected.len() as u64)
    }
}

/// The first pass: every row parsed, none written.
async fn check_file<T, I>(
    args: &ImportArgs,
    parse: impl FnOnce(Source) -> Result<I, RowError> + Send + 'static,
) -> Result<Checked, CliError>
where
    I: Iterator<Item = Result<T, RowError>>,
{
    let path = args.file.clone();
    let checked = tokio::task::spawn_blocking(move || -> Result<Checked, CliError> {
        let rows =
            parse(open(&path, "checking")?).map_err(|e| CliError::BadInput(bad_row(&path, &e)))?;
        let mut checked = Checked {
            rows: 0,
            rejected: Rejected::default(),
        };
        for row in rows {
            checked.rows += 1;
            if let Err(error) = row {
                checked.rejected.push(error);
            }
        }
        Ok(checked)
    })
    .await
    .context("the file check stopped")??;

    let total = checked.rejected.total();
    if total > 0 && !args.skip_invalid {
        let mut message = format!(
            "{} has {total} invalid row(s); nothing was imported (--skip-invalid imports the rest):",
            args.file.display(),
        );
        for error in checked.rejected.rejected.iter().take(ERRORS_SHOWN) {
            message.push_str(&format!("\n  {}", bad_row(&args.file, error)));
        }
        if total > ERRORS_SHOWN as u64 {
            message.push_str(&format!("\n  … and {} more", total - ERRORS_SHOWN as u64));
        }
        return Err(CliError::BadInput(message));
    }
    Ok(checked)
}

/// The second pass: valid rows streamed to the store in batches.
fn stream_rows<T, I>(
    args: &ImportArgs,
    parse: impl FnOnce(Source) -> Result<I, RowError> + Send + 'static,
) -> (
    ImportBatches<T>,
    tokio::task::JoinHandle<Result<(), CliError>>,
)
where
    T: Send + 'static,
    I: Iterator<Item = Result<T, RowError>>,
{
    let (sender, receiver) = mpsc::channel(4);
    let path: PathBuf = args.file.clone();
    let skip_invalid = args.skip_invalid;
    let reader = tokio::task::spawn_blocking(move || -> Result<(), CliError> {
        // A send fails only when the store has stopped reading; it reports why.
        let send = |message| sender.blocking_send(message).is_ok();
        let rows = match parse(open(&path, "importing")?) {
            Ok(rows) => rows,
            Err(error) => {
                send(ImportMessage::Failed(error));
                return Ok(());
            }
        };
        let mut batch = Vec::with_capacity(BATCH_ROWS);
        for row in rows {
            match row {
                Ok(record) => batch.push(record),
                Err(_) if skip_invalid => continue,
                // The file changed since it was checked.
                Err(error) => {
                    send(ImportMessage::Failed(error));
                    return Ok(());
                }
            }
            if batch.len() == BATCH_ROWS && !send(ImportMessage::Rows(std::mem::take(&mut batch))) {
                return Ok(());
            }
        }
        if !batch.is_empty() && !send(ImportMessage::Rows(batch)) {
            return Ok(());
        }
        send(ImportMessage::Finished);
        Ok(())
    });
    (receiver, reader)
}

async fn finish<C>(
    file: &Path,
    written: Result<C, StoreError>,
    reader: tokio::task::JoinHandle<Result<(), CliError>>,
) -> Result<C, CliError> {
    let read = reader.await.context("the file reader stopped")?;
    match written {
        Ok(counts) => {
            read?;
            Ok(counts)
        }
        Err(StoreError::ImportAborted(error)) => Err(CliError::BadInput(format!(
            "{} changed while it was imported; nothing was imported: {}",
            file.display(),
            bad_row(file, &error)
        ))),
        Err(StoreError::RowConflict(error)) => Err(CliError::BadInput(format!(
            "{}; nothing was imported",
            bad_row(file, &error)
        ))),
        Err(other) => {
            read?;
            Err(other.into())
        }
    }
}
