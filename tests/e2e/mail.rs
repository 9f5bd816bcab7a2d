//! Lifecycle email through the real binary, delivered to a real SMTP server over TCP
//! (`crate::smtp::Receiver`, inside this test binary) that the test starts and can make
//! answer 4xx, 5xx or never answer.

use std::time::{Duration, Instant};

use chrono::{TimeDelta, Utc};
use serde_json::{json, Value};
use setia_core::{ExternalId, MerchantId};

use crate::smtp::Receiver;
use crate::support::Setia;
use crate::webhooks::{merchant_with_secret, sign};

crate::on_every_backend!(
    a_thank_you_arrives_with_its_headers_rupiah_and_escaped_html_and_unsubscribe_stops_mail,
    a_server_answering_451_twice_gets_the_email_once,
    a_550_marks_the_email_failed,
    run_due_twice_at_one_instant_sends_once,
    a_29_february_birthday_fires_on_28_february_in_common_years_and_on_29_in_leap_years,
    a_jakarta_birthday_is_not_due_at_nine_in_jayapura_but_at_nine_in_jakarta,
    sandbox_and_non_consenting_customers_get_nothing,
    a_broken_override_holds_its_emails_with_name_and_line_until_fixed,
    the_weekly_report_compares_two_weeks_with_a_chart_and_is_sent_every_week,
    preview_prints_subject_text_and_html_in_the_merchants_language,
    a_process_killed_between_accept_and_update_sends_again_with_the_same_message_id,
);

// Named so that CI's `postgres::` filter selects it.
#[cfg(feature = "postgres-tests")]
mod side_by_side {
    mod postgres {
        #[tokio::test]
        async fn two_workers_never_send_one_email_twice() {
            let database = setia_store::testing::TestDatabase::postgres().await;
            super::super::two_workers_never_send_one_email_twice(crate::support::Setia::on(
                database,
            ))
            .await;
        }
    }
}

