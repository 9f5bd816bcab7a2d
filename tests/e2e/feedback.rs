//! The feedback link's page through the real binary: a GET records nothing, a POST records
//! the answer (and a low one opens a complaint), a replay adds nothing, and forged,
//! expired, another merchant's, off-scale, oversized and HTML input are refused or escaped.

use chrono::{DateTime, NaiveTime, TimeDelta, Utc};
use serde_json::Value;
use setia_core::engagement::FeedbackKind;
use setia_core::mail_token::FeedbackToken;
use setia_core::MerchantId;
use setia_store::engagement::{AnswerFilter, ComplaintStatus, NewFeedbackRequest};
use setia_store::Store;

use crate::dashboard::Dash;
use crate::mail::{header, html, jakarta_wall_time, run_due, text};
use crate::smtp::Receiver;
use crate::support::{first, mail_secret, Setia};
use crate::webhooks::merchant_with_secret;

crate::on_every_backend!(
    the_feedback_link_records_one_answer_and_refuses_the_rest,
    a_purchase_is_asked_about_and_a_low_score_reaches_the_merchant,
);

/// A request about the merchant's only purchase (customer C1), and its key.
async fn a_request(setia: &Setia, store: &dyn Store, merchant: &MerchantId) -> i64 {
    let history = setia.write(
        "history.csv",
        "customer_external_id,occurred_at,amount,reference\nC1,2026-11-20,150000,INV-1\n",
    );
    setia.json(&[
        "transactions",
        "import",
        "--merchant",
        merchant.as_str(),
        &history,
    ]);
    let purchase = store
        .purchases(merchant, None, first(1))
        .await
        .unwrap()
        .items[0]
        .id
        .key();
    let customer = store
        .customer(merchant, &setia_core::ExternalId::parse("C1").unwrap())
        .await
        .unwrap()
        .unwrap()
        .id;
    let request = NewFeedbackRequest {
        customer,
        purchase,
        kind: FeedbackKind::Csat,
        due_at: Utc::now(),
    };
    store
        .create_feedback_requests(merchant, &[request], Utc::now())
        .await
        .unwrap()[0]
}

