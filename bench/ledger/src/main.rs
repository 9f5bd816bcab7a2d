//! The ledger benchmark (issue #4): how soon a paid webhook becomes a purchase with its
//! points, and how many mutations per second the worker turns into the ledger.
//!
//! - `customers`: writes the customers CSV the run imports (each with a virtual account, so
//!   every benchmark payment is attributed by the first rule and earns points).
//! - `latency`: sends signed single-mutation webhooks to a running `setia serve` at a steady
//!   rate (open loop: request i leaves at start + i/rate whatever the answers do) and watches
//!   the database through setia-store's reader for each purchase. Latency is from the
//!   moment the 200 arrived to the moment a reader first sees the purchase; points are
//!   written in the same transaction as the purchase, and are checked at the end.
//! - `throughput`: fills the inbox directly, then runs the worker's single step until the
//!   inbox is empty, on SQLite or PostgreSQL.
//!
//! Each prints one JSON object on stdout.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;
use clap::{Parser, Subcommand};
use setia_core::customer::ExternalId;
use setia_core::{MerchantId, WebhookSecret};
use setia_store::{InboxBody, PageRequest, Store, WebhookCall};
use setia_worker::{Worker, WorkerConfig};

#[derive(Parser)]
#[command(about = "setia's ledger benchmark: webhook-to-purchase latency and worker throughput")]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Writes a customers CSV: C000001… each with the virtual account the payments use.
    Customers {
        #[arg(long)]
        count: usize,
        #[arg(long)]
        out: std::path::PathBuf,
    },
    /// Steady signed webhooks against a running server; 200 → purchase visible.
    Latency {
        /// The webhook URL, http://HOST:PORT/webhooks/moota/mer_…
        #[arg(long)]
        url: String,
        #[arg(long)]
        secret: String,
        /// The server's database, read to see when each purchase appears.
        #[arg(long)]
        database_url: String,
        #[arg(long)]
        merchant: String,
        /// Customers imported with `customers` (payments go round them).
        #[arg(long, default_value_t = 1000)]
        customers: usize,
        /// Webhooks per second.
        #[arg(long, default_value_t = 200.0)]
        rate: f64,
        /// Measured seconds.
        #[arg(long, default_value_t = 30.0)]
        duration: f64,
        /// Seconds of load before measuring.
        #[arg(long, default_value_t = 3.0)]
        warmup: f64,
        /// How often the database is read for new purchases, in milliseconds.
        #[arg(long, default_value_t = 1)]
        poll_ms: u64,
    },
    /// Fills the inbox with `rows` webhook bodies, then times the worker emptying it.
    Throughput {
        #[arg(long)]
        database_url: String,
        #[arg(long)]
        merchant: String,
        #[arg(long, default_value_t = 1000)]
        customers: usize,
        #[arg(long, default_value_t = 20_000)]
        rows: usize,
        /// Workers stepping side by side (PostgreSQL gives each different rows).
        #[arg(long, default_value_t = 1)]
        workers: usize,
    },
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let result = runtime.block_on(async {
        match args.command {
            Command::Customers { count, out } => write_customers(count, &out),
            Command::Latency {
                url,
                secret,
                database_url,
                merchant,
                customers,
                rate,
                duration,
                warmup,
                poll_ms,
            } => {
                let run = LatencyRun {
                    url,
                    secret: WebhookSecret::parse(&secret).map_err(|e| e.to_string())?,
                    merchant: MerchantId::parse(&merchant).map_err(|e| e.to_string())?,
                    customers,
                    rate,
                    duration,
                    warmup,
                    poll: Duration::from_millis(poll_ms.max(1)),
                };
                let store = setia_store::connect(&database_url)
                    .await
                    .map_err(|e| e.to_string())?;
                latency(run, store).await
            }
            Command::Throughput {
                database_url,
                merchant,
                customers,
                rows,
                workers,
            } => {
                let merchant = MerchantId::parse(&merchant).map_err(|e| e.to_string())?;
                let store = setia_store::connect(&database_url)
                    .await
                    .map_err(|e| e.to_string())?;
                throughput(store, merchant, customers, rows, workers.max(1)).await
            }
        }
    });
    match result {
        Ok(json) => {
            println!("{json}");
            std::process::ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("ledger-bench: {error}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn virtual_account(customer: usize) -> String {
    format!("8808{customer:08}")
}

fn write_customers(count: usize, out: &std::path::Path) -> Result<serde_json::Value, String> {
    let mut csv =
        String::from("external_id,name,email,birthday,virtual_account,payer_names,consent\n");
    for i in 0..count {
        csv.push_str(&format!(
            "C{i:06},Pelanggan {i},pelanggan{i}@contoh.id,,{},,true\n",
            virtual_account(i)
        ));
    }
    std::fs::write(out, csv).map_err(|e| format!("{}: {e}", out.display()))?;
    Ok(serde_json::json!({"customers": count, "out": out.display().to_string()}))
}

/// A Moota body of one CR virtual-account payment; `mutation_id` and amount unique per `i`.
fn payment_body(run_id: &str, i: usize, customers: usize) -> (String, Vec<u8>) {
    let mutation_id = format!("L{run_id}x{i:07}");
    let amount = 75_000 + i % 50_000;
    let at = Utc::now().format("%Y-%m-%d %H:%M:%S");
    let account = virtual_account(i % customers.max(1));
    let body = format!(
        concat!(
            r#"[{{"account_number":"{account}","date":"{at}","description":"VA PAYMENT {account}","#,
            r#""note":"","amount":{amount},"type":"CR","balance":0,"updated_at":"{at}","#,
            r#""created_at":"{at}","mutation_id":"{id}","token":"{id}","bank_id":"VAbench","#,
            r#""taggings":[],"bank":{{"bank_type":"bcaVA","label":"VA","account_number":"{account}"}}}}]"#
        ),
        account = account,
        at = at,
        amount = amount,
        id = mutation_id,
    );
    (mutation_id, body.into_bytes())
}

fn run_id() -> String {
    format!("{:x}", Utc::now().timestamp_micros())
}

struct LatencyRun {
    url: String,
    secret: WebhookSecret,
    merchant: MerchantId,
    customers: usize,
    rate: f64,
    duration: f64,
    warmup: f64,
    poll: Duration,
}

/// When each mutation's 200 arrived and when its purchase was first seen.
#[derive(Default)]
struct Sightings {
    acknowledged: HashMap<String, Instant>,
    visible: HashMap<String, Instant>,
    measured: Vec<String>,
    failures: Vec<String>,
}

async fn latency(run: LatencyRun, store: Arc<dyn Store>) -> Result<serde_json::Value, String> {
    let run_id = run_id();
    let total = ((run.warmup + run.duration) * run.rate).ceil() as usize;
    let warmup_count = (run.warmup * run.rate).ceil() as usize;
    let prepared: Vec<(String, Vec<u8>, String)> = (0..total)
        .map(|i| {
            let (id, body) = payment_body(&run_id, i, run.customers);
            let signature = setia_core::moota::sign(&run.secret, &body);
            (id, body, signature)
        })
        .collect();

    let sightings = Arc::new(Mutex::new(Sightings::default()));
    let watching = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let watcher = tokio::spawn(watch_purchases(
        store.clone(),
        run.merchant.clone(),
        sightings.clone(),
        watching.clone(),
        run.poll,
    ));

    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .timeout(Duration::from_secs(30))
        .build()
        .map_err(|e| e.to_string())?;
    let start = tokio::time::Instant::now();
    let mut requests = Vec::with_capacity(total);
    for (i, (mutation_id, body, signature)) in prepared.into_iter().enumerate() {
        tokio::time::sleep_until(start + Duration::from_secs_f64(i as f64 / run.rate)).await;
        let client = client.clone();
        let url = run.url.clone();
        let sightings = sightings.clone();
        requests.push(tokio::spawn(async move {
            let answer = client
                .post(&url)
                .header("content-type", "application/json")
                .header("user-agent", "MootaBot/1.0")
                .header("signature", signature)
                .body(body)
                .send()
                .await;
            let now = Instant::now();
            let mut seen = sightings.lock().expect("sightings lock");
            match answer {
                Ok(response) if response.status() == 200 => {
                    seen.acknowledged.insert(mutation_id.clone(), now);
                    if i >= warmup_count {
                        seen.measured.push(mutation_id);
                    }
                }
                Ok(response) => seen.failures.push(format!("HTTP {}", response.status())),
                Err(error) => seen.failures.push(error.to_string()),
            }
        }));
    }
    for request in requests {
        request.await.map_err(|e| e.to_string())?;
    }
    let sent_for = start.elapsed().as_secs_f64();

    // Give the worker time to catch up with the last ones.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let done = {
            let seen = sightings.lock().expect("sightings lock");
            seen.acknowledged
                .keys()
                .all(|id| seen.visible.contains_key(id))
        };
        if done || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    watching.store(false, std::sync::atomic::Ordering::Relaxed);
    let polls = watcher.await.map_err(|e| e.to_string())??;

    let seen = sightings.lock().expect("sightings lock");
    let mut latencies_us: Vec<u64> = Vec::new();
    let mut missing = 0usize;
    for id in &seen.measured {
        match (seen.acknowledged.get(id), seen.visible.get(id)) {
            (Some(ack), Some(visible)) => latencies_us.push(
                // Seen before the 200 reached the client counts as zero.
                visible.saturating_duration_since(*ack).as_micros() as u64,
            ),
            _ => missing += 1,
        }
    }
    let points = check_points(&*store, &run.merchant, run.customers.min(total)).await?;
    Ok(serde_json::json!({
        "rate": run.rate,
        "sent": total,
        "sent_seconds": round3(sent_for),
        "acknowledged": seen.acknowledged.len(),
        "failures": seen.failures.len(),
        "first_failures": seen.failures.iter().take(5).collect::<Vec<_>>(),
        "measured": seen.measured.len(),
        "never_visible": missing,
        "polls": polls,
        "latency_ms": percentiles(latencies_us),
        "customers_checked": points.0,
        "customers_without_points": points.1,
    }))
}

/// Reads the newest purchases every `poll` and notes when each benchmark mutation appears.
async fn watch_purchases(
    store: Arc<dyn Store>,
    merchant: MerchantId,
    sightings: Arc<Mutex<Sightings>>,
    watching: Arc<std::sync::atomic::AtomicBool>,
    poll: Duration,
) -> Result<u64, String> {
    let mut newest_seen: i64 = 0;
    let mut polls = 0u64;
    while watching.load(std::sync::atomic::Ordering::Relaxed) {
        polls += 1;
        let mut page = PageRequest {
            before: None,
            limit: 200,
        };
        let mut newest_now = newest_seen;
        // Newest first: read back until the purchases already seen.
        'pages: loop {
            let found = store
                .purchases(&merchant, Some(true), page)
                .await
                .map_err(|e| e.to_string())?;
            let now = Instant::now();
            for purchase in &found.items {
                let key = purchase.id.key();
                if key <= newest_seen {
                    break 'pages;
                }
                newest_now = newest_now.max(key);
                if let Some(id) = &purchase.mutation_id {
                    sightings
                        .lock()
                        .expect("sightings lock")
                        .visible
                        .entry(id.clone())
                        .or_insert(now);
                }
            }
            match found.next_cursor {
                Some(cursor) => page.before = Some(cursor),
                None => break,
            }
        }
        newest_seen = newest_now;
        tokio::time::sleep(poll).await;
    }
    Ok(polls)
}

