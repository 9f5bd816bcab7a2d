//! Membership perks through the real binary, over real HTTP and SMTP: a signed transfer that
//! takes a customer to silver earns the entry points and exactly one welcome (however often
//! the webhook is replayed or run-due runs), the member page opened from the link in that
//! email shows the tier, points, their expiry and the perks, and the link resists forgery; a
//! customer near gold gets one nudge a year.

use std::time::Duration;

use chrono::{Datelike, NaiveDate, TimeDelta, TimeZone, Utc};
use serde_json::{json, Value};
use setia_core::mail_token::{MemberToken, UnsubscribeToken};
use setia_core::{ExternalId, MerchantId};
use setia_store::Store;

use crate::ledger::{payment, wait_for, Api};
use crate::mail::{header, html, jakarta_wall_time, run_due, text};
use crate::smtp::Receiver;
use crate::support::{between, mail_secret, Setia};
use crate::webhooks::SECRET;

crate::on_every_backend!(
    a_transfer_to_silver_is_welcomed_once_and_the_member_page_shows_it,
    a_customer_near_gold_is_nudged_once_a_year,
);

/// Words of the welcome's subject (Indonesian, the default language).
const WELCOME_SUBJECT: &str = "selamat datang di tingkat";
const NUDGE_SUBJECT: &str = "lagi menuju";

/// A merchant with silver's entry at 100 points and a 10% voucher, a perk line with HTML in
/// it, and feedback requests off (so the rounds send only what this test is about).
fn perks_merchant(setia: &Setia, name: &str) -> (MerchantId, String) {
    let created = setia.json(&[
        "merchant",
        "create",
        "--name",
        name,
        "--webhook-secret",
        SECRET,
    ]);
    let id = created["id"].as_str().unwrap().to_owned();
    let program = setia.write(
        "engagement.toml",
        "[feedback]\nenabled = false\n\
         [perks.silver]\nperks = [\"Gratis ongkir <b>kilat</b>\", \"Akses awal koleksi baru\"]\n\
         entry_points = 100\nentry_voucher_percent = 10\n\
         [perks.gold]\nperks = [\"Hadiah ulang tahun ganda\"]\n",
    );
    setia.json(&["merchant", "engagement", "--merchant", &id, &program]);
    (
        MerchantId::parse(&id).unwrap(),
        created["api_token"].as_str().unwrap().to_owned(),
    )
}

fn messages_with(receiver: &Receiver, subject: &str) -> Vec<Value> {
    receiver
        .messages()
        .into_iter()
        .filter(|m| header(m, "Subject").unwrap().contains(subject))
        .collect()
}

/// The member page link in an email's text.
fn member_link(message: &Value) -> String {
    between(&text(message), "Halaman member Anda: ", "\n").to_owned()
}

async fn balance(store: &dyn Store, merchant: &MerchantId) -> i64 {
    store
        .customer_profile(merchant, &ExternalId::parse("C1").unwrap(), Utc::now())
        .await
        .unwrap()
        .unwrap()
        .points_balance
}

async fn get(client: &reqwest::Client, url: &str) -> (u16, String) {
    let response = client.get(url).send().await.unwrap();
    (
        response.status().as_u16(),
        response.text().await.unwrap_or_default(),
    )
}

