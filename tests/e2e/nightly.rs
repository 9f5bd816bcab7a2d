//! The nightly metrics across workers: three `setia worker` processes on one database share
//! ten merchants, each merchant's run is computed exactly once, and a run whose worker died
//! holding it is taken over when its lease runs out.

use std::time::{Duration, Instant};

use chrono::{TimeDelta, Utc};
use setia_core::MerchantId;
use setia_store::Store;

use crate::support::Setia;

crate::on_every_backend!(ten_merchants_three_workers_each_run_once);

/// How many month snapshots the merchant has.
async fn month_snapshots(store: &dyn Store, merchant: &MerchantId) -> usize {
    store
        .snapshot_heads(merchant, "month", 100)
        .await
        .unwrap()
        .len()
}

async fn ten_merchants_three_workers_each_run_once(setia: Setia) {
    let history = setia.write(
        "history.csv",
        "customer_external_id,occurred_at,amount\nC1,2026-10-01,100000\nC1,2026-11-01,150000\nC2,2026-11-15,90000\n",
    );
    let mut merchants = Vec::new();
    for n in 0..10 {
        let created = setia.json(&["merchant", "create", "--name", &format!("Toko {n}")]);
        let id = created["id"].as_str().unwrap();
        setia.json(&["transactions", "import", "--merchant", id, &history]);
        merchants.push(MerchantId::parse(id).unwrap());
    }
    let store = setia.store().await;
    // The first merchant's run is held by a worker that died: its claim stands for 5 s more.
    let zone = store
        .merchant(&merchants[0])
        .await
        .unwrap()
        .unwrap()
        .timezone;
    let yesterday = (zone.local_day(Utc::now()) - TimeDelta::days(1)).to_string();
    assert!(store
        .claim_nightly_run(
            &merchants[0],
            &yesterday,
            "a-worker-killed-mid-run",
            Utc::now(),
            TimeDelta::seconds(5),
        )
        .await
        .unwrap());
    let held_since = Instant::now();

    let env = [
        ("SETIA_NIGHTLY_METRICS_HOUR", "0"),
        ("SETIA_NIGHTLY_CHECK_SECONDS", "1"),
        ("SETIA_NIGHTLY_LEASE_SECONDS", "600"),
    ];
    let _workers: Vec<_> = (0..3).map(|_| setia.start(&["worker"], &env)).collect();

    let started = Instant::now();
    loop {
        let mut done = 0;
        for merchant in &merchants[1..] {
            if month_snapshots(&*store, merchant).await > 0 {
                done += 1;
            }
        }
        if done == 9 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the nine unclaimed merchants are computed within a minute ({done} done)"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The held merchant waits for its lease, then one of the live workers takes it over.
    loop {
        if month_snapshots(&*store, &merchants[0]).await > 0 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the dead worker's merchant is taken over"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        held_since.elapsed() >= Duration::from_secs(5),
        "not before the dead worker's lease ran out"
    );
    // A few more checks by every worker: still one run per merchant.
    tokio::time::sleep(Duration::from_secs(3)).await;
    for merchant in &merchants {
        assert_eq!(
            month_snapshots(&*store, merchant).await,
            1,
            "merchant {merchant} computed exactly once"
        );
        let latest = store
            .latest_snapshot(merchant, Some("month"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(latest.as_of, yesterday);
    }
}
