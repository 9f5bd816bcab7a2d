//! `setia sandbox push` and `setia sandbox generate`.

use crate::support::{stderr, Setia};
use crate::webhooks::{merchant_with_secret, SECRET};

#[tokio::test]
async fn push_sends_signed_sandbox_mutations_that_setia_accepts() {
    let setia = Setia::on(setia_store::testing::TestDatabase::sqlite());
    let (merchant, _) = merchant_with_secret(&setia);
    let server = setia.serve();
    let url = server.url(&format!("/webhooks/moota/{merchant}"));
    let command_url = url.clone();
    let summary = tokio::task::spawn_blocking(move || {
        let setia_ref = setia;
        let summary = setia_ref.json(&[
            "sandbox",
            "push",
            "--url",
            &command_url,
            "--secret",
            SECRET,
            "--mutations",
            "60",
            "--rate",
            "200",
        ]);
        (setia_ref, summary)
    })
    .await
    .unwrap();
    let (setia, summary) = summary;
    assert_eq!(summary["sent"], 60);
    assert_eq!(summary["statuses"]["200"], 60, "{summary}");
    let received = summary["answers"]["received"].as_u64().unwrap_or(0);
    let duplicate = summary["answers"]["duplicate"].as_u64().unwrap_or(0);
    assert_eq!(received + duplicate, 60);
    let store = setia.store().await;
    assert_eq!(
        store
            .inbox_entries(
                &merchant,
                setia_store::PageRequest {
                    before: None,
                    limit: 500
                }
            )
            .await
            .unwrap()
            .items
            .len() as u64,
        received
    );

    let output = setia.run(&[
        "sandbox",
        "push",
        "--url",
        &url,
        "--secret",
        "short",
        "--mutations",
        "1",
    ]);
    assert_eq!(output.status.code(), Some(2));
    let output = setia.run(&["sandbox", "push", "--url", "ftp://x", "--secret", SECRET]);
    assert_eq!(output.status.code(), Some(2));
    for rate in ["0", "1e-20", "1e300", "NaN"] {
        let output = setia.run(&[
            "sandbox", "push", "--url", &url, "--secret", SECRET, "--rate", rate,
        ]);
        assert_eq!(output.status.code(), Some(2), "{rate}");
        assert!(stderr(&output).contains("--rate"), "{rate}");
    }
}

#[test]
fn generate_writes_a_repeatable_importable_history() {
    let setia = Setia::on(setia_store::testing::TestDatabase::sqlite());
    let path = |name: &str| setia.folder.path().join(name).display().to_string();
    let first = setia.json(&[
        "sandbox",
        "generate",
        "--customers",
        "200",
        "--purchases",
        "1500",
        "--seed",
        "7",
        "--out",
        &path("a.csv"),
    ]);
    setia.json(&[
        "sandbox",
        "generate",
        "--customers",
        "200",
        "--purchases",
        "1500",
        "--seed",
        "7",
        "--out",
        &path("b.csv"),
    ]);
    assert_eq!(
        std::fs::read(path("a.csv")).unwrap(),
        std::fs::read(path("b.csv")).unwrap(),
        "a seed gives the same file"
    );
    let purchases = first["purchases"].as_u64().unwrap();
    assert!((1_200..=1_800).contains(&purchases), "{first}");
    let merchant = setia.create_merchant("Generated");
    let imported = setia.json(&[
        "transactions",
        "import",
        "--merchant",
        merchant["id"].as_str().unwrap(),
        &path("a.csv"),
    ]);
    assert_eq!(imported["inserted"].as_u64(), Some(purchases));
    assert_eq!(imported["customers_created"], 200);

    let output = setia.run(&[
        "sandbox",
        "generate",
        "--customers",
        "200",
        "--purchases",
        "100",
        "--out",
        &path("c.csv"),
    ]);
    assert_eq!(
        output.status.code(),
        Some(2),
        "fewer purchases than customers"
    );
}

#[test]
fn generate_writes_the_purchases_items_beside_the_history() {
    let setia = Setia::on(setia_store::testing::TestDatabase::sqlite());
    let path = |name: &str| setia.folder.path().join(name).display().to_string();
    let generate = |history: &str, items: &str| {
        setia.json(&[
            "sandbox",
            "generate",
            "--customers",
            "100",
            "--purchases",
            "600",
            "--seed",
            "3",
            "--out",
            &path(history),
            "--items-out",
            &path(items),
        ])
    };
    let first = generate("h1.csv", "i1.csv");
    generate("h2.csv", "i2.csv");
    assert_eq!(
        std::fs::read(path("i1.csv")).unwrap(),
        std::fs::read(path("i2.csv")).unwrap(),
        "a seed gives the same items"
    );
    let items = std::fs::read_to_string(path("i1.csv")).unwrap();
    let mut rows = items.lines();
    assert_eq!(
        rows.next(),
        Some("reference,sku,name,quantity,unit_price,category")
    );
    let lines: Vec<&str> = rows.collect();
    assert_eq!(first["lines"].as_u64(), Some(lines.len() as u64), "{first}");
    // Every purchase of the history has its lines, and every line a purchase.
    let history = std::fs::read_to_string(path("h1.csv")).unwrap();
    let references: std::collections::BTreeSet<&str> = history
        .lines()
        .skip(1)
        .map(|l| l.rsplit(',').next().unwrap())
        .collect();
    let with_lines: std::collections::BTreeSet<&str> =
        lines.iter().map(|l| l.split(',').next().unwrap()).collect();
    assert_eq!(references, with_lines);
    // The items file reads as setia's items import format.
    let parsed: Vec<_> = setia_core::import::ItemsCsv::new(items.as_bytes())
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(parsed.len(), lines.len());
}
