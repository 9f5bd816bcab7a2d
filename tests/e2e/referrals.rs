//! The referral program through the real binary, over real HTTP and SMTP: an advocate's
//! thank-you carries her code, a friend's order names it (as a person may type it), the
//! friend's signed transfer qualifies the referral, and once the hold is over the advocate
//! gets her points and one email, however often the webhook is replayed or run-due runs. A
//! payment refunded within the hold earns nothing.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{json, Value};
use setia_core::{CustomerId, ExternalId, MerchantId};
use setia_store::referral::Referral;
use setia_store::{PageRequest, Store};

use crate::dashboard::Dash;
use crate::ledger::{payment, wait_for, Api};
use crate::mail::{header, html, jakarta_wall_time, run_due, text};
use crate::smtp::Receiver;
use crate::support::{mail_secret, Setia};
use crate::webhooks::SECRET;

crate::on_every_backend!(
    a_friends_cleared_transfer_earns_the_advocate_points_and_one_email,
    a_payment_refunded_within_the_hold_earns_nothing,
);

const PUBLIC_URL: &str = "https://toko.example";
/// The merchant's own account, which transfers for orders go to.
const ACCOUNT: &str = "5550001";
/// Words of the reward email's subject (Indonesian, the default language).
const REWARD_SUBJECT: &str = "karena mengajak teman";

/// A merchant with `[referral]` on (and feedback requests off, so the rounds below send only
/// what this test is about); its id and API token.
fn merchant(setia: &Setia) -> (MerchantId, String) {
    let created = setia.json(&[
        "merchant",
        "create",
        "--name",
        "Toko Sahabat",
        "--webhook-secret",
        SECRET,
    ]);
    let id = created["id"].as_str().unwrap().to_owned();
    let program = setia.write(
        "engagement.toml",
        "[feedback]\nenabled = false\n[referral]\nenabled = true\nhold_days = 7\n",
    );
    setia.json(&["merchant", "engagement", "--merchant", &id, &program]);
    (
        MerchantId::parse(&id).unwrap(),
        created["api_token"].as_str().unwrap().to_owned(),
    )
}