pub(crate) fn header(message: &Value, name: &str) -> Option<String> {
    message["headers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h[0].as_str().unwrap().eq_ignore_ascii_case(name))
        .map(|h| h[1].as_str().unwrap().to_owned())
}

pub(crate) fn text(message: &Value) -> String {
    message["text"]
        .as_str()
        .unwrap_or_default()
        .replace("\r\n", "\n")
}

pub(crate) fn html(message: &Value) -> String {
    message["html"]
        .as_str()
        .unwrap_or_default()
        .replace("\r\n", "\n")
}

/// `setia mail run-due --now NOW` with these settings; its JSON answer.
pub(crate) fn run_due(setia: &Setia, now: &str, env: &[(&str, &str)]) -> Value {
    let output = setia
        .command()
        .envs(env.iter().copied())
        .args(["mail", "run-due", "--now", now])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "run-due --now {now} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

fn instant(text: &str) -> chrono::DateTime<Utc> {
    chrono::DateTime::parse_from_rfc3339(text).unwrap().to_utc()
}

fn counts(report: &Value) -> (u64, u64, u64, u64) {
    let n = |k: &str| report[k].as_u64().unwrap();
    (
        report["enqueued"]["birthday_offer"].as_u64().unwrap(),
        n("sent"),
        n("failed"),
        n("retrying"),
    )
}

/// A merchant (JSON of `merchant create`) with extra flags.
fn merchant(setia: &Setia, extra: &[&str]) -> Value {
    let mut args = vec!["merchant", "create", "--name", "Toko Sejahtera"];
    args.extend_from_slice(extra);
    setia.json(&args)
}

fn import_customers(setia: &Setia, merchant: &str, csv: &str) {
    let path = setia.write("customers.csv", csv);
    setia.json(&["customers", "import", "--merchant", merchant, &path]);
}

fn id(merchant: &Value) -> String {
    merchant["id"].as_str().unwrap().to_owned()
}

pub(crate) async fn api_get(base: &str, token: &str, path: &str) -> (u16, Value) {
    let response = reqwest::Client::new()
        .get(format!("{base}/api/v1{path}"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn wait_until(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(started.elapsed() < limit, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn va_payment(id: &str, account: &str, amount: i64, date: &str) -> Vec<u8> {
    json!([{
        "mutation_id": id, "account_number": account, "date": date, "description": "VA PAYMENT",
        "amount": amount, "type": "CR", "balance": 0, "bank": {"bank_type": "bca", "label": "BCA"}
    }])
    .to_string()
    .into_bytes()
}

pub(crate) fn jakarta_wall_time(at: chrono::DateTime<Utc>) -> String {
    at.with_timezone(&chrono_tz::Asia::Jakarta)
        .format("%Y-%m-%d %H:%M:%S")
        .to_string()
}

async fn a_thank_you_arrives_with_its_headers_rupiah_and_escaped_html_and_unsubscribe_stops_mail(
    setia: Setia,
) {
    let receiver = Receiver::start("");
    let (merchant, token) = merchant_with_secret(&setia);
    let server = setia.start(&["serve", "--listen", "127.0.0.1:0", "--no-scheduler"], &[]);
    let base = server.url("");
    let client = reqwest::Client::new();
    let created = client
        .post(server.url("/api/v1/customers"))
        .bearer_auth(&token)
        .json(
            &json!({"external_id": "C1", "name": "<script>alert(1)</script> & Co.",
                      "email": "siti@example.co.id", "virtual_account": "8808001"}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(created.status().as_u16(), 200);
    let today = jakarta_wall_time(Utc::now());
    for (mutation, amount) in [("m1", 1_250_000), ("m2", 300_000)] {
        let body = va_payment(mutation, "8808001", amount, &today);
        let status = client
            .post(server.url(&format!("/webhooks/moota/{merchant}")))
            .header("Signature", sign(&body))
            .body(body)
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status.as_u16(), 200);
    }
    let store = setia.store().await;
    let started = Instant::now();
    while store.ledger_summary(&merchant).await.unwrap().purchases < 2 {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the worker took the payments"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let smtp = receiver.url();
    let env = [
        ("SETIA_SMTP_URL", smtp.as_str()),
        ("SETIA_MAIL_FROM", "Setia Mailer <noreply@toko.example>"),
        ("SETIA_PUBLIC_URL", "https://toko.example"),
    ];
    // Due 10 minutes after the purchase, not before.
    let early = run_due(
        &setia,
        &(Utc::now() + TimeDelta::minutes(5)).to_rfc3339(),
        &env,
    );
    assert_eq!(early["sent"], 0, "{early}");
    let report = run_due(
        &setia,
        &(Utc::now() + TimeDelta::minutes(11)).to_rfc3339(),
        &env,
    );
    assert_eq!(
        report["sent"], 1,
        "two purchases on one day make one email: {report}"
    );

    let messages = receiver.messages();
    assert_eq!(messages.len(), 1);
    let message = &messages[0];
    assert_eq!(
        header(message, "From").unwrap(),
        "Toko <noreply@toko.example>",
        "the merchant's name over the configured address"
    );
    assert_eq!(
        header(message, "To").unwrap(),
        "\"<script>alert(1)</script> & Co.\" <siti@example.co.id>"
    );
    assert_eq!(message["rcpt_tos"], json!(["siti@example.co.id"]));
    let subject = header(message, "Subject").unwrap();
    assert!(
        subject.starts_with("Terima kasih atas belanja Anda di Toko"),
        "{subject}"
    );
    let message_id = header(message, "Message-ID").unwrap();
    assert!(
        message_id.starts_with(&format!("<{merchant}.")) && message_id.ends_with("@toko.example>"),
        "{message_id}"
    );
    let unsubscribe = header(message, "List-Unsubscribe").unwrap();
    assert!(
        unsubscribe.starts_with(&format!("<https://toko.example/u/{merchant}.")),
        "{unsubscribe}"
    );
    assert_eq!(
        header(message, "List-Unsubscribe-Post").as_deref(),
        Some("List-Unsubscribe=One-Click")
    );
    assert_eq!(
        message["structure"],
        json!([
            "multipart/alternative",
            "text/plain",
            "multipart/related",
            "text/html"
        ])
    );
    let body = text(message);
    for expected in [
        "Halo <script>alert(1)</script> & Co.,",
        "Rp 1.250.000  (+125 poin)",
        "Rp 300.000  (+30 poin)",
        "Total belanja: Rp 1.550.000",
        "Saldo poin Anda: 155 poin",
        "Tingkat keanggotaan: Bronze",
        "Belanja Rp 450.000 lagi untuk naik ke Silver.",
    ] {
        assert!(body.contains(expected), "{expected:?} in:\n{body}");
    }
    assert!(
        !body.contains("Mungkin Anda juga suka"),
        "a merchant without products gets no recommendations block"
    );
    let page = html(message);
    assert!(!page.contains("<script>"), "HTML is escaped:\n{page}");
    assert!(!page.contains("Mungkin Anda juga suka"));
    assert!(
        page.contains("Halo &lt;script&gt;alert(1)&lt;&#x2f;script&gt; &amp; Co.,"),
        "{page}"
    );
    assert!(page.contains("<strong>Rp 1.550.000</strong>"));

    // The link works on this server: GET shows and changes nothing, POST unsubscribes.
    let path = unsubscribe
        .trim_start_matches("<https://toko.example")
        .trim_end_matches('>')
        .to_owned();
    let shown = client.get(format!("{base}{path}")).send().await.unwrap();
    assert_eq!(shown.status().as_u16(), 200);
    crate::feedback::assert_public_page_headers(shown.headers());
    let shown = shown.text().await.unwrap();
    assert!(shown.contains("<form method=\"post\">"), "{shown}");
    let forged = format!("{}0", &path[..path.len() - 1]);
    let forged = if forged == path {
        format!("{}1", &path[..path.len() - 1])
    } else {
        forged
    };
    let refused = client.post(format!("{base}{forged}")).send().await.unwrap();
    assert_eq!(
        refused.status().as_u16(),
        404,
        "a tampered token unsubscribes nobody"
    );
    // A path that is not UTF-8 is a link like any forged one: the same page.
    for not_utf8 in [
        client.get(format!("{base}/u/%FF%FE")),
        client.post(format!("{base}/u/%FF%FE")),
    ] {
        let refused = not_utf8.send().await.unwrap();
        assert_eq!(refused.status().as_u16(), 404);
        assert!(refused.text().await.unwrap().contains("tidak berlaku"));
    }
    let one_click = client
        .post(format!("{base}{path}"))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body("List-Unsubscribe=One-Click")
        .send()
        .await
        .unwrap();
    assert_eq!(one_click.status().as_u16(), 200);
    assert!(one_click
        .text()
        .await
        .unwrap()
        .contains("berhenti berlangganan"));

    // A purchase the next day: the thank-you is enqueued with it, and suppressed.
    let tomorrow = jakarta_wall_time(Utc::now() + TimeDelta::days(1));
    let body = va_payment("m3", "8808001", 100_000, &tomorrow);
    client
        .post(server.url(&format!("/webhooks/moota/{merchant}")))
        .header("Signature", sign(&body))
        .body(body)
        .send()
        .await
        .unwrap();
    while store.ledger_summary(&merchant).await.unwrap().purchases < 3 {
        assert!(started.elapsed() < Duration::from_secs(30));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let after = run_due(
        &setia,
        &(Utc::now() + TimeDelta::minutes(11)).to_rfc3339(),
        &env,
    );
    assert_eq!(
        (after["sent"].as_u64(), after["suppressed"].as_u64()),
        (Some(0), Some(1)),
        "{after}"
    );
    assert_eq!(receiver.messages().len(), 1);

    let (status, all) = api_get(&base, &token, "/outbox").await;
    assert_eq!(status, 200);
    let statuses: Vec<&str> = all["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, vec!["suppressed", "sent"], "newest first: {all}");
    assert_eq!(all["items"][0]["last_error"], "the customer unsubscribed");
    assert_eq!(all["items"][1]["attempts"], 1);
    let (_, sent) = api_get(&base, &token, "/outbox?status=sent&limit=1").await;
    assert_eq!(sent["items"].as_array().unwrap().len(), 1);
    assert_eq!(sent["items"][0]["kind"], "thank_you");
    let (status, _) = api_get(&base, &token, "/outbox?status=bogus").await;
    assert_eq!(status, 400);
    let stranger = setia.json(&["merchant", "create", "--name", "Other"]);
    let (_, theirs) = api_get(&base, stranger["api_token"].as_str().unwrap(), "/outbox").await;
    assert_eq!(
        theirs["items"],
        json!([]),
        "another merchant sees none of it"
    );
}

/// A merchant with one customer whose birthday is 14 March, and a receiver.
fn birthday_on_14_march(setia: &Setia) -> String {
    let created = merchant(setia, &["--timezone", "Asia/Jakarta"]);
    import_customers(
        setia,
        &id(&created),
        "external_id,name,email,birthday\nC1,Siti,siti@example.co.id,1990-03-14\n",
    );
    id(&created)
}

async fn a_server_answering_451_twice_gets_the_email_once(setia: Setia) {
    let receiver = Receiver::start("451,451");
    let merchant = birthday_on_14_march(&setia);
    let smtp = receiver.url();
    let env = [("SETIA_SMTP_URL", smtp.as_str())];
    // 09:00 in Jakarta, then the backoff: 1 minute, then 5.
    assert_eq!(
        counts(&run_due(&setia, "2027-03-14T02:00:00Z", &env)),
        (1, 0, 0, 1)
    );
    assert_eq!(
        counts(&run_due(&setia, "2027-03-14T02:00:59Z", &env)),
        (0, 0, 0, 0),
        "not before its minute"
    );
    assert_eq!(
        counts(&run_due(&setia, "2027-03-14T02:01:00Z", &env)),
        (0, 0, 0, 1)
    );
    assert_eq!(
        counts(&run_due(&setia, "2027-03-14T02:05:59Z", &env)),
        (0, 0, 0, 0)
    );
    assert_eq!(
        counts(&run_due(&setia, "2027-03-14T02:06:00Z", &env)),
        (0, 1, 0, 0)
    );
    assert_eq!(
        counts(&run_due(&setia, "2027-03-14T09:00:00Z", &env)),
        (0, 0, 0, 0)
    );
    assert_eq!(receiver.replies(), vec!["451", "451", "250"]);
    let messages = receiver.messages();
    assert_eq!(messages.len(), 1);
    assert!(text(&messages[0]).contains("Kode penawaran Anda: BDAY-"));

    let store = setia.store().await;
    let merchant = MerchantId::parse(&merchant).unwrap();
    let page = store
        .outbox_entries(
            &merchant,
            None,
            setia_store::PageRequest {
                before: None,
                limit: 10,
            },
        )
        .await
        .unwrap();
    assert_eq!(page.items.len(), 1);
    let row = &page.items[0];
    assert_eq!((row.status.as_str(), row.attempts), ("sent", 3));
    let customer = store
        .customer_profile(
            &merchant,
            &ExternalId::parse("C1").unwrap(),
            instant("2027-03-14T10:00:00Z"),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(customer.points_balance, 100, "the birthday points, once");
}

async fn a_550_marks_the_email_failed(setia: Setia) {
    let receiver = Receiver::start("550");
    let merchant = birthday_on_14_march(&setia);
    let smtp = receiver.url();
    let env = [("SETIA_SMTP_URL", smtp.as_str())];
    assert_eq!(
        counts(&run_due(&setia, "2027-03-14T02:00:00Z", &env)),
        (1, 0, 1, 0)
    );
    assert_eq!(
        counts(&run_due(&setia, "2027-03-14T12:00:00Z", &env)),
        (0, 0, 0, 0),
        "never retried"
    );
    assert_eq!(receiver.replies(), vec!["550"]);
    assert!(receiver.messages().is_empty());
    let store = setia.store().await;
    let page = store
        .outbox_entries(
            &MerchantId::parse(&merchant).unwrap(),
            Some(setia_store::mail::OutboxStatus::Failed),
            setia_store::PageRequest {
                before: None,
                limit: 10,
            },
        )
        .await
        .unwrap();
    let error = page.items[0].last_error.clone().unwrap();
    assert!(error.contains("550"), "{error}");
}

async fn run_due_twice_at_one_instant_sends_once(setia: Setia) {
    let receiver = Receiver::start("");
    let created = merchant(&setia, &["--report-email", "ops@toko.example"]);
    import_customers(
        &setia,
        &id(&created),
        "external_id,name,email,birthday\nC1,Siti,siti@example.co.id,03-14\nC2,Budi,budi@example.co.id,1985-03-14\n",
    );
    let smtp = receiver.url();
    let env = [("SETIA_SMTP_URL", smtp.as_str())];
    // Sunday 14 March 2027, 10:00 in Jakarta: two birthdays and that week's report.
    let first = run_due(&setia, "2027-03-14T03:00:00Z", &env);
    assert_eq!(
        first["enqueued"],
        json!({"thank_you": 0, "birthday_offer": 2, "weekly_churn_report": 1, "feedback_request": 0, "referral_reward": 0, "tier_nudge": 0, "campaign": 0})
    );
    assert_eq!(first["sent"], 3);
    let second = run_due(&setia, "2027-03-14T03:00:00Z", &env);
    assert_eq!(
        second["enqueued"],
        json!({"thank_you": 0, "birthday_offer": 0, "weekly_churn_report": 0, "feedback_request": 0, "referral_reward": 0, "tier_nudge": 0, "campaign": 0})
    );
    assert_eq!(second["sent"], 0);
    let later = run_due(&setia, "2027-03-14T15:00:00Z", &env);
    assert_eq!(later["sent"], 0, "later the same day adds nothing");
    assert_eq!(receiver.messages().len(), 3);
    let store = setia.store().await;
    let merchant = MerchantId::parse(&id(&created)).unwrap();
    for customer in ["C1", "C2"] {
        let profile = store
            .customer_profile(
                &merchant,
                &ExternalId::parse(customer).unwrap(),
                instant("2027-03-14T10:00:00Z"),
            )
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            profile.points_balance, 100,
            "{customer}'s birthday points once"
        );
    }
}

async fn a_29_february_birthday_fires_on_28_february_in_common_years_and_on_29_in_leap_years(
    setia: Setia,
) {
    let receiver = Receiver::start("");
    let created = merchant(&setia, &[]);
    import_customers(
        &setia,
        &id(&created),
        "external_id,name,email,birthday\nL1,Lia,lia@example.co.id,2000-02-29\nL2,Lukas,lukas@example.co.id,02-29\n",
    );
    let smtp = receiver.url();
    let env = [("SETIA_SMTP_URL", smtp.as_str())];
    let birthdays = |now: &str| {
        run_due(&setia, now, &env)["enqueued"]["birthday_offer"]
            .as_u64()
            .unwrap()
    };
    assert_eq!(birthdays("2027-02-27T02:00:00Z"), 0);
    assert_eq!(birthdays("2027-02-28T02:00:00Z"), 2, "28 February 2027");
    assert_eq!(birthdays("2027-03-01T02:00:00Z"), 0);
    assert_eq!(
        birthdays("2028-02-28T02:00:00Z"),
        0,
        "2028 has a 29 February"
    );
    assert_eq!(birthdays("2028-02-29T02:00:00Z"), 2, "29 February 2028");
    let messages = receiver.messages();
    assert_eq!(messages.len(), 4);
    let codes: std::collections::HashSet<String> = messages
        .iter()
        .map(|m| {
            text(m)
                .lines()
                .find_map(|l| l.strip_prefix("Kode penawaran Anda: "))
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(codes.len(), 4, "a code per customer and year");
    assert!(text(&messages[0]).contains("Berlaku sampai 13 Maret 2027."));
}

async fn a_jakarta_birthday_is_not_due_at_nine_in_jayapura_but_at_nine_in_jakarta(setia: Setia) {
    let receiver = Receiver::start("");
    birthday_on_14_march(&setia);
    let smtp = receiver.url();
    let env = [("SETIA_SMTP_URL", smtp.as_str())];
    // 09:00 Asia/Jayapura (UTC+9) is 07:00 in Jakarta.
    assert_eq!(
        counts(&run_due(&setia, "2027-03-14T09:00:00+09:00", &env)),
        (0, 0, 0, 0)
    );
    assert_eq!(
        counts(&run_due(&setia, "2027-03-14T08:59:59+07:00", &env)),
        (0, 0, 0, 0)
    );
    assert_eq!(
        counts(&run_due(&setia, "2027-03-14T09:00:00+07:00", &env)),
        (1, 1, 0, 0)
    );
    assert_eq!(receiver.messages().len(), 1);
}

async fn sandbox_and_non_consenting_customers_get_nothing(setia: Setia) {
    let receiver = Receiver::start("");
    let sandbox = merchant(&setia, &["--sandbox"]);
    import_customers(
        &setia,
        &id(&sandbox),
        "external_id,name,email,birthday\nS1,Sandi,sandi@example.co.id,03-14\n",
    );
    let live = merchant(&setia, &[]);
    import_customers(
        &setia,
        &id(&live),
        "external_id,name,email,birthday,consent\nN1,Nina,nina@example.co.id,03-14,false\nE1,Eko,,03-14,true\n",
    );
    let smtp = receiver.url();
    let env = [("SETIA_SMTP_URL", smtp.as_str())];
    assert_eq!(
        counts(&run_due(&setia, "2027-03-14T02:00:00Z", &env)),
        (0, 0, 0, 0)
    );
    assert!(receiver.messages().is_empty());
    let store = setia.store().await;
    let profile = store
        .customer_profile(
            &MerchantId::parse(&id(&sandbox)).unwrap(),
            &ExternalId::parse("S1").unwrap(),
            instant("2027-03-14T10:00:00Z"),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        profile.points_balance, 0,
        "no birthday points in the sandbox"
    );
}

async fn a_broken_override_holds_its_emails_with_name_and_line_until_fixed(setia: Setia) {
    let receiver = Receiver::start("");
    let merchant = birthday_on_14_march(&setia);
    let overrides = tempfile::tempdir().unwrap();
    let folder = overrides.path().join(&merchant).join("id");
    std::fs::create_dir_all(&folder).unwrap();
    let broken = folder.join("birthday_offer.html.jinja");
    std::fs::write(
        &broken,
        "<p>Selamat!</p>\n<p>{{ offer_code }}</p>\n{% if customer_name %}\n",
    )
    .unwrap();
    let smtp = receiver.url();
    let templates = overrides.path().display().to_string();
    let env = [
        ("SETIA_SMTP_URL", smtp.as_str()),
        ("SETIA_EMAIL_TEMPLATES", templates.as_str()),
    ];
    let held = run_due(&setia, "2027-03-14T02:00:00Z", &env);
    assert_eq!(
        (held["held"].as_u64(), held["sent"].as_u64()),
        (Some(1), Some(0)),
        "{held}"
    );
    assert!(receiver.messages().is_empty(), "never sent half-rendered");
    let store = setia.store().await;
    let merchant_id = MerchantId::parse(&merchant).unwrap();
    let page = store
        .outbox_entries(
            &merchant_id,
            Some(setia_store::mail::OutboxStatus::Held),
            setia_store::PageRequest {
                before: None,
                limit: 10,
            },
        )
        .await
        .unwrap();
    let error = page.items[0].last_error.clone().unwrap();
    assert!(
        error.starts_with("template birthday_offer.html.jinja line 3 ("),
        "{error}"
    );
    assert_eq!(
        page.items[0].attempts, 0,
        "holding is not a delivery attempt"
    );

    let preview = setia
        .command()
        .envs(env)
        .args([
            "mail",
            "preview",
            "--merchant",
            &merchant,
            "--kind",
            "birthday_offer",
        ])
        .output()
        .unwrap();
    assert_eq!(preview.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&preview.stderr);
    assert!(
        stderr.contains("birthday_offer.html.jinja line 3"),
        "{stderr}"
    );

    // Still held while the template is unchanged; sent once it is fixed.
    assert_eq!(run_due(&setia, "2027-03-14T03:00:00Z", &env)["held"], 0);
    assert!(receiver.messages().is_empty());
    std::fs::write(
        &broken,
        "<p>Selamat, {{ customer_name }}!</p>\n<p>{{ offer_code }}</p>\n",
    )
    .unwrap();
    let fixed = run_due(&setia, "2027-03-14T04:00:00Z", &env);
    assert_eq!(fixed["sent"], 1, "{fixed}");
    let messages = receiver.messages();
    assert!(
        html(&messages[0]).starts_with("<p>Selamat, Siti!</p>"),
        "{}",
        html(&messages[0])
    );
}

// 2021's calendar is 2027's (Monday 8 March, ISO week 10); a date in the past, because an
// import refuses purchases after tomorrow.
async fn the_weekly_report_compares_two_weeks_with_a_chart_and_is_sent_every_week(setia: Setia) {
    let receiver = Receiver::start("");
    let busy = merchant(
        &setia,
        &[
            "--report-email",
            "ops@toko.example",
            "--report-email",
            "owner@toko.example",
        ],
    );
    setia.json(&[
        "merchant",
        "create",
        "--name",
        "Toko Sepi",
        "--report-email",
        "sepi@toko.example",
    ]);
    import_customers(
        &setia,
        &id(&busy),
        "external_id,name\nC1,Ani Lestari\nC2,Budi\nC3,Citra\n",
    );
    let history = setia.write(
        "history.csv",
        "customer_external_id,occurred_at,amount\n\
         C1,2021-02-10 10:00:00,100000\n\
         C3,2021-02-23 11:00:00,300000\n\
         C1,2021-03-02 09:30:00,200000\n\
         C2,2021-03-03 12:00:00,500000\n\
         C2,2021-03-05 19:00:00,250000\n",
    );
    setia.json(&["transactions", "import", "--merchant", &id(&busy), &history]);

    // Churn scores as the analytics batch stores them: Ani is a repeat customer at risk.
    let store = setia.store().await;
    let busy_id = MerchantId::parse(&id(&busy)).unwrap();
    let ani = store
        .customer(&busy_id, &ExternalId::parse("C1").unwrap())
        .await
        .unwrap()
        .unwrap();
    let score = setia_store::analytics::ScoreRow {
        customer: ani.id.key(),
        recency_days: 5,
        frequency_days: 2,
        monetary_minor: 15_000_000,
        r: 2,
        f: 3,
        m: 3,
        segment: "at_risk".into(),
        p_alive: Some(0.3),
        expected_purchases_90d: Some(0.4),
        clv_12m_minor: Some(42_000_000),
        recommended: Vec::new(),
    };
    store
        .save_snapshot(
            &busy_id,
            "2021-03-07",
            "month",
            "{}",
            vec![score],
            Utc::now(),
        )
        .await
        .unwrap();

    let smtp = receiver.url();
    let env = [("SETIA_SMTP_URL", smtp.as_str())];
    // Monday 8 March 2021: 07:59 and 08:00 in Jakarta.
    let early = run_due(&setia, "2021-03-08T07:59:00+07:00", &env);
    assert_eq!(early["enqueued"]["weekly_churn_report"], 0);
    let due = run_due(&setia, "2021-03-08T08:00:00+07:00", &env);
    assert_eq!(
        due["enqueued"]["weekly_churn_report"], 3,
        "two addresses and the quiet merchant"
    );
    assert_eq!(due["sent"], 3);
    let messages = receiver.messages();
    let to = |m: &Value| header(m, "To").unwrap();
    let ops = messages
        .iter()
        .find(|m| to(m) == "ops@toko.example")
        .unwrap();
    assert!(header(ops, "List-Unsubscribe").is_none(), "merchant mail");
    let subject = header(ops, "Subject").unwrap();
    assert_eq!(
        subject,
        "Laporan mingguan Toko Sejahtera 2021-W10: Rp 950.000, 1 pelanggan berisiko"
    );
    let body = text(ops);
    for expected in [
        "7 hari terakhir (1 Mar – 7 Maret 2021) dibanding 7 hari sebelumnya (22 Feb – 28 Februari 2021)",
        "- Pelanggan baru:        1 (sebelumnya 1)",
        "- Pelanggan kembali:     1 (sebelumnya 0)",
        "- Tingkat pembelian ulang: 50% (sebelumnya 0%)",
        "- Pendapatan:            Rp 950.000 (sebelumnya Rp 300.000), +217%",
        "Baru berisiko minggu ini:\n- Ani Lestari (C1): P(aktif) 0,30, terakhir belanja 5 hari lalu",
        "CLV 12 bulan Rp 420.000",
    ] {
        assert!(body.contains(expected), "{expected:?} in:\n{body}");
    }
    assert!(html(ops).contains("src=\"cid:weekly-chart@setia\""));
    let chart = &ops["attachments"][0];
    assert_eq!(chart["content_type"], "image/png");
    assert_eq!(chart["content_id"], "<weekly-chart@setia>");
    assert_eq!(chart["png_signature"], true);
    assert!(chart["size"].as_u64().unwrap() > 1_000);
    let sepi = messages
        .iter()
        .find(|m| to(m) == "sepi@toko.example")
        .unwrap();
    assert!(
        text(sepi).contains("Rp 0 (sebelumnya Rp 0)"),
        "a quiet week is reported too"
    );

    // Caught up later in the week, never twice; the next Monday brings the next one.
    assert_eq!(
        run_due(&setia, "2021-03-10T15:00:00+07:00", &env)["enqueued"]["weekly_churn_report"],
        0
    );
    let next = run_due(&setia, "2021-03-15T09:30:00+07:00", &env);
    assert_eq!(next["enqueued"]["weekly_churn_report"], 3);
    let messages = receiver.messages();
    assert_eq!(messages.len(), 6);
    let next_ops = messages[3..]
        .iter()
        .find(|m| to(m) == "ops@toko.example")
        .unwrap();
    assert!(header(next_ops, "Subject").unwrap().contains("2021-W11"));
    assert!(
        text(next_ops).contains("Tidak ada pelanggan yang baru berisiko minggu ini."),
        "Ani was already at risk last week:\n{}",
        text(next_ops)
    );
}

async fn preview_prints_subject_text_and_html_in_the_merchants_language(setia: Setia) {
    let created = merchant(&setia, &[]);
    let merchant = id(&created);
    import_customers(
        &setia,
        &merchant,
        "external_id,name,email,birthday\nC1,Dewi,dewi@example.co.id,1990-03-14\n",
    );
    let output = setia.run(&[
        "mail",
        "preview",
        "--merchant",
        &merchant,
        "--kind",
        "thank_you",
    ]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let shown = String::from_utf8(output.stdout).unwrap();
    assert!(
        shown.starts_with(
            "Subject: Terima kasih atas belanja Anda di Toko Sejahtera, Siti Rahayu!\n"
        ),
        "{shown}"
    );
    assert!(
        shown.contains("\n--- text ---\n") && shown.contains("\n--- html ---\n<!doctype html>")
    );
    assert!(shown.contains("Rp 1.250.000"));

    let output = setia.run(&[
        "mail",
        "preview",
        "--merchant",
        &merchant,
        "--kind",
        "birthday_offer",
        "--customer",
        "C1",
    ]);
    let shown = String::from_utf8(output.stdout).unwrap();
    assert!(
        shown.starts_with("Subject: Selamat ulang tahun, Dewi!"),
        "{shown}"
    );
    assert!(shown.contains("Kode penawaran Anda: BDAY-"));

    assert_eq!(
        setia.json(&["mail", "language", "--merchant", &merchant, "en"]),
        json!({"merchant": merchant, "email_language": "en"})
    );
    let output = setia.run(&[
        "mail",
        "preview",
        "--merchant",
        &merchant,
        "--kind",
        "birthday_offer",
        "--customer",
        "C1",
    ]);
    let shown = String::from_utf8(output.stdout).unwrap();
    assert!(
        shown.starts_with("Subject: Happy birthday, Dewi! A gift from Toko Sejahtera\n"),
        "{shown}"
    );
    assert!(shown.contains("Your offer code: BDAY-"));
    let output = setia.run(&[
        "mail",
        "preview",
        "--merchant",
        &merchant,
        "--kind",
        "weekly_churn_report",
    ]);
    assert!(String::from_utf8(output.stdout)
        .unwrap()
        .contains("Weekly retention report"));

    let unknown = setia.run(&[
        "mail",
        "preview",
        "--merchant",
        &merchant,
        "--kind",
        "thank_you",
        "--customer",
        "C404",
    ]);
    assert_eq!(unknown.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("C404"));
    let bad = setia.run(&["mail", "language", "--merchant", &merchant, "fr"]);
    assert_eq!(bad.status.code(), Some(2));
    let bad_now = setia.run(&["mail", "run-due", "--now", "tomorrow"]);
    assert_eq!(bad_now.status.code(), Some(2));
}

/// A fixed-offset zone where it is now early afternoon, so a birthday today is due now and
/// stays due for hours: for the tests that run the real worker on the real clock.
fn afternoon_zone() -> (String, String) {
    let hour = chrono::Timelike::hour(&Utc::now()) as i64;
    let offset = (14 - hour).rem_euclid(24);
    let offset = if offset > 12 { offset - 24 } else { offset };
    let zone = match offset {
        0 => "Etc/UTC".to_owned(),
        // Etc/GMT-N is N hours ahead of UTC.
        o if o > 0 => format!("Etc/GMT-{o}"),
        o => format!("Etc/GMT+{}", -o),
    };
    let today = (Utc::now() + TimeDelta::hours(offset))
        .format("%m-%d")
        .to_string();
    (zone, today)
}

async fn a_process_killed_between_accept_and_update_sends_again_with_the_same_message_id(
    setia: Setia,
) {
    // The server stores the first message as accepted and never answers it.
    let receiver = Receiver::start("stall");
    let (zone, today) = afternoon_zone();
    let created = merchant(&setia, &["--timezone", &zone]);
    import_customers(
        &setia,
        &id(&created),
        &format!("external_id,name,email,birthday\nC1,Siti,siti@example.co.id,{today}\n"),
    );
    let smtp = receiver.url();
    let env = [
        ("SETIA_SMTP_URL", smtp.as_str()),
        ("SETIA_WORKER_LEASE_SECONDS", "15"),
    ];
    let mut worker = setia.start(&["worker"], &env);
    wait_until(
        "the server to accept the message",
        Duration::from_secs(60),
        || receiver.count() >= 1,
    )
    .await;
    worker.kill();

    let store = setia.store().await;
    let merchant = MerchantId::parse(&id(&created)).unwrap();
    let page = store
        .outbox_entries(
            &merchant,
            None,
            setia_store::PageRequest {
                before: None,
                limit: 10,
            },
        )
        .await
        .unwrap();
    assert_eq!(page.items.len(), 1);
    assert_eq!(
        (
            page.items[0].status.as_str(),
            page.items[0].last_error.as_deref()
        ),
        ("pending", None),
        "killed after the server accepted, before the outcome was written"
    );

    let _restarted = setia.start(&["worker"], &env);
    wait_until(
        "the message to be sent again",
        Duration::from_secs(60),
        || receiver.count() >= 2,
    )
    .await;
    let messages = receiver.messages();
    assert_eq!(messages.len(), 2, "at least once: twice here");
    assert_eq!(
        header(&messages[0], "Message-ID"),
        header(&messages[1], "Message-ID"),
        "the same Message-ID lets the recipient's mail system drop the repeat"
    );
    let started = Instant::now();
    loop {
        let page = store
            .outbox_entries(
                &merchant,
                None,
                setia_store::PageRequest {
                    before: None,
                    limit: 10,
                },
            )
            .await
            .unwrap();
        if page.items[0].status == "sent" {
            assert_eq!(page.items[0].attempts, 2);
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{:?}",
            page.items[0]
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let profile = store
        .customer_profile(&merchant, &ExternalId::parse("C1").unwrap(), Utc::now())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        profile.points_balance, 100,
        "the birthday points were awarded once"
    );
}

#[cfg_attr(not(feature = "postgres-tests"), allow(dead_code))]
async fn two_workers_never_send_one_email_twice(setia: Setia) {
    const CUSTOMERS: usize = 300;
    let receiver = Receiver::start("");
    let (zone, today) = afternoon_zone();
    let created = merchant(&setia, &["--timezone", &zone]);
    let mut csv = String::from("external_id,name,email,birthday\n");
    for n in 0..CUSTOMERS {
        csv.push_str(&format!("C{n},Pelanggan {n},c{n}@example.co.id,{today}\n"));
    }
    import_customers(&setia, &id(&created), &csv);
    let smtp = receiver.url();
    // Each worker sends from its own address (same domain, so the same Message-IDs).
    let _first = setia.start(
        &["worker"],
        &[
            ("SETIA_SMTP_URL", smtp.as_str()),
            ("SETIA_MAIL_FROM", "one@toko.example"),
        ],
    );
    let _second = setia.start(
        &["worker"],
        &[
            ("SETIA_SMTP_URL", smtp.as_str()),
            ("SETIA_MAIL_FROM", "two@toko.example"),
        ],
    );
    let store = setia.store().await;
    let merchant = MerchantId::parse(&id(&created)).unwrap();
    let started = Instant::now();
    loop {
        let sent = store
            .outbox_entries(
                &merchant,
                Some(setia_store::mail::OutboxStatus::Sent),
                setia_store::PageRequest {
                    before: None,
                    limit: 500,
                },
            )
            .await
            .unwrap()
            .items
            .len();
        if sent == CUSTOMERS {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "{sent} of {CUSTOMERS} sent"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Let both workers run on for a while: nothing more may arrive.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let messages = receiver.messages();
    let ids: std::collections::HashSet<String> = messages
        .iter()
        .map(|m| header(m, "Message-ID").unwrap())
        .collect();
    assert_eq!(messages.len(), CUSTOMERS, "every email once");
    assert_eq!(ids.len(), CUSTOMERS);
    let recipients: std::collections::HashSet<String> = messages
        .iter()
        .map(|m| m["rcpt_tos"][0].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(recipients.len(), CUSTOMERS);
    let by_first = messages
        .iter()
        .filter(|m| m["mail_from"] == "one@toko.example")
        .count();
    eprintln!(
        "worker one sent {by_first}, worker two {}",
        CUSTOMERS - by_first
    );
}
