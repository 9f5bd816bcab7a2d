//! The ledger pipeline through the real binary: the JSON API a store integrates with, and
//! workers that are killed or run side by side.

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use setia_core::MerchantId;

use crate::support::{Process, Setia};
use crate::webhooks::{merchant_with_secret, sign};

crate::on_every_backend!(
    the_ledger_api_end_to_end,
    a_worker_killed_mid_batch_processes_every_row_once
);

// Named so that CI's `postgres::` filter selects it.
#[cfg(feature = "postgres-tests")]
mod side_by_side {
    mod postgres {
        #[tokio::test]
        async fn two_workers_never_process_a_row_twice() {
            let database = setia_store::testing::TestDatabase::postgres().await;
            super::super::two_workers_never_process_a_row_twice(crate::support::Setia::on(
                database,
            ))
            .await;
        }
    }
}

pub(crate) fn payment(
    id: &str,
    account: &str,
    amount: i64,
    description: &str,
    date: &str,
) -> Vec<u8> {
    json!([{
        "mutation_id": id, "account_number": account, "date": date, "description": description,
        "amount": amount, "type": "CR", "balance": 0, "bank": {"bank_type": "bca", "label": "BCA"}
    }])
    .to_string()
    .into_bytes()
}

/// Yesterday, Jakarta wall time, as Moota writes dates: bank mutations are in the past.
pub(crate) fn yesterday() -> String {
    (chrono::Utc::now() - chrono::TimeDelta::days(1))
        .with_timezone(&chrono_tz::Asia::Jakarta)
        .format("%Y-%m-%d %H:%M:%S")
        .to_string()
}

pub(crate) struct Api<'a> {
    pub client: reqwest::Client,
    pub server: &'a Process,
    pub token: String,
}

impl Api<'_> {
    pub(crate) async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut request = self
            .client
            .request(method, self.server.url(&format!("/api/v1{path}")))
            .bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    pub(crate) async fn get(&self, path: &str) -> (u16, Value) {
        self.call(reqwest::Method::GET, path, None).await
    }

    pub(crate) async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.call(reqwest::Method::POST, path, Some(body)).await
    }

    pub(crate) async fn webhook(&self, merchant: &MerchantId, body: Vec<u8>) -> u16 {
        let url = self.server.url(&format!("/webhooks/moota/{merchant}"));
        let signature = sign(&body);
        self.client
            .post(url)
            .header("Signature", signature)
            .body(body)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }
}

