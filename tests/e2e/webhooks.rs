//! The webhook endpoint served by the real binary: durability across SIGKILL, graceful
//! shutdown, health, metrics and the deliveries API.

use std::collections::HashSet;

use setia_core::{MerchantId, WebhookSecret};
use setia_store::PageRequest;
use sha2::{Digest, Sha256};

use crate::support::Setia;

crate::on_every_backend!(
    every_acknowledged_webhook_survives_sigkill,
    sigterm_finishes_in_flight_requests_and_exits_0,
    health_metrics_and_the_deliveries_api,
);

pub const SECRET: &str = "bench-secret-123";

pub fn mutation(n: usize) -> Vec<u8> {
    format!(
        r#"[{{"mutation_id":"m-{n}","account_number":"1234567890","date":"2026-11-27 10:00:00","description":"TRSF E-BANKING CR {n} BUDI SANTOSO","amount":{},"type":"CR","balance":0,"bank":{{"bank_type":"bca"}}}}]"#,
        100_000 + n
    )
    .into_bytes()
}

pub fn sign(body: &[u8]) -> String {
    setia_core::moota::sign(&WebhookSecret::parse(SECRET).unwrap(), body)
}

pub fn merchant_with_secret(setia: &Setia) -> (MerchantId, String) {
    let created = setia.json(&[
        "merchant",
        "create",
        "--name",
        "Toko",
        "--webhook-secret",
        SECRET,
    ]);
    let id = MerchantId::parse(created["id"].as_str().unwrap()).unwrap();
    (id, created["api_token"].as_str().unwrap().to_owned())
}

async fn post(
    client: &reqwest::Client,
    url: &str,
    body: Vec<u8>,
) -> Option<(u16, serde_json::Value)> {
    let signature = sign(&body);
    let response = client
        .post(url)
        .header("Signature", signature)
        .body(body)
        .send()
        .await
        .ok()?;
    let status = response.status().as_u16();
    Some((status, response.json().await.unwrap_or_default()))
}

async fn inbox_hashes(setia: &Setia, merchant: &MerchantId) -> Vec<String> {
    let store = setia.store().await;
    let mut hashes = Vec::new();
    let mut before = None;
    loop {
        let page = store
            .inbox_entries(merchant, PageRequest { before, limit: 500 })
            .await
            .unwrap();
        hashes.extend(page.items.into_iter().map(|e| e.body_sha256));
        match page.next_cursor {
            Some(cursor) => before = Some(cursor),
            None => return hashes,
        }
    }
}

async fn every_acknowledged_webhook_survives_sigkill(setia: Setia) {
    let (merchant, _) = merchant_with_secret(&setia);
    let mut server = setia.serve();
    let url = server.url(&format!("/webhooks/moota/{merchant}"));
    let client = reqwest::Client::new();

    const TOTAL: usize = 3_000;
    let (done, mut answers) = tokio::sync::mpsc::unbounded_channel();
    let limit = std::sync::Arc::new(tokio::sync::Semaphore::new(64));
    for n in 0..TOTAL {
        let (client, url, done, limit) = (client.clone(), url.clone(), done.clone(), limit.clone());
        tokio::spawn(async move {
            let _permit = limit.acquire().await.unwrap();
            let body = mutation(n);
            let sha = hex::encode(Sha256::digest(&body));
            let _ = done.send((sha, post(&client, &url, body).await));
        });
    }
    drop(done);

    let mut acknowledged = HashSet::new();
    let mut answered = 0;
    while let Some((sha, answer)) = answers.recv().await {
        answered += 1;
        if let Some((200, _)) = answer {
            acknowledged.insert(sha);
        }
        if answered == TOTAL / 3 {
            server.kill();
        }
    }
    assert!(
        acknowledged.len() >= TOTAL / 3 - 64,
        "only {} acknowledged",
        acknowledged.len()
    );
    assert!(
        acknowledged.len() < TOTAL,
        "the kill came too late to test anything"
    );

    // After a restart, every acknowledged body is in the inbox exactly once.
    let server = setia.serve();
    let stored = inbox_hashes(&setia, &merchant).await;
    let unique: HashSet<&String> = stored.iter().collect();
    assert_eq!(unique.len(), stored.len(), "no body twice");
    let missing: Vec<&String> = acknowledged
        .iter()
        .filter(|sha| !unique.contains(sha))
        .collect();
    assert!(
        missing.is_empty(),
        "{} acknowledged webhooks lost",
        missing.len()
    );

    // Moota's retry of an acknowledged body is a duplicate, not a second row.
    let url = server.url(&format!("/webhooks/moota/{merchant}"));
    let first_acknowledged = (0..TOTAL)
        .find(|n| acknowledged.contains(&hex::encode(Sha256::digest(mutation(*n)))))
        .unwrap();
    let answer = post(&client, &url, mutation(first_acknowledged))
        .await
        .unwrap();
    assert_eq!(answer, (200, serde_json::json!({"status": "duplicate"})));
}

