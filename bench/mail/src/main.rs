//! The email benchmark (DESIGN §6): N customers whose birthday is today, on a fresh database.
//!
//! 1. enqueue: one scheduler pass enqueues N birthday offers, each with its birthday points,
//!    in the same transactions (what `setia mail run-due` and the serve loop do);
//! 2. render: every outbox row is claimed and rendered into a complete MIME message (customer
//!    data, loyalty balance and tier, templates, headers, the bytes on the wire), nothing sent;
//! 3. deliver: the real delivery loop sends them all to the SMTP server at `--smtp-url`
//!    through lettre's connection pool, and marks them sent.
//!
//! Prints one JSON object with the counts, seconds and rates of each phase.

use std::sync::Arc;
use std::time::Instant;

use chrono::{TimeDelta, Utc};
use clap::Parser;
use setia_core::customer::{Birthday, CustomerEmail, CustomerName, ExternalId};
use setia_core::import::CustomerRecord;
use setia_core::{ApiToken, MerchantId, MerchantName, MerchantTimezone, WebhookSecret};
use setia_mail::{MailConfig, Mailer, Prepared};
use setia_store::{ImportMessage, NewMerchant};

#[derive(Parser)]
struct Args {
    /// Customers with a birthday today.
    #[arg(long, default_value_t = 100_000)]
    customers: usize,
    /// The SMTP server to deliver to (e.g. smtp://127.0.0.1:2525).
    #[arg(long)]
    smtp_url: String,
    /// Database URL [default: a fresh SQLite file in a temporary folder].
    #[arg(long)]
    database_url: Option<String>,
    /// SMTP connections in the pool (and messages in flight).
    #[arg(long, default_value_t = 16)]
    connections: u32,
    /// Outbox rows claimed per delivery step.
    #[arg(long, default_value_t = 200)]
    batch: u32,
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let folder = tempfile::tempdir().expect("a temporary folder");
    let url = args
        .database_url
        .clone()
        .unwrap_or_else(|| format!("sqlite://{}/bench.db", folder.path().display()));
    let store = setia_store::connect(&url).await.expect("the database");
    store.migrate().await.expect("migrations");

    // A Jakarta merchant; "now" is 10:00 in Jakarta today, inside the birthday window.
    let zone = MerchantTimezone::parse("Asia/Jakarta").unwrap();
    let today = zone.local_day(Utc::now());
    let now = zone
        .instant_of(today.and_hms_opt(10, 0, 0).unwrap())
        .unwrap();
    let merchant = MerchantId::from_random_bytes(rand_bytes());
    store
        .create_merchant(NewMerchant {
            id: merchant.clone(),
            name: MerchantName::parse("Toko Benchmark").unwrap(),
            timezone: zone,
            webhook_secret: WebhookSecret::from_random_bytes(rand_bytes()),
            api_token_hash: ApiToken::from_random_bytes(rand_bytes()).hash(),
            report_emails: vec![],
            sandbox: false,
        })
        .await
        .expect("a merchant");
    let birthday = Birthday::parse(&today.format("%m-%d").to_string()).unwrap();
    let (sender, receiver) = tokio::sync::mpsc::channel(4);
    let customers = args.customers;
    let feeder = tokio::spawn(async move {
        let mut batch = Vec::with_capacity(5_000);
        for n in 0..customers {
            batch.push(CustomerRecord {
                line: n as u64 + 2,
                external_id: ExternalId::parse(&format!("B{n}")).unwrap(),
                name: Some(CustomerName::parse(&format!("Pelanggan {n}")).unwrap()),
                email: Some(CustomerEmail::parse(&format!("b{n}@example.co.id")).unwrap()),
                birthday: Some(birthday),
                virtual_account: None,
                payer_names: vec![],
                consent: None,
            });
            if batch.len() == 5_000 {
                let full = std::mem::replace(&mut batch, Vec::with_capacity(5_000));
                sender.send(ImportMessage::Rows(full)).await.unwrap();
            }
        }
        if !batch.is_empty() {
            sender.send(ImportMessage::Rows(batch)).await.unwrap();
        }
        sender.send(ImportMessage::Finished).await.unwrap();
    });
    store
        .import_customers(&merchant, receiver)
        .await
        .expect("customers imported");
    feeder.await.unwrap();
    eprintln!("{customers} customers with a birthday on {today} imported");