async fn customer(api: &Api<'_>, external_id: &str, name: &str, email: &str) {
    let (status, body) = api
        .post(
            "/customers",
            json!({"external_id": external_id, "name": name, "email": email, "consent": true}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
}

/// An order of Rp 150.000 (above the program's minimum), optionally carrying a referral
/// code; what its buyer must transfer, in whole Rupiah.
async fn order(api: &Api<'_>, external_id: &str, buyer: &str, code: Option<&str>) -> i64 {
    let mut body =
        json!({"external_id": external_id, "customer_external_id": buyer, "amount": "150000"});
    if let Some(code) = code {
        body["referral_code"] = code.into();
    }
    let (status, created) = api.post("/orders", body).await;
    assert_eq!(status, 201, "{created}");
    created["transfer_amount"]
        .as_str()
        .unwrap()
        .strip_suffix(".00")
        .unwrap()
        .parse()
        .unwrap()
}

/// A signed Moota webhook for a transfer of `amount` from `payer`, made now.
fn transfer(mutation: &str, amount: i64, payer: &str) -> Vec<u8> {
    payment(
        mutation,
        ACCOUNT,
        amount,
        &format!("TRSF E-BANKING CR {payer}"),
        &jakarta_wall_time(Utc::now()),
    )
}

pub(crate) async fn customer_id(
    store: &dyn Store,
    merchant: &MerchantId,
    external: &str,
) -> CustomerId {
    store
        .customer(merchant, &ExternalId::parse(external).unwrap())
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("customer {external}"))
        .id
}

async fn referral_of(store: &dyn Store, merchant: &MerchantId, friend: &str) -> Option<Referral> {
    let page = PageRequest {
        before: None,
        limit: 50,
    };
    store
        .referrals(merchant, None, page)
        .await
        .unwrap()
        .items
        .into_iter()
        .find(|r| r.friend.external_id == friend)
}

async fn wait_for_status(store: &dyn Store, merchant: &MerchantId, friend: &str, status: &str) {
    wait_for(&format!("{friend}'s referral to be {status}"), async || {
        referral_of(store, merchant, friend)
            .await
            .is_some_and(|r| r.status == status)
    })
    .await;
}

/// The `referral:{id}` entries of a customer's points history.
async fn referral_points(
    store: &dyn Store,
    merchant: &MerchantId,
    customer: CustomerId,
    referral: i64,
) -> Vec<i64> {
    let source = format!("referral:{referral}");
    store
        .points_history(merchant, customer)
        .await
        .unwrap()
        .into_iter()
        .filter(|entry| entry.source == source)
        .map(|entry| {
            assert_eq!(entry.kind, "bonus");
            entry.points
        })
        .collect()
}

fn to(message: &Value) -> String {
    header(message, "To").unwrap()
}

fn rewards(receiver: &Receiver) -> Vec<Value> {
    receiver
        .messages()
        .into_iter()
        .filter(|m| header(m, "Subject").unwrap().contains(REWARD_SUBJECT))
        .collect()
}

async fn a_friends_cleared_transfer_earns_the_advocate_points_and_one_email(setia: Setia) {
    let receiver = Receiver::start("");
    let (merchant, token) = merchant(&setia);
    let server = setia.start(&["serve", "--listen", "127.0.0.1:0", "--no-scheduler"], &[]);
    let api = Api {
        client: reqwest::Client::new(),
        server: &server,
        token: token.clone(),
    };
    let store = setia.store().await;
    let smtp = receiver.url();
    let env = [
        ("SETIA_SMTP_URL", smtp.as_str()),
        ("SETIA_PUBLIC_URL", PUBLIC_URL),
    ];
    let at = |instant: DateTime<Utc>| instant.to_rfc3339();

    // Ani buys; her thank-you shows her code and its link.
    customer(&api, "C1", "Ani <b>Lestari</b>", "ani@example.co.id").await;
    let amount = order(&api, "O-ANI", "C1", None).await;
    assert_eq!(
        api.webhook(&merchant, transfer("ani-1", amount, "ANI LESTARI"))
            .await,
        200
    );
    wait_for("Ani's purchase", async || {
        store.ledger_summary(&merchant).await.unwrap().purchases == 1
    })
    .await;
    let thanked = run_due(&setia, &at(Utc::now() + TimeDelta::minutes(15)), &env);
    assert_eq!(thanked["sent"], 1, "{thanked}");
    let ani = customer_id(&*store, &merchant, "C1").await;
    let code = store
        .customer_referrals(&merchant, ani)
        .await
        .unwrap()
        .code
        .expect("the thank-you made Ani's code");
    let link = format!("{PUBLIC_URL}/r/{code}");
    let messages = receiver.messages();
    let thank_you = &messages[0];
    assert!(to(thank_you).contains("ani@example.co.id"));
    let body = text(thank_you);
    assert!(body.contains(&format!("dengan kode {code}:")), "{body}");
    assert!(body.contains(&link), "{body}");
    assert!(
        body.contains("teman Anda mendapat diskon 10% untuk belanja pertama minimal Rp 100.000"),
        "{body}"
    );
    let page = html(thank_you).replace("&#x2f;", "/");
    assert!(page.contains(&format!("href=\"{link}\"")), "{page}");
    assert!(page.contains("Ani &lt;b&gt;Lestari&lt;/b&gt;") && !page.contains("<b>Lestari"));

    // Budi orders with Ani's code as a person types it; his transfer qualifies the referral.
    customer(&api, "C2", "Budi Santoso", "budi@example.co.id").await;
    let amount = order(&api, "O-BUDI", "C2", Some(&code.to_lowercase())).await;
    let pending = referral_of(&*store, &merchant, "C2")
        .await
        .expect("the order recorded the referral");
    assert_eq!(
        (pending.status, pending.advocate.id),
        ("pending", ani),
        "{pending:?}"
    );
    let budi_paid = transfer("budi-1", amount, "BUDI SANTOSO");
    assert_eq!(api.webhook(&merchant, budi_paid.clone()).await, 200);
    wait_for_status(&*store, &merchant, "C2", "qualified").await;
    let qualified = referral_of(&*store, &merchant, "C2").await.unwrap();
    let due = qualified.reward_due_at.unwrap();
    assert_eq!(due - qualified.qualified_at.unwrap(), TimeDelta::days(7));

    // Six days on, the hold is not over: no reward (Budi's own thank-you goes out).
    let early = run_due(&setia, &at(Utc::now() + TimeDelta::days(6)), &env);
    assert_eq!(early["enqueued"]["referral_reward"], 0, "{early}");
    assert!(rewards(&receiver).is_empty());
    assert!(referral_points(&*store, &merchant, ani, qualified.id)
        .await
        .is_empty());

    // Eight days on: one reward, one email to Ani, one entry of 200 points.
    let paid_at = Utc::now() + TimeDelta::days(8);
    let paid = run_due(&setia, &at(paid_at), &env);
    assert_eq!(paid["enqueued"]["referral_reward"], 1, "{paid}");
    assert_eq!(paid["sent"], 1, "{paid}");
    let sent = rewards(&receiver);
    assert_eq!(sent.len(), 1);
    let reward = &sent[0];
    assert!(to(reward).contains("ani@example.co.id"), "{}", to(reward));
    assert!(header(reward, "List-Unsubscribe").is_some());
    assert_eq!(
        header(reward, "Subject").unwrap(),
        "Ani <b>Lestari</b>, Anda mendapat 200 poin karena mengajak teman ke Toko Sahabat"
    );
    // The balance as of sending, the reward included.
    let balance = store
        .customer_profile(&merchant, &ExternalId::parse("C1").unwrap(), paid_at)
        .await
        .unwrap()
        .unwrap()
        .points_balance;
    assert!((200..1_000).contains(&balance), "{balance}");
    let body = text(reward);
    for expected in [
        "Budi, teman yang Anda ajak, sudah berbelanja",
        "Anda mendapat 200 poin.",
        &format!("Saldo poin Anda sekarang {balance} poin."),
        &format!("Ajak teman lain dengan kode {code}:"),
        &link,
    ] {
        assert!(body.contains(expected), "{expected:?} in {body}");
    }
    assert!(!body.contains("Santoso"), "the friend's first name only");
    let page = html(reward).replace("&#x2f;", "/");
    assert!(page.contains("Ani &lt;b&gt;Lestari&lt;/b&gt;") && !page.contains("<b>Lestari"));
    assert!(page.contains(&format!("href=\"{link}\"")));
    assert_eq!(
        referral_points(&*store, &merchant, ani, qualified.id).await,
        vec![200]
    );
    let rewarded = referral_of(&*store, &merchant, "C2").await.unwrap();
    assert_eq!(
        (rewarded.status, rewarded.points),
        ("rewarded", Some(200)),
        "{rewarded:?}"
    );

    // Moota delivers Budi's transfer again; run-due runs again: nothing changes.
    assert_eq!(api.webhook(&merchant, budi_paid).await, 200);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(store.ledger_summary(&merchant).await.unwrap().purchases, 2);
    let again = run_due(
        &setia,
        &at(Utc::now() + TimeDelta::days(8) + TimeDelta::hours(1)),
        &env,
    );
    assert_eq!(again["enqueued"]["referral_reward"], 0, "{again}");
    assert_eq!(again["sent"], 0, "{again}");
    assert_eq!(rewards(&receiver).len(), 1);
    assert_eq!(
        referral_points(&*store, &merchant, ani, qualified.id).await,
        vec![200]
    );

    // The dashboard lists the email by its kind, and previews the kind with a sample.
    let dash = Dash::login(&server, &token).await;
    assert!(dash
        .page("/dashboard/emails")
        .await
        .contains("Hadiah ajak teman"));
    for kind in ["referral_reward", "thank_you"] {
        let preview = dash
            .page(&format!("/dashboard/emails/preview/{kind}/html"))
            .await
            .replace("&#x2f;", "/");
        assert!(preview.contains("/r/CTH00000"), "{kind}: {preview}");
    }
    let preview = dash
        .page("/dashboard/emails/preview/referral_reward/html")
        .await;
    assert!(preview.contains("Budi, teman yang Anda ajak"), "{preview}");
}

async fn a_payment_refunded_within_the_hold_earns_nothing(setia: Setia) {
    let receiver = Receiver::start("");
    let (merchant, token) = merchant(&setia);
    let server = setia.start(&["serve", "--listen", "127.0.0.1:0", "--no-scheduler"], &[]);
    let api = Api {
        client: reqwest::Client::new(),
        server: &server,
        token,
    };
    let store = setia.store().await;
    let smtp = receiver.url();
    let env = [
        ("SETIA_SMTP_URL", smtp.as_str()),
        ("SETIA_PUBLIC_URL", PUBLIC_URL),
    ];

    // Ani has a code (as her emails would have made it); Citra orders with it and pays.
    customer(&api, "C1", "Ani Lestari", "ani@example.co.id").await;
    let ani = customer_id(&*store, &merchant, "C1").await;
    let secret = mail_secret(&*store, &merchant).await;
    let code = store
        .referral_codes(&merchant, &secret, &[ani], Utc::now())
        .await
        .unwrap()
        .remove(&ani)
        .unwrap();
    customer(&api, "C3", "Citra Dewi", "citra@example.co.id").await;
    let amount = order(&api, "O-CITRA", "C3", Some(code.as_str())).await;
    assert_eq!(
        api.webhook(&merchant, transfer("citra-1", amount, "CITRA DEWI"))
            .await,
        200
    );
    wait_for_status(&*store, &merchant, "C3", "qualified").await;
    let qualified = referral_of(&*store, &merchant, "C3").await.unwrap();

    // The store refunds the payment within the hold: the referral is cancelled.
    let purchase = qualified.purchase_id.unwrap().to_string();
    let (status, refunded) = api
        .post(&format!("/purchases/{purchase}/refund"), json!({}))
        .await;
    assert_eq!(status, 200, "{refunded}");
    let cancelled = referral_of(&*store, &merchant, "C3").await.unwrap();
    assert_eq!(
        (cancelled.status, cancelled.reason),
        ("cancelled", Some("refunded")),
        "{cancelled:?}"
    );

    // After the hold: no reward, no points, no email to Ani.
    let after = run_due(
        &setia,
        &(Utc::now() + TimeDelta::days(8)).to_rfc3339(),
        &env,
    );
    assert_eq!(after["enqueued"]["referral_reward"], 0, "{after}");
    assert!(rewards(&receiver).is_empty());
    assert!(!receiver
        .messages()
        .iter()
        .any(|m| to(m).contains("ani@example.co.id")));
    assert!(referral_points(&*store, &merchant, ani, qualified.id)
        .await
        .is_empty());
    assert_eq!(
        referral_of(&*store, &merchant, "C3").await.unwrap().status,
        "cancelled"
    );
}