async fn sigterm_finishes_in_flight_requests_and_exits_0(setia: Setia) {
    let (merchant, _) = merchant_with_secret(&setia);
    let mut server = setia.serve();
    let url = server.url(&format!("/webhooks/moota/{merchant}"));
    let client = reqwest::Client::new();
    let mut requests = tokio::task::JoinSet::new();
    for n in 0..200 {
        let (client, url) = (client.clone(), url.clone());
        requests.spawn(async move {
            post(&client, &url, mutation(n))
                .await
                .map(|(status, _)| (n, status))
        });
    }
    // Let some requests get going, then ask the server to stop.
    tokio::time::sleep(std::time::Duration::from_millis(30)).await;
    let status = tokio::task::spawn_blocking(move || server.terminate())
        .await
        .unwrap();
    assert_eq!(status.code(), Some(0), "graceful shutdown exits 0");
    let mut acknowledged = HashSet::new();
    while let Some(result) = requests.join_next().await {
        if let Some((n, 200)) = result.unwrap() {
            acknowledged.insert(hex::encode(Sha256::digest(mutation(n))));
        }
    }
    let stored: HashSet<String> = inbox_hashes(&setia, &merchant).await.into_iter().collect();
    assert!(acknowledged.is_subset(&stored));
}

async fn health_metrics_and_the_deliveries_api(setia: Setia) {
    let (merchant, token) = merchant_with_secret(&setia);
    let other = setia.json(&["merchant", "create", "--name", "Other"]);
    // No worker: the inbox keeps what arrives, so its depth is known.
    let server = setia.start(&["serve", "--listen", "127.0.0.1:0", "--no-worker"], &[]);
    let client = reqwest::Client::new();
    let get = |path: &str, token: Option<&str>| {
        let mut request = client.get(server.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send()
    };
    assert_eq!(get("/healthz", None).await.unwrap().status(), 200);
    let ready = get("/readyz", None).await.unwrap();
    assert_eq!(ready.status(), 200);
    assert_eq!(
        ready.json::<serde_json::Value>().await.unwrap()["status"],
        "ready"
    );

    let url = server.url(&format!("/webhooks/moota/{merchant}"));
    assert_eq!(post(&client, &url, mutation(1)).await.unwrap().0, 200);
    assert_eq!(post(&client, &url, mutation(1)).await.unwrap().0, 200);
    let forged = client
        .post(&url)
        .header("Signature", "00".repeat(32))
        .body(mutation(2))
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 401);
    let error: serde_json::Value = forged.json().await.unwrap();
    assert_eq!(error["error"]["code"], "signature_mismatch");
    // A caller's newline in the merchant path does not start a log line of its own.
    let forged_log = client
        .post(server.url(
            "/webhooks/moota/x%0A2026-12-08T00:00:00Z%20INFO%20setia:%20FORGED%20admin%20login",
        ))
        .body(mutation(3))
        .send()
        .await
        .unwrap();
    assert_eq!(forged_log.status(), 404);

    let log = std::fs::read_to_string(&server.log).unwrap();
    assert!(log.contains("FORGED"), "the rejection is logged: {log}");
    assert!(
        log.lines()
            .all(|line| !line.starts_with("2026-12-08T00:00:00Z")),
        "{log}"
    );

    let metrics = get("/metrics", None).await.unwrap().text().await.unwrap();
    for line in [
        "setia_webhooks_accepted_total",
        "setia_webhooks_duplicate_total",
        "setia_webhooks_rejected_total{reason=\"signature_mismatch\"}",
        "setia_inbox_depth 1",
        "setia_http_request_duration_seconds_bucket",
    ] {
        assert!(metrics.contains(line), "/metrics lacks {line}:\n{metrics}");
    }

    // The deliveries API needs the merchant's token and shows only its rows, newest first.
    assert_eq!(
        get("/api/v1/webhooks/deliveries", None)
            .await
            .unwrap()
            .status(),
        401
    );
    assert_eq!(
        get("/api/v1/webhooks/deliveries", Some("stk_forged"))
            .await
            .unwrap()
            .status(),
        401
    );
    // The rejected call's audit row is written without making the caller wait for it.
    let mut page = serde_json::Value::Null;
    for _ in 0..50 {
        page = get("/api/v1/webhooks/deliveries?limit=2", Some(&token))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if page["items"][0]["reason"] == "signature_mismatch" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let reasons: Vec<&str> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["reason"].as_str().unwrap())
        .collect();
    assert_eq!(reasons, ["signature_mismatch", "duplicate"]);
    let cursor = page["next_cursor"].as_str().unwrap();
    let rest: serde_json::Value = get(
        &format!("/api/v1/webhooks/deliveries?limit=2&cursor={cursor}"),
        Some(&token),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(rest["items"][0]["reason"], "received");
    assert_eq!(rest["next_cursor"], serde_json::Value::Null);
    let bad = get("/api/v1/webhooks/deliveries?limit=0", Some(&token))
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    let others: serde_json::Value = get(
        "/api/v1/webhooks/deliveries",
        Some(other["api_token"].as_str().unwrap()),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(others["items"], serde_json::json!([]));
}
