//! The win-back JSON API through the real binary: the results against the holdout with
//! their group sizes, the episodes page by page, and a voucher redeemed once (a replay
//! answers the same, another order, an expired or unknown code and another merchant's
//! token are refused); the weekly report's win-back line in `setia mail preview`.

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{json, Value};
use setia_core::winback::EntryReason;
use setia_core::{ExternalId, MerchantId};
use setia_store::winback::{NewEpisode, NewStep, NewVoucher};

use crate::support::Setia;

crate::on_every_backend!(winback_results_episodes_and_vouchers_over_the_api);

/// C1–C5 treated, C6–C8 held out; C5 entered two days ago, the rest 45 days ago.
const TREATED: [u32; 5] = [1, 2, 3, 4, 5];
const HELD_OUT: [u32; 3] = [6, 7, 8];

fn code(n: u32) -> String {
    format!("WB-E2E{n:04}")
}

async fn winback_results_episodes_and_vouchers_over_the_api(setia: Setia) {
    let created = setia.create_merchant("Toko Kembali");
    let m = created["id"].as_str().unwrap().to_owned();
    let token = created["api_token"].as_str().unwrap().to_owned();
    let merchant = MerchantId::parse(&m).unwrap();
    let other = setia.create_merchant("Toko Lain");
    let other_token = other["api_token"].as_str().unwrap().to_owned();

    let mut customers = String::from("external_id,name,email,consent\n");
    let mut history = String::from("customer_external_id,occurred_at,amount,reference\n");
    let today = Utc::now()
        .with_timezone(&chrono_tz::Asia::Jakarta)
        .date_naive();
    for n in 1..=8 {
        customers.push_str(&format!("C{n},Pelanggan {n},c{n}@example.co.id,true\n"));
        for (k, back) in [200, 170, 140].iter().enumerate() {
            let day = today - TimeDelta::days(*back);
            history.push_str(&format!("C{n},{day},100000,INV-{n}-{k}\n"));
        }
    }
    setia.import("customers", &m, &customers);
    setia.import("transactions", &m, &history);

    // The episodes, as the entry pass would write them: a voucher step for the treated.
    let store = setia.store().await;
    let now = Utc::now();
    let mut episodes = Vec::new();
    for n in TREATED.into_iter().chain(HELD_OUT) {
        let customer = store
            .customer(&merchant, &ExternalId::parse(&format!("C{n}")).unwrap())
            .await
            .unwrap()
            .unwrap()
            .id;
        let holdout = HELD_OUT.contains(&n);
        let entered_at: DateTime<Utc> = now - TimeDelta::days(if n == 5 { 2 } else { 45 });
        // C2's voucher ran out yesterday; the others are valid for a week more.
        let valid_until = if n == 2 {
            today - TimeDelta::days(1)
        } else {
            today + TimeDelta::days(7)
        };
        episodes.push(NewEpisode {
            customer,
            number: 1,
            reason: EntryReason::Overdue,
            holdout,
            entered_at,
            counts_from: entered_at,
            last_step_at: entered_at + TimeDelta::days(7),
            p_alive: Some(0.3),
            expected_30d: Some(0.25),
            expected_60d: Some(0.4),
            steps: vec![NewStep {
                due_at: entered_at,
                voucher: (!holdout).then(|| NewVoucher {
                    code: code(n),
                    percent: 10,
                    valid_until,
                }),
            }],
        });
    }
    let written = store
        .start_winback_episodes(&merchant, &episodes, now)
        .await
        .unwrap();
    assert_eq!(written.len(), 8);

    let server = setia.serve();
    let client = reqwest::Client::new();
    let get = |path: &str, token: &str| {
        let request = client.get(server.url(path)).bearer_auth(token);
        async move {
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            (status, response.json::<Value>().await.unwrap())
        }
    };
    let redeem = |code: &str, token: &str, body: Option<String>| {
        let mut request = client
            .post(server.url(&format!("/api/v1/vouchers/{code}/redeem")))
            .bearer_auth(token);
        if let Some(body) = body {
            request = request
                .header("Content-Type", "application/json")
                .body(body);
        }
        async move {
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            (status, response.json::<Value>().await.unwrap())
        }
    };
    let order = |id: &str| Some(json!({ "order_external_id": id }).to_string());

    // The results: group sizes, the young episode pending, nobody bought since entry (so
    // no group varies: an estimate of zero and no interval).
    let (status, results) = get("/api/v1/winback/results", &token).await;
    assert_eq!(status, 200, "{results}");
    let total = &results["total"];
    assert_eq!(
        (&total["treated"], &total["holdout"]),
        (&json!(5), &json!(3))
    );
    let d30 = &total["days_30"];
    assert_eq!(d30["days"], 30);
    assert_eq!(
        (&d30["treated"]["n"], &d30["treated"]["pending"]),
        (&json!(4), &json!(1))
    );
    assert_eq!(
        (&d30["holdout"]["n"], &d30["holdout"]["pending"]),
        (&json!(3), &json!(0))
    );
    assert_eq!(d30["treated"]["bought"], 0);
    assert_eq!(d30["treated"]["revenue_per_customer"], "0.00");
    assert_eq!(d30["treated"]["expected_purchases_per_customer"], 0.25);
    assert_eq!(d30["holdout"]["with_expectation"], 3);
    assert_eq!(d30["difference"]["share_bought"]["estimate"], 0.0);
    assert!(d30["difference"]["share_bought"]["low"].is_null(), "{d30}");
    assert_eq!(d30["incremental"]["revenue"]["estimate"], "0.00");
    assert_eq!(
        total["days_60"]["treated"]["pending"], 5,
        "no 60-day window is over"
    );
    assert_eq!(results["confidence"], 0.95);
    assert!(!results["cohorts"].as_array().unwrap().is_empty());
    // A range: before the episodes entered, nothing; a bad date or an empty range, 400.
    let early = format!(
        "/api/v1/winback/results?until={}",
        today - TimeDelta::days(60)
    );
    let (status, none) = get(&early, &token).await;
    assert_eq!(status, 200);
    assert_eq!(
        (&none["total"]["treated"], &none["total"]["holdout"]),
        (&json!(0), &json!(0))
    );
    assert!(none["total"]["days_30"]["difference"]["share_bought"]["estimate"].is_null());
    let (status, error) = get("/api/v1/winback/results?from=yesterday", &token).await;
    assert_eq!(
        (status, &error["error"]["code"]),
        (400, &json!("bad_request"))
    );
    let backwards = format!("/api/v1/winback/results?from={today}&until={today}");
    assert_eq!(get(&backwards, &token).await.0, 400);
    // Another merchant has none of them.
    let (_, theirs) = get("/api/v1/winback/results", &other_token).await;
    assert_eq!(theirs["total"]["treated"], 0);

    // Episodes, newest first, three to a page.
    let mut seen = Vec::new();
    let mut path = "/api/v1/winback/episodes?limit=3".to_owned();
    loop {
        let (status, page) = get(&path, &token).await;
        assert_eq!(status, 200, "{page}");
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= 3);
        seen.extend(items.iter().cloned());
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("/api/v1/winback/episodes?limit=3&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(seen.len(), 8);
    let ids: Vec<i64> = seen.iter().map(|e| e["id"].as_i64().unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "newest first: {ids:?}");
    let c1 = seen
        .iter()
        .find(|e| e["customer_external_id"] == "C1")
        .unwrap();
    assert_eq!(c1["holdout"], false);
    assert_eq!(c1["vouchers"][0]["code"], code(1));
    let c6 = seen
        .iter()
        .find(|e| e["customer_external_id"] == "C6")
        .unwrap();
    assert_eq!(
        (&c6["holdout"], &c6["vouchers"]),
        (&json!(true), &json!([]))
    );
    // Open: only C5's, whose last step is still ahead.
    let (_, open) = get("/api/v1/winback/episodes?open=true", &token).await;
    let open = open["items"].as_array().unwrap();
    assert_eq!(open.len(), 1);
    assert_eq!(open[0]["customer_external_id"], "C5");
    assert_eq!(
        get("/api/v1/winback/episodes?open=maybe", &token).await.0,
        400
    );
    assert_eq!(get("/api/v1/winback/episodes?limit=0", &token).await.0, 400);
    let (_, theirs) = get("/api/v1/winback/episodes", &other_token).await;
    assert_eq!(theirs["items"], json!([]));

    // Redeeming C1's voucher on an order; a replay answers the same.
    let (status, voucher) = redeem(&code(1), &token, order("INV-900")).await;
    assert_eq!(status, 200, "{voucher}");
    assert_eq!(voucher["code"], code(1));
    assert_eq!(voucher["percent"], 10);
    assert_eq!(voucher["redeemed_order"], "INV-900");
    assert_eq!(
        voucher["valid_until"],
        (today + TimeDelta::days(7)).to_string()
    );
    assert!(voucher["redeemed_at"].is_string());
    let (status, again) = redeem(&code(1), &token, order("INV-900")).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again, voucher, "the replay answers the first redemption");
    // Typed in small letters by a clerk: the same voucher.
    let (status, lower) = redeem(&code(1).to_lowercase(), &token, order("INV-900")).await;
    assert_eq!((status, &lower), (200, &voucher));
    // Another order, or none: refused, saying which order had it.
    let (status, error) = redeem(&code(1), &token, order("INV-901")).await;
    assert_eq!(status, 409, "{error}");
    assert_eq!(error["error"]["code"], "voucher_already_redeemed");
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("INV-900"),
        "{error}"
    );
    assert_eq!(redeem(&code(1), &token, None).await.0, 409);
    // Unknown, or another merchant's: the same 404.
    let (status, error) = redeem("WB-NOSUCH00", &token, None).await;
    assert_eq!(
        (status, &error["error"]["code"]),
        (404, &json!("not_found"))
    );
    let (status, error) = redeem(&code(3), &other_token, None).await;
    assert_eq!(
        (status, &error["error"]["code"]),
        (404, &json!("not_found"))
    );
    // Expired yesterday.
    let (status, error) = redeem(&code(2), &token, order("INV-902")).await;
    assert_eq!(status, 409, "{error}");
    assert_eq!(error["error"]["code"], "voucher_expired");
    // Bad input changes nothing: an order id too long, malformed JSON, an unknown field,
    // an oversized body, no token.
    let long = "X".repeat(129);
    let (status, error) = redeem(&code(3), &token, order(&long)).await;
    assert_eq!(status, 400, "{error}");
    assert!(error["error"]["message"]
        .as_str()
        .unwrap()
        .starts_with("order_external_id"));
    assert_eq!(redeem(&code(3), &token, Some("{".into())).await.0, 400);
    assert_eq!(
        redeem(&code(3), &token, Some(r#"{"order":"INV-1"}"#.into()))
            .await
            .0,
        400
    );
    let huge = json!({ "order_external_id": "X".repeat(5_000) }).to_string();
    let (status, error) = redeem(&code(3), &token, Some(huge)).await;
    assert_eq!(
        (status, &error["error"]["code"]),
        (413, &json!("payload_too_large"))
    );
    let anonymous = client
        .post(server.url(&format!("/api/v1/vouchers/{}/redeem", code(3))))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    // C3's voucher without an order (an empty body); again without one is the replay.
    let (status, c3) = redeem(&code(3), &token, None).await;
    assert_eq!(status, 200, "{c3}");
    assert!(c3["redeemed_order"].is_null());
    let (status, again) = redeem(&code(3), &token, Some(String::new())).await;
    assert_eq!((status, &again), (200, &c3));
    assert_eq!(redeem(&code(3), &token, order("INV-903")).await.0, 409);

    // The results count the vouchers used.
    let (_, results) = get("/api/v1/winback/results", &token).await;
    assert_eq!(results["total"]["vouchers_redeemed"], 2);
    drop(server);

    // The weekly report's win-back line: the episodes that entered 30–90 days before it.
    let output = setia.run(&[
        "mail",
        "preview",
        "--merchant",
        &m,
        "--kind",
        "weekly_churn_report",
    ]);
    assert!(
        output.status.success(),
        "{}",
        crate::support::stderr(&output)
    );
    let shown = String::from_utf8(output.stdout).unwrap();
    assert!(
        shown.contains("Win-back: 4 pelanggan dikirimi email, 3 kontrol (masuk "),
        "{shown}"
    );
    assert!(
        shown.contains("belum cukup data untuk dibandingkan dengan kelompok kontrol"),
        "nobody bought in either group: {shown}"
    );
}