/// Every customer who paid has a points balance: the award came with the purchase.
async fn check_points(
    store: &dyn Store,
    merchant: &MerchantId,
    paid: usize,
) -> Result<(usize, usize), String> {
    let checked = paid.min(200);
    let mut without = 0;
    for i in 0..checked {
        let external = ExternalId::parse(&format!("C{i:06}")).map_err(|e| e.to_string())?;
        let profile = store
            .customer_profile(merchant, &external, Utc::now())
            .await
            .map_err(|e| e.to_string())?;
        if profile.is_none_or(|p| p.points_balance <= 0) {
            without += 1;
        }
    }
    Ok((checked, without))
}

async fn throughput(
    store: Arc<dyn Store>,
    merchant: MerchantId,
    customers: usize,
    rows: usize,
    workers: usize,
) -> Result<serde_json::Value, String> {
    let run_id = run_id();
    let fill_started = Instant::now();
    let calls: Vec<WebhookCall> = (0..rows)
        .map(|i| {
            let (_, body) = payment_body(&run_id, i, customers);
            WebhookCall {
                merchant: merchant.as_str().to_owned(),
                received_at: Utc::now(),
                remote_addr: "127.0.0.1".into(),
                status: 200,
                reason: String::new(),
                body_sha256: Some(hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&body))),
                body_size: body.len() as u64,
                inbox: Some(InboxBody {
                    merchant: merchant.clone(),
                    body: body.into(),
                    user_agent: Some("ledger-bench".into()),
                    moota_user: None,
                    moota_webhook: None,
                }),
            }
        })
        .collect();
    for group in calls.chunks(512) {
        store
            .record_webhook_calls(group.into())
            .await
            .map_err(|e| e.to_string())?;
    }
    let fill_seconds = fill_started.elapsed().as_secs_f64();

    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..workers {
        let worker = Worker::new(store.clone(), WorkerConfig::default());
        tasks.push(tokio::spawn(async move {
            let mut applied = 0usize;
            loop {
                let step = worker
                    .run_once(Utc::now())
                    .await
                    .map_err(|e| e.to_string())?;
                if step.claimed == 0 {
                    return Ok::<usize, String>(applied);
                }
                applied += step.applied;
            }
        }));
    }
    let mut applied = 0;
    for task in tasks {
        applied += task.await.map_err(|e| e.to_string())??;
    }
    let seconds = started.elapsed().as_secs_f64();
    let depth = store.inbox_depth().await.map_err(|e| e.to_string())?;
    Ok(serde_json::json!({
        "rows": rows,
        "workers": workers,
        "fill_seconds": round3(fill_seconds),
        "applied": applied,
        "inbox_left": depth,
        "seconds": round3(seconds),
        "mutations_per_second": round3(applied as f64 / seconds),
    }))
}

fn percentiles(mut values_us: Vec<u64>) -> serde_json::Value {
    if values_us.is_empty() {
        return serde_json::Value::Null;
    }
    values_us.sort_unstable();
    let at = |q: f64| {
        let index = ((values_us.len() as f64 * q).ceil() as usize).clamp(1, values_us.len()) - 1;
        round3(values_us[index] as f64 / 1000.0)
    };
    serde_json::json!({
        "p50": at(0.50),
        "p90": at(0.90),
        "p99": at(0.99),
        "max": at(1.0),
        "mean": round3(values_us.iter().sum::<u64>() as f64 / values_us.len() as f64 / 1000.0),
    })
}

fn round3(value: f64) -> f64 {
    (value * 1000.0).round() / 1000.0
}
