//! `setia metrics`, the metrics API and the nightly run, on the CDNOW sample whose published
//! BG/NBD and Gamma-Gamma parameters the numbers must reproduce.

use std::time::{Duration, Instant};

use setia_core::customer::ExternalId;
use setia_core::MerchantId;

use crate::support::{api_json, fixture, stderr, Setia};

crate::on_every_backend!(
    cdnow_reproduces_the_published_models,
    purchase_columns_page_through_every_purchase
);

fn close(value: &serde_json::Value, expected: f64, tolerance: f64, what: &str) {
    let actual = value
        .as_f64()
        .unwrap_or_else(|| panic!("{what} is not a number: {value}"));
    assert!(
        (actual - expected).abs() <= tolerance,
        "{what}: {actual} is not {expected} ± {tolerance}"
    );
}

fn cdnow_merchant(setia: &Setia) -> (MerchantId, serde_json::Value) {
    let created = setia.create_merchant("CDNOW");
    let id = created["id"].as_str().unwrap();
    setia.json(&[
        "transactions",
        "import",
        "--merchant",
        id,
        &fixture("cdnow/cdnow_sample_transactions.csv"),
    ]);
    (MerchantId::parse(id).unwrap(), created)
}

async fn cdnow_reproduces_the_published_models(setia: Setia) {
    let (merchant, created) = cdnow_merchant(&setia);
    let report = setia.json(&[
        "metrics",
        "--merchant",
        merchant.as_str(),
        "--as-of",
        "1997-09-30",
    ]);
    assert_eq!(report["schema"], 1);
    assert_eq!(report["as_of"], "1997-09-30");
    assert_eq!(report["totals"]["customers"], 2357);
    let churn = &report["churn"];
    assert_eq!(churn["model"], "bg_nbd");
    assert_eq!(churn["converged"], true);
    close(&churn["params"]["r"], 0.2426, 0.001, "r");
    close(&churn["params"]["alpha"], 4.4135, 0.001, "alpha");
    close(&churn["params"]["a"], 0.7929, 0.001, "a");
    close(&churn["params"]["b"], 2.4258, 0.001, "b");
    close(&churn["log_likelihood"], -9582.43, 0.05, "log-likelihood");
    let clv = &report["clv"];
    close(&clv["params"]["p"], 6.2496, 0.01, "p");
    close(&clv["params"]["q"], 3.7442, 0.01, "q");
    close(&clv["params"]["v"], 15.4435, 0.01, "v");
    assert!(!report.to_string().contains("NaN"));

    // The snapshot is what the API serves, and the scores reach the customer API.
    let store = setia.store().await;
    let snapshot = store
        .latest_snapshot(&merchant, None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&snapshot.report).unwrap(),
        report
    );
    let server = setia.serve();
    let client = reqwest::Client::new();
    let token = created["api_token"].as_str().unwrap();
    let served = api_json(&client, server.url("/api/v1/metrics"), token).await;
    assert_eq!(served, report);
    let customer = api_json(&client, server.url("/api/v1/customers/S4"), token).await;
    assert!(customer["segment"].is_string(), "{customer}");
    let p_alive = customer["p_alive"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&p_alive));
    let profile = store
        .customer_profile(
            &merchant,
            &ExternalId::parse("S4").unwrap(),
            chrono::Utc::now(),
        )
        .await
        .unwrap();
    assert_eq!(
        profile.unwrap().segment.as_deref(),
        customer["segment"].as_str()
    );
}

/// The columnar read pages through the ledger in chunks: whatever the chunk size, every
/// purchase up to the cut-off comes out exactly once, with its own customer, time and amount.
async fn purchase_columns_page_through_every_purchase(setia: Setia) {
    let (merchant, _) = cdnow_merchant(&setia);
    // The fixture, independently: (external id, day, amount in cents) per row.
    let text = std::fs::read_to_string(fixture("cdnow/cdnow_sample_transactions.csv")).unwrap();
    let fixture_rows: Vec<(String, String, i64)> = text
        .lines()
        .skip(1)
        .map(|line| {
            let fields: Vec<&str> = line.split(',').collect();
            let (whole, cents) = fields[2].split_once('.').unwrap_or((fields[2], "0"));
            let cents = format!("{cents:0<2}");
            (
                fields[0].to_owned(),
                fields[1].to_owned(),
                whole.parse::<i64>().unwrap() * 100 + cents.parse::<i64>().unwrap(),
            )
        })
        .collect();
    let store = setia.store().await;
    let end_of = |day: &str| {
        chrono::NaiveDate::parse_from_str(day, "%Y-%m-%d")
            .unwrap()
            .and_hms_opt(23, 59, 59)
            .unwrap()
            .and_local_timezone(chrono_tz::Asia::Jakarta)
            .unwrap()
            .with_timezone(&chrono::Utc)
    };
    // Each purchase once, with its key: the nightly run finds the order lines' customers by it.
    let sorted = |columns: &setia_store::analytics::PurchaseColumns| {
        assert_eq!(columns.purchase.len(), columns.customer.len());
        let mut keys = columns.purchase.clone();
        keys.sort_unstable();
        keys.dedup();
        assert_eq!(
            keys.len(),
            columns.purchase.len(),
            "every purchase key once"
        );
        let mut rows: Vec<(i64, i64, i64, i64)> = (0..columns.customer.len())
            .map(|i| {
                (
                    columns.customer[i],
                    columns.occurred_at_us[i],
                    columns.amount_minor[i],
                    columns.purchase[i],
                )
            })
            .collect();
        rows.sort_unstable();
        rows
    };
    for cut_off in ["1998-06-30", "1997-03-31"] {
        let expected: Vec<&(String, String, i64)> = fixture_rows
            .iter()
            .filter(|row| row.1.as_str() <= cut_off)
            .collect();
        let whole = store
            .purchase_columns(&merchant, end_of(cut_off))
            .await
            .unwrap();
        let rows = sorted(&whole);
        assert_eq!(rows.len(), expected.len(), "purchases up to {cut_off}");
        assert_eq!(
            rows.iter().map(|row| row.2).sum::<i64>(),
            expected.iter().map(|row| row.2).sum::<i64>(),
            "revenue up to {cut_off}"
        );
        let customers: std::collections::HashSet<i64> = rows.iter().map(|row| row.0).collect();
        let expected_customers: std::collections::HashSet<&str> =
            expected.iter().map(|row| row.0.as_str()).collect();
        assert_eq!(customers.len(), expected_customers.len());
        for chunk in [5, 499, expected.len(), expected.len() + 1] {
            let paged = store
                .purchase_columns_in_chunks(&merchant, end_of(cut_off), chunk)
                .await
                .unwrap();
            assert_eq!(sorted(&paged), rows, "chunks of {chunk} up to {cut_off}");
        }
    }
}

