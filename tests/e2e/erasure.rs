//! A customer's right to erasure through the real binary, on both databases: `DELETE
//! /api/v1/customers/{external_id}` and `setia customers erase` leave no trace of the person
//! in any column of the database (searched table by table, not only where the code writes),
//! keep the anonymous ledger (purchases, revenue, another customer's data untouched), forfeit
//! the points, close every public link of the customer (member, unsubscribe, feedback,
//! referral), and refuse what would bring the person back onto the anonymous row; a repeated
//! erasure changes nothing.

use chrono::Utc;
use serde_json::{json, Value};
use setia_core::engagement::FeedbackKind;
use setia_core::feedback::{FeedbackComment, FeedbackScore};
use setia_core::mail_token::{FeedbackToken, MemberToken, UnsubscribeToken};
use setia_core::{CustomerId, ExternalId, MerchantId};
use setia_store::engagement::{NewAnswer, NewFeedbackRequest};
use setia_store::testing::columns_containing;
use setia_store::Store;

use crate::dashboard::Dash;
use crate::ledger::{wait_for, yesterday, Api};
use crate::referrals::customer_id;
use crate::support::{first, mail_secret, stderr, Setia};
use crate::webhooks::merchant_with_secret;

crate::on_every_backend!(
    erasure_takes_the_person_out_and_keeps_the_ledger,
    the_erase_command_and_what_an_erased_id_refuses,
    the_customer_page_erases_once_the_id_is_typed_again,
    the_weekly_reports_at_risk_list_leaves_an_erased_customer_out,
);

const PUBLIC_URL: &str = "https://toko.example";

/// What identifies the person to erase, each searched for in every column afterwards.
const TRACES: [&str; 5] = [
    "santoso",
    "budi.s@example.id",
    "8808123456789",
    "1990-04-17",
    "late parcel",
];

fn referral_program(setia: &Setia, merchant: &MerchantId) {
    let program = setia.write(
        "engagement.toml",
        "[feedback]\nenabled = false\n[referral]\nenabled = true\n",
    );
    setia.json(&[
        "merchant",
        "engagement",
        "--merchant",
        merchant.as_str(),
        &program,
    ]);
}

fn mutation(id: &str, amount: i64, description: &str) -> Value {
    json!({
        "mutation_id": id, "account_number": "5550009", "date": yesterday(),
        "description": description, "note": "", "amount": amount, "type": "CR", "balance": 0,
        "bank": {"bank_type": "bca", "label": "BCA"}
    })
}

/// A feedback request about the customer's purchase, answered with a low score and a
/// comment: a complaint and a pending alert to the merchant.
async fn a_complaint(store: &dyn Store, merchant: &MerchantId, customer: CustomerId) -> i64 {
    let purchases = store
        .customer_purchases(merchant, customer, first(10))
        .await
        .unwrap()
        .items;
    let request = store
        .create_feedback_requests(
            merchant,
            &[NewFeedbackRequest {
                customer,
                purchase: purchases[0].id.key(),
                kind: FeedbackKind::Csat,
                due_at: Utc::now(),
            }],
            Utc::now(),
        )
        .await
        .unwrap()[0];
    let comment = FeedbackComment::parse("Santoso here: late parcel, box <b>crushed</b>")
        .unwrap()
        .unwrap();
    let recorded = store
        .record_feedback_answer(
            merchant,
            NewAnswer {
                request,
                score: FeedbackScore::new(FeedbackKind::Csat, 1).unwrap(),
                comment: Some(&comment),
                opens_complaint: true,
                alert_to: &["ops@toko.id".to_owned()],
            },
            Utc::now(),
        )
        .await
        .unwrap()
        .unwrap();
    assert!(recorded.opened_complaint.is_some());
    request
}

async fn status_of(client: &reqwest::Client, url: &str) -> u16 {
    client.get(url).send().await.unwrap().status().as_u16()
}

