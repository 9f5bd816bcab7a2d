//! The nightly metrics across workers: three `setia worker` processes on one database share
//! ten merchants, each merchant's run is computed exactly once, and when the worker holding
//! one is killed mid-run (SIGKILL) a live worker takes it over once its lease runs out.

use std::time::{Duration, Instant};

use chrono::{TimeDelta, Utc};
use setia_core::MerchantId;
use setia_store::Store;

use crate::support::{stderr, Process, Setia};

crate::on_every_backend!(
    ten_merchants_three_workers_each_run_once,
    a_future_snapshot_does_not_freeze_the_nightly_run
);

/// How many month snapshots the merchant has.
async fn month_snapshots(store: &dyn Store, merchant: &MerchantId) -> usize {
    store
        .snapshot_heads(merchant, "month", 100)
        .await
        .unwrap()
        .len()
}

/// The worker whose log says it claimed `merchant`'s run, if one has yet.
fn holder(workers: &[Process], merchant: &MerchantId) -> Option<usize> {
    workers.iter().position(|worker| claimed(worker, merchant))
}

fn claimed(worker: &Process, merchant: &MerchantId) -> bool {
    std::fs::read_to_string(&worker.log).is_ok_and(|log| {
        log.lines()
            .any(|line| line.contains("nightly run claimed") && line.contains(merchant.as_str()))
    })
}

async fn ten_merchants_three_workers_each_run_once(setia: Setia) {
    let history = setia.write(
        "history.csv",
        "customer_external_id,occurred_at,amount\nC1,2026-10-01,100000\nC1,2026-11-01,150000\nC2,2026-11-15,90000\n",
    );
    // The first merchant's run is long enough (200,000 purchases) to kill its worker mid-run.
    let large = setia.folder.path().join("large.csv");
    let generated = setia.run(&[
        "sandbox",
        "generate",
        "--customers",
        "20000",
        "--purchases",
        "200000",
        "--seed",
        "7",
        "--out",
        large.to_str().unwrap(),
    ]);
    assert!(generated.status.success(), "{}", stderr(&generated));
    let mut merchants = Vec::new();
    for n in 0..10 {
        let created = setia.json(&["merchant", "create", "--name", &format!("Toko {n}")]);
        let id = created["id"].as_str().unwrap();
        let csv = if n == 0 {
            large.to_str().unwrap()
        } else {
            &history
        };
        setia.json(&["transactions", "import", "--merchant", id, csv]);
        merchants.push(MerchantId::parse(id).unwrap());
    }
    let store = setia.store().await;
    let zone = store
        .merchant(&merchants[0])
        .await
        .unwrap()
        .unwrap()
        .timezone;
    let yesterday = (zone.local_day(Utc::now()) - TimeDelta::days(1)).to_string();

    // A lease of 3 s, renewed every second by the worker that holds it.
    let env = [
        ("SETIA_NIGHTLY_METRICS_HOUR", "0"),
        ("SETIA_NIGHTLY_CHECK_SECONDS", "1"),
        ("SETIA_NIGHTLY_LEASE_SECONDS", "3"),
    ];
    let mut workers: Vec<_> = (0..3).map(|_| setia.start(&["worker"], &env)).collect();

    // The moment a worker claims the large merchant's run, stop it where it is (SIGSTOP, so
    // the test can see the run was not finished), then SIGKILL it.
    let started = Instant::now();
    let victim = loop {
        if let Some(victim) = holder(&workers, &merchants[0]) {
            break victim;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "a worker claims the large merchant's run within a minute"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    workers[victim].stop();
    assert_eq!(
        month_snapshots(&*store, &merchants[0]).await,
        0,
        "the worker was stopped before its run stored anything"
    );
    workers[victim].kill();
    let killed_at = Instant::now();

    // Every merchant is computed, the large one by a live worker once the lease runs out.
    loop {
        let mut done = 0;
        for merchant in &merchants {
            if month_snapshots(&*store, merchant).await > 0 {
                done += 1;
            }
        }
        if done == merchants.len() {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "every merchant is computed within two minutes ({done} done)"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let successor = (0..workers.len())
        .filter(|&n| n != victim)
        .find(|&n| claimed(&workers[n], &merchants[0]))
        .expect("a live worker took the killed worker's run over");
    // Claimed just before the kill with a lease of 3 s that nobody renewed.
    assert!(
        killed_at.elapsed() >= Duration::from_secs(2),
        "not before the killed worker's lease ran out"
    );
    // A few more checks by every live worker: still one run per merchant, none lost.
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
    for (n, worker) in workers.iter().enumerate().filter(|&(n, _)| n != victim) {
        let log = std::fs::read_to_string(&worker.log).unwrap();
        assert!(
            !log.contains("lost its claim"),
            "a live worker keeps its claims by renewing them (worker {n}, successor {successor}): {log}"
        );
    }
}

/// A month snapshot dated in the future, already in the database (`setia metrics --as-of`
/// took one before it refused future days), is the latest by id: the nightly run still
/// stores yesterday's, once, and it becomes the latest.
async fn a_future_snapshot_does_not_freeze_the_nightly_run(setia: Setia) {
    let created = setia.create_merchant("Toko");
    let id = created["id"].as_str().unwrap();
    let merchant = MerchantId::parse(id).unwrap();
    setia.import(
        "transactions",
        id,
        "customer_external_id,occurred_at,amount\nC1,2026-10-01,100000\nC1,2026-11-01,150000\nC2,2026-11-15,90000\n",
    );
    let store = setia.store().await;
    let zone = store.merchant(&merchant).await.unwrap().unwrap().timezone;
    let yesterday = (zone.local_day(Utc::now()) - TimeDelta::days(1)).to_string();
    // A real report of an earlier day, stored again as of a day that has not come: the
    // latest by id.
    let earlier = (zone.local_day(Utc::now()) - TimeDelta::days(30)).to_string();
    let report = setia.json(&["metrics", "--merchant", id, "--as-of", &earlier]);
    store
        .save_snapshot(
            &merchant,
            "2099-12-31",
            "month",
            &report.to_string(),
            Vec::new(),
            Utc::now(),
        )
        .await
        .unwrap();
    assert_eq!(month_snapshots(&*store, &merchant).await, 2);

    let env = [
        ("SETIA_NIGHTLY_METRICS_HOUR", "0"),
        ("SETIA_NIGHTLY_CHECK_SECONDS", "1"),
    ];
    let worker = setia.start(&["worker"], &env);
    let started = Instant::now();
    loop {
        let latest = store
            .latest_snapshot(&merchant, Some("month"))
            .await
            .unwrap()
            .unwrap();
        if latest.as_of == yesterday {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the nightly run stored yesterday's snapshot within a minute (latest: {}): {}",
            latest.as_of,
            std::fs::read_to_string(&worker.log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // A few more checks: yesterday's run was made once, not at every check.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(month_snapshots(&*store, &merchant).await, 3);
}
