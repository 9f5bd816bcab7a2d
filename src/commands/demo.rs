//! `setia demo`: the whole product on the embedded database in one command. A sandbox
//! merchant "Toko Demo" with a few hundred customers and a year of history, the server with
//! its worker, email and nightly jobs, live sandbox payments through the real signed webhook
//! endpoint, and metrics at start and every minute. The store sells the sandbox catalogue:
//! the history's purchases carry their lines, and so do the live orders. Its customers
//! answered feedback requests about the history's purchases.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use std::collections::HashMap;

use chrono::{DateTime, TimeDelta, Utc};
use rand::rngs::StdRng;
use rand::{Rng, RngCore, SeedableRng};
use setia_analytics::simulate::{write_import_csv, SimulationConfig, SimulationParams};
use setia_analytics::Period;
use setia_core::feedback::{
    request_decision, FeedbackComment, FeedbackScore, RequestCandidate, RequestDecision,
};
use setia_core::import::{CustomersCsv, ItemsCsv, TransactionsCsv};
use setia_core::product::{Category, LineItem, ProductName, Quantity, Sku, WebLink};
use setia_core::{ApiToken, MerchantId, MerchantName, MerchantTimezone, Money, WebhookSecret};
use setia_sandbox::{
    catalogue, customers_csv, population, CatalogueProduct, PendingOrder, Simulator,
};
use setia_store::catalog::ProductUpsert;
use setia_store::engagement::{ComplaintStatus, NewAnswer, NewFeedbackRequest};
use setia_store::ledger::NewOrder;
use setia_store::{ImportMessage, Merchant, NewMerchant, Store};

use super::sandbox::{history_window, POPULATION_SEED, POPULATION_SIZE};
use crate::cli::DemoArgs;
use crate::config::Settings;
use crate::exit::CliError;

pub const DEMO_MERCHANT: &str = "Toko Demo";
/// Expected purchases of the generated year of history.
const HISTORY_PURCHASES: u64 = 2_400;
/// Live sandbox payments per second.
const LIVE_RATE: f64 = 2.0;
const METRICS_EVERY: Duration = Duration::from_secs(60);

fn random<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    rand::rng().fill_bytes(&mut bytes);
    bytes
}

/// Without `SETIA_PUBLIC_URL`, the demo's emails link to the address it listens on (with
/// `0.0.0.0` read as this machine), so the unsubscribe, member and feedback links in
/// `./setia-data/outbox/` open on the demo whatever `--listen` said.
fn demo_settings(settings: &Settings, listen: &str) -> Settings {
    let mut settings = settings.clone();
    if settings.public_url.is_none() {
        if let Ok(address) = listen.parse::<std::net::SocketAddr>() {
            if address.port() != 0 {
                let host = if address.ip().is_unspecified() {
                    std::net::SocketAddr::new([127, 0, 0, 1].into(), address.port())
                } else {
                    address
                };
                settings.public_url = Some(format!("http://{host}"));
            }
        }
    }
    settings
}