async fn the_feedback_link_records_one_answer_and_refuses_the_rest(setia: Setia) {
    let (merchant, api_token) = merchant_with_secret(&setia);
    let other = setia.json(&["merchant", "create", "--name", "Other"]);
    let other_token = other["api_token"].as_str().unwrap().to_owned();
    let other = MerchantId::parse(other["id"].as_str().unwrap()).unwrap();
    let store = setia.store().await;
    let request = a_request(&setia, &*store, &merchant).await;
    let secret = mail_secret(&*store, &merchant).await;
    let other_secret = mail_secret(&*store, &other).await;
    let token = FeedbackToken::sign(&secret, &merchant, request, Utc::now()).to_string();

    let server = setia.serve();
    let client = reqwest::Client::new();
    let page = |token: &str| server.url(&format!("/f/{token}"));
    let get = |url: String| {
        let request = client.get(url);
        async move {
            let response = request.send().await.unwrap();
            (response.status().as_u16(), response.text().await.unwrap())
        }
    };
    let post = |token: &str, form: Vec<(&'static str, String)>| {
        let request = client.post(page(token)).form(&form);
        async move {
            let response = request.send().await.unwrap();
            (response.status().as_u16(), response.text().await.unwrap())
        }
    };
    let answers = async || {
        store
            .feedback_answers(&merchant, AnswerFilter::default(), first(10))
            .await
            .unwrap()
            .items
    };

    // A GET shows the link's score chosen, and records nothing.
    let response = client
        .get(format!("{}?score=2", page(&token)))
        .send()
        .await
        .unwrap();
    assert_public_page_headers(response.headers());
    let (status, shown) = get(format!("{}?score=2", page(&token))).await;
    assert_eq!(status, 200, "{shown}");
    assert!(shown.contains("value=\"2\" checked"), "{shown}");
    assert!(shown.contains("<form method=\"post\">") && !shown.contains("<script"));
    for odd in ["score=<b>", "score=1&score=2"] {
        let (status, shown) = get(format!("{}?{odd}", page(&token))).await;
        assert_eq!(status, 200, "{odd}: an odd link preselects nothing");
        assert!(!shown.contains("checked"), "{odd}: {shown}");
    }
    assert!(answers().await.is_empty(), "a GET records nothing");

    // Forged, expired, another merchant's: the same 404, and nothing recorded.
    let mut forged = token.clone();
    let last = forged.pop().unwrap();
    forged.push(if last == '0' { '1' } else { '0' });
    let expired = FeedbackToken::sign(
        &secret,
        &merchant,
        request,
        Utc::now() - TimeDelta::days(31),
    )
    .to_string();
    let signed_by_other =
        FeedbackToken::sign(&other_secret, &merchant, request, Utc::now()).to_string();
    let others_request =
        FeedbackToken::sign(&other_secret, &other, request, Utc::now()).to_string();
    for bad in [
        forged.as_str(),
        expired.as_str(),
        signed_by_other.as_str(),
        others_request.as_str(),
        "nonsense",
        "%FF%FE",
    ] {
        assert_eq!(get(page(bad)).await.0, 404, "GET {bad}");
        let (status, body) = post(bad, vec![("score", "5".into())]).await;
        assert_eq!(status, 404, "POST {bad}");
        assert!(body.contains("tidak berlaku"));
    }
    assert!(answers().await.is_empty());

    // Off the scale, too long: a 400 that says why, nothing recorded.
    for score in ["0", "6", "x", ""] {
        let (status, body) = post(&token, vec![("score", score.into())]).await;
        assert_eq!(status, 400, "score {score:?}");
        assert!(body.contains("Pilih nilai dari 1 sampai 5"), "{body}");
    }
    // A body that is not the page's form (JSON, a field twice) answers nothing either.
    let json = client
        .post(page(&token))
        .json(&serde_json::json!({"score": "5"}))
        .send()
        .await
        .unwrap();
    assert_eq!(json.status().as_u16(), 400);
    assert!(json
        .text()
        .await
        .unwrap()
        .contains("Pilih nilai dari 1 sampai 5"));
    let (status, body) = post(&token, vec![("score", "5".into()), ("score", "4".into())]).await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = post(
        &token,
        vec![("score", "4".into()), ("comment", "a".repeat(2_001))],
    )
    .await;
    assert_eq!(status, 400);
    assert!(body.contains("2000"), "{body}");
    // On a client of its own: the server drops the connection it did not read to the end,
    // which a pooled connection of the shared client would find on its next request.
    let oversized = reqwest::Client::new()
        .post(page(&token))
        .form(&[("score", "4".to_owned()), ("comment", "a".repeat(3 << 20))])
        .send()
        .await
        .unwrap();
    assert_eq!(oversized.status().as_u16(), 413);
    let said = oversized.text().await.unwrap();
    assert!(
        said.contains("paling banyak 2000 karakter") && said.contains("<form"),
        "{said}"
    );
    assert!(answers().await.is_empty());

    // A low score with HTML in the comment: recorded as written, shown escaped, and a
    // complaint opens.
    let comment = "<script>alert(1)</script> paket rusak";
    let (status, thanks) = post(
        &token,
        vec![("score", "1".into()), ("comment", comment.into())],
    )
    .await;
    assert_eq!(status, 200, "{thanks}");
    assert!(!thanks.contains("<script>") && thanks.contains("&lt;script&gt;"));
    let recorded = answers().await;
    assert_eq!(recorded.len(), 1);
    assert_eq!(
        (recorded[0].score, recorded[0].comment.as_deref()),
        (1, Some(comment))
    );
    let complaints = store
        .complaints(&merchant, None, first(10))
        .await
        .unwrap()
        .items;
    assert_eq!(complaints.len(), 1);
    assert_eq!(complaints[0].status, ComplaintStatus::Open);
    // The customer's page in the dashboard shows the answer, escaped.
    let dash = crate::dashboard::Dash::login(&server, &api_token).await;
    let customer_page = dash
        .page(&format!("/dashboard/customers/{}", recorded[0].customer_id))
        .await
        .replace("&#x2f;", "/");
    let section = &customer_page[customer_page.find("id=\"feedback\"").expect("the section")..];
    assert!(
        section.contains("&lt;script&gt;alert(1)&lt;/script&gt; paket rusak"),
        "{section}"
    );
    assert!(!customer_page.contains("<script>alert(1)"));

    // The same POST again, then a changed score: still one answer and one complaint.
    post(
        &token,
        vec![("score", "1".into()), ("comment", comment.into())],
    )
    .await;
    let (status, _) = post(&token, vec![("score", "4".into())]).await;
    assert_eq!(status, 200);
    let recorded = answers().await;
    assert_eq!(recorded.len(), 1, "a replay or a change adds no answer");
    assert_eq!(
        (recorded[0].score, recorded[0].comment.as_deref()),
        (4, None)
    );
    assert_eq!(
        store
            .complaints(&merchant, None, first(10))
            .await
            .unwrap()
            .items
            .len(),
        1
    );
    let (_, again) = get(page(&token)).await;
    assert!(
        again.contains("value=\"4\" checked"),
        "the answer given is shown"
    );

    // The API: answers with their filters, the complaints queue, a complaint resolved.
    let api = crate::ledger::Api {
        client: client.clone(),
        server: &server,
        token: api_token.clone(),
    };
    let stranger = crate::ledger::Api {
        client: client.clone(),
        server: &server,
        token: other_token,
    };
    let (status, listed) = api.get("/feedback?score=4").await;
    assert_eq!(status, 200, "{listed}");
    assert_eq!(listed["items"][0]["customer_external_id"], "C1");
    assert_eq!(
        api.get("/feedback?score=3").await.1["items"],
        serde_json::json!([])
    );
    let yesterday = Utc::now().date_naive() - TimeDelta::days(1);
    let (_, dated) = api.get(&format!("/feedback?from={yesterday}")).await;
    assert_eq!(dated["items"].as_array().map(Vec::len), Some(1));
    for bad in [
        "/feedback?score=11",
        "/feedback?from=kemarin",
        "/complaints?status=closed",
    ] {
        assert_eq!(api.get(bad).await.0, 400, "{bad}");
    }
    let (_, open) = api.get("/complaints?status=open").await;
    let complaint = open["items"][0]["id"].as_i64().unwrap();
    assert_eq!(
        open["items"][0]["answer"]["score"], 4,
        "with the answer as it is now"
    );
    let path = format!("/complaints/{complaint}");
    for body in [
        serde_json::json!({"status": "closed"}),
        serde_json::json!({"status": "resolved", "note": "a".repeat(2_001)}),
        serde_json::json!({"status": "resolved", "by": "me"}),
    ] {
        assert_eq!(api.post(&path, body.clone()).await.0, 400, "{body}");
    }
    assert_eq!(
        stranger
            .post(&path, serde_json::json!({"status": "resolved"}))
            .await
            .0,
        404,
        "another merchant's complaint"
    );
    assert_eq!(
        stranger.get("/complaints").await.1["items"],
        serde_json::json!([])
    );
    assert_eq!(
        api.post("/complaints/abc", serde_json::json!({"status": "open"}))
            .await
            .0,
        404
    );
    let (status, resolved) = api
        .post(
            &path,
            serde_json::json!({"status": "resolved", "note": "Dikirim ulang <b>gratis</b>"}),
        )
        .await;
    assert_eq!(status, 200, "{resolved}");
    assert_eq!(
        (
            &resolved["status"],
            &resolved["note"],
            &resolved["resolved_by"]
        ),
        (
            &serde_json::json!("resolved"),
            &serde_json::json!("Dikirim ulang <b>gratis</b>"),
            &serde_json::json!("api")
        )
    );
    assert_eq!(
        api.get("/complaints?status=open").await.1["items"],
        serde_json::json!([])
    );
}

