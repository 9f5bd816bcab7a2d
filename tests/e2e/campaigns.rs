//! Campaigns (issue 25) through the real binary: early access sends gold, then silver, then
//! everyone else on the `mail run-due --now` clock; bad input exits 2 (CLI) or answers 400
//! (API) and writes nothing; the dashboard's form is previewed, checked for its CSRF token
//! and creates the campaign; and a campaign to 10,000 customers over the real SMTP test
//! server reaches each of them with one message even when the worker is SIGKILLed in the
//! middle of delivery and started again.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use serde_json::Value;

use crate::dashboard::{input_value, Dash};
use crate::mail::api_get;
use crate::smtp::Receiver;
use crate::support::Setia;

crate::on_every_backend!(
    early_access_sends_gold_then_silver_then_the_rest,
    bad_input_creates_nothing_on_the_cli_or_the_api,
    the_dashboard_form_previews_then_creates_behind_its_csrf_token,
    ten_thousand_recipients_each_get_one_message_across_a_sigkill,
);

fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// A merchant whose campaigns hold out `holdout_percent`, with feedback requests off (they
/// are marketing too, and the cap would hold a campaign back behind them).
fn merchant(setia: &Setia, holdout_percent: u32) -> Value {
    let created = setia.create_merchant("Toko Kampanye");
    let program = setia.write(
        "engagement.toml",
        &format!("[feedback]\nenabled = false\n[campaigns]\nholdout_percent = {holdout_percent}\n"),
    );
    setia.json(&[
        "merchant",
        "engagement",
        "--merchant",
        created["id"].as_str().unwrap(),
        &program,
    ]);
    created
}

/// Gita gold, Sari silver, Maya a member, by what they spent in the last few days.
fn three_tiers(setia: &Setia, merchant: &str) {
    setia.import(
        "customers",
        merchant,
        "external_id,name,email\nGITA,Gita,gita@example.co.id\nSARI,Sari,sari@example.co.id\n\
         MAYA,Maya,maya@example.co.id\n",
    );
    let day = (Utc::now() - TimeDelta::days(3)).format("%Y-%m-%d");
    setia.import(
        "transactions",
        merchant,
        &format!(
            "customer_external_id,occurred_at,amount\nGITA,{day},12000000\nSARI,{day},3000000\n\
             MAYA,{day},150000\n"
        ),
    );
}

fn recipients(receiver: &Receiver) -> Vec<String> {
    receiver
        .messages()
        .iter()
        .map(|m| crate::mail::header(m, "To").unwrap_or_default())
        .collect()
}