pub async fn demo(
    store: Arc<dyn Store>,
    settings: &Settings,
    args: DemoArgs,
) -> Result<(), CliError> {
    let (merchant, fresh) = demo_merchant(&*store).await?;
    // Before the history: its lines then name products with their links and prices.
    stock_catalogue(&*store, &merchant).await?;
    if fresh {
        seed(&store, &merchant).await?;
    }
    // The token is shown once; a restarted demo gets a new one.
    let token = ApiToken::from_random_bytes(random());
    // Sessions opened with an earlier run's token end with it.
    store
        .rotate_credentials(&merchant.id, Some(&token.hash()), None)
        .await?;

    let listen = args.listen.as_deref().unwrap_or(&settings.listen);
    let settings = &demo_settings(settings, listen);
    let options = super::serve::Options {
        worker: true,
        scheduler: true,
    };
    let running = super::serve::start(store.clone(), settings, listen, options).await?;
    let base_url = running.base_url().to_owned();

    let mut simulator = Simulator::new(
        rand::random(),
        population(POPULATION_SEED, POPULATION_SIZE, Utc::now().date_naive()),
    );
    simulator.expect_orders(register_orders(&*store, &merchant).await?);
    refresh_metrics(&store, &merchant).await;
    // The weekly report is due from Monday 08:00: a demo started before it still shows last
    // week's at once (the running mail loop delivers it).
    super::mail::mailer(store.clone(), settings)?
        .enqueue_latest_report(&merchant.id, Utc::now())
        .await
        .map_err(|error| CliError::Failed(error.into()))?;

    let dashboard = format!("{base_url}/dashboard");
    println!(
        "{}",
        serde_json::json!({"listening": base_url, "dashboard": dashboard, "merchant": merchant.id, "token": token.expose()})
    );
    eprintln!(
        "\nsetia demo is running.\n  Dashboard: {dashboard}\n  Login token: {}\n  Live sandbox payments go to {base_url}/webhooks/moota/{}\n  Emails are written to ./setia-data/outbox/\nPress Ctrl-C to stop.\n",
        token.expose(),
        merchant.id
    );

    let webhook = format!("{base_url}/webhooks/moota/{}", merchant.id);
    let live = async {
        let mut last_metrics = tokio::time::Instant::now();
        loop {
            let pushed = setia_sandbox::push(
                &mut simulator,
                &webhook,
                &merchant.webhook_secret,
                20,
                LIVE_RATE,
            )
            .await;
            if let Err(error) = pushed {
                tracing::warn!(%error, "sandbox push failed");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            if last_metrics.elapsed() >= METRICS_EVERY {
                refresh_metrics(&store, &merchant).await;
                last_metrics = tokio::time::Instant::now();
            }
        }
    };
    tokio::select! {
        _ = live => {}
        _ = super::serve::shutdown_signal() => {}
    }
    running.stop().await
}

/// `--reset`: removes the embedded database (with its WAL files and its scores file) and the
/// .eml folder.
pub fn reset(settings: &Settings) -> Result<(), CliError> {
    let Some(path) = settings.database_url.strip_prefix("sqlite://") else {
        return Err(CliError::BadInput(
            "--reset only deletes the embedded SQLite database; drop a PostgreSQL database yourself".into(),
        ));
    };
    let path = path.split('?').next().unwrap_or(path);
    for file in [
        path.to_owned(),
        format!("{path}-wal"),
        format!("{path}-shm"),
        format!("{path}-scores"),
        format!("{path}-scores-wal"),
        format!("{path}-scores-shm"),
    ] {
        match std::fs::remove_file(&file) {
            Ok(()) => {}
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => {
                return Err(CliError::Failed(anyhow::anyhow!(
                    "cannot remove {file}: {error}"
                )))
            }
        }
    }
    let outbox = std::path::Path::new("setia-data/outbox");
    if outbox.is_dir() {
        std::fs::remove_dir_all(outbox).map_err(|e| {
            CliError::Failed(anyhow::anyhow!("cannot remove {}: {e}", outbox.display()))
        })?;
    }
    Ok(())
}

/// The demo merchant: the one from an earlier run, or a new one.
async fn demo_merchant(store: &dyn Store) -> Result<(Merchant, bool), CliError> {
    if let Some(existing) = store
        .list_merchants()
        .await?
        .into_iter()
        .find(|m| m.sandbox && m.name == DEMO_MERCHANT)
    {
        return Ok((existing, false));
    }
    let merchant = store
        .create_merchant(NewMerchant {
            id: MerchantId::from_random_bytes(random()),
            name: MerchantName::parse(DEMO_MERCHANT).expect("a valid name"),
            timezone: MerchantTimezone::default(),
            webhook_secret: WebhookSecret::from_random_bytes(random()),
            api_token_hash: ApiToken::from_random_bytes(random()).hash(),
            report_emails: vec![
                setia_core::CustomerEmail::parse("pemilik@tokodemo.example.co.id")
                    .expect("an email"),
            ],
            sandbox: true,
        })
        .await?;
    Ok((merchant, true))
}

/// Customers and a year of purchase history, with the points it would have earned.
async fn seed(store: &Arc<dyn Store>, merchant: &Merchant) -> Result<(), CliError> {
    let customers = customers_csv(&population(
        POPULATION_SEED,
        POPULATION_SIZE,
        Utc::now().date_naive(),
    ));
    let records = CustomersCsv::new(customers.as_bytes())
        .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
        .map_err(|e| CliError::Failed(anyhow::anyhow!("demo customers: {e}")))?;
    let (sender, receiver) = tokio::sync::mpsc::channel(2);
    sender.send(ImportMessage::Rows(records)).await.ok();
    sender.send(ImportMessage::Finished).await.ok();
    store.import_customers(&merchant.id, receiver).await?;

    let config = SimulationConfig::targeting(
        POPULATION_SIZE as u64,
        HISTORY_PURCHASES,
        history_window(365)?,
        SimulationParams::default(),
        POPULATION_SEED,
    )
    .map_err(|e| CliError::Failed(e.into()))?;
    let mut history = Vec::new();
    write_import_csv(&config, &mut history).map_err(|e| CliError::Failed(e.into()))?;
    let rows = TransactionsCsv::new(history.as_slice(), merchant.timezone)
        .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
        .map_err(|e| CliError::Failed(anyhow::anyhow!("demo history: {e}")))?;
    let winback_history = rows
        .iter()
        .map(|row| (row.customer.clone(), row.occurred_at))
        .collect::<Vec<_>>();
    let (sender, receiver) = tokio::sync::mpsc::channel(2);
    sender.send(ImportMessage::Rows(rows)).await.ok();
    sender.send(ImportMessage::Finished).await.ok();
    store.import_transactions(&merchant.id, receiver).await?;
    store.award_missing_points(&merchant.id, Utc::now()).await?;

    let mut items = Vec::new();
    setia_sandbox::write_items_csv(history.as_slice(), &mut items, POPULATION_SEED)
        .map_err(|e| CliError::Failed(anyhow::anyhow!("demo items: {e}")))?;
    let lines = ItemsCsv::new(items.as_slice())
        .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
        .map_err(|e| CliError::Failed(anyhow::anyhow!("demo items: {e}")))?;
    let (sender, receiver) = tokio::sync::mpsc::channel(2);
    sender.send(ImportMessage::Rows(lines)).await.ok();
    sender.send(ImportMessage::Finished).await.ok();
    store
        .import_items(&merchant.id, receiver, Utc::now())
        .await?;
    seed_feedback(&**store, merchant).await?;
    seed_winback(&**store, merchant, &winback_history).await
}

/// How long ago the demo's past win-back episodes started: their 30 days are complete.
const WINBACK_ENTERED_DAYS_AGO: i64 = 45;
/// The demo holds out more than the default 10%, so 300 customers make two groups a result
/// can be read from.
const DEMO_HOLDOUT_PERCENT: u32 = 30;

/// Win-back turned on, and the episodes the program would have started 45 days ago with
/// how the simulated customers answered them: the held out come back at the base rate, the
/// treated at a known uplift more (`setia_sandbox::winback`). Their purchases are
/// transfers, put into the inbox as Moota's webhook would, so they count as verified.
async fn seed_winback(
    store: &dyn Store,
    merchant: &Merchant,
    history: &[(setia_core::ExternalId, DateTime<Utc>)],
) -> Result<(), CliError> {
    let mut program = store.engagement_program(&merchant.id).await?;
    program.winback.enabled = true;
    program.winback.holdout_percent = DEMO_HOLDOUT_PERCENT;
    store.set_engagement_program(&merchant.id, &program).await?;
    let settings = &program.winback;
    let entered = Utc::now() - TimeDelta::days(WINBACK_ENTERED_DAYS_AGO);
    let entry_day = merchant.timezone.local_day(entered);
    let mut days: HashMap<&setia_core::ExternalId, Vec<chrono::NaiveDate>> = HashMap::new();
    for (customer, at) in history.iter().filter(|(_, at)| *at < entered) {
        days.entry(customer)
            .or_default()
            .push(merchant.timezone.local_day(*at));
    }
    let population = population(POPULATION_SEED, POPULATION_SIZE, Utc::now().date_naive());
    let mut rng = StdRng::seed_from_u64(POPULATION_SEED ^ 0x77);
    let mut episodes = Vec::new();
    let mut purchases = Vec::new();
    let mut external: Vec<_> = days.keys().copied().collect();
    external.sort();
    for id in external {
        let mut own = days[id].clone();
        own.sort();
        own.dedup();
        let mut gaps: Vec<i32> = own
            .windows(2)
            .map(|d| (d[1] - d[0]).num_days() as i32)
            .collect();
        let median = setia_core::stats::median(&mut gaps);
        let candidate = setia_core::winback::WinbackCandidate {
            purchase_days: own.len() as u32,
            p_alive: None,
            recency_days: (entry_day - *own.last().expect("a day")).num_days(),
            median_gap_days: median,
            reachable: true,
            open_complaint: false,
            in_episode: false,
            last_episode_ended: None,
        };
        let Ok(reason) = setia_core::winback::entry_decision(settings, &candidate, entered) else {
            continue;
        };
        let Some(customer) = store.customer(&merchant.id, id).await? else {
            continue;
        };
        let holdout =
            setia_core::winback::in_holdout(&merchant.id, customer.id, 1, settings.holdout_percent);
        let last_day = settings.steps.last().map_or(0, |s| s.day);
        episodes.push(setia_store::winback::NewEpisode {
            customer: customer.id,
            number: 1,
            reason,
            holdout,
            entered_at: entered,
            counts_from: entered,
            last_step_at: entered + TimeDelta::days(i64::from(last_day)),
            p_alive: None,
            expected_30d: None,
            expected_60d: None,
            // The demo merchant is a sandbox: its customers are never mailed, so its past
            // episodes carry no steps.
            steps: Vec::new(),
        });
        let Some(after) = setia_sandbox::winback::comes_back(
            &mut rng,
            !holdout,
            setia_sandbox::winback::DEMO_UPLIFT,
        ) else {
            continue;
        };
        let Some(payer) = population.iter().find(|c| c.external_id == id.as_str()) else {
            continue;
        };
        let at = entered + TimeDelta::days(i64::from(after)) + TimeDelta::hours(3);
        let body = serde_json::json!([{
            "mutation_id": format!("demo-winback-{}", customer.id.key()),
            "account_number": payer.virtual_account,
            "date": at.with_timezone(&chrono_tz::Asia::Jakarta).format("%Y-%m-%d %H:%M:%S").to_string(),
            "description": format!("VA {} {}", payer.virtual_account, payer.payer_name),
            "amount": rng.random_range(80..400) * 1_000,
            "type": "CR",
            "bank": {"bank_type": "vaSandbox"},
        }])
        .to_string()
        .into_bytes();
        purchases.push(body);
    }
    store
        .start_winback_episodes(&merchant.id, &episodes, entered)
        .await?;
    let calls: Vec<setia_store::WebhookCall> = purchases
        .into_iter()
        .map(|body| {
            use sha2::Digest;
            setia_store::WebhookCall {
                merchant: merchant.id.to_string(),
                received_at: Utc::now(),
                remote_addr: "demo".into(),
                status: 200,
                reason: String::new(),
                body_sha256: Some(hex::encode(sha2::Sha256::digest(&body))),
                body_size: body.len() as u64,
                inbox: Some(setia_store::InboxBody {
                    merchant: merchant.id.clone(),
                    body: body.into(),
                    user_agent: None,
                    moota_user: None,
                    moota_webhook: None,
                }),
            }
        })
        .collect();
    if !calls.is_empty() {
        store.record_webhook_calls(calls.into()).await?;
    }
    Ok(())
}

/// How far back the demo's customers were asked about their purchases.
const FEEDBACK_HISTORY_DAYS: i64 = 180;
/// Complaints older than this are resolved in the demo; newer ones wait in the queue.
const OPEN_COMPLAINT_DAYS: i64 = 14;

/// The feedback of the history: its purchases asked about as the program's rules would ask
/// a real merchant's customers (the demo merchant is a sandbox, so the scheduler asks
/// nobody), and simulated answers, a few of them complaints, older ones resolved.
async fn seed_feedback(store: &dyn Store, merchant: &Merchant) -> Result<(), CliError> {
    let program = store.engagement_program(&merchant.id).await?;
    let settings = &program.feedback;
    let now = Utc::now();
    let from = now - TimeDelta::days(FEEDBACK_HISTORY_DAYS);
    let until = now - TimeDelta::days(i64::from(settings.delay_days));
    let mut last_asked: HashMap<setia_core::CustomerId, DateTime<Utc>> = HashMap::new();
    let mut requests = Vec::new();
    let mut after = None;
    loop {
        let candidates = store
            .feedback_candidates(&merchant.id, from, until, after, 5_000)
            .await?;
        let Some(last) = candidates.last() else {
            break;
        };
        after = Some((last.occurred_at, last.purchase));
        for candidate in &candidates {
            let decision = request_decision(
                settings,
                &RequestCandidate {
                    purchase_at: candidate.occurred_at,
                    sandbox: false,
                    reachable: true,
                    last_request_at: last_asked.get(&candidate.customer).copied(),
                },
            );
            if let RequestDecision::Due(due_at) = decision {
                last_asked.insert(candidate.customer, due_at);
                requests.push(NewFeedbackRequest {
                    customer: candidate.customer,
                    purchase: candidate.purchase,
                    kind: settings.kind,
                    due_at,
                });
            }
        }
    }
    let keys = store
        .create_feedback_requests(&merchant.id, &requests, now)
        .await?;
    let mut rng = StdRng::seed_from_u64(POPULATION_SEED);
    for key in keys {
        let Some(request) = store.feedback_request(&merchant.id, key).await? else {
            continue;
        };
        let Some(simulated) = setia_sandbox::feedback::answer(&mut rng, request.kind) else {
            continue;
        };
        let score = FeedbackScore::new(request.kind, i64::from(simulated.score))
            .map_err(|e| CliError::Failed(anyhow::anyhow!("demo feedback: {e}")))?;
        let comment = simulated
            .comment
            .map(FeedbackComment::parse)
            .transpose()
            .map_err(|e| CliError::Failed(anyhow::anyhow!("demo feedback: {e}")))?
            .flatten();
        let answered_at = (request.due_at + TimeDelta::hours(rng.random_range(1..72))).min(now);
        let recorded = store
            .record_feedback_answer(
                &merchant.id,
                NewAnswer {
                    request: key,
                    score,
                    comment: comment.as_ref(),
                    opens_complaint: score.alerts(request.kind, settings),
                    alert_to: &[],
                },
                answered_at,
            )
            .await?;
        if let Some(complaint) = recorded.and_then(|r| r.opened_complaint) {
            if now - answered_at > TimeDelta::days(OPEN_COMPLAINT_DAYS) {
                store
                    .update_complaint(
                        &merchant.id,
                        complaint,
                        ComplaintStatus::Resolved,
                        Some("Pelanggan sudah dihubungi; barang diganti."),
                        "demo",
                        answered_at + TimeDelta::days(1),
                    )
                    .await?;
            }
        }
    }
    Ok(())
}

/// Every 40th product of the demo catalogue is out of stock, so the dashboard shows that
/// recommendations leave it out.
const OUT_OF_STOCK_EVERY: usize = 40;

/// The sandbox catalogue as the demo store's products, with product pages; unchanged on a
/// second start.
async fn stock_catalogue(store: &dyn Store, merchant: &Merchant) -> Result<(), CliError> {
    let products = catalogue()
        .iter()
        .enumerate()
        .map(|(n, product)| demo_product(n, product))
        .collect::<anyhow::Result<Vec<_>>>()
        .context("the demo catalogue")?;
    for chunk in products.chunks(setia_store::catalog::MAX_PRODUCTS_PER_UPSERT) {
        store
            .upsert_products(&merchant.id, chunk, Utc::now())
            .await?;
    }
    Ok(())
}

fn demo_product(n: usize, product: &CatalogueProduct) -> anyhow::Result<ProductUpsert> {
    let sku = Sku::parse(&product.sku)?;
    let page = format!(
        "https://tokodemo.example.co.id/produk/{}",
        product.sku.to_ascii_lowercase()
    );
    Ok(ProductUpsert {
        name: Some(ProductName::parse(&product.name)?),
        price: Some(Money::from_minor(product.price_minor)),
        url: Some(WebLink::parse(&page)?),
        image_url: None,
        category: Some(Category::parse(&product.category)?),
        in_stock: Some((n + 1) % OUT_OF_STOCK_EVERY != 0),
        released_at: None,
        ..ProductUpsert::of_sku(sku)
    })
}

/// The lines of demo order `n`: one to three catalogue products, the same for the same `n`.
fn demo_order_lines(n: usize, products: &[CatalogueProduct]) -> anyhow::Result<Vec<LineItem>> {
    (0..1 + n % 3)
        .map(|k| {
            let product = &products[(n * 37 + k * 101) % products.len()];
            Ok(LineItem {
                sku: Sku::parse(&product.sku)?,
                name: None,
                category: None,
                quantity: Quantity::new(1 + (n + k) as i64 % 2)?,
                unit_price: Money::from_minor(product.price_minor),
            })
        })
        .collect()
}

/// Pending orders from the simulated store, for live payments to pay by amount or code.
async fn register_orders(
    store: &dyn Store,
    merchant: &Merchant,
) -> Result<Vec<PendingOrder>, CliError> {
    let now = Utc::now();
    let people = population(POPULATION_SEED, POPULATION_SIZE, now.date_naive());
    let products = catalogue();
    let mut orders = Vec::new();
    // Each start registers its own orders: a batch tag keeps their ids apart.
    let batch = hex::encode(random::<4>());
    for n in 0..20 {
        let customer = &people[(n * 7) % people.len()];
        let items = demo_order_lines(n, &products).context("demo order lines")?;
        let amount = items
            .iter()
            .map(|line| line.unit_price.minor() * i64::from(line.quantity.get()))
            .sum();
        let order = NewOrder {
            external_id: setia_core::ExternalId::parse(&format!("DEMO-{batch}-{n}"))
                .expect("an id"),
            customer: setia_core::ExternalId::parse(&customer.external_id).expect("an id"),
            amount: Money::from_minor(amount),
            expires_at: now + TimeDelta::hours(24),
            bank_account_number: None,
            items,
            referral_code: None,
        };
        let created = store
            .create_order(&merchant.id, &order, now)
            .await
            .context("registering demo orders")?;
        orders.push(PendingOrder {
            transfer_amount: created.transfer_amount.whole_units(),
            payment_code: created.payment_code,
        });
    }
    Ok(orders)
}

async fn refresh_metrics(store: &Arc<dyn Store>, merchant: &Merchant) {
    let today = merchant.timezone.local_day(Utc::now());
    // Month last: it is the snapshot that reads as "latest".
    for period in [Period::Week, Period::Month] {
        if let Err(error) = crate::metrics_job::run(store, merchant, today, period).await {
            tracing::warn!(error = %format!("{error:#}"), "demo metrics failed");
        }
    }
}
