//! Products, order lines and recommendations through the real binary: the items import, the
//! catalogue API and its attacks, lines that pass from orders to the purchases that pay
//! them, the nightly run's recommendations in the API, the dashboard and a thank-you email
//! delivered over SMTP.

use chrono::{TimeDelta, Utc};
use serde_json::{json, Value};

use crate::dashboard::Dash;
use crate::ledger::{payment, wait_for, Api};
use crate::mail::{jakarta_wall_time, run_due, text};
use crate::smtp::Receiver;
use crate::support::{stderr, Setia};
use crate::webhooks::merchant_with_secret;

crate::on_every_backend!(the_catalogue_end_to_end);

const HISTORY: &str = "customer_external_id,occurred_at,amount,reference
C1,2026-01-05,120000,INV-1
C2,2026-01-06,90000,INV-2
C3,2026-01-07,60000,INV-3
C4,2026-01-08,50000,INV-4
";

const ITEMS: &str = "reference,sku,name,quantity,unit_price,category
INV-1,KOPI-1,Kopi Gayo,1,60000,Kopi
INV-1,GULA-1,Gula Aren,2,30000,Dapur
INV-2,KOPI-1,,1,60000,
INV-2,GULA-1,,1,30000,
INV-3,KOPI-1,,1,60000,
INV-4,TEH-1,Teh Melati,1,50000,Teh
";

fn skus(list: &Value) -> Vec<&str> {
    list["items"]
        .as_array()
        .unwrap_or_else(|| panic!("a list: {list}"))
        .iter()
        .map(|p| p["sku"].as_str().unwrap())
        .collect()
}

fn items_import(setia: &Setia, merchant: &str, csv: &str) -> std::process::Output {
    let path = setia.write("items.csv", csv);
    setia.run(&["items", "import", "--merchant", merchant, &path])
}

