//! `setia customers import` and `setia transactions import`, as a merchant runs them.

use setia_core::customer::ExternalId;
use setia_core::{MerchantId, Money};

use crate::support::{fixture, stderr, Setia};

crate::on_every_backend!(
    cdnow_imports_once_and_reimports_as_duplicates,
    a_negative_amount_imports_nothing,
    a_bad_date_imports_nothing,
    a_bad_customers_file_imports_nothing,
    skip_invalid_imports_the_valid_rows,
    customers_are_upserted,
);

fn merchant_id(value: &serde_json::Value) -> MerchantId {
    MerchantId::parse(value["id"].as_str().unwrap()).unwrap()
}

async fn assert_ledger(setia: &Setia, merchant: &MerchantId, customers: u64, purchases: u64) {
    let summary = setia.store().await.ledger_summary(merchant).await.unwrap();
    assert_eq!(
        (summary.customers, summary.purchases),
        (customers, purchases)
    );
}

async fn cdnow_imports_once_and_reimports_as_duplicates(setia: Setia) {
    let merchant = setia.create_merchant("CDNOW");
    let id = merchant["id"].as_str().unwrap();
    let file = fixture("cdnow/cdnow_sample_transactions.csv");
    let expected_revenue: Money = csv::Reader::from_path(&file)
        .unwrap()
        .records()
        .map(|r| Money::parse_non_negative(&r.unwrap()[2]).unwrap())
        .sum();

    let first = setia.json(&["transactions", "import", "--merchant", id, &file]);
    assert_eq!(
        first,
        serde_json::json!({"rows": 6919, "inserted": 6919, "updated": 0, "skipped_duplicates": 0,
                           "customers_created": 2357, "rejected": []})
    );
    let store = setia.store().await;
    let summary = store.ledger_summary(&merchant_id(&merchant)).await.unwrap();
    assert_eq!((summary.customers, summary.purchases), (2357, 6919));
    assert_eq!(summary.revenue, expected_revenue);
    // Summed independently: python3 Decimal and awk over CDNOW_sample.txt both give this.
    assert_eq!(expected_revenue.to_string(), "244091.94");

    let second = setia.json(&["transactions", "import", "--merchant", id, &file]);
    assert_eq!(second["inserted"], 0);
    assert_eq!(second["skipped_duplicates"], 6919);
    assert_eq!(second["customers_created"], 0);
    let again = store.ledger_summary(&merchant_id(&merchant)).await.unwrap();
    assert_eq!(again, summary);
}

async fn a_negative_amount_imports_nothing(setia: Setia) {
    let merchant = setia.create_merchant("Toko");
    let file = setia.write(
        "negative.csv",
        "customer_external_id,occurred_at,amount\nC1,2025-01-01,100\nC2,2025-01-02,200\nC3,2025-01-03,-50\nC4,2025-01-04,1\n",
    );
    let output = setia.run(&[
        "transactions",
        "import",
        "--merchant",
        merchant["id"].as_str().unwrap(),
        &file,
    ]);
    assert_eq!(output.status.code(), Some(2));
    let message = stderr(&output);
    assert!(
        message.contains("negative.csv: line 4, field amount"),
        "{message}"
    );
    assert!(output.stdout.is_empty());
    assert_ledger(&setia, &merchant_id(&merchant), 0, 0).await;
}

async fn a_bad_date_imports_nothing(setia: Setia) {
    let merchant = setia.create_merchant("Toko");
    let file = setia.write(
        "dates.csv",
        "customer_external_id,occurred_at,amount\nC1,2025-01-01,100\nC2,2025-02-30,200\n",
    );
    let output = setia.run(&[
        "transactions",
        "import",
        "--merchant",
        merchant["id"].as_str().unwrap(),
        &file,
    ]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("dates.csv: line 3, field occurred_at"),
        "{}",
        stderr(&output)
    );
    assert_ledger(&setia, &merchant_id(&merchant), 0, 0).await;
}

async fn a_bad_customers_file_imports_nothing(setia: Setia) {
    let merchant = setia.create_merchant("Toko");
    let file = setia.write(
        "customers.csv",
        "external_id,name,email,birthday\nC1,Siti,siti@example.co.id,1990-05-17\nC2,Budi,budi@@example,\nC3,Ani,ani@example.co.id,1995-02-31\n",
    );
    let output = setia.run(&[
        "customers",
        "import",
        "--merchant",
        merchant["id"].as_str().unwrap(),
        &file,
    ]);
    assert_eq!(output.status.code(), Some(2));
    let message = stderr(&output);
    assert!(
        message.contains("customers.csv: line 3, field email"),
        "{message}"
    );
    assert!(
        message.contains("customers.csv: line 4, field birthday"),
        "{message}"
    );
    assert_ledger(&setia, &merchant_id(&merchant), 0, 0).await;
}