#[test]
fn the_table_and_weekly_cohorts() {
    let setia = Setia::on(setia_store::testing::TestDatabase::sqlite());
    let (merchant, _) = cdnow_merchant(&setia);
    let output = setia.run(&[
        "metrics",
        "--merchant",
        merchant.as_str(),
        "--as-of",
        "1997-03-31",
        "--format",
        "table",
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        text.contains("1997-03-31") && text.contains("bg_nbd") || text.contains("BG/NBD"),
        "{text}"
    );
    let weekly = setia.json(&[
        "metrics",
        "--merchant",
        merchant.as_str(),
        "--as-of",
        "1997-03-31",
        "--period",
        "week",
    ]);
    assert_eq!(weekly["period"], "week");
    assert_eq!(weekly["cohorts"][0]["cohort"], "1997-W01");
}

#[test]
fn an_empty_merchant_gets_valid_numbers_and_bad_flags_exit_2() {
    let setia = Setia::on(setia_store::testing::TestDatabase::sqlite());
    let created = setia.create_merchant("Empty");
    let id = created["id"].as_str().unwrap();
    let report = setia.json(&["metrics", "--merchant", id, "--as-of", "2026-01-31"]);
    assert_eq!(report["totals"]["customers"], 0);
    assert_eq!(report["churn"]["converged"], false);
    assert!(!report.to_string().contains("NaN"));
    let output = setia.run(&["metrics", "--merchant", id, "--as-of", "31/01/2026"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("--as-of"));
}

#[tokio::test]
async fn the_nightly_run_stores_yesterdays_snapshot() {
    let setia = Setia::on(setia_store::testing::TestDatabase::sqlite());
    let (merchant, _) = cdnow_merchant(&setia);
    let _server = setia.start(
        &["serve", "--listen", "127.0.0.1:0"],
        &[("SETIA_NIGHTLY_METRICS_HOUR", "0")],
    );
    let yesterday = (chrono::Utc::now()
        .with_timezone(&chrono_tz::Asia::Jakarta)
        .date_naive()
        - chrono::TimeDelta::days(1))
    .to_string();
    let store = setia.store().await;
    let started = Instant::now();
    loop {
        if let Some(snapshot) = store
            .latest_snapshot(&merchant, Some("month"))
            .await
            .unwrap()
        {
            assert_eq!(snapshot.as_of, yesterday);
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no nightly snapshot"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// `--as-of` after the merchant's today (in its own zone) is refused with exit 2 and stores
/// nothing: such a snapshot would read as the latest and hold back the nightly run.
#[tokio::test]
async fn an_as_of_after_the_merchants_today_is_refused() {
    let setia = Setia::on(setia_store::testing::TestDatabase::sqlite());
    // Today at UTC+14 is always a day that has not begun at UTC-11.
    let east = setia.json(&[
        "merchant",
        "create",
        "--name",
        "Timur",
        "--timezone",
        "Pacific/Kiritimati",
    ]);
    let west = setia.json(&[
        "merchant",
        "create",
        "--name",
        "Barat",
        "--timezone",
        "Pacific/Pago_Pago",
    ]);
    let (east, west) = (east["id"].as_str().unwrap(), west["id"].as_str().unwrap());
    let east_today = chrono::Utc::now()
        .with_timezone(&chrono_tz::Pacific::Kiritimati)
        .date_naive();
    let tomorrow = (east_today + chrono::TimeDelta::days(1)).to_string();
    let east_today = east_today.to_string();
    let store = setia.store().await;
    for (merchant, day) in [
        (east, tomorrow.as_str()),
        (east, "2099-12-31"),
        (west, east_today.as_str()),
    ] {
        let output = setia.run(&["metrics", "--merchant", merchant, "--as-of", day]);
        assert_eq!(output.status.code(), Some(2), "{day}: {}", stderr(&output));
        let said = stderr(&output);
        assert!(
            said.contains(&format!("--as-of {day} is after today")),
            "{day}: {said}"
        );
        let merchant = MerchantId::parse(merchant).unwrap();
        assert!(
            store
                .latest_snapshot(&merchant, None)
                .await
                .unwrap()
                .is_none(),
            "{day}: nothing stored"
        );
    }
    // The merchant's own today is fine.
    let report = setia.json(&["metrics", "--merchant", east, "--as-of", &east_today]);
    assert_eq!(report["as_of"], east_today.as_str());
}