async fn early_access_sends_gold_then_silver_then_the_rest(setia: Setia) {
    let created = merchant(&setia, 0);
    let m = created["id"].as_str().unwrap();
    three_tiers(&setia, m);
    let body = setia.write(
        "body.md",
        "Halo **{{name}}**, sebagai member {{tier}} Anda belanja lebih dulu.\n",
    );
    let send_at = Utc::now() + TimeDelta::hours(2);
    let campaign = setia.json(&[
        "campaign",
        "create",
        "--merchant",
        m,
        "--name",
        "Koleksi Lebaran",
        "--audience",
        "all",
        "--subject",
        "{{name}}, koleksi Lebaran",
        "--body",
        &body,
        "--send-at",
        &rfc3339(send_at),
        "--early-access-days",
        "2",
    ]);
    assert_eq!(campaign["status"], "scheduled");
    assert_eq!(campaign["recipients"]["recipients"], 3);
    assert_eq!(
        campaign["recipients"]["by_wave"],
        serde_json::json!([1, 1, 1])
    );
    let id = campaign["id"].as_str().unwrap().to_owned();

    let receiver = Receiver::start("");
    let smtp = receiver.url();
    let run_at = |at: DateTime<Utc>| {
        let output = setia
            .command()
            .env("SETIA_SMTP_URL", &smtp)
            .args(["mail", "run-due", "--now", &rfc3339(at)])
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}",
            crate::support::stderr(&output)
        );
        serde_json::from_slice::<Value>(&output.stdout).unwrap()
    };
    let before = run_at(send_at - TimeDelta::minutes(1));
    assert_eq!(before["enqueued"]["campaign"], 0, "nothing before send_at");
    assert_eq!(receiver.count(), 0);

    let gold = run_at(send_at);
    assert_eq!(
        (gold["enqueued"]["campaign"].as_u64(), gold["sent"].as_u64()),
        (Some(1), Some(1))
    );
    assert_eq!(recipients(&receiver), vec!["Gita <gita@example.co.id>"]);
    // A day later, still only gold; the silver wave is two days after send_at.
    run_at(send_at + TimeDelta::days(1));
    assert_eq!(receiver.count(), 1);
    run_at(send_at + TimeDelta::days(2));
    run_at(send_at + TimeDelta::days(3));
    assert_eq!(
        recipients(&receiver),
        vec!["Gita <gita@example.co.id>", "Sari <sari@example.co.id>"]
    );
    run_at(send_at + TimeDelta::days(4));
    run_at(send_at + TimeDelta::days(5));
    assert_eq!(
        recipients(&receiver),
        vec![
            "Gita <gita@example.co.id>",
            "Sari <sari@example.co.id>",
            "Maya <maya@example.co.id>"
        ]
    );
    let messages = receiver.messages();
    assert_eq!(
        crate::mail::header(&messages[1], "Subject").as_deref(),
        Some("Sari, koleksi Lebaran")
    );
    let text = messages[1]["text"].as_str().unwrap();
    assert!(text.contains("Halo Sari, sebagai member Silver"), "{text}");
    let html = messages[1]["html"].as_str().unwrap();
    assert!(html.contains("<strong>Sari</strong>"), "{html}");
    assert!(crate::mail::header(&messages[0], "List-Unsubscribe").is_some());

    let shown = setia.json(&["campaign", "show", "--merchant", m, &id]);
    assert_eq!(shown["status"], "sent");
    assert_eq!(shown["delivery"]["sent"], 3);
    let waves: Vec<(u64, String)> = shown["delivery"]["waves"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| {
            (
                w["wave"].as_u64().unwrap(),
                w["due_at"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(waves.len(), 3);
    let due = |days: i64| {
        DateTime::parse_from_rfc3339(&waves[days as usize / 2].1)
            .unwrap()
            .to_utc()
            .timestamp()
    };
    assert_eq!(due(0), send_at.timestamp());
    assert_eq!(due(2), (send_at + TimeDelta::days(2)).timestamp());
    assert_eq!(due(4), (send_at + TimeDelta::days(4)).timestamp());
    assert_eq!(shown["results"]["days"], 14);
    let list = setia.json(&["campaign", "list", "--merchant", m]);
    assert_eq!(list.as_array().unwrap().len(), 1);
}

async fn bad_input_creates_nothing_on_the_cli_or_the_api(setia: Setia) {
    let created = merchant(&setia, 10);
    let m = created["id"].as_str().unwrap();
    let token = created["api_token"].as_str().unwrap();
    three_tiers(&setia, m);
    let good = setia.write("good.md", "Hello {{name}}\n");
    let unknown_placeholder = setia.write("voucher.md", "Your code: {{voucher}}\n");
    let huge = setia.write("huge.md", &"a".repeat(100 * 1024 + 1));
    let past = rfc3339(Utc::now() - TimeDelta::days(1));
    for (args, reason) in [
        (
            vec!["--audience", "vips", "--body", &good],
            "unknown audience \"vips\"",
        ),
        (
            vec!["--audience", "tier:platinum", "--body", &good],
            "unknown tier \"platinum\"",
        ),
        (
            vec!["--audience", "segment:whales", "--body", &good],
            "unknown segment \"whales\"",
        ),
        (
            vec!["--audience", "all", "--body", &good, "--send-at", &past],
            "in the past",
        ),
        (
            vec!["--audience", "all", "--body", &good, "--subject", " "],
            "subject is empty",
        ),
        (vec!["--audience", "all", "--body", &huge], "at most 102400"),
        (
            vec!["--audience", "all", "--body", &unknown_placeholder],
            "{{voucher}}",
        ),
        (
            vec!["--audience", "all", "--body", "/nonexistent/body.md"],
            "/nonexistent/body.md",
        ),
    ] {
        let mut command = vec!["campaign", "create", "--merchant", m, "--name", "N"];
        if !args.contains(&"--subject") {
            command.extend(["--subject", "S"]);
        }
        command.extend(args.iter().copied());
        let output = setia.run(&command);
        assert_eq!(output.status.code(), Some(2), "{command:?}");
        let stderr = crate::support::stderr(&output);
        assert!(stderr.contains(reason), "{command:?}: {stderr}");
    }
    assert_eq!(
        setia.json(&["campaign", "list", "--merchant", m]),
        serde_json::json!([])
    );

    let server = setia.start(&["serve", "--listen", "127.0.0.1:0", "--no-worker"], &[]);
    let client = reqwest::Client::new();
    let post = |body: Value| {
        client
            .post(server.url("/api/v1/campaigns"))
            .bearer_auth(token)
            .json(&body)
            .send()
    };
    let base =
        serde_json::json!({"name": "N", "audience": "all", "subject": "S", "body": "Hi {{name}}"});
    let with = |key: &str, value: Value| {
        let mut body = base.clone();
        body[key] = value;
        body
    };
    for (body, reason) in [
        (
            with("audience", "tier:diamond".into()),
            "unknown tier \"diamond\"",
        ),
        (
            with("audience", "segment:x+all".into()),
            "unknown segment \"x\"",
        ),
        (with("send_at", past.clone().into()), "in the past"),
        (with("subject", "".into()), "subject is empty"),
        (with("subject", "two\nlines".into()), "one line"),
        (
            with("body", "b".repeat(100 * 1024 + 1).into()),
            "at most 102400",
        ),
        (with("body", "Hi {{nama}}".into()), "{{nama}}"),
        (with("early_access_days", 400.into()), "early_access_days"),
        (with("colour", "red".into()), "colour"),
    ] {
        let response = post(body).await.unwrap();
        assert_eq!(response.status(), 400, "{reason}");
        let answer: Value = response.json().await.unwrap();
        let message = answer["error"]["message"].as_str().unwrap();
        assert!(message.contains(reason), "{reason}: {message}");
    }
    let base_url = server.url("");
    let (_, list) = api_get(&base_url, token, "/campaigns").await;
    assert_eq!(list["items"], serde_json::json!([]), "nothing was written");

    let created_campaign = post(with("early_access_days", 3.into())).await.unwrap();
    assert_eq!(created_campaign.status(), 201);
    let created_campaign: Value = created_campaign.json().await.unwrap();
    assert_eq!(created_campaign["recipients"]["recipients"], 3);
    let id = created_campaign["id"].as_str().unwrap();
    let (status, shown) = api_get(&base_url, token, &format!("/campaigns/{id}")).await;
    assert_eq!(status, 200);
    assert_eq!(shown["early_access_days"], 3);
    assert!(shown["results"]["difference"]["revenue_per_customer"].is_object());
    // Another merchant's token, a made-up id and a malformed one are the same 404.
    let other = setia.create_merchant("Toko Lain");
    for (path, token) in [
        (
            format!("/campaigns/{id}"),
            other["api_token"].as_str().unwrap(),
        ),
        ("/campaigns/cmp_999".to_owned(), token),
        ("/campaigns/%3Cscript%3E".to_owned(), token),
    ] {
        assert_eq!(api_get(&base_url, token, &path).await.0, 404, "{path}");
    }
    let unauthorised = client
        .post(server.url("/api/v1/campaigns"))
        .json(&base)
        .send()
        .await
        .unwrap();
    assert_eq!(unauthorised.status(), 401);
}

async fn the_dashboard_form_previews_then_creates_behind_its_csrf_token(setia: Setia) {
    let created = merchant(&setia, 10);
    let m = created["id"].as_str().unwrap();
    let token = created["api_token"].as_str().unwrap();
    three_tiers(&setia, m);
    // A customer whose name is HTML, as the sample recipient.
    setia.import(
        "customers",
        m,
        "external_id,name,email\nEVIL,<script>alert(1)</script>,evil@example.co.id\n",
    );
    let server = setia.start(&["serve", "--listen", "127.0.0.1:0", "--no-worker"], &[]);
    let dash = Dash::login(&server, token).await;
    let page = dash.page("/dashboard/campaigns").await;
    assert!(
        page.contains("id=\"campaign-form\""),
        "the form is on the page"
    );
    let csrf = input_value(&page, "csrf").expect("the form's CSRF token");
    let form = |csrf: &str| -> Vec<(String, String)> {
        [
            ("name", "Akses awal"),
            ("audience", "tier:gold+tier:silver"),
            ("subject", "{{name}}, untuk member {{tier}}"),
            (
                "body",
                "Halo {{name}} <script>alert(2)</script> [x](javascript:alert(3))",
            ),
            ("send_at", ""),
            ("early_access_days", "1"),
            ("sample", "EVIL"),
            ("csrf", csrf),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    };
    let list = |setia: &Setia| setia.json(&["campaign", "list", "--merchant", m]);
    fn as_pairs(form: &[(String, String)]) -> Vec<(&str, &str)> {
        form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
    }

    // Missing or forged tokens are refused, on both the preview and the create.
    for path in ["/dashboard/campaigns/preview", "/dashboard/campaigns"] {
        let missing: Vec<(String, String)> = form(&csrf)
            .into_iter()
            .filter(|(k, _)| k != "csrf")
            .collect();
        assert_eq!(
            dash.post(path, &as_pairs(&missing)).await.status(),
            403,
            "{path}"
        );
        let forged = form("deadbeef");
        assert_eq!(
            dash.post(path, &as_pairs(&forged)).await.status(),
            403,
            "{path}"
        );
    }
    assert_eq!(list(&setia), serde_json::json!([]));

    // The preview: the counts, the sample's email with every bit of HTML escaped.
    let preview = dash
        .post("/dashboard/campaigns/preview", &as_pairs(&form(&csrf)))
        .await;
    assert_eq!(preview.status(), 200);
    let html = preview.text().await.unwrap();
    assert!(html.contains("data-count=\"recipients\">2<"), "{html}");
    assert!(html.contains("data-wave=\"0\">1<") && html.contains("data-wave=\"1\">1<"));
    assert!(
        !html.contains("<script>"),
        "nothing of the input runs: {html}"
    );
    let shown = crate::support::between(&html, "id=\"campaign-preview\"", "</section>");
    assert!(
        !shown.contains("javascript:"),
        "the link is dropped: {shown}"
    );
    assert!(
        shown.contains("&amp;lt;script&amp;gt;alert(2)"),
        "escaped in the email, then in srcdoc: {shown}"
    );
    let subject = crate::support::between(&html, "data-preview-subject>", "</h2>");
    assert_eq!(
        subject,
        "&lt;script&gt;alert(1)&lt;&#x2f;script&gt;, untuk member Bronze"
    );
    assert!(
        html.contains("data-create"),
        "the preview offers to create it"
    );
    assert_eq!(
        list(&setia),
        serde_json::json!([]),
        "a preview writes nothing"
    );

    // Bad input on the form: the reason, a 400, nothing created.
    let mut bad = form(&csrf);
    bad[1].1 = "tier:diamond".into();
    let refused = dash.post("/dashboard/campaigns", &as_pairs(&bad)).await;
    assert_eq!(refused.status(), 400);
    let refused = refused.text().await.unwrap();
    assert!(
        refused.contains("unknown tier &quot;diamond&quot;"),
        "{refused}"
    );
    assert_eq!(list(&setia), serde_json::json!([]));

    // Created from the preview: its page, then the list.
    let created_page = dash
        .post("/dashboard/campaigns", &as_pairs(&form(&csrf)))
        .await;
    assert_eq!(created_page.status(), 303);
    let location = created_page.headers()["location"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        location.starts_with("/dashboard/campaigns/cmp_"),
        "{location}"
    );
    let campaign_page = dash.page(&location).await;
    assert!(campaign_page.contains("data-campaign-status=\"scheduled\""));
    assert!(campaign_page.contains("data-count=\"recipients\">2<"));
    assert!(campaign_page.contains("id=\"campaign-results\""));
    let listed = list(&setia);
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert_eq!(listed[0]["audience"], "tier:silver+tier:gold");
    let overview = dash.page("/dashboard/campaigns").await;
    assert!(overview.contains(&format!(
        "data-campaign=\"{}\"",
        listed[0]["id"].as_str().unwrap()
    )));
    // Another merchant's session sees none of it.
    let other = setia.create_merchant("Toko Lain");
    let stranger = Dash::login(&server, other["api_token"].as_str().unwrap()).await;
    assert_eq!(stranger.get(&location).await.0, 404);
}

/// The Message-ID and the To address of each message the server kept, from its raw text.
fn ids_and_recipients(receiver: &Receiver) -> Vec<(String, String)> {
    receiver
        .raw_messages()
        .iter()
        .map(|raw| {
            let text = String::from_utf8_lossy(raw);
            let field = |name: &str| {
                text.lines()
                    .find_map(|line| line.strip_prefix(name))
                    .unwrap_or_default()
                    .trim()
                    .to_owned()
            };
            (field("Message-ID:"), field("To:"))
        })
        .collect()
}

async fn ten_thousand_recipients_each_get_one_message_across_a_sigkill(setia: Setia) {
    const CUSTOMERS: usize = 10_000;
    let created = merchant(&setia, 0);
    let m = created["id"].as_str().unwrap();
    let mut csv = String::from("external_id,email\n");
    for n in 0..CUSTOMERS {
        csv.push_str(&format!("C{n},c{n}@example.co.id\n"));
    }
    setia.import("customers", m, &csv);
    let body = setia.write("body.md", "Halo {{name}}, koleksi baru sudah tersedia.\n");
    let campaign = setia.json(&[
        "campaign",
        "create",
        "--merchant",
        m,
        "--name",
        "Semua",
        "--audience",
        "all",
        "--subject",
        "Koleksi baru",
        "--body",
        &body,
    ]);
    assert_eq!(campaign["recipients"]["recipients"], CUSTOMERS);

    let receiver = Receiver::start("");
    let smtp = receiver.url();
    let env = [
        ("SETIA_SMTP_URL", smtp.as_str()),
        ("SETIA_WORKER_LEASE_SECONDS", "6"),
    ];
    let mut worker = setia.start(&["worker"], &env);
    let started = Instant::now();
    while receiver.count() < 1_500 {
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "the first 1,500 in time"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    worker.kill();
    let at_kill = receiver.count();
    assert!(
        at_kill < CUSTOMERS,
        "killed in the middle of delivery ({at_kill})"
    );

    let _restarted = setia.start(&["worker"], &env);
    let distinct = |receiver: &Receiver| {
        ids_and_recipients(receiver)
            .into_iter()
            .map(|(id, _)| id)
            .collect::<BTreeSet<_>>()
            .len()
    };
    let started = Instant::now();
    while distinct(&receiver) < CUSTOMERS {
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "every recipient in time ({} of {CUSTOMERS})",
            distinct(&receiver)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Let a second delivery of anything show up before counting.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let kept = ids_and_recipients(&receiver);
    let mut by_recipient: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (id, to) in &kept {
        by_recipient
            .entry(to.clone())
            .or_default()
            .insert(id.clone());
    }
    assert_eq!(by_recipient.len(), CUSTOMERS, "every customer got it");
    assert!(
        by_recipient.values().all(|ids| ids.len() == 1),
        "one message per customer: a repeat carries the same Message-ID"
    );
    // A repeat is only a message of a batch in flight when the worker died (accepted, its
    // batch's outcomes not yet written): at most four lanes of 500-row batches, each repeat
    // with its first Message-ID. Nothing already marked sent goes out again.
    let repeats = kept.len() - CUSTOMERS;
    assert!(
        repeats <= 4 * 500,
        "{repeats} repeats of in-flight messages"
    );

    let shown = setia.json(&[
        "campaign",
        "show",
        "--merchant",
        m,
        campaign["id"].as_str().unwrap(),
    ]);
    let started = Instant::now();
    let mut shown = shown;
    while shown["delivery"]["sent"] != CUSTOMERS {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{}",
            shown["delivery"]
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
        shown = setia.json(&[
            "campaign",
            "show",
            "--merchant",
            m,
            campaign["id"].as_str().unwrap(),
        ]);
    }
    assert_eq!(shown["delivery"]["failed"], 0);
    assert_eq!(shown["status"], "sent");
}
