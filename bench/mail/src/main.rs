//! The email benchmark (DESIGN §6): N customers whose birthday is today, on a fresh database.
//!
//! 1. enqueue: one scheduler pass enqueues N birthday offers, each with its birthday points,
//!    in the same transactions (what `setia mail run-due` and the serve loop do);
//! 2. render: every outbox row is claimed and rendered into a complete MIME message (customer
//!    data, loyalty balance and tier, templates, headers, the bytes on the wire), nothing sent;
//! 3. deliver: the real delivery loop sends them all to the SMTP server at `--smtp-url`
//!    through lettre's connection pool, and marks them sent (left out with `--skip-deliver`);
//! 4. feedback: N other customers (no birthday) of a merchant whose engagement program asks
//!    for feedback (CSAT, 3 days after a purchase, with a reminder) each made one purchase
//!    three days before; one scheduler pass writes N feedback requests, each with its email
//!    (a reminder is written when its request is sent). On SQLite this runs on a second
//!    fresh database, so that the pass measures only its own work; on a `--database-url` it
//!    is a second merchant in the same database, and the pass also looks at the birthday
//!    merchant, which has nothing left to enqueue (that look alone is timed and reported as
//!    `idle_pass_seconds`).
//!
//! Prints one JSON object with the counts, seconds and rates of each phase.

use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use clap::Parser;
use setia_core::customer::{Birthday, Consent, CustomerEmail, CustomerName, ExternalId};
use setia_core::engagement::{EngagementProgram, FeedbackKind};
use setia_core::feedback::{request_decision, RequestCandidate, RequestDecision};
use setia_core::import::{CustomerRecord, TransactionsCsv};
use setia_core::{ApiToken, MerchantId, MerchantName, MerchantTimezone, WebhookSecret};
use setia_mail::{schedule, Enqueued, MailConfig, Mailer, Prepared};
use setia_store::engagement::NewFeedbackRequest;
use setia_store::{ImportMessage, NewMerchant, PageRequest, Store};

/// setia's own allocator (src/main.rs): the mailer is measured as the binary runs it.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
struct Args {
    /// Customers with a birthday today (and, in the feedback phase, customers with a
    /// purchase whose feedback request is due today).
    #[arg(long, default_value_t = 100_000)]
    customers: usize,
    /// The SMTP server to deliver to (e.g. smtp://127.0.0.1:2525); required unless
    /// `--skip-deliver`.
    #[arg(long, required_unless_present = "skip_deliver")]
    smtp_url: Option<String>,
    /// Leaves out the delivery phase (minutes into the SMTP server); the enqueue, render
    /// and feedback phases run as usual.
    #[arg(long)]
    skip_deliver: bool,
    /// After the feedback phase, runs the same work again on fresh data step by step
    /// (candidate query, request writes) and reports the time of each step.
    #[arg(long)]
    feedback_steps: bool,
    /// Database URL [default: a fresh SQLite file in a temporary folder].
    #[arg(long)]
    database_url: Option<String>,
    /// PostgreSQL: runs `ANALYZE` (through `psql`) after each bulk load, as autovacuum does
    /// on a server that has it on. Without statistics the planner takes a table it just
    /// filled for nearly empty, and `birthday_candidates` turns into a nested loop that reads
    /// every outbox row of the merchant for each customer.
    #[arg(long, requires = "database_url")]
    analyze: bool,
    /// SMTP connections in the pool (and messages in flight).
    #[arg(long, default_value_t = 16)]
    connections: u32,
    /// Outbox rows claimed per delivery step (setia's default).
    #[arg(long, default_value_t = 500)]
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
    let customers = args.customers;
    import_customers(&*store, &merchant, customers, move |n| CustomerRecord {
        line: n as u64 + 2,
        external_id: ExternalId::parse(&format!("B{n}")).unwrap(),
        name: Some(CustomerName::parse(&format!("Pelanggan {n}")).unwrap()),
        email: Some(CustomerEmail::parse(&format!("b{n}@example.co.id")).unwrap()),
        birthday: Some(birthday),
        virtual_account: None,
        payer_names: vec![],
        consent: None,
        referral_code: None,
    })
    .await;
    eprintln!("{customers} customers with a birthday on {today} imported");
    analyze(&args);

