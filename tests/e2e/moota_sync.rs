//! Reconciliation through Moota's API V2, against a local server that answers as Moota's
//! does (Laravel pages, string amounts, a null `bank`, `next_page_url` without the query's
//! filters, 429 and 401): a sync finds exactly the payment the webhook missed, a second
//! finds nothing, the ledger counts each payment once, the token appears in no answer and
//! no log line, and bad input changes nothing.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{json, Value};
use setia_core::MerchantId;
use setia_store::{PageRequest, Store};

use crate::mail::{header, run_due, text};
use crate::smtp::Receiver;
use crate::support::Setia;
use crate::webhooks::{sign, SECRET};

crate::on_every_backend!(a_sync_finds_exactly_the_payment_the_webhook_missed);

const TOKEN: &str = "moota-personal-token-7Hq2";

/// What the fake Moota serves and what it was asked.
#[derive(Default)]
struct Script {
    token: String,
    mutations: Vec<Value>,
    per_page: usize,
    /// Pages answered 429 (with Retry-After: 1) once before their content.
    throttle_once: HashSet<usize>,
    /// Every page is an HTML error page.
    broken: bool,
    /// (path and query, Authorization header) of every request.
    requests: Vec<(String, Option<String>)>,
}

struct FakeMoota {
    url: String,
    script: Arc<Mutex<Script>>,
}

impl FakeMoota {
    /// On a thread and runtime of its own: the test blocks on setia commands meanwhile.
    fn start(mutations: Vec<Value>) -> FakeMoota {
        let script = Arc::new(Mutex::new(Script {
            token: TOKEN.into(),
            mutations,
            per_page: 2,
            ..Script::default()
        }));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let url = format!("http://{}/api/v2", listener.local_addr().unwrap());
        let state = (script.clone(), url.clone());
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let app = axum::Router::new()
                    .route("/api/v2/mutation", get(mutation_page))
                    .route("/api/v2/bank", get(bank_page))
                    .with_state(state);
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                axum::serve(listener, app).await.unwrap();
            });
        });
        FakeMoota { url, script }
    }

    fn with<T>(&self, change: impl FnOnce(&mut Script) -> T) -> T {
        change(&mut self.script.lock().unwrap())
    }
}

type Fake = (Arc<Mutex<Script>>, String);

fn laravel_page(items: &[Value], page: usize, per_page: usize, base: &str, path: &str) -> Value {
    let last_page = items.len().div_ceil(per_page).max(1);
    let data: Vec<Value> = items
        .iter()
        .skip((page - 1) * per_page)
        .take(per_page)
        .cloned()
        .collect();
    // Laravel's URLs carry only the page, not the filters.
    let link = |n: usize| format!("{base}/{path}?page={n}");
    json!({
        "current_page": page,
        "data": data,
        "first_page_url": link(1),
        "from": (page - 1) * per_page + 1,
        "last_page": last_page,
        "last_page_url": link(last_page),
        "links": [],
        "next_page_url": if page < last_page { json!(link(page + 1)) } else { Value::Null },
        "path": format!("{base}/{path}"),
        "per_page": per_page,
        "prev_page_url": if page > 1 { json!(link(page - 1)) } else { Value::Null },
        "to": (page - 1) * per_page + data.len(),
        "total": items.len(),
    })
}

fn check(script: &mut Script, headers: &HeaderMap, path_and_query: String) -> Option<Response> {
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    script.requests.push((path_and_query, auth.clone()));
    if auth.as_deref() != Some(&format!("Bearer {}", script.token)) {
        let body = json!({"message": "Unauthenticated."});
        return Some((StatusCode::UNAUTHORIZED, axum::Json(body)).into_response());
    }
    if script.broken {
        return Some((StatusCode::OK, "<html>maintenance</html>").into_response());
    }
    None
}