fn import_skipping_invalid(setia: &Setia, merchant: &str, file: &str) -> serde_json::Value {
    setia.json(&[
        "transactions",
        "import",
        "--merchant",
        merchant,
        file,
        "--skip-invalid",
    ])
}

async fn skip_invalid_imports_the_valid_rows(setia: Setia) {
    let merchant = setia.create_merchant("Toko");
    let id = merchant["id"].as_str().unwrap();
    let file = setia.write(
        "mixed.csv",
        "customer_external_id,occurred_at,amount\nC1,2025-01-01,100\nC2,yesterday,200\nC3,2025-01-03,1.005\nC1,2025-01-04 10:30:00,50.5\n",
    );
    let summary = import_skipping_invalid(&setia, id, &file);
    assert_eq!(summary["rows"], 4);
    assert_eq!(summary["inserted"], 2);
    assert_eq!(summary["customers_created"], 1);
    assert_eq!(
        summary["rejected"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| (
                r["line"].as_u64().unwrap(),
                r["field"].as_str().unwrap().to_owned()
            ))
            .collect::<Vec<_>>(),
        vec![(3, "occurred_at".to_owned()), (4, "amount".to_owned())]
    );
    assert_eq!(
        summary.get("rejected_total"),
        None,
        "only when the list is cut short"
    );
    assert_ledger(&setia, &merchant_id(&merchant), 1, 2).await;

    // A file of more bad rows than the summary lists: the first 1,000 are listed with the
    // total beside them, and the good rows after them are still imported.
    let mut text = String::from("customer_external_id,occurred_at,amount\n");
    for _ in 0..1_003 {
        text.push_str("C9,2025-02-30,100\n");
    }
    text.push_str("C9,2025-03-01,100\n");
    let file = setia.write("mostly-bad.csv", &text);
    let output = setia.run(&["transactions", "import", "--merchant", id, &file]);
    assert_eq!(output.status.code(), Some(2));
    let refused = stderr(&output);
    assert!(
        refused.contains("has 1003 invalid row(s)") && refused.contains("… and 983 more"),
        "{refused}"
    );
    let summary = import_skipping_invalid(&setia, id, &file);
    assert_eq!(summary["rows"], 1_004);
    assert_eq!(summary["inserted"], 1);
    assert_eq!(summary["rejected"].as_array().unwrap().len(), 1_000);
    assert_eq!(summary["rejected"][999]["line"], 1_001);
    assert_eq!(summary["rejected_total"], 1_003);
    assert_ledger(&setia, &merchant_id(&merchant), 2, 3).await;
}

