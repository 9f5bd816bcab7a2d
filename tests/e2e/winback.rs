//! The win-back flow through the real binary over real SMTP: a metrics run enters the
//! customers who are overdue, half of them held out; the treated get the first step, then
//! the voucher step a week later, except the one who paid by transfer in between; nobody
//! held out is ever mailed.

use std::collections::HashSet;
use std::time::Duration;

use chrono::{DateTime, NaiveTime, TimeDelta, Utc};
use serde_json::Value;
use setia_core::MerchantId;
use setia_store::PageRequest;

use crate::mail::{header, run_due, text};
use crate::smtp::Receiver;
use crate::support::Setia;
use crate::webhooks::{sign, SECRET};

crate::on_every_backend!(overdue_customers_are_won_back_and_the_holdout_is_never_mailed);

/// 10:00 in Jakarta, `days` from today: inside marketing hours.
fn jakarta_ten(days: i64) -> DateTime<Utc> {
    let jakarta = chrono_tz::Asia::Jakarta;
    (Utc::now().with_timezone(&jakarta).date_naive() + TimeDelta::days(days))
        .and_time(NaiveTime::from_hms_opt(10, 0, 0).unwrap())
        .and_local_timezone(jakarta)
        .unwrap()
        .to_utc()
}

async fn overdue_customers_are_won_back_and_the_holdout_is_never_mailed(setia: Setia) {
    let receiver = Receiver::start("");
    let created = setia.json(&[
        "merchant",
        "create",
        "--name",
        "Toko Rindu",
        "--webhook-secret",
        SECRET,
    ]);
    let m = created["id"].as_str().unwrap().to_owned();
    let merchant = MerchantId::parse(&m).unwrap();
    let program = setia.write(
        "engagement.toml",
        "[feedback]\nenabled = false\n[winback]\nenabled = true\nholdout_percent = 50\n",
    );
    setia.json(&["merchant", "engagement", "--merchant", &m, &program]);
    let mut customers = String::from("external_id,name,email,virtual_account,consent\n");
    let mut history = String::from("customer_external_id,occurred_at,amount,reference\n");
    let today = Utc::now()
        .with_timezone(&chrono_tz::Asia::Jakarta)
        .date_naive();
    for n in 1..=12 {
        customers.push_str(&format!(
            "C{n},Pelanggan {n},c{n}@example.co.id,88080{n:02},true\n"
        ));
        // Every 30 days, the last one 90 days ago: three times the median gap.
        for (k, back) in [150, 120, 90].iter().enumerate() {
            let day = today - TimeDelta::days(*back);
            history.push_str(&format!("C{n},{day},100000,INV-{n}-{k}\n"));
        }
    }
    setia.import("customers", &m, &customers);
    setia.import("transactions", &m, &history);

    // The metrics run enters them all; the holdout is drawn then.
    setia.json(&["metrics", "--merchant", &m]);
    let store = setia.store().await;
    let page = PageRequest {
        before: None,
        limit: 50,
    };
    let episodes = store
        .winback_episodes(&merchant, false, page)
        .await
        .unwrap()
        .items;
    assert_eq!(episodes.len(), 12, "every overdue customer entered");
    assert!(episodes.iter().all(|e| e.reason == "overdue"));
    let held: HashSet<String> = episodes
        .iter()
        .filter(|e| e.holdout)
        .map(|e| e.customer_external_id.clone())
        .collect();
    let treated: Vec<String> = episodes
        .iter()
        .filter(|e| !e.holdout)
        .map(|e| e.customer_external_id.clone())
        .collect();
    assert!(
        !held.is_empty() && !treated.is_empty(),
        "both groups: {held:?}"
    );
    // A second run of the same snapshot starts nothing new.
    setia.json(&["metrics", "--merchant", &m]);
    assert_eq!(
        store
            .winback_episodes(&merchant, false, page)
            .await
            .unwrap()
            .items
            .len(),
        12
    );

    let smtp = receiver.url();
    let env = [("SETIA_SMTP_URL", smtp.as_str())];
    let at = |instant: DateTime<Utc>| instant.to_rfc3339();
    let to_customer = |message: &Value| {
        let to = header(message, "To").unwrap();
        let address = to.rsplit('<').next().unwrap();
        let n: String = address
            .split('@')
            .next()
            .unwrap()
            .chars()
            .filter(char::is_ascii_digit)
            .collect();
        format!("C{n}")
    };

    // The first step: every treated customer, nobody held out.
    let first = run_due(&setia, &at(jakarta_ten(1)), &env);
    assert_eq!(first["sent"], treated.len() as u64, "{first}");
    let mailed: HashSet<String> = receiver.messages().iter().map(to_customer).collect();
    assert_eq!(mailed, treated.iter().cloned().collect());
    let message = &receiver.messages()[0];
    assert!(
        header(message, "Subject")
            .unwrap()
            .contains("kami rindu Anda di Toko Rindu"),
        "{:?}",
        header(message, "Subject")
    );
    assert!(header(message, "List-Unsubscribe").is_some());

    // The first treated customer pays by transfer: their episode ends.
    let payer = &treated[0];
    let n: u32 = payer[1..].parse().unwrap();
    let server = setia.serve();
    let body = format!(
        r#"[{{"mutation_id":"wb-{n}","account_number":"88080{n:02}","date":"{}","description":"VA PAYMENT","amount":175000,"type":"CR","bank":{{"bank_type":"bca"}}}}]"#,
        crate::mail::jakarta_wall_time(Utc::now())
    );
    let client = reqwest::Client::new();
    let posted = client
        .post(server.url(&format!("/webhooks/moota/{m}")))
        .header("Signature", sign(body.as_bytes()))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(posted.status(), 200);
    let mut ended = None;
    for _ in 0..100 {
        let episode = store
            .winback_episodes(&merchant, false, page)
            .await
            .unwrap()
            .items
            .into_iter()
            .find(|e| &e.customer_external_id == payer)
            .unwrap();
        if episode.end_reason.is_some() {
            ended = Some(episode);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        ended
            .expect("the purchase ended the episode")
            .end_reason
            .as_deref(),
        Some("purchase")
    );
    drop(server);

    // A week later, the voucher step: the treated but the payer; each code is theirs.
    let before = receiver.messages().len();
    let second = run_due(&setia, &at(jakarta_ten(8)), &env);
    assert_eq!(second["suppressed"], 1, "{second}");
    // The payer's thank-you goes out in the same round.
    let vouchers: Vec<Value> = receiver.messages()[before..]
        .iter()
        .filter(|m| header(m, "Subject").unwrap().contains("diskon"))
        .cloned()
        .collect();
    assert_eq!(vouchers.len(), treated.len() - 1, "{second}");
    let episodes = store
        .winback_episodes(&merchant, false, page)
        .await
        .unwrap()
        .items;
    for message in &vouchers {
        let customer = to_customer(message);
        assert!(treated.contains(&customer) && &customer != payer);
        let episode = episodes
            .iter()
            .find(|e| e.customer_external_id == customer)
            .unwrap();
        let code = &episode.vouchers[0].code;
        assert!(code.starts_with("WB-"));
        assert!(text(message).contains(code.as_str()), "{}", text(message));
        assert!(header(message, "Subject").unwrap().contains("diskon 10%"));
        assert!(text(message).contains("10%"));
    }
    let everyone: HashSet<String> = receiver.messages().iter().map(to_customer).collect();
    assert!(
        everyone.is_disjoint(&held),
        "no holdout customer was ever mailed"
    );
}