async fn mutation_page(
    State((script, base)): State<Fake>,
    Query(query): Query<Vec<(String, String)>>,
    headers: HeaderMap,
) -> Response {
    let mut script = script.lock().unwrap();
    let text: Vec<String> = query.iter().map(|(k, v)| format!("{k}={v}")).collect();
    if let Some(refused) = check(
        &mut script,
        &headers,
        format!("/mutation?{}", text.join("&")),
    ) {
        return refused;
    }
    let page: usize = query
        .iter()
        .find(|(k, _)| k == "page")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(1);
    if script.throttle_once.remove(&page) {
        return (
            StatusCode::TOO_MANY_REQUESTS,
            [("retry-after", "1")],
            "slow down",
        )
            .into_response();
    }
    // Mutations of the asked days (dates are Jakarta wall time, as the window's).
    let param = |name: &str| {
        query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let (since, until) = (param("start_date").unwrap(), param("end_date").unwrap());
    let items: Vec<Value> = script
        .mutations
        .iter()
        .filter(|m| {
            let day = &m["date"].as_str().unwrap()[..10];
            since.as_str() <= day && day <= until.as_str()
        })
        .cloned()
        .collect();
    axum::Json(laravel_page(
        &items,
        page,
        script.per_page,
        &base,
        "mutation",
    ))
    .into_response()
}

async fn bank_page(State((script, base)): State<Fake>, headers: HeaderMap) -> Response {
    let mut script = script.lock().unwrap();
    if let Some(refused) = check(&mut script, &headers, "/bank".into()) {
        return refused;
    }
    let banks = [json!({"bank_id": "bnk_1", "bank_type": "bca", "account_number": "1234567890"})];
    axum::Json(laravel_page(&banks, 1, 10, &base, "bank")).into_response()
}

/// A mutation as Moota's API gives it: string amounts, `bank` as given.
fn api_mutation(id: &str, day: &str, amount: u64, kind: &str, bank: Value) -> Value {
    json!({
        "account_number": "1234567890",
        "date": format!("{day} 00:00:00"),
        "description": format!("TRSF E-BANKING {kind} {amount}.00 BUDI SANTOSO"),
        "amount": format!("{amount}.00"),
        "type": kind,
        "note": "",
        "balance": "18250123.00",
        "created_at": format!("{day} 10:15:02"),
        "updated_at": format!("{day} 10:15:02"),
        "mutation_id": id,
        "token": id,
        "bank_id": "bnk_1",
        "taggings": [],
        "bank": bank,
    })
}

/// The same mutation as a webhook sends it: numbers for amounts.
fn webhook_body(mutation: &Value) -> Vec<u8> {
    let mut hooked = mutation.clone();
    let amount: f64 = mutation["amount"].as_str().unwrap().parse().unwrap();
    hooked["amount"] = json!(amount);
    hooked["balance"] = json!(18250123.0);
    serde_json::to_vec(&[hooked]).unwrap()
}

fn sync(setia: &Setia, fake: &FakeMoota, args: &[&str]) -> std::process::Output {
    setia
        .command()
        .env("SETIA_MOOTA_API_URL", &fake.url)
        .args(["moota", "sync"])
        .args(args)
        .output()
        .unwrap()
}

fn synced(setia: &Setia, fake: &FakeMoota, args: &[&str]) -> Value {
    let output = sync(setia, fake, args);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "sync failed: {stderr}");
    assert!(!stderr.contains(TOKEN), "the token in the log: {stderr}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(!stdout.contains(TOKEN));
    serde_json::from_str(&stdout).unwrap()
}

async fn purchases(store: &dyn Store, merchant: &MerchantId) -> Vec<String> {
    let page = PageRequest {
        before: None,
        limit: 100,
    };
    let mut ids: Vec<String> = store
        .purchases(merchant, None, page)
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|p| p.mutation_id)
        .collect();
    ids.sort();
    ids
}