/// 10:00 in Jakarta tomorrow: late enough that the links signed then are valid now, early
/// enough in the day that marketing email goes out.
fn tomorrow_at_ten() -> DateTime<Utc> {
    let jakarta = chrono_tz::Asia::Jakarta;
    let tomorrow = (Utc::now() + TimeDelta::days(1))
        .with_timezone(&jakarta)
        .date_naive();
    tomorrow
        .and_time(NaiveTime::from_hms_opt(10, 0, 0).unwrap())
        .and_local_timezone(jakarta)
        .unwrap()
        .to_utc()
}

/// Emails a `run-due` round sent, less the weekly report it enqueued and sent when the
/// round falls in a new report week (the merchant has a report address for its alerts).
fn sent_besides_reports(round: &Value) -> u64 {
    round["sent"].as_u64().unwrap() - round["enqueued"]["weekly_churn_report"].as_u64().unwrap()
}

/// The `N: URL` line of score `score` in a request's text.
fn score_link(message: &Value, score: u8) -> String {
    let body = text(message);
    let prefix = format!("{score}: ");
    body.lines()
        .find_map(|line| line.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no link for {score} in {body}"))
        .to_owned()
}

/// The whole path over real SMTP and HTTP: a purchase three days old earns a request with
/// a row of score links; following one records nothing; submitting a low score opens a
/// complaint whose alert reaches the report address in the next round; the reminder goes
/// only to the customer who did not answer, and the marketing cap defers it.
async fn a_purchase_is_asked_about_and_a_low_score_reaches_the_merchant(setia: Setia) {
    let receiver = Receiver::start("");
    let created = setia.json(&[
        "merchant",
        "create",
        "--name",
        "Toko Sejahtera",
        "--report-email",
        "ops@toko.example",
    ]);
    let merchant_text = created["id"].as_str().unwrap().to_owned();
    let merchant = MerchantId::parse(&merchant_text).unwrap();
    let program = setia.write(
        "engagement.toml",
        "marketing_cap_days = 5\n[feedback]\nkind = \"csat\"\ndelay_days = 3\n",
    );
    setia.json(&[
        "merchant",
        "engagement",
        "--merchant",
        &merchant_text,
        &program,
    ]);
    let customers = setia.write(
        "customers.csv",
        "external_id,name,email,consent\n\
         C1,Ani <b>Lestari</b>,ani@example.co.id,true\n\
         C2,Budi,budi@example.co.id,true\n\
         C3,Citra,citra@example.co.id,false\n",
    );
    setia.json(&[
        "customers",
        "import",
        "--merchant",
        &merchant_text,
        &customers,
    ]);
    let due = tomorrow_at_ten();
    let bought = jakarta_wall_time(due - TimeDelta::days(3) - TimeDelta::hours(2));
    let history = setia.write(
        "history.csv",
        &format!(
            "customer_external_id,occurred_at,amount,reference\n\
             C1,{bought},150000,INV-1\nC2,{bought},80000,INV-2\nC3,{bought},50000,INV-3\n"
        ),
    );
    setia.json(&[
        "transactions",
        "import",
        "--merchant",
        &merchant_text,
        &history,
    ]);

    let server = setia.start(&["serve", "--listen", "127.0.0.1:0", "--no-scheduler"], &[]);
    let smtp = receiver.url();
    let public = server.url("");
    let env = [
        ("SETIA_SMTP_URL", smtp.as_str()),
        ("SETIA_PUBLIC_URL", public.as_str()),
    ];
    let at = |instant: DateTime<Utc>| instant.to_rfc3339();

    // Two days after the purchase nothing is due; on the third day, at 10:00, the two
    // consenting customers are asked.
    let early = run_due(&setia, &at(due - TimeDelta::days(1)), &env);
    assert_eq!(early["enqueued"]["feedback_request"], 0, "{early}");
    let round = run_due(&setia, &at(due), &env);
    assert_eq!(round["enqueued"]["feedback_request"], 2, "{round}");
    assert_eq!(sent_besides_reports(&round), 2, "{round}");
    let again = run_due(&setia, &at(due + TimeDelta::minutes(30)), &env);
    assert_eq!(
        again["enqueued"]["feedback_request"], 0,
        "a purchase is asked about once"
    );
    let messages = receiver.messages();
    let to = |m: &Value| header(m, "To").unwrap();
    let ani = messages.iter().find(|m| to(m).contains("ani@")).unwrap();
    assert_eq!(
        header(ani, "Subject").unwrap(),
        "Ani <b>Lestari</b>, bagaimana belanja Anda di Toko Sejahtera?"
    );
    assert!(header(ani, "List-Unsubscribe").is_some());
    let body = html(ani);
    assert!(
        body.contains("Ani &lt;b&gt;Lestari&lt;") && !body.contains("<b>Lestari"),
        "{body}"
    );
    assert!(text(ani).contains("Rp 150.000"), "{}", text(ani));
    for score in 1..=5 {
        assert!(score_link(ani, score).starts_with(&format!("{public}/f/")));
    }
    assert!(!messages.iter().any(|m| to(m).contains("citra@")));

    // Following the link for 1 shows the page with 1 chosen and records nothing.
    let client = reqwest::Client::new();
    let link = score_link(ani, 1);
    let page = client.get(&link).send().await.unwrap();
    assert_eq!(page.status().as_u16(), 200);
    assert!(page.text().await.unwrap().contains("value=\"1\" checked"));
    let store = setia.store().await;
    let answers = store
        .feedback_answers(&merchant, AnswerFilter::default(), first(10))
        .await
        .unwrap();
    assert!(answers.items.is_empty(), "a GET records nothing");

    // Submitting it opens a complaint; the alert goes out in the next round.
    let form_url = link.split('?').next().unwrap().to_owned();
    let comment = "Barang <script>alert(1)</script> rusak";
    let posted = client
        .post(&form_url)
        .form(&[("score", "1"), ("comment", comment)])
        .send()
        .await
        .unwrap();
    assert_eq!(posted.status().as_u16(), 200);
    let complaints = store
        .complaints(&merchant, None, first(5))
        .await
        .unwrap()
        .items;
    assert_eq!(complaints.len(), 1);
    let complaint = complaints[0].id;
    let alerted = run_due(&setia, &at(due + TimeDelta::hours(1)), &env);
    assert_eq!(sent_besides_reports(&alerted), 1, "{alerted}");
    let messages = receiver.messages();
    let alert = messages
        .iter()
        .find(|m| header(m, "Subject").unwrap().starts_with("Keluhan baru"))
        .expect("the alert");
    assert_eq!(to(alert), "ops@toko.example");
    assert_eq!(
        header(alert, "Subject").unwrap(),
        "Keluhan baru: nilai 1/5 dari Ani <b>Lestari</b>"
    );
    assert!(header(alert, "List-Unsubscribe").is_none(), "merchant mail");
    let alert_html = html(alert);
    assert!(alert_html.contains("Barang &lt;script&gt;alert(1)&lt;&#x2f;script&gt; rusak"));
    assert!(!alert_html.contains("<script>"));
    let complaint_link = format!("{public}/dashboard/feedback#complaint-{complaint}");
    assert!(alert_html.contains(&complaint_link.replace('/', "&#x2f;")));
    let alert_text = text(alert);
    assert!(alert_text.contains(&complaint_link), "{alert_text}");
    for expected in [
        "Pelanggan: Ani <b>Lestari</b> (C1)",
        "Nilai: 1 dari 5 (CSAT)",
        "Belanja: Rp 150.000",
        comment,
    ] {
        assert!(
            alert_text.contains(expected),
            "{expected:?} in {alert_text}"
        );
    }

    // Four days on, the reminder: none for Ani (answered, and a complaint is open); Budi's
    // waits for the marketing cap (five days since his request), then goes.
    let reminded = run_due(
        &setia,
        &at(due + TimeDelta::days(4) + TimeDelta::hours(1)),
        &env,
    );
    assert_eq!(
        (
            Some(sent_besides_reports(&reminded)),
            reminded["suppressed"].as_u64(),
            reminded["deferred"].as_u64()
        ),
        (Some(0), Some(1), Some(1)),
        "{reminded}"
    );
    let deferred = store
        .outbox_entries(
            &merchant,
            Some(setia_store::mail::OutboxStatus::Deferred),
            first(5),
        )
        .await
        .unwrap()
        .items;
    assert_eq!(deferred.len(), 1);
    assert_eq!(deferred[0].next_attempt_at, Some(due + TimeDelta::days(5)));
    assert!(deferred[0]
        .last_error
        .as_deref()
        .unwrap()
        .contains("marketing cap"));
    let capped = run_due(
        &setia,
        &at(due + TimeDelta::days(5) + TimeDelta::hours(1)),
        &env,
    );
    assert_eq!(sent_besides_reports(&capped), 1, "{capped}");
    let messages = receiver.messages();
    let reminders: Vec<&Value> = messages
        .iter()
        .filter(|m| header(m, "Subject").unwrap().starts_with("Pengingat: "))
        .collect();
    assert_eq!(reminders.len(), 1);
    assert!(to(reminders[0]).contains("budi@"));

    // The merchant follows the alert's link to the dashboard and resolves the complaint.
    let dash = Dash::login(&server, created["api_token"].as_str().unwrap()).await;
    let page = dash.page("/dashboard/feedback").await;
    assert!(page.contains(&format!("id=\"complaint-{complaint}\"")));
    assert!(page.contains("Barang &lt;script&gt;") && !page.contains("<script>alert"));
    let resolved = dash
        .post(
            &format!("/dashboard/feedback/complaints/{complaint}"),
            &[
                ("status", "resolved"),
                ("note", "Diganti barang baru"),
                ("csrf", &dash.csrf),
            ],
        )
        .await;
    assert_eq!(resolved.status().as_u16(), 303);
    let resolved = store
        .complaint(&merchant, complaint)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (
            resolved.status,
            resolved.note.as_deref(),
            resolved.resolved_by.as_deref()
        ),
        (
            ComplaintStatus::Resolved,
            Some("Diganti barang baru"),
            Some("dashboard")
        )
    );
}

/// A public link's page: not cached, not framed, no Referer carrying the token, nothing
/// loaded, and its form posts only to itself.
pub(crate) fn assert_public_page_headers(headers: &reqwest::header::HeaderMap) {
    assert_eq!(headers["cache-control"], "no-store");
    assert_eq!(headers["referrer-policy"], "no-referrer");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    let policy = headers["content-security-policy"].to_str().unwrap();
    for part in [
        "default-src 'none'",
        "frame-ancestors 'none'",
        "form-action 'self'",
    ] {
        assert!(policy.contains(part), "{policy}");
    }
}