    let mailer = new_mailer(&store, &args);

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
                Prepared::Send(message, _) => {
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
    let deliver = if args.skip_deliver {
        serde_json::Value::Null
    } else {
        let later = now + TimeDelta::seconds(5);
        let started = Instant::now();
        let report = mailer.run_due(later).await.expect("delivery");
        let deliver_seconds = started.elapsed().as_secs_f64();
        eprintln!(
            "delivered {} in {deliver_seconds:.2} s",
            report.delivered.sent
        );
        serde_json::json!({"sent": report.delivered.sent, "failed": report.delivered.failed,
                           "retrying": report.delivered.retrying, "seconds": deliver_seconds,
                           "per_second": rate(report.delivered.sent as f64, deliver_seconds),
                           "connections": args.connections, "batch": args.batch})
    };

    // 4. Feedback requests: on SQLite a second fresh database, elsewhere a second merchant
    //    beside the birthday one (which has nothing left to enqueue).
    let separate = args.database_url.is_none();
    let feedback_store = if separate {
        let url = format!("sqlite://{}/feedback.db", folder.path().display());
        let store = setia_store::connect(&url)
            .await
            .expect("the feedback database");
        store.migrate().await.expect("migrations");
        store
    } else {
        Arc::clone(&store)
    };
    // What a pass costs when every merchant already in the database has nothing to enqueue.
    let idle_pass_seconds = if separate {
        None
    } else {
        analyze(&args);
        let started = Instant::now();
        let idle = new_mailer(&feedback_store, &args)
            .schedule(now)
            .await
            .expect("scheduling");
        assert_eq!(idle, Enqueued::default(), "nothing left to enqueue");
        Some(started.elapsed().as_secs_f64())
    };
    let feedback_merchant = new_feedback_merchant(
        &feedback_store,
        zone,
        now,
        customers,
        "F",
        "Toko Umpan Balik",
    )
    .await;
    analyze(&args);
    let started = Instant::now();
    let enqueued_feedback = new_mailer(&feedback_store, &args)
        .schedule(now)
        .await
        .expect("scheduling");
    let feedback_seconds = started.elapsed().as_secs_f64();
    eprintln!(
        "feedback requests: {} in {feedback_seconds:.2} s",
        enqueued_feedback.feedback_request
    );
    assert_eq!(
        enqueued_feedback,
        Enqueued {
            feedback_request: customers as u64,
            ..Enqueued::default()
        },
        "exactly one feedback request per customer, nothing else"
    );
    let outbox = feedback_outbox(&feedback_store, &feedback_merchant, now).await;
    assert_eq!(outbox.requests, customers as u64, "one request email each");
    assert_eq!(
        outbox.reminders, 0,
        "a reminder is written when its request is sent"
    );
    assert_eq!(outbox.customers, customers, "every customer asked once");
    // A second pass (a fresh mailer: one process scans a merchant at most every 15
    // minutes) finds every purchase asked about already.
    let started = Instant::now();
    let again = new_mailer(&feedback_store, &args)
        .schedule(now + TimeDelta::minutes(1))
        .await
        .expect("scheduling");
    let rescan_seconds = started.elapsed().as_secs_f64();
    assert_eq!(again, Enqueued::default(), "no duplicates on a second pass");
    eprintln!("second pass: nothing enqueued in {rescan_seconds:.2} s");
    // The same work step by step, on fresh data.
    let steps = if args.feedback_steps {
        let steps_store = if separate {
            let url = format!("sqlite://{}/feedback-steps.db", folder.path().display());
            let store = setia_store::connect(&url)
                .await
                .expect("the steps database");
            store.migrate().await.expect("migrations");
            store
        } else {
            Arc::clone(&feedback_store)
        };
        let merchant =
            new_feedback_merchant(&steps_store, zone, now, customers, "S", "Toko Langkah").await;
        analyze(&args);
        Some(feedback_steps(&steps_store, &merchant, now).await)
    } else {
        None
    };

    let feedback_rate = rate(enqueued_feedback.feedback_request as f64, feedback_seconds);
    let birthday_rate = rate(enqueued.birthday_offer as f64, enqueue_seconds);
    let result = serde_json::json!({
        "database": if url.starts_with("sqlite") { "sqlite" } else { "postgres" },
        "customers": customers,
        "enqueue": {"emails": enqueued.birthday_offer, "seconds": enqueue_seconds,
                    "per_second": rate(enqueued.birthday_offer as f64, enqueue_seconds)},
        "render": {"emails": rendered, "seconds": render_seconds, "mean_bytes": bytes / rendered.max(1),
                   "per_second": rate(rendered as f64, render_seconds)},
        "enqueue_and_render_per_second": rate(customers as f64, enqueue_seconds + render_seconds),
        "deliver": deliver,
        "feedback_enqueue": {"requests": enqueued_feedback.feedback_request,
                             "outbox_rows": outbox.rows, "reminders": outbox.reminders,
                             "seconds": feedback_seconds, "per_second": feedback_rate,
                             "database": if separate { "separate" } else { "shared" },
                             "idle_pass_seconds": idle_pass_seconds},
        "feedback_second_pass": {"enqueued": again.feedback_request, "seconds": rescan_seconds},
        "feedback_vs_birthday": ((feedback_rate / birthday_rate) * 1000.0).round() / 1000.0,
        "feedback_steps": steps,
    });
    println!("{}", serde_json::to_string_pretty(&result).unwrap());
}

fn rate(n: f64, seconds: f64) -> f64 {
    (n / seconds).round()
}

/// `ANALYZE` on the `--database-url` with `--analyze`; nothing otherwise.
fn analyze(args: &Args) {
    let (true, Some(url)) = (args.analyze, args.database_url.as_deref()) else {
        return;
    };
    let started = Instant::now();
    let status = std::process::Command::new("psql")
        .args([url, "-qX", "-c", "ANALYZE"])
        .status()
        .expect("psql");
    assert!(status.success(), "ANALYZE failed");
    eprintln!("ANALYZE in {:.2} s", started.elapsed().as_secs_f64());
}

fn new_mailer(store: &Arc<dyn Store>, args: &Args) -> Mailer {
    // Without delivery the transport is never used: lettre's pool connects on first send.
    let smtp_url = args.smtp_url.as_deref().unwrap_or("smtp://127.0.0.1:2525");
    let mut config = MailConfig::new(
        Some(smtp_url),
        Some("Toko <noreply@toko.example>"),
        None,
        None,
        TimeDelta::seconds(60),
    )
    .expect("mail settings");
    config.connections = args.connections;
    config.batch = args.batch;
    Mailer::new(Arc::clone(store), config).expect("the mailer")
}

/// A merchant asking for feedback (CSAT, 3 days after a purchase, with a reminder) and
/// `customers` customers (`{prefix}0`, …: an address, consent, no birthday), each with one
/// purchase made within the hour before `now` three days ago: every request is due today,
/// between 09:00 and 10:00 in Jakarta, inside marketing hours.
async fn new_feedback_merchant(
    store: &Arc<dyn Store>,
    zone: MerchantTimezone,
    now: DateTime<Utc>,
    customers: usize,
    prefix: &'static str,
    name: &str,
) -> MerchantId {
    let started = Instant::now();
    let merchant = MerchantId::from_random_bytes(rand_bytes());
    store
        .create_merchant(NewMerchant {
            id: merchant.clone(),
            name: MerchantName::parse(name).unwrap(),
            timezone: zone,
            webhook_secret: WebhookSecret::from_random_bytes(rand_bytes()),
            api_token_hash: ApiToken::from_random_bytes(rand_bytes()).hash(),
            report_emails: vec![],
            sandbox: false,
        })
        .await
        .expect("a merchant");
    let mut program = EngagementProgram::default();
    program.feedback.enabled = true;
    program.feedback.kind = FeedbackKind::Csat;
    program.feedback.delay_days = 3;
    program.feedback.reminder = true;
    store
        .set_engagement_program(&merchant, &program)
        .await
        .expect("the engagement program");
    let stored = store
        .engagement_program(&merchant)
        .await
        .expect("the engagement program");
    assert!(stored.feedback.enabled && stored.feedback.reminder);
    assert_eq!(
        (stored.feedback.kind, stored.feedback.delay_days),
        (FeedbackKind::Csat, 3)
    );

    import_customers(&**store, &merchant, customers, move |n| CustomerRecord {
        line: n as u64 + 2,
        external_id: ExternalId::parse(&format!("{prefix}{n}")).unwrap(),
        name: Some(CustomerName::parse(&format!("Pembeli {n}")).unwrap()),
        email: Some(CustomerEmail::parse(&format!("{prefix}{n}@example.co.id")).unwrap()),
        birthday: None,
        virtual_account: None,
        payer_names: vec![],
        consent: Some(Consent(true)),
        referral_code: None,
    })
    .await;

    // The purchases, as `setia transactions import` reads them: a CSV with references.
    let delay = TimeDelta::days(i64::from(program.feedback.delay_days));
    let (sender, receiver) = tokio::sync::mpsc::channel(4);
    let feeder = tokio::spawn(async move {
        let mut n = 0;
        while n < customers {
            let end = (n + 5_000).min(customers);
            let mut csv = String::from("customer_external_id,occurred_at,amount,reference\n");
            for i in n..end {
                let at = now - delay - TimeDelta::seconds(1 + (i % 3_600) as i64);
                csv.push_str(&format!(
                    "{prefix}{i},{},{},{prefix}-order-{i}\n",
                    at.to_rfc3339_opts(SecondsFormat::Secs, true),
                    50_000 + (i % 50) * 1_000
                ));
            }
            let rows = TransactionsCsv::new(csv.as_bytes(), zone)
                .unwrap()
                .map(Result::unwrap)
                .collect::<Vec<_>>();
            sender.send(ImportMessage::Rows(rows)).await.unwrap();
            n = end;
        }
        sender.send(ImportMessage::Finished).await.unwrap();
    });
    let counts = store
        .import_transactions(&merchant, receiver)
        .await
        .expect("purchases imported");
    feeder.await.unwrap();
    assert_eq!(counts.inserted, customers as u64);
    assert_eq!(counts.customers_created, 0);
    eprintln!(
        "{customers} customers with a purchase on {} imported in {:.2} s",
        zone.local_day(now - delay),
        started.elapsed().as_secs_f64()
    );
    merchant
}

struct FeedbackOutbox {
    rows: u64,
    requests: u64,
    reminders: u64,
    customers: usize,
}

/// The merchant's feedback emails in the outbox: requests due by `now`, and reminders (four
/// days after a request was sent) counted.
async fn feedback_outbox(
    store: &Arc<dyn Store>,
    merchant: &MerchantId,
    now: DateTime<Utc>,
) -> FeedbackOutbox {
    let mut counted = FeedbackOutbox {
        rows: 0,
        requests: 0,
        reminders: 0,
        customers: 0,
    };
    let mut asked = std::collections::HashSet::new();
    let mut before = None;
    loop {
        let page = store
            .outbox_entries(
                merchant,
                None,
                PageRequest {
                    before,
                    limit: 10_000,
                },
            )
            .await
            .expect("the outbox");
        for entry in &page.items {
            counted.rows += 1;
            assert_eq!(entry.kind, "feedback_request");
            assert_eq!(entry.status, "pending");
            if entry.period_key.ends_with("-reminder") {
                counted.reminders += 1;
                assert!(entry.due_at > now + TimeDelta::days(3));
            } else {
                counted.requests += 1;
                assert!(entry.due_at <= now && entry.due_at >= now - TimeDelta::hours(1));
                asked.insert(entry.recipient.clone());
            }
        }
        match page.next_cursor {
            Some(cursor) => before = Some(cursor),
            None => break,
        }
    }
    counted.customers = asked.len();
    counted
}

/// The feedback pass's own steps, timed one by one on fresh data: the candidate query (pages
/// of 5,000, as `setia_mail::feedback` reads them), the decisions, and the writes of the
/// requests with their emails.
async fn feedback_steps(
    store: &Arc<dyn Store>,
    merchant: &MerchantId,
    now: DateTime<Utc>,
) -> serde_json::Value {
    const PAGE: u32 = 5_000;
    let total = Instant::now();
    let started = Instant::now();
    let mail = store
        .mail_merchant(merchant)
        .await
        .expect("the merchant")
        .expect("a merchant");
    let program = store
        .engagement_program(merchant)
        .await
        .expect("the program");
    let setup_seconds = started.elapsed().as_secs_f64();
    let settings = &program.feedback;
    let zone = mail.merchant.timezone;
    let started = Instant::now();
    let birthdays = match schedule::birthday_window(zone, now) {
        Some(window) => store
            .birthday_candidates(
                merchant,
                &window.month_days,
                window.year,
                setia_core::CustomerId::from_key(0),
                1_000,
            )
            .await
            .expect("birthday candidates")
            .len(),
        None => 0,
    };
    let birthday_seconds = started.elapsed().as_secs_f64();
    assert_eq!(birthdays, 0);
    let (from, until) = schedule::feedback_purchase_window(now, settings.delay_days);
    let (mut candidates_seconds, mut decide_seconds, mut write_seconds) = (0.0, 0.0, 0.0);
    let mut pages = Vec::new();
    let mut after = None;
    let mut written = 0;
    loop {
        let started = Instant::now();
        let candidates = store
            .feedback_candidates(merchant, from, until, after, PAGE)
            .await
            .expect("candidates");
        let read = started.elapsed().as_secs_f64();
        candidates_seconds += read;
        let Some(last) = candidates.last() else {
            break;
        };
        after = Some((last.occurred_at, last.purchase));
        let started = Instant::now();
        let requests = candidates
            .iter()
            .filter_map(|candidate| {
                match request_decision(
                    settings,
                    &RequestCandidate {
                        purchase_at: candidate.occurred_at,
                        sandbox: candidate.sandbox,
                        reachable: candidate.reachable,
                        last_request_at: candidate.last_request_at,
                    },
                ) {
                    RequestDecision::Due(at) => Some(NewFeedbackRequest {
                        customer: candidate.customer,
                        purchase: candidate.purchase,
                        kind: settings.kind,
                        due_at: schedule::marketing_hours(zone, at),
                    }),
                    RequestDecision::Skip(_) => None,
                }
            })
            .collect::<Vec<_>>();
        decide_seconds += started.elapsed().as_secs_f64();
        let started = Instant::now();
        written += store
            .create_feedback_requests(merchant, &requests, now)
            .await
            .expect("requests")
            .len();
        let write = started.elapsed().as_secs_f64();
        write_seconds += write;
        pages.push(serde_json::json!([candidates.len(), read, write]));
        if candidates.len() < PAGE as usize {
            break;
        }
    }
    assert_eq!(
        written,
        pages
            .iter()
            .map(|p| p[0].as_u64().unwrap() as usize)
            .sum::<usize>()
    );
    let total_seconds = total.elapsed().as_secs_f64();
    serde_json::json!({
        "requests": written,
        "seconds": total_seconds,
        "per_second": rate(written as f64, total_seconds),
        "merchant_and_program_seconds": setup_seconds,
        "birthday_candidates_seconds": birthday_seconds,
        "feedback_candidates_seconds": candidates_seconds,
        "decisions_seconds": decide_seconds,
        "create_feedback_requests_seconds": write_seconds,
        "pages": pages.len(),
        "first_pages": pages.iter().take(3).collect::<Vec<_>>(),
        "last_pages": pages.iter().rev().take(3).collect::<Vec<_>>(),
    })
}

/// Imports `count` customers as `setia customers import` does: rows of 5,000 over a channel
/// into one transaction.
async fn import_customers(
    store: &dyn setia_store::Store,
    merchant: &MerchantId,
    count: usize,
    record: impl Fn(usize) -> CustomerRecord + Send + 'static,
) {
    let (sender, receiver) = tokio::sync::mpsc::channel(4);
    let feeder = tokio::spawn(async move {
        let mut batch = Vec::with_capacity(5_000);
        for n in 0..count {
            batch.push(record(n));
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
        .import_customers(merchant, receiver)
        .await
        .expect("customers imported");
    feeder.await.unwrap();
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