/// Waits until the worker has applied every inbox row.
async fn drained(store: &dyn Store, merchant: &MerchantId, expected: usize) -> Vec<String> {
    for _ in 0..200 {
        let found = purchases(store, merchant).await;
        if found.len() >= expected {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    purchases(store, merchant).await
}

async fn a_sync_finds_exactly_the_payment_the_webhook_missed(setia: Setia) {
    let created = setia.json(&[
        "merchant",
        "create",
        "--name",
        "Toko",
        "--webhook-secret",
        SECRET,
        "--report-email",
        "ops@toko.example",
    ]);
    let merchant = MerchantId::parse(created["id"].as_str().unwrap()).unwrap();
    let api_token = created["api_token"].as_str().unwrap().to_owned();
    let m = merchant.as_str().to_owned();
    let store = setia.store().await;
    let today = chrono::Utc::now()
        .with_timezone(&chrono_tz::Asia::Jakarta)
        .date_naive();
    let day = |back: i64| {
        (today - chrono::TimeDelta::days(back))
            .format("%Y-%m-%d")
            .to_string()
    };
    let delivered = api_mutation(
        "mut_delivered",
        &day(1),
        150_123,
        "CR",
        json!({"bank_type": "bca"}),
    );
    let missed = api_mutation("mut_missed", &day(1), 80_456, "CR", Value::Null);
    let debit = api_mutation(
        "mut_debit",
        &day(1),
        5_000,
        "DB",
        json!({"bank_type": "bca"}),
    );
    let fake = FakeMoota::start(vec![delivered.clone(), missed, debit]);

    // The webhook brings one payment; the other never comes.
    let server = setia.start(
        &["serve", "--listen", "127.0.0.1:0"],
        &[("SETIA_MOOTA_SYNC_MINUTES", "0")],
    );
    let client = reqwest::Client::new();
    let body = webhook_body(&delivered);
    let hooked = client
        .post(server.url(&format!("/webhooks/moota/{m}")))
        .header("Signature", sign(&body))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(hooked.status(), 200);
    assert_eq!(drained(&*store, &merchant, 1).await, vec!["mut_delivered"]);

    // Bad input changes nothing and says why.
    let no_token = sync(&setia, &fake, &["--merchant", &m]);
    assert_eq!(no_token.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&no_token.stderr).contains("no Moota token"));
    for (contents, reason) in [("", "empty"), ("abc def\n", "space"), ("\n", "empty")] {
        let file = setia.write("bad-token.txt", contents);
        let output = setia.run(&["merchant", "moota", "--merchant", &m, "--token-file", &file]);
        assert_eq!(output.status.code(), Some(2), "{contents:?}");
        assert!(
            String::from_utf8_lossy(&output.stderr).contains(reason),
            "{contents:?}"
        );
    }
    let token_file = setia.write("moota-token.txt", &format!("{TOKEN}\n"));
    let unknown = setia.run(&[
        "merchant",
        "moota",
        "--merchant",
        "mer_00000000000000000000",
        "--token-file",
        &token_file,
    ]);
    assert_eq!(unknown.status.code(), Some(2));
    let bad_bank = setia.run(&["merchant", "moota", "--merchant", &m, "--banks", "bnk 1"]);
    assert_eq!(bad_bank.status.code(), Some(2));
    assert_eq!(store.moota_settings(&merchant).await.unwrap().token, None);

    let set = setia.json(&[
        "merchant",
        "moota",
        "--merchant",
        &m,
        "--token-file",
        &token_file,
    ]);
    assert_eq!(set, json!({"merchant": m, "token": "set", "banks": "all"}));
    let backwards = sync(
        &setia,
        &fake,
        &["--merchant", &m, "--since", &day(1), "--until", &day(3)],
    );
    assert_eq!(backwards.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&backwards.stderr).contains("is after --until"));
    let not_a_day = sync(&setia, &fake, &["--merchant", &m, "--since", "yesterday"]);
    assert_eq!(not_a_day.status.code(), Some(2));
    assert!(
        fake.with(|s| s.requests.is_empty()),
        "nothing was asked of Moota"
    );

    // The sync: page 2 is throttled once; the debit is not a payment; the null bank is
    // looked up.
    fake.with(|s| s.throttle_once.insert(2));
    let window = [
        "--merchant",
        m.as_str(),
        "--since",
        &day(3),
        "--until",
        &day(0),
    ];
    let first = synced(&setia, &fake, &window);
    assert_eq!(
        first,
        json!({"pages": 2, "mutations": 2, "new": 1, "already_known": 1,
               "window": {"since": day(3), "until": day(0)}})
    );
    let requests = fake.with(|s| s.requests.clone());
    assert!(requests
        .iter()
        .all(|(_, auth)| auth.as_deref() == Some(&format!("Bearer {TOKEN}") as &str)));
    let asked: Vec<&str> = requests.iter().map(|(path, _)| path.as_str()).collect();
    assert!(asked.contains(&"/bank"), "{asked:?}");
    let pages: Vec<&&str> = asked
        .iter()
        .filter(|p| p.starts_with("/mutation"))
        .collect();
    assert_eq!(
        pages.len(),
        3,
        "page 1, page 2 throttled, page 2: {asked:?}"
    );
    for page in &pages {
        assert!(
            page.contains("type=CR") && page.contains(&format!("start_date={}", day(3))),
            "{page}"
        );
    }

    // The worker applies it; each payment is counted once.
    assert_eq!(
        drained(&*store, &merchant, 2).await,
        vec!["mut_delivered", "mut_missed"]
    );
    let again = synced(&setia, &fake, &window);
    assert_eq!(
        (&again["new"], &again["already_known"]),
        (&json!(0), &json!(2))
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        purchases(&*store, &merchant).await.len(),
        2,
        "nothing double-counted"
    );

    // The missed payment is marked as found by reconciliation and audited.
    let audit = client
        .get(server.url("/api/v1/webhooks/deliveries"))
        .bearer_auth(&api_token)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(audit.contains("moota-api"), "{audit}");
    for path in [
        "/api/v1/webhooks/deliveries",
        "/api/v1/purchases",
        "/api/v1/engagement",
    ] {
        let answer = client
            .get(server.url(path))
            .bearer_auth(&api_token)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(!answer.contains(TOKEN), "{path} shows the token");
    }
    let listed = String::from_utf8_lossy(&setia.run(&["merchant", "list"]).stdout).into_owned();
    assert!(!listed.contains(TOKEN));
    let syncs = store
        .moota_syncs(
            &merchant,
            PageRequest {
                before: None,
                limit: 10,
            },
        )
        .await
        .unwrap()
        .items;
    assert_eq!(syncs.len(), 2);
    assert!(syncs
        .iter()
        .all(|s| s.error.is_none() && s.started_by == "command"));

    // A malformed page stops the sync and writes nothing of it; a wrong token says so.
    fake.with(|s| {
        s.broken = true;
        s.mutations.push(api_mutation(
            "mut_late",
            &day(0),
            99_000,
            "CR",
            json!({"bank_type": "bca"}),
        ));
    });
    let broken = sync(&setia, &fake, &window);
    assert_eq!(broken.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&broken.stderr).contains("not a page of Moota's API"));
    fake.with(|s| {
        s.broken = false;
        s.token = "another-token".into();
    });
    let refused = sync(&setia, &fake, &window);
    assert_eq!(refused.status.code(), Some(1));
    let said = String::from_utf8_lossy(&refused.stderr).into_owned();
    assert!(said.contains("401") && !said.contains(TOKEN), "{said}");
    assert!(!store
        .known_mutations(&merchant, &["mut_late".into()])
        .await
        .unwrap()
        .contains("mut_late"));
    let recorded = store
        .moota_syncs(
            &merchant,
            PageRequest {
                before: None,
                limit: 10,
            },
        )
        .await
        .unwrap()
        .items;
    assert!(recorded[0].error.as_deref().unwrap().contains("401"));
    assert!(recorded[1].error.as_deref().unwrap().contains("not a page"));

    // The scheduled sync in a server: it starts at once, finds the late payment, counts in
    // /metrics, and its log never shows the token.
    fake.with(|s| s.token = TOKEN.into());
    let scheduler = setia.start(
        &["serve", "--listen", "127.0.0.1:0", "--no-scheduler"],
        &[
            ("SETIA_MOOTA_API_URL", fake.url.as_str()),
            ("SETIA_MOOTA_SYNC_MINUTES", "30"),
            ("RUST_LOG", "debug"),
        ],
    );
    let mut scheduled = None;
    for _ in 0..200 {
        let latest = store
            .moota_syncs(
                &merchant,
                PageRequest {
                    before: None,
                    limit: 1,
                },
            )
            .await
            .unwrap()
            .items;
        if latest
            .first()
            .is_some_and(|s| s.started_by == "schedule" && s.finished_at.is_some())
        {
            scheduled = latest.into_iter().next();
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let scheduled = scheduled.expect("the scheduled sync ran");
    assert_eq!((scheduled.error, scheduled.counts.new), (None, 1));
    // From the last sync's end less a day of overlap, but never before the merchant started
    // on setia: today here.
    assert_eq!(
        (scheduled.window.since, scheduled.window.until),
        (today, today)
    );
    assert_eq!(drained(&*store, &merchant, 3).await.len(), 3);
    let metrics = client
        .get(scheduler.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("setia_moota_syncs_total{result=\"ok\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("setia_moota_mutations_found_total 1"),
        "{metrics}"
    );
    let logs: String = [&scheduler.log, &server.log]
        .iter()
        .map(|path| std::fs::read_to_string(path).unwrap())
        .collect();
    assert!(
        logs.contains("Moota sync done"),
        "the scheduled sync logged"
    );
    assert!(!logs.contains(TOKEN), "the token in a log line");

    // The next weekly report says how many payments of its week the webhook missed.
    let receiver = Receiver::start("");
    let jakarta = chrono_tz::Asia::Jakarta;
    let next_monday = today
        + chrono::TimeDelta::days(
            7 - i64::from(chrono::Datelike::weekday(&today).num_days_from_monday()),
        );
    let report_time = next_monday
        .and_hms_opt(10, 0, 0)
        .unwrap()
        .and_local_timezone(jakarta)
        .unwrap()
        .to_rfc3339();
    let smtp = receiver.url();
    let round = run_due(&setia, &report_time, &[("SETIA_SMTP_URL", smtp.as_str())]);
    assert_eq!(round["enqueued"]["weekly_churn_report"], 1, "{round}");
    let report = receiver
        .messages()
        .into_iter()
        .find(|m| header(m, "To").unwrap().contains("ops@toko.example"))
        .expect("the weekly report");
    assert!(
        text(&report)
            .contains("Rekonsiliasi Moota: 2 pembayaran minggu ini tidak sampai lewat webhook"),
        "{}",
        text(&report)
    );
}

/// A merchant on a SQLite database of its own, with the fake's Moota token set.
fn merchant_with_moota_token() -> (Setia, MerchantId) {
    let setia = Setia::on(setia_store::testing::TestDatabase::sqlite());
    let created = setia.create_merchant("Toko");
    let merchant = MerchantId::parse(created["id"].as_str().unwrap()).unwrap();
    let token_file = setia.write("moota-token.txt", &format!("{TOKEN}\n"));
    setia.json(&[
        "merchant",
        "moota",
        "--merchant",
        merchant.as_str(),
        "--token-file",
        &token_file,
    ]);
    (setia, merchant)
}

/// `--since` or `--until` after today (in Asia/Jakarta, Moota's days) is refused with exit 2
/// before Moota is asked anything or a sync is recorded: the sync would record the future
/// day as synced and the scheduled window would start past days no sync covered.
#[tokio::test]
async fn a_window_after_today_is_refused() {
    let (setia, merchant) = merchant_with_moota_token();
    let m = merchant.as_str().to_owned();
    let fake = FakeMoota::start(Vec::new());
    let today = chrono::Utc::now()
        .with_timezone(&chrono_tz::Asia::Jakarta)
        .date_naive();
    let day = |ahead: i64| (today + chrono::TimeDelta::days(ahead)).to_string();
    for (args, flag, refused) in [
        (vec!["--until", &day(1) as &str], "--until", day(1)),
        (
            vec!["--since", &day(12), "--until", &day(33)],
            "--since",
            day(12),
        ),
        // The default --until is today: a future --since alone says so too.
        (vec!["--since", &day(1)], "--since", day(1)),
        (
            vec!["--since", &day(-3), "--until", &day(20)],
            "--until",
            day(20),
        ),
    ] {
        let mut full = vec!["--merchant", m.as_str()];
        full.extend(args.iter().copied());
        let output = sync(&setia, &fake, &full);
        let said = String::from_utf8_lossy(&output.stderr).into_owned();
        assert_eq!(output.status.code(), Some(2), "{args:?}: {said}");
        assert!(
            said.contains(&format!("{flag} {refused} is after today ({today}")),
            "{args:?}: {said}"
        );
    }
    assert!(
        fake.with(|s| s.requests.is_empty()),
        "nothing was asked of Moota"
    );
    let store = setia.store().await;
    let page = PageRequest {
        before: None,
        limit: 10,
    };
    assert!(store
        .moota_syncs(&merchant, page)
        .await
        .unwrap()
        .items
        .is_empty());
    // Today itself is a day that has begun.
    let done = synced(&setia, &fake, &["--merchant", &m, "--until", &day(0)]);
    assert_eq!(done["window"]["until"], day(0));
    assert_eq!(store.last_synced_day(&merchant).await.unwrap(), Some(today));
}

/// A mutation in Moota's list that setia cannot take as a payment (here an amount over the
/// bound) is quarantined with its reason; the payment beside it on the same page still
/// arrives, and a second sync adds neither again. An item without a `mutation_id` is
/// quarantined the same way, keyed by its content.
#[tokio::test]
async fn an_item_setia_cannot_take_is_quarantined_and_its_page_goes_on() {
    let (setia, merchant) = merchant_with_moota_token();
    let m = merchant.as_str().to_owned();
    let yesterday = (chrono::Utc::now().with_timezone(&chrono_tz::Asia::Jakarta)
        - chrono::TimeDelta::days(1))
    .format("%Y-%m-%d")
    .to_string();
    let bca = json!({"bank_type": "bca"});
    let mut huge = api_mutation("mut_huge", &yesterday, 1, "CR", bca.clone());
    huge["amount"] = json!("9000000000000.00");
    let good = api_mutation("mut_good", &yesterday, 80_456, "CR", bca.clone());
    let mut nameless = api_mutation("", &yesterday, 5_000, "CR", bca);
    nameless.as_object_mut().unwrap().remove("mutation_id");
    // Two pages (per_page is 2), the refused items first and last.
    let fake = FakeMoota::start(vec![huge, good, nameless]);

    let window = ["--merchant", m.as_str(), "--since", yesterday.as_str()];
    let first = synced(&setia, &fake, &window);
    assert_eq!(
        (&first["pages"], &first["mutations"], &first["new"]),
        (&json!(2), &json!(3), &json!(3)),
        "{first}"
    );
    let store = setia.store().await;
    let worker = setia_worker::Worker::new(store.clone(), setia_worker::WorkerConfig::default());
    worker.run_once(chrono::Utc::now()).await.unwrap();
    assert_eq!(purchases(&*store, &merchant).await, vec!["mut_good"]);
    let page = PageRequest {
        before: None,
        limit: 10,
    };
    let quarantined = store.quarantined(&merchant, page).await.unwrap().items;
    let mut reasons: Vec<&str> = quarantined
        .iter()
        .map(|row| row.error.as_deref().unwrap_or_default())
        .collect();
    reasons.sort();
    assert_eq!(reasons.len(), 2, "{reasons:?}");
    assert!(reasons[0].contains("maximum"), "{reasons:?}");
    assert!(reasons[1].contains("mutation_id"), "{reasons:?}");

    // Both are known by their keys, the nameless one by its content.
    let second = synced(&setia, &fake, &window);
    assert_eq!(
        (&second["new"], &second["already_known"]),
        (&json!(0), &json!(3)),
        "{second}"
    );
}