async fn customers_are_upserted(setia: Setia) {
    let merchant = setia.create_merchant("Toko");
    let id = merchant["id"].as_str().unwrap();
    let file = setia.write(
        "customers.csv",
        "external_id,name,email,birthday,virtual_account,payer_names,consent\n\
         C1,Siti Rahma,siti@example.co.id,02-29,8808001,Siti Rahma;S. Rahma,false\n\
         C2,Budi,,,,,\n",
    );
    let first = setia.json(&["customers", "import", "--merchant", id, &file]);
    assert_eq!(
        first,
        serde_json::json!({"rows": 2, "inserted": 2, "updated": 0, "skipped_duplicates": 0,
                           "customers_created": 2, "rejected": []})
    );
    let renamed = setia.write(
        "renamed.csv",
        "external_id,name\nC1,Siti R.\nC2,Budi\nC3,Ani\n",
    );
    let second = setia.json(&["customers", "import", "--merchant", id, &renamed]);
    assert_eq!(
        (second["inserted"].as_u64(), second["updated"].as_u64()),
        (Some(1), Some(1))
    );
    assert_eq!(second["skipped_duplicates"], 1);

    let siti = setia
        .store()
        .await
        .customer(&merchant_id(&merchant), &ExternalId::parse("C1").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(siti.name.as_deref(), Some("Siti R."));
    assert_eq!(siti.email.as_deref(), Some("siti@example.co.id"));
    assert_eq!(siti.birthday.as_deref(), Some("02-29"));
    assert_eq!(siti.payer_names, vec!["S RAHMA", "SITI RAHMA"]);
    assert!(!siti.consent);

    // Another customer's virtual account: exit 2, the line named, nothing imported.
    let clash = setia.write(
        "clash.csv",
        "external_id,virtual_account\nC9,1\nC4,8808001\n",
    );
    let output = setia.run(&["customers", "import", "--merchant", id, &clash]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("clash.csv: line 3, field virtual_account"),
        "{}",
        stderr(&output)
    );
    assert_ledger(&setia, &merchant_id(&merchant), 3, 0).await;
}

/// SQLite: a command closes its connections before it exits, and the last one to close
/// copies the write-ahead log into the database file and removes it. Without that, an import
/// left its whole size again in `setia.db-wal` for the next process to read through.
#[test]
fn an_import_leaves_no_write_ahead_log_behind() {
    let setia = Setia::on(setia_store::testing::TestDatabase::sqlite());
    let database = setia
        .database
        .url
        .strip_prefix("sqlite://")
        .unwrap()
        .to_owned();
    let log = std::path::PathBuf::from(format!("{database}-wal"));
    let merchant = setia.create_merchant("Toko");
    let id = merchant["id"].as_str().unwrap();
    let file = fixture("cdnow/cdnow_sample_transactions.csv");
    let imported = setia.json(&["transactions", "import", "--merchant", id, &file]);
    assert_eq!(imported["inserted"], 6919);
    assert!(
        !log.exists(),
        "{} is still there, {} bytes",
        log.display(),
        std::fs::metadata(&log).map(|m| m.len()).unwrap_or(0)
    );
    // Everything is in the database file itself.
    let summary = setia.json(&["metrics", "--merchant", id, "--as-of", "1998-06-30"]);
    assert_eq!(summary["totals"]["customers"], 2357);
}

#[test]
fn unknown_merchants_and_missing_files_are_named() {
    let setia = Setia::on(setia_store::testing::TestDatabase::sqlite());
    let file = fixture("cdnow/cdnow_sample_transactions.csv");
    let output = setia.run(&[
        "transactions",
        "import",
        "--merchant",
        "mer_00000000000000000000",
        &file,
    ]);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("no merchant mer_00000000000000000000"));
    let output = setia.run(&["transactions", "import", "--merchant", "shop-1", &file]);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("--merchant"));

    let merchant = setia.create_merchant("Toko");
    let output = setia.run(&[
        "customers",
        "import",
        "--merchant",
        merchant["id"].as_str().unwrap(),
        "nowhere.csv",
    ]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("cannot read nowhere.csv"),
        "{}",
        stderr(&output)
    );
    let header = setia.write("header.csv", "customer,occurred_at,amount\n");
    let output = setia.run(&[
        "transactions",
        "import",
        "--merchant",
        merchant["id"].as_str().unwrap(),
        &header,
    ]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("header.csv: line 1, field customer"),
        "{}",
        stderr(&output)
    );
    // Piped, the progress bar stays quiet: stderr has the error and nothing else.
    assert_eq!(stderr(&output).lines().count(), 1, "{}", stderr(&output));
}

#[tokio::test]
async fn award_points_on_import_and_a_custom_program() {
    let setia = Setia::on(setia_store::testing::TestDatabase::sqlite());
    let program = setia.write(
        "loyalty.toml",
        "rupiah_per_point = 1000\nbonus_every = 2\nbonus_points = 7\n",
    );
    let created = setia.json(&[
        "merchant",
        "create",
        "--name",
        "Toko",
        "--loyalty",
        &program,
    ]);
    let id = created["id"].as_str().unwrap();
    let file = setia.write(
        "history.csv",
        "customer_external_id,occurred_at,amount\nC1,2025-01-02,5000\nC1,2025-01-01,3000\n",
    );
    setia.json(&[
        "transactions",
        "import",
        "--merchant",
        id,
        &file,
        "--award-points",
    ]);
    setia.json(&[
        "transactions",
        "import",
        "--merchant",
        id,
        &file,
        "--award-points",
    ]);
    let store = setia.store().await;
    let merchant = merchant_id(&created);
    let profile = store
        .customer_profile(
            &merchant,
            &ExternalId::parse("C1").unwrap(),
            chrono::Utc::now(),
        )
        .await
        .unwrap()
        .unwrap();
    // 3 + 5 points, +7 on the second purchase; the second import awards nothing more. The
    // points are over a year old now, so the balance is what expiry leaves: nothing.
    let history = store.points_history(&merchant, profile.id).await.unwrap();
    assert_eq!(
        history.iter().map(|e| e.points).collect::<Vec<_>>(),
        vec![3, 5, 7]
    );
    assert_eq!(profile.points_balance, 0);

    let bad = setia.write("bad.toml", "rupiah_per_point = 0\n");
    let output = setia.run(&["merchant", "loyalty", "--merchant", id, &bad]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("rupiah_per_point"),
        "{}",
        stderr(&output)
    );
    let good = setia.write("good.toml", "gold_multiplier = 2.0\n");
    let updated = setia.json(&["merchant", "loyalty", "--merchant", id, &good]);
    assert_eq!(updated["gold_multiplier"], 2.0);
    assert_eq!(
        updated["rupiah_per_point"], 10000,
        "keys left out take their defaults"
    );
}