async fn erasure_takes_the_person_out_and_keeps_the_ledger(setia: Setia) {
    let (merchant, token) = merchant_with_secret(&setia);
    referral_program(&setia, &merchant);
    let store = setia.store().await;
    let server = setia.start(
        &["serve", "--listen", "127.0.0.1:0", "--no-scheduler"],
        &[("SETIA_PUBLIC_URL", PUBLIC_URL)],
    );
    let api = Api {
        client: reqwest::Client::new(),
        server: &server,
        token,
    };
    let client = reqwest::Client::new();

    for body in [
        json!({"external_id": "C-SANTOSO", "name": "Budi <b>Santoso</b>",
               "email": "budi.s@example.id", "birthday": "1990-04-17",
               "virtual_account": "8808123456789", "payer_names": ["BUDI SANTOSO"]}),
        json!({"external_id": "C-SARI", "name": "Sari Wulandari", "email": "sari@example.id",
               "payer_names": ["SARI WULANDARI"]}),
    ] {
        let (status, answer) = api.post("/customers", body).await;
        assert_eq!(status, 200, "{answer}");
    }
    // One body pays for both. Moota delivers Budi's payment a second time (the same
    // mutation, recorded once) in a body with the day's outgoing transfers, larger than a
    // database page: SQLite keeps it in overflow pages, which a rewrite frees.
    let both = json!([
        mutation(
            "M-BUDI-1",
            250_123,
            "TRSF E-BANKING CR 0112/FTSCY BUDI SANTOSO"
        ),
        mutation(
            "M-SARI-1",
            90_456,
            "TRSF E-BANKING CR 0112/FTSCY SARI WULANDARI"
        ),
    ]);
    assert_eq!(
        api.webhook(&merchant, both.to_string().into_bytes()).await,
        200
    );
    let mut again = vec![mutation(
        "M-BUDI-1",
        250_123,
        "TRSF E-BANKING CR 0112/FTSCY BUDI SANTOSO",
    )];
    for i in 0..40 {
        let mut outgoing = mutation(
            &format!("M-OUT-{i}"),
            1_000_000 + i,
            &format!("TRSF E-BANKING DB SUPPLIER {i}"),
        );
        outgoing["type"] = json!("DB");
        again.push(outgoing);
    }
    let again = Value::Array(again);
    assert!(again.to_string().len() > 8_192);
    assert_eq!(
        api.webhook(&merchant, again.to_string().into_bytes()).await,
        200
    );
    wait_for("both payments attributed, the repeat seen", async || {
        let summary = store.ledger_summary(&merchant).await.unwrap();
        let (_, purchases) = api.get("/purchases?limit=10").await;
        summary.mutation_deliveries == 43
            && purchases["items"].as_array().is_some_and(|items| {
                items.len() == 2 && items.iter().all(|p| !p["customer_external_id"].is_null())
            })
    })
    .await;

    let budi = customer_id(&*store, &merchant, "C-SANTOSO").await;
    let request = a_complaint(&*store, &merchant, budi).await;
    // A report frozen with Budi among the at-risk customers.
    let report = json!({"week": "2026-W49", "at_risk_total": 2, "at_risk": [
        {"customer": budi.key(), "external_id": "C-SANTOSO", "name": "Budi <b>Santoso</b>",
         "p_alive": 0.21, "clv_12m_minor": 5_000_000, "monetary_minor": 25_012_300, "recency_days": 40},
        {"customer": budi.key() + 1, "external_id": "C-SARI", "name": "Sari Wulandari",
         "p_alive": 0.3, "clv_12m_minor": 900_000, "monetary_minor": 9_045_600, "recency_days": 30}],
        "newly_at_risk": [budi.key()]});
    assert!(store
        .enqueue_report(
            &merchant,
            "ops@toko.id",
            "2026-W49",
            Utc::now(),
            &report.to_string(),
            Utc::now()
        )
        .await
        .unwrap());

    let (status, profile) = api.get("/customers/C-SANTOSO").await;
    assert_eq!(status, 200, "{profile}");
    let balance = profile["points_balance"].as_i64().unwrap();
    assert!(balance > 0, "{profile}");
    let (status, referral) = api.get("/customers/C-SANTOSO/referral").await;
    assert_eq!(status, 200, "{referral}");
    let secret = mail_secret(&*store, &merchant).await;
    let links = [
        format!("/r/{}", referral["code"].as_str().unwrap()),
        format!("/m/{}", MemberToken::sign(&secret, &merchant, budi)),
        format!("/u/{}", UnsubscribeToken::sign(&secret, &merchant, budi)),
        format!(
            "/f/{}",
            FeedbackToken::sign(&secret, &merchant, request, Utc::now())
        ),
    ];
    for link in &links {
        assert_eq!(
            status_of(&client, &server.url(link)).await,
            200,
            "{link} before"
        );
    }
    for trace in TRACES {
        assert!(
            !columns_containing(&setia.database.url, trace)
                .await
                .is_empty(),
            "the test stores {trace:?} before it erases"
        );
    }
    // An order Budi placed before the erasure, paid after it.
    let (status, order) = api
        .post(
            "/orders",
            json!({"external_id": "INV-77", "customer_external_id": "C-SANTOSO", "amount": "100000"}),
        )
        .await;
    assert_eq!(status, 201, "{order}");
    let transfer: i64 = order["transfer_amount"]
        .as_str()
        .unwrap()
        .trim_end_matches(".00")
        .parse()
        .unwrap();
    // The right of access: everything held about Budi, and nothing about Sari, though her
    // payment came in the same body.
    let (status, data) = api.get("/customers/C-SANTOSO/export").await;
    assert_eq!(status, 200, "{data}");
    assert_eq!(data["customer"]["name"], "Budi <b>Santoso</b>");
    assert_eq!(data["customer"]["payer_names"], json!(["BUDI SANTOSO"]));
    assert_eq!(data["profile"]["points_balance"], balance);
    let purchases = data["purchases"].as_array().unwrap();
    assert_eq!(purchases.len(), 1, "{data}");
    assert_eq!(purchases[0]["payer_name"], "BUDI SANTOSO");
    assert_eq!(purchases[0]["amount"], "250123.00");
    assert!(purchases[0]["items"].as_array().unwrap().is_empty());
    assert!(!data["points"].as_array().unwrap().is_empty(), "{data}");
    assert_eq!(
        data["feedback"][0]["comment"],
        "Santoso here: late parcel, box <b>crushed</b>"
    );
    assert_eq!(data["referrals"]["code"], referral["code"]);
    let complaints = data["complaints"].as_array().unwrap();
    assert_eq!(complaints.len(), 1, "{data}");
    assert_eq!(complaints[0]["status"], "open");
    assert!(
        !data.to_string().to_lowercase().contains("wulandari"),
        "{data}"
    );
    let stranger = Api {
        client: reqwest::Client::new(),
        server: &server,
        token: setia.json(&["merchant", "create", "--name", "Toko Lain"])["api_token"]
            .as_str()
            .unwrap()
            .to_owned(),
    };
    for (who, path) in [
        (&stranger, "/customers/C-SANTOSO/export"),
        (&api, "/customers/C-NOBODY/export"),
    ] {
        let (status, answer) = who.get(path).await;
        assert_eq!(status, 404, "{path}: {answer}");
    }
    // Erasing goes by the merchant's own id only: another merchant's token, an id nobody
    // has, one too long to be an id, HTML: the same 404, and nothing changes.
    let oversized = format!("/customers/{}", "C".repeat(300));
    for (who, path) in [
        (&stranger, "/customers/C-SANTOSO"),
        (&api, "/customers/C-NOBODY"),
        (&api, oversized.as_str()),
        (&api, "/customers/%3Cb%3EC-SANTOSO%3C%2Fb%3E"),
    ] {
        let (status, answer) = who.call(reqwest::Method::DELETE, path, None).await;
        assert_eq!(status, 404, "{path}: {answer}");
    }
    let summary_before = store.ledger_summary(&merchant).await.unwrap();

    let (status, erasure) = api
        .call(reqwest::Method::DELETE, "/customers/C-SANTOSO", None)
        .await;
    assert_eq!(status, 200, "{erasure}");
    let anonymous = format!("erased-{budi}");
    assert_eq!(erasure["customer"], budi.to_string());
    assert_eq!(erasure["external_id"], anonymous.as_str());
    for (field, count) in [
        ("payer_names", 1),
        ("purchases", 1),
        ("mutations", 1),
        ("inbox_bodies", 2),
        ("feedback_comments", 1),
        ("complaints", 1),
        ("reports", 1),
        ("points_forfeited", balance),
        ("referrals_cancelled", 0),
    ] {
        assert_eq!(erasure[field], count, "{field}: {erasure}");
    }
    assert!(
        erasure["emails_cancelled"].as_u64().unwrap() >= 1,
        "{erasure}"
    );

    // On SQLite, not in the file's free space or its log either: the bytes are gone.
    if let Some(path) = setia.database.url.strip_prefix("sqlite://") {
        for file in [path.to_owned(), format!("{path}-wal")] {
            let bytes = std::fs::read(&file).unwrap_or_default();
            let text = String::from_utf8_lossy(&bytes).to_lowercase();
            for trace in TRACES {
                assert!(
                    !text.contains(trace),
                    "{trace:?} is still in the bytes of {file}"
                );
            }
        }
    }
    // Nothing that identifies Budi is left in any column of any table.
    for trace in TRACES {
        let left = columns_containing(&setia.database.url, trace).await;
        assert!(left.is_empty(), "{trace:?} is still in {left:?}");
    }
    // Sari is untouched, down to her payer text in the body both payments came in.
    let sari = columns_containing(&setia.database.url, "SARI WULANDARI").await;
    for column in [
        "customer_payer_names.payer_name",
        "inbox.body",
        "mutations.description",
    ] {
        assert!(sari.contains(&column.to_owned()), "{column}: {sari:?}");
    }
    // The ledger keeps the purchase, anonymous: revenue and counts do not move.
    assert_eq!(store.ledger_summary(&merchant).await.unwrap(), {
        let mut expected = summary_before;
        expected.points_entries += 1;
        expected
    });
    let (_, purchases) = api.get("/purchases?limit=10").await;
    let erased: Vec<&Value> = purchases["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["customer_external_id"] == anonymous.as_str())
        .collect();
    assert_eq!(erased.len(), 1, "{purchases}");
    assert_eq!(erased[0]["amount"], "250123.00");
    assert_eq!(erased[0]["payer_name"], Value::Null);
    let (status, row) = api.get(&format!("/customers/{anonymous}")).await;
    assert_eq!(status, 200, "{row}");
    assert_eq!(
        (
            &row["name"],
            &row["email"],
            &row["points_balance"],
            &row["purchases"]
        ),
        (&Value::Null, &Value::Null, &json!(0), &json!(1)),
        "{row}"
    );

    // Every public link of the customer is the 404 of an unknown link.
    for link in &links {
        assert_eq!(
            status_of(&client, &server.url(link)).await,
            404,
            "{link} after"
        );
    }
    let posted = client
        .post(server.url(&links[3]))
        .form(&[("score", "5"), ("comment", "Budi Santoso again")])
        .send()
        .await
        .unwrap()
        .status()
        .as_u16();
    assert_eq!(posted, 404);

    // The old id exports nothing; the anonymous row's export holds nothing of Budi.
    let (status, _) = api.get("/customers/C-SANTOSO/export").await;
    assert_eq!(status, 404);
    let (status, data) = api.get(&format!("/customers/{anonymous}/export")).await;
    assert_eq!(status, 200, "{data}");
    let text = data.to_string().to_lowercase();
    for trace in TRACES {
        assert!(!text.contains(trace), "{trace:?} in {data}");
    }

    // A repeat changes nothing; the anonymous row takes no personal data; the old id is a
    // new customer's from now on; Budi's next transfer is nobody's until someone says.
    let (status, again) = api
        .call(reqwest::Method::DELETE, "/customers/C-SANTOSO", None)
        .await;
    assert_eq!(status, 404, "{again}");
    let (status, refused) = api
        .post(
            "/customers",
            json!({"external_id": anonymous, "name": "Budi Santoso"}),
        )
        .await;
    assert_eq!(
        (status, &refused["error"]["code"]),
        (409, &json!("erased")),
        "{refused}"
    );
    let (status, returning) = api
        .post("/customers", json!({"external_id": "C-SANTOSO"}))
        .await;
    assert_eq!(status, 200, "{returning}");
    assert_ne!(returning["id"], budi.to_string());
    assert_eq!(returning["points_balance"], 0);
    let next = json!([mutation(
        "M-BUDI-2",
        75_321,
        "TRSF E-BANKING CR 0212/FTSCY BUDI SANTOSO"
    )]);
    assert_eq!(
        api.webhook(&merchant, next.to_string().into_bytes()).await,
        200
    );
    wait_for("the next transfer recorded", async || {
        let (_, purchases) = api.get("/purchases?limit=10").await;
        purchases["items"]
            .as_array()
            .is_some_and(|items| items.len() == 3)
    })
    .await;
    let (_, purchases) = api.get("/purchases?limit=1").await;
    assert_eq!(
        purchases["items"][0]["customer_external_id"],
        Value::Null,
        "{purchases}"
    );
    // The order still matches its payment: the sale is the anonymous row's, and earns it
    // nothing, as nobody can redeem it; no email goes anywhere.
    let paid = json!([mutation(
        "M-BUDI-3",
        transfer,
        "TRSF E-BANKING CR 0312/FTSCY BUDI SANTOSO"
    )]);
    assert_eq!(
        api.webhook(&merchant, paid.to_string().into_bytes()).await,
        200
    );
    wait_for("the order paid", async || {
        api.get("/orders/INV-77").await.1["status"] == "paid"
    })
    .await;
    let (_, row) = api.get(&format!("/customers/{anonymous}")).await;
    assert_eq!(
        (&row["purchases"], &row["points_balance"]),
        (&json!(2), &json!(0)),
        "{row}"
    );
    assert!(
        columns_containing(&setia.database.url, "Budi <b>Santoso</b>")
            .await
            .is_empty()
    );
}

async fn the_erase_command_and_what_an_erased_id_refuses(setia: Setia) {
    let (merchant, _) = merchant_with_secret(&setia);
    let other = setia.json(&["merchant", "create", "--name", "Toko Lain"]);
    let other = other["id"].as_str().unwrap().to_owned();
    setia.import(
        "customers",
        merchant.as_str(),
        "external_id,name,email,birthday\nC-1,Budi Santoso,budi.s@example.id,1990-04-17\nC-2,Sari,sari@example.id,\n",
    );
    setia.import(
        "transactions",
        merchant.as_str(),
        "customer_external_id,occurred_at,amount,reference\nC-1,2026-11-02,150000,INV-1\nC-2,2026-11-03,90000,INV-2\n",
    );
    let store = setia.store().await;
    let key = customer_id(&*store, &merchant, "C-1").await;

    // Bad input names what is wrong and erases nothing: a malformed or unknown merchant,
    // another merchant's customer, an id nobody has.
    for (args, message) in [
        (vec!["--merchant", "mer_nope", "C-1"], "--merchant"),
        (
            vec!["--merchant", other.as_str(), "C-1"],
            "has no customer C-1",
        ),
        (
            vec!["--merchant", merchant.as_str(), "C-9"],
            "has no customer C-9",
        ),
        (vec!["--merchant", merchant.as_str(), " "], "external id"),
    ] {
        let mut full = vec!["customers", "erase"];
        full.extend(args);
        let output = setia.run(&full);
        assert_eq!(output.status.code(), Some(2), "{full:?}");
        assert!(
            stderr(&output).contains(message),
            "{full:?}: {}",
            stderr(&output)
        );
    }
    assert!(!columns_containing(&setia.database.url, "santoso")
        .await
        .is_empty());

    let exported = setia.json(&[
        "customers",
        "export",
        "--merchant",
        merchant.as_str(),
        "C-1",
    ]);
    assert_eq!(
        exported["customer"]["email"], "budi.s@example.id",
        "{exported}"
    );
    assert_eq!(
        exported["purchases"][0]["amount"], "150000.00",
        "{exported}"
    );
    assert_eq!(exported["purchases"].as_array().unwrap().len(), 1);
    let erased = setia.json(&["customers", "erase", "--merchant", merchant.as_str(), "C-1"]);
    assert_eq!(erased["customer"], key.to_string());
    assert_eq!(erased["external_id"], format!("erased-{key}"));
    for trace in ["santoso", "budi.s@example.id", "1990-04-17"] {
        let left = columns_containing(&setia.database.url, trace).await;
        assert!(left.is_empty(), "{trace:?} is still in {left:?}");
    }
    let output = setia.run(&["customers", "erase", "--merchant", merchant.as_str(), "C-1"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("erased already"),
        "{}",
        stderr(&output)
    );

    // An import row naming the anonymous row is refused with its line and field, and the
    // import writes nothing, as a row that clashes with stored data always does.
    let file = setia.write(
        "again.csv",
        &format!("external_id,name\nC-3,Dewi\nerased-{key},Budi Santoso\n"),
    );
    for skip in [false, true] {
        let mut args = vec![
            "customers",
            "import",
            "--merchant",
            merchant.as_str(),
            &file,
        ];
        if skip {
            args.push("--skip-invalid");
        }
        let output = setia.run(&args);
        let said = stderr(&output);
        assert_eq!(output.status.code(), Some(2), "{said}");
        for part in [
            "line 3",
            "external_id",
            "was erased",
            "nothing was imported",
        ] {
            assert!(said.contains(part), "{part}: {said}");
        }
    }
    assert!(columns_containing(&setia.database.url, "santoso")
        .await
        .is_empty());
    // The ledger still counts the erased customer and their purchase.
    let summary = store.ledger_summary(&merchant).await.unwrap();
    assert_eq!((summary.customers, summary.purchases), (2, 2));
}

async fn the_customer_page_erases_once_the_id_is_typed_again(setia: Setia) {
    let (merchant, token) = merchant_with_secret(&setia);
    let other = setia.json(&["merchant", "create", "--name", "Toko Lain"]);
    let other_token = other["api_token"].as_str().unwrap().to_owned();
    setia.import(
        "customers",
        merchant.as_str(),
        "external_id,name,email\nC-1,Budi <b>Santoso</b>,budi.s@example.id\n",
    );
    let store = setia.store().await;
    let key = customer_id(&*store, &merchant, "C-1").await;
    let server = setia.start(
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--no-worker",
            "--no-scheduler",
        ],
        &[],
    );
    let dash = Dash::login(&server, &token).await;
    let page_path = format!("/dashboard/customers/{key}");
    let erase_path = format!("{page_path}/erase");
    let page = dash.page(&page_path).await;
    assert!(
        page.contains("Budi &lt;b&gt;Santoso&lt;&#x2f;b&gt;"),
        "{page}"
    );
    // Their data as a file: named by the key, never cached, the JSON of the API; another
    // merchant's session gets a 404.
    let export_path = format!("{page_path}/export.json");
    assert!(page.contains(&format!("href=\"{export_path}\"")), "{page}");
    let response = dash.send_get(&export_path).await;
    assert_eq!(response.status().as_u16(), 200);
    let headers = response.headers().clone();
    assert_eq!(headers["content-type"], "application/json");
    assert_eq!(headers["cache-control"], "no-store");
    assert_eq!(
        headers["content-disposition"],
        format!("attachment; filename=\"setia-{key}.json\"").as_str()
    );
    let data: Value = response.json().await.unwrap();
    assert_eq!(data["customer"]["name"], "Budi <b>Santoso</b>");
    let response = dash.post(&export_path, &[]).await;
    assert_eq!(response.status().as_u16(), 405);
    assert!(page.contains(&format!("action=\"{erase_path}\"")), "{page}");

    // Refused, and nothing erased: a missing or wrong CSRF token, the id not typed again or
    // typed wrong, another merchant's session, an id that is no customer.
    let still_there = async || {
        assert_eq!(
            store
                .customer(&merchant, &ExternalId::parse("C-1").unwrap())
                .await
                .unwrap()
                .unwrap()
                .name
                .as_deref(),
            Some("Budi <b>Santoso</b>")
        );
    };
    for (form, status) in [
        (vec![("confirm", "C-1")], 403),
        (vec![("csrf", "forged"), ("confirm", "C-1")], 403),
        (vec![("csrf", dash.csrf.as_str())], 400),
        (vec![("csrf", dash.csrf.as_str()), ("confirm", "C-2")], 400),
        (
            vec![("csrf", dash.csrf.as_str()), ("confirm", "<b>C-1</b>")],
            400,
        ),
    ] {
        let response = dash.post(&erase_path, &form).await;
        assert_eq!(response.status().as_u16(), status, "{form:?}");
        let body = response.text().await.unwrap();
        if status == 400 {
            assert!(
                body.contains("nothing was erased") || body.contains("tidak ada yang dihapus"),
                "{body}"
            );
        }
        still_there().await;
    }
    for path in [
        "/dashboard/customers/cus_999/erase",
        "/dashboard/customers/x/erase",
    ] {
        let response = dash
            .post(path, &[("csrf", dash.csrf.as_str()), ("confirm", "C-1")])
            .await;
        assert_eq!(response.status().as_u16(), 404, "{path}");
    }
    let stranger = Dash::login(&server, &other_token).await;
    let (status, _) = stranger.get(&export_path).await;
    assert_eq!(status, 404);
    let response = stranger
        .post(
            &erase_path,
            &[("csrf", stranger.csrf.as_str()), ("confirm", "C-1")],
        )
        .await;
    assert_eq!(response.status().as_u16(), 404);
    still_there().await;

    // Typed again with spaces around it: erased, and back to the page of the anonymous row.
    let response = dash
        .post(
            &erase_path,
            &[("csrf", dash.csrf.as_str()), ("confirm", " C-1 ")],
        )
        .await;
    assert_eq!(response.status().as_u16(), 303);
    assert_eq!(response.headers()["location"], page_path.as_str());
    let page = dash.page(&page_path).await;
    assert!(page.contains("data-erased"), "{page}");
    assert!(
        !page.contains("Santoso") && !page.contains("budi.s@"),
        "{page}"
    );
    assert!(page.contains(&format!("erased-{key}")), "{page}");
    assert!(
        !page.contains(&format!("action=\"{erase_path}\"")),
        "no second erasure offered"
    );
    // A replay of the form finds no customer by the id it typed.
    let response = dash
        .post(
            &erase_path,
            &[("csrf", dash.csrf.as_str()), ("confirm", "C-1")],
        )
        .await;
    assert_eq!(response.status().as_u16(), 400);
    assert!(columns_containing(&setia.database.url, "santoso")
        .await
        .is_empty());
}

async fn the_weekly_reports_at_risk_list_leaves_an_erased_customer_out(setia: Setia) {
    let (merchant, _) = merchant_with_secret(&setia);
    setia.import(
        "customers",
        merchant.as_str(),
        "external_id,name\nC-1,Budi Santoso\nC-2,Sari\n",
    );
    let store = setia.store().await;
    let mut scores = Vec::new();
    for (external, clv) in [("C-1", 42_000_000), ("C-2", 9_000_000)] {
        scores.push(setia_store::analytics::ScoreRow {
            customer: customer_id(&*store, &merchant, external).await.key(),
            recency_days: 40,
            frequency_days: 3,
            monetary_minor: 15_000_000,
            r: 2,
            f: 3,
            m: 3,
            segment: "at_risk".into(),
            p_alive: Some(0.2),
            expected_purchases_90d: Some(0.3),
            clv_12m_minor: Some(clv),
            recommended: Vec::new(),
        });
    }
    store
        .save_snapshot(&merchant, "2026-12-07", "month", "{}", scores, Utc::now())
        .await
        .unwrap();
    let named = async || {
        let (total, customers) = store.at_risk_customers(&merchant, 0.5, 10).await.unwrap();
        let ids: Vec<String> = customers.into_iter().map(|c| c.external_id).collect();
        (total, ids)
    };
    assert_eq!(named().await, (2, vec!["C-1".to_owned(), "C-2".to_owned()]));
    setia.json(&["customers", "erase", "--merchant", merchant.as_str(), "C-1"]);
    assert_eq!(named().await, (1, vec!["C-2".to_owned()]));
}