pub(crate) async fn wait_for(what: &str, mut done: impl AsyncFnMut() -> bool) {
    let started = Instant::now();
    while !done().await {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn the_ledger_api_end_to_end(setia: Setia) {
    let (merchant, token) = merchant_with_secret(&setia);
    let other = setia.json(&["merchant", "create", "--name", "Other"]);
    let server = setia.serve();
    let api = Api {
        client: reqwest::Client::new(),
        server: &server,
        token,
    };
    let stranger = Api {
        client: reqwest::Client::new(),
        server: &server,
        token: other["api_token"].as_str().unwrap().into(),
    };

    let (status, c1) = api
        .post("/customers", json!({"external_id": "C1", "name": "Siti", "email": "siti@example.co.id", "virtual_account": "8808001"}))
        .await;
    assert_eq!(status, 200, "{c1}");
    assert_eq!(
        (
            c1["tier"].as_str(),
            c1["points_balance"].as_i64(),
            c1["segment"].clone()
        ),
        (Some("bronze"), Some(0), Value::Null)
    );
    api.post(
        "/customers",
        json!({"external_id": "C2", "payer_names": ["Budi Santoso"]}),
    )
    .await;
    let (status, error) = api
        .post(
            "/customers",
            json!({"external_id": "C9", "email": "not-an-email"}),
        )
        .await;
    assert_eq!(
        (status, error["error"]["code"].as_str()),
        (400, Some("bad_request"))
    );
    assert!(error["error"]["message"]
        .as_str()
        .unwrap()
        .starts_with("email"));

    let (status, order) = api
        .post(
            "/orders",
            json!({"external_id": "O1", "customer_external_id": "C3", "amount": "250000"}),
        )
        .await;
    assert_eq!(status, 201, "{order}");
    let code = order["unique_code"].as_i64().unwrap();
    assert_eq!(order["transfer_amount"], format!("{}.00", 250_000 + code));
    assert_eq!(order["status"], "pending");
    let (status, _) = api
        .post(
            "/orders",
            json!({"external_id": "O1", "customer_external_id": "C3", "amount": 5}),
        )
        .await;
    assert_eq!(status, 409);

    for (id, account, amount, description) in [
        ("m1", "8808001", 150_000, "VA PAYMENT"),
        ("m2", "5550001", 250_000 + code, "TRSF E-BANKING CR"),
        (
            "m3",
            "5550001",
            30_000,
            "TRSF E-BANKING CR 2711/FTSCY/WS95031 BUDI SANTOSO",
        ),
        ("m4", "5550001", 40_000, "TRANSFER DARI AGUS WIJAYA"),
    ] {
        assert_eq!(
            api.webhook(
                &merchant,
                payment(id, account, amount, description, &yesterday())
            )
            .await,
            200
        );
    }
    assert_eq!(
        api.webhook(&merchant, b"this is not json".to_vec()).await,
        200,
        "signed junk is accepted"
    );

    wait_for("the worker", async || {
        api.get("/purchases").await.1["items"]
            .as_array()
            .map_or(0, Vec::len)
            == 4
    })
    .await;
    let (_, c1) = api.get("/customers/C1").await;
    assert_eq!(
        (
            c1["purchases"].as_u64(),
            c1["points_balance"].as_i64(),
            c1["total_spent"].as_str()
        ),
        (Some(1), Some(15), Some("150000.00"))
    );
    let (_, order) = api.get("/orders/O1").await;
    assert_eq!(order["status"], "paid");
    let (_, c3) = api.get("/customers/C3").await;
    assert_eq!(c3["points_balance"], 25);

    let (_, queue) = api.get("/purchases?attributed=false").await;
    let unattributed = queue["items"].as_array().unwrap();
    assert_eq!(unattributed.len(), 1);
    assert_eq!(unattributed[0]["payer_name"], "AGUS WIJAYA");
    let purchase = unattributed[0]["id"].as_str().unwrap().to_owned();
    let (status, _) = stranger
        .post(
            &format!("/purchases/{purchase}/attribute"),
            json!({"customer_external_id": "C2"}),
        )
        .await;
    assert_eq!(status, 404, "another merchant's purchase does not exist");
    let (status, attributed) = api
        .post(
            &format!("/purchases/{purchase}/attribute"),
            json!({"customer_external_id": "C2"}),
        )
        .await;
    assert_eq!(
        (status, attributed["attribution"].as_str()),
        (200, Some("manual"))
    );
    let (status, _) = api
        .post(
            &format!("/purchases/{purchase}/attribute"),
            json!({"customer_external_id": "C1"}),
        )
        .await;
    assert_eq!(status, 409);
    let (_, c2) = api.get("/customers/C2").await;
    assert_eq!(c2["points_balance"], 3 + 4);

    let redeem = |key: &str, points: i64| {
        api.post(
            "/customers/C3/redemptions",
            json!({"points": points, "idempotency_key": key, "reason": "voucher"}),
        )
    };
    assert_eq!(redeem("k1", 20).await.0, 201);
    let (status, replay) = redeem("k1", 20).await;
    assert_eq!((status, replay["points_balance"].as_i64()), (200, Some(5)));
    let (status, short) = redeem("k2", 6).await;
    assert_eq!(
        (status, short["error"]["code"].as_str()),
        (409, Some("insufficient_points"))
    );
    assert_eq!(
        api.post(
            "/customers/C404/redemptions",
            json!({"points": 1, "idempotency_key": "k", "reason": "r"})
        )
        .await
        .0,
        404
    );

    let (status, refunded) = api
        .post(&format!("/purchases/{purchase}/refund"), json!({}))
        .await;
    assert!(
        status == 200 && refunded["refunded_at"].is_string(),
        "{refunded}"
    );
    assert_eq!(api.get("/customers/C2").await.1["points_balance"], 3);

    wait_for("quarantine", async || {
        api.get("/webhooks/quarantine").await.1["items"]
            .as_array()
            .map_or(0, Vec::len)
            == 1
    })
    .await;
    let (_, quarantined) = api.get("/webhooks/quarantine").await;
    assert!(quarantined["items"][0]["error"]
        .as_str()
        .unwrap()
        .contains("not JSON"));

    // Another merchant sees none of it; no token sees nothing at all.
    for path in ["/customers/C1", "/orders/O1"] {
        assert_eq!(stranger.get(path).await.0, 404, "{path}");
    }
    assert_eq!(stranger.get("/purchases").await.1["items"], json!([]));
    assert_eq!(
        stranger.get("/webhooks/quarantine").await.1["items"],
        json!([])
    );
    assert_eq!(
        stranger
            .post(&format!("/purchases/{purchase}/refund"), json!({}))
            .await
            .0,
        404
    );
    let anonymous = Api {
        client: reqwest::Client::new(),
        server: &server,
        token: String::new(),
    };
    assert_eq!(anonymous.get("/purchases").await.0, 401);
}

/// Posts `count` VA payments of Rp 100,000 for 50 customers through a server without a worker.
async fn fill_inbox(setia: &Setia, count: usize) -> MerchantId {
    let (merchant, token) = merchant_with_secret(setia);
    let server = setia.start(&["serve", "--listen", "127.0.0.1:0", "--no-worker"], &[]);
    let api = Api {
        client: reqwest::Client::new(),
        server: &server,
        token,
    };
    for n in 0..50 {
        api.post(
            "/customers",
            json!({"external_id": format!("C{n}"), "virtual_account": format!("88080{n:02}")}),
        )
        .await;
    }
    let mut sends = tokio::task::JoinSet::new();
    let limit = std::sync::Arc::new(tokio::sync::Semaphore::new(32));
    for n in 0..count {
        let body = payment(
            &format!("m{n}"),
            &format!("88080{:02}", n % 50),
            100_000,
            "VA",
            &yesterday(),
        );
        let (client, url, limit) = (
            api.client.clone(),
            server.url(&format!("/webhooks/moota/{merchant}")),
            limit.clone(),
        );
        sends.spawn(async move {
            let _permit = limit.acquire().await.unwrap();
            let signature = sign(&body);
            client
                .post(url)
                .header("Signature", signature)
                .body(body)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        });
    }
    while let Some(status) = sends.join_next().await {
        assert_eq!(status.unwrap(), 200);
    }
    merchant
}

const SHORT_LEASE: [(&str, &str); 1] = [("SETIA_WORKER_LEASE_SECONDS", "2")];

async fn assert_processed_once(setia: &Setia, merchant: &MerchantId, count: u64) {
    let store = setia.store().await;
    wait_for("the inbox to empty", async || {
        store.inbox_depth().await.unwrap() == 0
    })
    .await;
    let summary = store.ledger_summary(merchant).await.unwrap();
    assert_eq!(
        (
            summary.mutations,
            summary.mutation_deliveries,
            summary.purchases
        ),
        (count, count, count)
    );
    // One earn entry per purchase (bonuses come on top); the unique (kind, source) key makes
    // a second award impossible, so this also says no purchase was awarded twice.
    assert!(summary.points_entries >= count, "{summary:?}");
}

async fn a_worker_killed_mid_batch_processes_every_row_once(setia: Setia) {
    const ROWS: usize = 1_500;
    let merchant = fill_inbox(&setia, ROWS).await;
    let store = setia.store().await;
    let mut worker = setia.start(&["worker"], &SHORT_LEASE);
    wait_for("the worker to start", async || {
        store.ledger_summary(&merchant).await.unwrap().purchases >= 100
    })
    .await;
    worker.kill();
    let partial = store.ledger_summary(&merchant).await.unwrap().purchases;
    assert!(
        partial < ROWS as u64,
        "the kill came after the work was done"
    );
    let _restarted = setia.start(&["worker"], &SHORT_LEASE);
    assert_processed_once(&setia, &merchant, ROWS as u64).await;
}

#[cfg_attr(not(feature = "postgres-tests"), allow(dead_code))]
async fn two_workers_never_process_a_row_twice(setia: Setia) {
    const ROWS: usize = 3_000;
    let merchant = fill_inbox(&setia, ROWS).await;
    let _first = setia.start(&["worker"], &SHORT_LEASE);
    let _second = setia.start(&["worker"], &SHORT_LEASE);
    assert_processed_once(&setia, &merchant, ROWS as u64).await;
}