async fn a_transfer_to_silver_is_welcomed_once_and_the_member_page_shows_it(setia: Setia) {
    let receiver = Receiver::start("");
    let (merchant, token) = perks_merchant(&setia, "Toko Setia");
    let server = setia.start(&["serve", "--listen", "127.0.0.1:0", "--no-scheduler"], &[]);
    let client = reqwest::Client::new();
    let api = Api {
        client: client.clone(),
        server: &server,
        token,
    };
    let store = setia.store().await;
    let smtp = receiver.url();
    let public_url = server.url("");
    let env = [
        ("SETIA_SMTP_URL", smtp.as_str()),
        ("SETIA_PUBLIC_URL", public_url.as_str()),
    ];
    let (status, body) = api
        .post(
            "/customers",
            json!({"external_id": "C1", "name": "<i>Ani</i> Lestari", "email": "ani@example.co.id",
                   "virtual_account": "8808001", "consent": true}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, program) = api.get("/engagement").await;
    assert_eq!(status, 200);
    assert_eq!(program["perks"]["silver"]["entry_points"], 100, "{program}");
    assert_eq!(program["perks"]["member"]["title"], "Member");

    // Rp 1.500.000, then Rp 600.000: the second takes Ani to silver.
    let now = Utc::now();
    let earlier = jakarta_wall_time(now - TimeDelta::minutes(2));
    let first = payment("m-1", "8808001", 1_500_000, "VA", &earlier);
    let second = payment("m-2", "8808001", 600_000, "VA", &jakarta_wall_time(now));
    assert_eq!(api.webhook(&merchant, first).await, 200);
    assert_eq!(api.webhook(&merchant, second.clone()).await, 200);
    wait_for("both purchases", async || {
        store.ledger_summary(&merchant).await.unwrap().purchases == 2
    })
    .await;
    // Moota sends the second again.
    assert_eq!(api.webhook(&merchant, second).await, 200);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(balance(&*store, &merchant).await, 150 + 60 + 100);

    let round = run_due(&setia, &(now + TimeDelta::minutes(15)).to_rfc3339(), &env);
    assert_eq!(round["sent"], 2, "the thank-you and the welcome: {round}");
    let again = run_due(&setia, &(now + TimeDelta::hours(2)).to_rfc3339(), &env);
    assert_eq!(again["sent"], 0, "{again}");
    let welcomes = messages_with(&receiver, WELCOME_SUBJECT);
    assert_eq!(welcomes.len(), 1);
    let welcome = &welcomes[0];
    assert!(header(welcome, "To").unwrap().contains("ani@example.co.id"));
    assert_eq!(
        header(welcome, "Subject").unwrap(),
        "<i>Ani</i> Lestari, selamat datang di tingkat Silver Toko Setia"
    );
    let body = text(welcome);
    for expected in [
        "- Poin 1,25× untuk setiap belanja",
        "- Gratis ongkir <b>kilat</b>",
        "- Akses awal koleksi baru",
        "Anda mendapat 100 poin. Saldo poin Anda sekarang 310 poin.",
        "Voucher diskon 10% khusus untuk Anda: TIER-",
    ] {
        assert!(body.contains(expected), "{expected:?} in {body}");
    }
    let page = html(welcome);
    assert!(page.contains("Gratis ongkir &lt;b&gt;kilat") && !page.contains("<b>kilat"));

    // Every customer email links the member page: the thank-you too.
    let link = member_link(welcome);
    assert!(
        link.starts_with(&format!("{public_url}/m/{merchant}.")),
        "{link}"
    );
    for message in receiver.messages() {
        assert_eq!(member_link(&message), link);
        assert!(html(&message).replace("&#x2f;", "/").contains(&link));
    }

    // The page from the link: tier, points, their expiry, perks, the way to gold.
    let (status, page) = get(&client, &link).await;
    assert_eq!(status, 200, "{page}");
    // The oldest points, the first purchase's 150, expire first.
    let expiry = (now - TimeDelta::minutes(2) + TimeDelta::days(365))
        .with_timezone(&chrono_tz::Asia::Jakarta);
    let expiry = setia_mail::context::long_date(
        setia_store::mail::EmailLanguage::Indonesian,
        expiry.date_naive(),
    );
    for expected in [
        "Halo &lt;i&gt;Ani&lt;/i&gt;",
        ">Silver<",
        "<strong>310</strong> poin",
        &format!("150 poin Anda berlaku sampai <strong>{expiry}</strong>"),
        "Poin 1,25× untuk setiap belanja",
        "Gratis ongkir &lt;b&gt;kilat&lt;/b&gt;",
        "Belanja <strong>Rp 7.900.000</strong> lagi dalam setahun untuk mencapai <strong>Gold</strong>",
    ] {
        assert!(
            page.contains(expected),
            "{expected:?} in {page}"
        );
    }
    assert!(!page.contains("<i>Ani") && !page.contains("Lestari") && !page.contains("<b>kilat"));
    // Looking changes nothing, and only GET is served.
    assert_eq!(get(&client, &link).await.0, 200);
    assert_eq!(balance(&*store, &merchant).await, 310);
    let posted = client.post(&link).send().await.unwrap().status().as_u16();
    assert_eq!(posted, 405);

    // The link attacked: a flipped signature, another customer, another merchant's secret,
    // the unsubscribe token in its place, malformed and oversized tokens.
    let token = link.rsplit('/').next().unwrap().to_owned();
    let mut flipped = token.clone().into_bytes();
    let last = flipped.len() - 1;
    flipped[last] = if flipped[last] == b'0' { b'1' } else { b'0' };
    let flipped = String::from_utf8(flipped).unwrap();
    let parsed = MemberToken::parse(&token).unwrap();
    let mac = token.rsplit('.').next().unwrap();
    let other_customer = format!("{merchant}.{}.{mac}", parsed.customer().key() + 1);
    let (other, _) = perks_merchant(&setia, "Toko Lain");
    let other_secret = mail_secret(&*store, &other).await;
    let other_merchants =
        MemberToken::sign(&other_secret, &merchant, parsed.customer()).to_string();
    let genuine = mail_secret(&*store, &merchant).await;
    let unsubscribe = UnsubscribeToken::sign(&genuine, &merchant, parsed.customer()).to_string();
    for bad in [
        flipped,
        other_customer,
        other_merchants,
        unsubscribe,
        "x".into(),
        format!("{merchant}.1"),
        "%FF%FE".into(),
        format!("{token}{}", "a".repeat(4_000)),
        "%3Cscript%3Ealert(1)%3C%2Fscript%3E".into(),
    ] {
        let (status, page) = get(&client, &format!("{public_url}/m/{bad}")).await;
        assert_eq!(status, 404, "{bad}");
        assert!(
            page.contains("This member page link is not valid.")
                && !page.contains("Silver")
                && !page.contains("Ani")
                && !page.contains("script>"),
            "{page}"
        );
    }

    // `setia mail preview` shows the welcome.
    let output = setia.run(&[
        "mail",
        "preview",
        "--merchant",
        merchant.as_str(),
        "--kind",
        "tier_welcome",
    ]);
    assert!(output.status.success());
    let shown = String::from_utf8(output.stdout).unwrap();
    assert!(
        shown.contains("Gratis ongkir") && shown.contains("TIER-"),
        "{shown}"
    );
}

async fn a_customer_near_gold_is_nudged_once_a_year(setia: Setia) {
    let receiver = Receiver::start("");
    let (merchant, _) = perks_merchant(&setia, "Toko Setia");
    let id = merchant.to_string();
    setia.import(
        "customers",
        &id,
        "external_id,name,email\nNEAR,Budi Santoso,budi@example.co.id\nFAR,Citra,citra@example.co.id\n",
    );
    // Tomorrow, 10:00 in Jakarta: marketing hours. Budi spent Rp 9.100.000 in the past
    // year, Citra Rp 1.000.000.
    let tomorrow = Utc::now().date_naive() + TimeDelta::days(1);
    let first = Utc.from_utc_datetime(&tomorrow.and_hms_opt(3, 0, 0).unwrap());
    let bought = (tomorrow - TimeDelta::days(30)).to_string();
    setia.import(
        "transactions",
        &id,
        &format!(
            "customer_external_id,occurred_at,amount\nNEAR,{bought},9100000\nFAR,{bought},1000000\n"
        ),
    );
    let smtp = receiver.url();
    let env = [("SETIA_SMTP_URL", smtp.as_str())];
    let round = run_due(&setia, &first.to_rfc3339(), &env);
    assert_eq!(round["enqueued"]["tier_nudge"], 1, "{round}");
    assert_eq!(round["sent"], 1, "{round}");
    let nudges = messages_with(&receiver, NUDGE_SUBJECT);
    assert_eq!(nudges.len(), 1);
    let nudge = &nudges[0];
    assert!(header(nudge, "To").unwrap().contains("budi@example.co.id"));
    assert_eq!(
        header(nudge, "Subject").unwrap(),
        "Budi Santoso, tinggal Rp 900.000 lagi menuju Gold"
    );
    let body = text(nudge);
    for expected in [
        "Belanja Rp 900.000 lagi di Toko Setia dan Anda naik ke tingkat Gold.",
        "- Poin 1,5× untuk setiap belanja",
        "- Hadiah ulang tahun ganda",
        "Halaman member Anda: ",
    ] {
        assert!(body.contains(expected), "{expected:?} in {body}");
    }

    // Later the same year: no second nudge.
    let new_year = NaiveDate::from_ymd_opt(first.year() + 1, 1, 1).unwrap();
    let later = (first + TimeDelta::days(10))
        .min(
            Utc.from_utc_datetime(
                &(new_year - TimeDelta::days(1))
                    .and_hms_opt(3, 0, 0)
                    .unwrap(),
            ),
        )
        .max(first + TimeDelta::hours(1));
    let again = run_due(&setia, &later.to_rfc3339(), &env);
    assert_eq!(again["enqueued"]["tier_nudge"], 0, "{again}");
    assert_eq!(messages_with(&receiver, NUDGE_SUBJECT).len(), 1);

    // `setia mail preview` shows a nudge.
    let output = setia.run(&["mail", "preview", "--merchant", &id, "--kind", "tier_nudge"]);
    assert!(output.status.success());
    let shown = String::from_utf8(output.stdout).unwrap();
    assert!(
        shown.contains("menuju Gold") && shown.contains("Hadiah ulang tahun ganda"),
        "{shown}"
    );
}