async fn the_catalogue_end_to_end(setia: Setia) {
    let (merchant, token) = merchant_with_secret(&setia);
    let m = merchant.to_string();
    let history = setia.write("history.csv", HISTORY);
    setia.json(&["transactions", "import", "--merchant", &m, &history]);

    // The items file: every line attached, a rerun adds nothing.
    let imported = |setia: &Setia| -> Value {
        let output = items_import(setia, &m, ITEMS);
        assert!(output.status.success(), "{}", stderr(&output));
        serde_json::from_slice(&output.stdout).unwrap()
    };
    assert_eq!(
        imported(&setia),
        json!({"rows": 6, "inserted": 6, "skipped_duplicates": 0, "products_created": 3, "rejected": []})
    );
    assert_eq!(
        imported(&setia),
        json!({"rows": 6, "inserted": 0, "skipped_duplicates": 6, "products_created": 0, "rejected": []})
    );
    // A bad row or a reference nothing has: exit 2, the line named, nothing written (the
    // good INV-3 GULA-1 line before it is not kept: C3 is recommended GULA-1 below).
    for (second_line, says) in [
        ("INV-3,GULA-1,0,30000", "quantity"),
        ("NOPE-9,GULA-1,1,30000", "NOPE-9"),
    ] {
        let csv =
            format!("reference,sku,quantity,unit_price\nINV-3,GULA-1,1,30000\n{second_line}\n");
        let refused = items_import(&setia, &m, &csv);
        assert_eq!(refused.status.code(), Some(2));
        let message = stderr(&refused);
        assert!(
            message.contains("line 3") && message.contains(says),
            "{message}"
        );
    }
    let header = items_import(&setia, &m, "reference,sku,qty\n");
    assert_eq!(header.status.code(), Some(2), "{}", stderr(&header));

    let other = setia.json(&["merchant", "create", "--name", "Other"]);
    let server = setia.serve();
    let api = Api {
        client: reqwest::Client::new(),
        server: &server,
        token: token.clone(),
    };
    let stranger = Api {
        client: reqwest::Client::new(),
        server: &server,
        token: other["api_token"].as_str().unwrap().into(),
    };

    // Upserts: one object, or an array; fields left out keep their value.
    let (status, one) = api
        .post(
            "/products",
            json!({"sku": "GULA-1", "price": "32000", "url": "https://toko.id/gula",
                   "image_url": "https://toko.id/gula.jpg"}),
        )
        .await;
    assert_eq!(status, 200, "{one}");
    assert_eq!(
        (&one["created"], &one["updated"], &one["unchanged"]),
        (&json!(0), &json!(1), &json!(0))
    );
    let gula = &one["products"][0];
    assert_eq!(
        (
            &gula["name"],
            &gula["price"],
            &gula["category"],
            &gula["in_stock"]
        ),
        (
            &json!("Gula Aren"),
            &json!("32000.00"),
            &json!("Dapur"),
            &json!(true)
        )
    );
    let (status, many) = api
        .post(
            "/products",
            json!([
                {"sku": "MUG-1", "name": "Mug <script>alert(1)</script>", "price": "45000",
                 "url": "https://toko.id/mug", "category": "Dapur", "released_at": "2026-11-01"},
                {"sku": "TEH-1", "in_stock": false},
                {"sku": "KOPI-1", "name": "Kopi Gayo"},
            ]),
        )
        .await;
    assert_eq!(status, 200, "{many}");
    assert_eq!(
        (&many["created"], &many["updated"], &many["unchanged"]),
        (&json!(1), &json!(1), &json!(1))
    );
    assert_eq!(
        many["products"][0]["name"], "Mug <script>alert(1)</script>",
        "text is stored as given; pages escape it"
    );

    // Bad input changes nothing and says what is wrong.
    for (body, says) in [
        (json!({"sku": "X-1", "url": "javascript:alert(1)"}), "url"),
        (json!({"sku": "X-1", "price": "-5"}), "price"),
        (json!({"sku": "bad sku"}), "sku"),
        (json!({"sku": "X-1", "colour": "red"}), "unknown field"),
        (json!([{"sku": "X-1"}, {"sku": ""}]), "[1] sku"),
        (
            json!({"sku": "X-1", "released_at": "kemarin"}),
            "released_at",
        ),
        (json!([]), "1 to 1000"),
        (
            Value::Array(
                (0..1001)
                    .map(|n| json!({"sku": format!("X-{n}")}))
                    .collect(),
            ),
            "1 to 1000",
        ),
    ] {
        let (status, error) = api.post("/products", body.clone()).await;
        assert_eq!(status, 400, "{body}: {error}");
        let message = error["error"]["message"].as_str().unwrap();
        assert!(message.contains(says), "{says:?} in {message:?}");
    }
    // On a client of its own: the server drops the connection it did not read to the end,
    // which a pooled connection of the shared client would find on its next request.
    let oversized = reqwest::Client::new()
        .post(server.url("/api/v1/products"))
        .bearer_auth(&token)
        .header("Content-Type", "application/json")
        .body(format!(
            "{{\"sku\":\"X-1\",\"name\":\"{}\"}}",
            "a".repeat(3 << 20)
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(oversized.status().as_u16(), 413);
    let forged = Api {
        client: reqwest::Client::new(),
        server: &server,
        token: format!("{token}x"),
    };
    assert_eq!(forged.get("/products").await.0, 401);
    assert_eq!(forged.post("/products", json!({"sku": "X-1"})).await.0, 401);

    // Paging, newest first; another merchant sees none of it.
    let (_, page) = api.get("/products?limit=2").await;
    assert_eq!(skus(&page), ["MUG-1", "TEH-1"]);
    let cursor = page["next_cursor"].as_str().unwrap().to_owned();
    let (_, rest) = api.get(&format!("/products?limit=2&cursor={cursor}")).await;
    assert_eq!(skus(&rest), ["GULA-1", "KOPI-1"]);
    assert_eq!(rest["next_cursor"], Value::Null);
    assert_eq!(api.get("/products?limit=0").await.0, 400);
    assert_eq!(stranger.get("/products").await.1["items"], json!([]));
    assert_eq!(stranger.get("/products/KOPI-1").await.0, 404);
    assert_eq!(api.get("/products/KOPI-1").await.1["name"], "Kopi Gayo");
    assert_eq!(api.get("/products/NOPE").await.0, 404);

    // An order with lines, paid by its unique amount: the purchase inherits the lines.
    api.post(
        "/customers",
        json!({"external_id": "C4", "name": "Dewi", "email": "dewi@example.co.id"}),
    )
    .await;
    let (status, error) = api
        .post(
            "/orders",
            json!({"external_id": "O0", "customer_external_id": "C4", "amount": "60000",
                   "items": [{"sku": "KOPI-1", "quantity": 0, "unit_price": "60000"}]}),
        )
        .await;
    assert_eq!(status, 400);
    assert!(error["error"]["message"]
        .as_str()
        .unwrap()
        .starts_with("items[0].quantity"));
    let (status, order) = api
        .post(
            "/orders",
            json!({"external_id": "O1", "customer_external_id": "C4", "amount": "60000",
                   "items": [{"sku": "KOPI-1", "quantity": 1, "unit_price": "60000"}]}),
        )
        .await;
    assert_eq!(status, 201, "{order}");
    assert_eq!(
        order["items"],
        json!([{"sku": "KOPI-1", "name": "Kopi Gayo", "quantity": 1, "unit_price": "60000.00"}])
    );
    let transfer = 60_000 + order["unique_code"].as_i64().unwrap();
    let today = jakarta_wall_time(Utc::now());
    let paid = payment("m1", "5550001", transfer, "TRSF E-BANKING CR", &today);
    assert_eq!(api.webhook(&merchant, paid).await, 200);

    // A transfer no rule matches, attributed by hand to C2's order: its lines follow.
    let (status, _) = api
        .post(
            "/orders",
            json!({"external_id": "O2", "customer_external_id": "C2", "amount": "45000",
                   "items": [{"sku": "MUG-1", "quantity": 1, "unit_price": "45000"},
                             {"sku": "SENDOK-1", "name": "Sendok Kayu", "quantity": 2, "unit_price": "0"}]}),
        )
        .await;
    assert_eq!(status, 201);
    let stray = payment("m2", "5550001", 77_777, "TRSF E-BANKING CR", &today);
    assert_eq!(api.webhook(&merchant, stray).await, 200);
    wait_for("the worker", async || {
        api.get("/purchases?attributed=false").await.1["items"]
            .as_array()
            .is_some_and(|items| items.len() == 1)
    })
    .await;
    let (_, queue) = api.get("/purchases?attributed=false").await;
    let stray_id = queue["items"][0]["id"].as_str().unwrap().to_owned();
    let attribute = format!("/purchases/{stray_id}/attribute");
    for (body, status, code) in [
        (
            json!({"customer_external_id": "C2", "order_external_id": "NOPE"}),
            404,
            "not_found",
        ),
        (
            json!({"customer_external_id": "C3", "order_external_id": "O2"}),
            409,
            "order_of_another_customer",
        ),
        (
            json!({"customer_external_id": "C4", "order_external_id": "O1"}),
            409,
            "order_not_pending",
        ),
    ] {
        let (got, error) = api.post(&attribute, body.clone()).await;
        assert_eq!(
            (got, error["error"]["code"].as_str()),
            (status, Some(code)),
            "{body}: {error}"
        );
    }
    assert_eq!(
        api.get("/purchases?attributed=false").await.1["items"]
            .as_array()
            .map(Vec::len),
        Some(1),
        "a refused attribution changes nothing"
    );
    let (status, attributed) = api
        .post(
            &attribute,
            json!({"customer_external_id": "C2", "order_external_id": "O2"}),
        )
        .await;
    assert_eq!(status, 200, "{attributed}");
    let (_, o2) = api.get("/orders/O2").await;
    assert_eq!(
        (&o2["status"], &o2["purchase_id"]),
        (&json!("paid"), &json!(stray_id))
    );

    // The nightly run's recommendations.
    setia.json(&["metrics", "--merchant", &m]);
    // C3 bought coffee; the other coffee buyers bought sugar. Tea is out of stock.
    let (status, c3) = api.get("/customers/C3/recommendations").await;
    assert_eq!(status, 200, "{c3}");
    let c3_list = skus(&c3);
    assert_eq!(c3_list.first(), Some(&"GULA-1"), "{c3}");
    assert!(!c3_list.contains(&"KOPI-1") && !c3_list.contains(&"TEH-1"));
    // C4 bought tea (imported) and coffee (the order): neither comes back.
    let (_, c4) = api.get("/customers/C4/recommendations").await;
    let c4_list = skus(&c4);
    assert!(c4_list.contains(&"GULA-1"), "{c4}");
    assert!(!c4_list.contains(&"KOPI-1") && !c4_list.contains(&"TEH-1"));
    // A customer without purchases gets the best-sellers in stock.
    api.post("/customers", json!({"external_id": "C9"})).await;
    let (_, c9) = api.get("/customers/C9/recommendations?limit=2").await;
    assert_eq!(skus(&c9), ["KOPI-1", "GULA-1"], "{c9}");
    assert_eq!(
        api.get("/customers/C9/recommendations?limit=51").await.0,
        400
    );
    assert_eq!(api.get("/customers/NOPE/recommendations").await.0, 404);
    assert_eq!(stranger.get("/customers/C3/recommendations").await.0, 404);

    let (status, related) = api.get("/products/KOPI-1/related").await;
    assert_eq!(status, 200, "{related}");
    assert_eq!(related["items"][0]["sku"], "GULA-1", "{related}");
    let similarity = related["items"][0]["similarity"].as_f64().unwrap();
    assert!(similarity > 0.0 && similarity <= 1.0, "{related}");
    assert!(!skus(&related).contains(&"TEH-1"));
    assert_eq!(api.get("/products/NOPE/related").await.0, 404);
    assert_eq!(stranger.get("/products/KOPI-1/related").await.0, 404);
    assert_eq!(api.get("/products/KOPI-1/related?limit=x").await.0, 400);

    // The dashboard's customer page lists them, escaped.
    let (_, profile) = api.get("/customers/C2").await;
    let key = profile["id"].as_str().unwrap();
    let dash = Dash::login(&server, &token).await;
    let page = dash.page(&format!("/dashboard/customers/{key}")).await;
    let section = &page[page.find("id=\"recommendations\"").expect("the section")..];
    assert!(!page.contains("<script>alert(1)"), "escaped");
    let (_, c2) = api.get("/customers/C2/recommendations").await;
    for sku in skus(&c2) {
        assert!(section.contains(sku), "{sku} on the page");
    }

    // Out of stock since the run: gone at once, without waiting for the next run.
    api.post("/products", json!({"sku": "GULA-1", "in_stock": false}))
        .await;
    let (_, c3) = api.get("/customers/C3/recommendations").await;
    assert!(!skus(&c3).contains(&"GULA-1"), "{c3}");
    api.post("/products", json!({"sku": "GULA-1", "in_stock": true}))
        .await;

    // C4's thank-you for the order carries the block, with tagged links.
    let receiver = Receiver::start("");
    let smtp = receiver.url();
    let env = [
        ("SETIA_SMTP_URL", smtp.as_str()),
        ("SETIA_MAIL_FROM", "Toko <noreply@toko.example>"),
        ("SETIA_PUBLIC_URL", "https://toko.example"),
    ];
    let sent = run_due(
        &setia,
        &(Utc::now() + TimeDelta::minutes(11)).to_rfc3339(),
        &env,
    );
    assert_eq!(sent["sent"], 1, "{sent}");
    let messages = receiver.messages();
    assert_eq!(messages[0]["rcpt_tos"], json!(["dewi@example.co.id"]));
    let body = text(&messages[0]);
    assert!(
        body.contains("Mungkin Anda juga suka:\n- Gula Aren (Rp 32.000)\n  https://toko.id/gula?utm_source=setia&utm_medium=email&utm_campaign=thank_you"),
        "{body}"
    );
    assert!(!body.contains("Kopi Gayo") && !body.contains("Teh Melati"));
    let html = crate::mail::html(&messages[0]).replace("&#x2f;", "/");
    assert!(
        html.contains(r#"<img src="https://toko.id/gula.jpg""#),
        "{html}"
    );
    assert!(!html.contains("<script>alert(1)"));
}