    let lease = TimeDelta::seconds(60);
    let mut config = MailConfig::new(
        Some(&args.smtp_url),
        Some("Toko <noreply@toko.example>"),
        None,
        None,
        lease,
    )
    .expect("mail settings");
    config.connections = args.connections;
    config.batch = args.batch;
    let mailer = Mailer::new(Arc::clone(&store), config).expect("the mailer");

    // 1. Enqueue (with the birthday points).
    let started = Instant::now();
    let enqueued = mailer.schedule(now).await.expect("scheduling");
    let enqueue_seconds = started.elapsed().as_secs_f64();
    assert_eq!(enqueued.birthday_offer as usize, customers);
    eprintln!(
        "enqueued {} in {enqueue_seconds:.2} s",
        enqueued.birthday_offer
    );

    // 2. Render every row: claimed in one statement (under a short lease that runs out
    //    before delivery), rendered a thousand at a time as delivery batches are.
    let started = Instant::now();
    let mut rendered = 0usize;
    let mut bytes = 0usize;
    let mut rows = store
        .claim_outbox(now, TimeDelta::seconds(1), customers as u32)
        .await
        .expect("claims");
    while !rows.is_empty() {
        let rest = rows.split_off(rows.len().min(1_000));
        let chunk = std::mem::replace(&mut rows, rest);
        for (_, prepared) in mailer.prepare_claimed(chunk, now).await.expect("rendering") {
            match prepared {
                Prepared::Send(message) => {
                    bytes += message.formatted().len();
                    rendered += 1;
                }
                Prepared::Done(outcome) => panic!("not rendered: {outcome:?}"),
            }
        }
    }
    let render_seconds = started.elapsed().as_secs_f64();
    assert_eq!(rendered, customers);
    eprintln!("rendered {rendered} in {render_seconds:.2} s");

    // 3. Deliver through the pool (the leases of phase 2 have run out by then).
    let later = now + TimeDelta::seconds(5);
    let started = Instant::now();
    let report = mailer.run_due(later).await.expect("delivery");
    let deliver_seconds = started.elapsed().as_secs_f64();
    eprintln!(
        "delivered {} in {deliver_seconds:.2} s",
        report.delivered.sent
    );

    let rate = |n: f64, s: f64| (n / s).round();
    let result = serde_json::json!({
        "database": if url.starts_with("sqlite") { "sqlite" } else { "postgres" },
        "customers": customers,
        "enqueue": {"emails": enqueued.birthday_offer, "seconds": enqueue_seconds,
                    "per_second": rate(enqueued.birthday_offer as f64, enqueue_seconds)},
        "render": {"emails": rendered, "seconds": render_seconds, "mean_bytes": bytes / rendered.max(1),
                   "per_second": rate(rendered as f64, render_seconds)},
        "enqueue_and_render_per_second": rate(customers as f64, enqueue_seconds + render_seconds),
        "deliver": {"sent": report.delivered.sent, "failed": report.delivered.failed,
                    "retrying": report.delivered.retrying, "seconds": deliver_seconds,
                    "per_second": rate(report.delivered.sent as f64, deliver_seconds),
                    "connections": args.connections, "batch": args.batch},
    });
    println!("{}", serde_json::to_string_pretty(&result).unwrap());
}

fn rand_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    let seed = Utc::now().timestamp_nanos_opt().unwrap_or_default() as u64;
    let mut x = seed ^ 0x9e37_79b9_7f4a_7c15;
    for b in &mut bytes {
        // xorshift: ids and secrets only need to differ between runs here.
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
    bytes
}
