//! The dashboard's feedback page through the real binary: the satisfaction figure against
//! the 30 days before, the response rate, the trend and distribution, comments by score
//! (escaped), and the complaints queue with its form: CSRF, a bounded note, another
//! merchant's complaint a 404, and a complaint resolved as done by the dashboard.

use chrono::{DateTime, TimeDelta, Utc};
use reqwest::header::LOCATION;
use setia_core::engagement::{EngagementProgram, FeedbackKind};
use setia_core::feedback::{FeedbackComment, FeedbackScore};
use setia_core::MerchantId;
use setia_store::engagement::{Complaint, ComplaintStatus, NewAnswer, NewFeedbackRequest};
use setia_store::Store;

use crate::dashboard::{add_customer, input_value, Dash};
use crate::support::{first, Setia};

crate::on_every_backend!(the_feedback_page_shows_the_figures_and_moves_complaints_along);

/// Imports one purchase of Rp 150.000 per customer, three days before its request is due,
/// and a CSAT request about each; returns the requests in the order given.
pub(crate) async fn requests(
    setia: &Setia,
    store: &dyn Store,
    merchant: &MerchantId,
    due: &[(&str, DateTime<Utc>)],
) -> Vec<i64> {
    let mut csv = String::from("customer_external_id,occurred_at,amount,reference\n");
    for (customer, due_at) in due {
        let bought = *due_at - TimeDelta::days(3);
        csv.push_str(&format!(
            "{customer},{},150000,INV-{customer}\n",
            bought.format("%Y-%m-%dT%H:%M:%SZ")
        ));
    }
    let file = setia.write(&format!("purchases-{merchant}.csv"), &csv);
    setia.json(&[
        "transactions",
        "import",
        "--merchant",
        merchant.as_str(),
        &file,
    ]);
    let purchases = store.purchases(merchant, None, first(500)).await.unwrap();
    let mut created = Vec::new();
    for (customer, due_at) in due {
        let purchase = purchases
            .items
            .iter()
            .find(|p| p.customer_external_id.as_deref() == Some(*customer))
            .expect("the imported purchase");
        let id = store
            .customer(merchant, &setia_core::ExternalId::parse(customer).unwrap())
            .await
            .unwrap()
            .unwrap()
            .id;
        let request = NewFeedbackRequest {
            customer: id,
            purchase: purchase.id.key(),
            kind: FeedbackKind::Csat,
            due_at: *due_at,
        };
        created.extend(
            store
                .create_feedback_requests(merchant, &[request], *due_at)
                .await
                .unwrap(),
        );
    }
    assert_eq!(created.len(), due.len());
    created
}

/// Records a CSAT answer at `at`; a low one opens a complaint, whose key is returned.
pub(crate) async fn answer(
    store: &dyn Store,
    merchant: &MerchantId,
    request: i64,
    score: i64,
    comment: Option<&str>,
    at: DateTime<Utc>,
) -> Option<i64> {
    let score = FeedbackScore::new(FeedbackKind::Csat, score).unwrap();
    let comment = comment.map(|c| FeedbackComment::parse(c).unwrap().unwrap());
    let program = EngagementProgram::standard();
    store
        .record_feedback_answer(
            merchant,
            NewAnswer {
                request,
                score,
                comment: comment.as_ref(),
                opens_complaint: score.alerts(FeedbackKind::Csat, &program.feedback),
                alert_to: &[],
            },
            at,
        )
        .await
        .unwrap()
        .expect("the merchant's request")
        .opened_complaint
}

/// One complaint of `merchant`'s customer `customer` (created by the caller), with a comment.
pub(crate) async fn a_complaint(
    setia: &Setia,
    store: &dyn Store,
    merchant: &MerchantId,
    customer: &str,
    comment: &str,
) -> i64 {
    let now = Utc::now();
    let request = requests(
        setia,
        store,
        merchant,
        &[(customer, now - TimeDelta::days(1))],
    )
    .await;
    answer(store, merchant, request[0], 1, Some(comment), now)
        .await
        .expect("a score of 1 opens a complaint")
}

async fn complaint(store: &dyn Store, merchant: &MerchantId, id: i64) -> Complaint {
    store.complaint(merchant, id).await.unwrap().unwrap()
}

/// The text of `html` from the first `start` up to the next `end` (or the end).
fn section<'a>(html: &'a str, start: &str, end: &str) -> &'a str {
    let from = html
        .find(start)
        .unwrap_or_else(|| panic!("{start:?} in the page"));
    let rest = &html[from..];
    &rest[..rest.find(end).unwrap_or(rest.len())]
}

async fn the_feedback_page_shows_the_figures_and_moves_complaints_along(setia: Setia) {
    let created = setia.create_merchant("Toko Ulasan");
    let merchant = MerchantId::parse(created["id"].as_str().unwrap()).unwrap();
    let token = created["api_token"].as_str().unwrap().to_owned();
    let other = setia.create_merchant("Toko Lain");
    let other_token = other["api_token"].as_str().unwrap().to_owned();
    let shared = setia.store().await;
    let store = &*shared;
    let now = Utc::now();
    let days = |n: i64| now - TimeDelta::days(n);

    // Seven customers asked about a purchase: five in the last 30 days (four answered), two
    // about six weeks ago (both answered).
    let customers = [
        ("C1", "Siti Rahayu", days(3)),
        ("C2", "Budi Santoso", days(3)),
        ("C3", "Ani Wijaya", days(4)),
        ("C4", "Dewi Lestari", days(5)),
        ("C5", "Eko Prasetyo", days(6)),
        ("C6", "Fajar Nugroho", days(43)),
        ("C7", "Gita Permata", days(43)),
    ];
    let due: Vec<(&str, DateTime<Utc>)> = customers.iter().map(|c| (c.0, c.2)).collect();
    let asked = requests(&setia, store, &merchant, &due).await;
    for (external, name, _) in customers {
        add_customer(&shared, &merchant, external, name).await;
    }
    let script = "<script>alert(1)</script> paket rusak";
    // Answers in the order they were given (the comments list is newest first).
    for (request, score, comment, at) in [
        (asked[5], 5, None, days(40)),
        (asked[6], 3, Some("Biasa saja"), days(40)),
        (asked[0], 5, Some("Mantap, cepat sampai"), days(2)),
        (asked[1], 4, None, days(2)),
        (asked[2], 4, Some("Lumayan"), days(1)),
    ] {
        assert_eq!(
            answer(store, &merchant, request, score, comment, at).await,
            None
        );
    }
    let complaint_id = answer(
        store,
        &merchant,
        asked[3],
        1,
        Some(script),
        now - TimeDelta::hours(1),
    )
    .await
    .expect("a 1 opens a complaint");

    let server = setia.start(&["serve", "--listen", "127.0.0.1:0", "--no-worker"], &[]);
    let dash = Dash::login(&server, &token).await;
    let html = dash.page("/dashboard/feedback").await;

    // The headline: CSAT 3 of 4 (75%) against 1 of 2 (50%); 4 of the 5 requests due in the
    // last 30 days answered; one complaint open.
    assert!(
        html.contains("aria-current=\"page\">Ulasan"),
        "in the navigation"
    );
    assert!(html.contains("data-kpi=\"satisfaction\">75%<"), "{html}");
    assert!(html.contains("data-kpi=\"satisfaction_before\">50%<"));
    assert!(html.contains("▲ +25 pp"));
    assert!(html.contains("data-kpi=\"answers\">4<"));
    assert!(html.contains("data-kpi=\"answers_before\">2<"));
    assert!(html.contains("data-kpi=\"response_rate\">80%<"), "{html}");
    assert!(html.contains("data-kpi=\"unresolved\"><a href=\"#complaints\">1<"));
    assert_eq!(
        html.matches("<svg class=\"chart\"").count(),
        2,
        "the trend and the distribution"
    );
    // Twelve weeks in the trend's table, and every answer in the distribution.
    assert_eq!(html.matches("data-answers=\"").count(), 12);
    for (score, count) in [(5, 2), (4, 2), (3, 1), (2, 0), (1, 1)] {
        assert!(
            html.contains(&format!("data-score=\"{score}\">{count}<")),
            "score {score}"
        );
    }
    let monthly = dash.page("/dashboard/feedback?period=month").await;
    assert_eq!(monthly.matches("data-answers=\"").count(), 12);
    assert!(monthly.contains("data-score=\"5\">2<") && monthly.contains("12 bulan terakhir"));
    let english = dash.page("/dashboard/feedback?lang=en").await;
    assert!(english.contains("Response rate") && english.contains(">Feedback"));

    // Comments, newest first, escaped, with the customer's page linked.
    let comments = section(&html, "id=\"comments\"", "id=\"complaints\"").replace("&#x2f;", "/");
    let order: Vec<usize> = [
        "&lt;script&gt;alert(1)&lt;/script&gt; paket rusak",
        "Lumayan",
        "Mantap, cepat sampai",
        "Biasa saja",
    ]
    .iter()
    .map(|c| {
        comments
            .find(c)
            .unwrap_or_else(|| panic!("{c} in {comments}"))
    })
    .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "newest first");
    let siti = store
        .customer(&merchant, &setia_core::ExternalId::parse("C1").unwrap())
        .await
        .unwrap()
        .unwrap()
        .id;
    assert!(comments.contains(&format!(
        "<a href=\"/dashboard/customers/{siti}\">Siti Rahayu</a>"
    )));
    assert!(!html.contains("<script>alert(1)"), "never raw");
    assert!(html.contains("&lt;script&gt;alert(1)"));

    // Filtered by score; a score that cannot be one is a 400 that says so.
    let ones = dash.page("/dashboard/feedback?score=1").await;
    let ones = section(&ones, "id=\"comments\"", "id=\"complaints\"");
    assert!(ones.contains("paket rusak") && !ones.contains("Mantap") && !ones.contains("Lumayan"));
    let fives = dash.page("/dashboard/feedback?period=month&score=5").await;
    let fives = section(&fives, "id=\"comments\"", "id=\"complaints\"");
    assert!(fives.contains("Mantap") && !fives.contains("paket rusak"));
    let twos = dash.page("/dashboard/feedback?score=2").await;
    assert!(section(&twos, "id=\"comments\"", "id=\"complaints\"").contains("Belum ada komentar"));
    for bad in ["11", "-1", "x", "4.5"] {
        let (status, body) = dash.get(&format!("/dashboard/feedback?score={bad}")).await;
        assert_eq!(status, 400, "score={bad}");
        assert!(body.contains("0 sampai 10"), "{body}");
    }
    assert_eq!(dash.get("/dashboard/feedback?period=year").await.0, 400);

    // The complaint, anchored for the alert email's link, with its form.
    let article = section(
        &html,
        &format!("id=\"complaint-{complaint_id}\""),
        "</article>",
    );
    assert!(article.contains("Dewi Lestari") && article.contains("Rp 150.000"));
    assert!(article.contains("&lt;script&gt;") && !article.contains("<script>"));
    assert!(article.contains(&format!(
        "action=\"/dashboard/feedback/complaints/{complaint_id}\""
    )));
    let csrf = input_value(article, "csrf").expect("the form's CSRF token");
    let path = format!("/dashboard/feedback/complaints/{complaint_id}");
    let untouched = complaint(store, &merchant, complaint_id).await;
    assert_eq!(
        (untouched.status, untouched.note.as_deref()),
        (ComplaintStatus::Open, None)
    );

    // Without the token, with a wrong one: refused, nothing changes.
    for form in [
        vec![("status", "resolved"), ("note", "x")],
        vec![("status", "resolved"), ("csrf", "deadbeef")],
    ] {
        assert_eq!(dash.post(&path, &form).await.status(), 403, "{form:?}");
    }
    // A note over 1,000 characters, or a status that is none: a 400 that says why.
    let long = "a".repeat(1_001);
    let response = dash
        .post(
            &path,
            &[("status", "resolved"), ("note", &long), ("csrf", &csrf)],
        )
        .await;
    assert_eq!(response.status(), 400);
    assert!(response.text().await.unwrap().contains("1.000 karakter"));
    let response = dash
        .post(&path, &[("status", "closed"), ("csrf", &csrf)])
        .await;
    assert_eq!(response.status(), 400);
    // Another merchant's session, with its own valid token: a 404, as for an unknown id.
    let stranger = Dash::login(&server, &other_token).await;
    let response = stranger
        .post(&path, &[("status", "resolved"), ("csrf", &stranger.csrf)])
        .await;
    assert_eq!(response.status(), 404);
    let strangers_page = stranger.page("/dashboard/feedback").await;
    assert!(!strangers_page.contains("paket rusak") && !strangers_page.contains("Dewi"));
    for unknown in ["999999", "abc", "0"] {
        let response = dash
            .post(
                &format!("/dashboard/feedback/complaints/{unknown}"),
                &[("status", "resolved"), ("csrf", &csrf)],
            )
            .await;
        assert_eq!(response.status(), 404, "{unknown}");
    }
    assert_eq!(
        complaint(store, &merchant, complaint_id).await,
        untouched,
        "nothing changed"
    );

    // In progress with a note, then resolved with an empty note, which keeps it.
    let response = dash
        .post(
            &path,
            &[
                ("status", "in_progress"),
                ("note", "Dicek ke gudang <b>besok</b>"),
                ("csrf", &csrf),
            ],
        )
        .await;
    assert_eq!(response.status(), 303);
    assert_eq!(
        response.headers()[LOCATION],
        format!("/dashboard/feedback#complaint-{complaint_id}").as_str()
    );
    let moved = complaint(store, &merchant, complaint_id).await;
    assert_eq!(
        (moved.status, moved.note.as_deref(), moved.resolved_by),
        (
            ComplaintStatus::InProgress,
            Some("Dicek ke gudang <b>besok</b>"),
            None
        )
    );
    let response = dash
        .post(
            &path,
            &[("status", "resolved"), ("note", ""), ("csrf", &csrf)],
        )
        .await;
    assert_eq!(response.status(), 303);
    let resolved = complaint(store, &merchant, complaint_id).await;
    assert_eq!(resolved.status, ComplaintStatus::Resolved);
    assert_eq!(
        resolved.note.as_deref(),
        Some("Dicek ke gudang <b>besok</b>")
    );
    assert_eq!(resolved.resolved_by.as_deref(), Some("dashboard"));
    assert!(resolved.resolved_at.is_some());
    assert!(store
        .complaints(&merchant, Some(ComplaintStatus::Open), first(10))
        .await
        .unwrap()
        .items
        .is_empty());

    // The page shows it resolved, by the dashboard, with the note escaped.
    let html = dash.page("/dashboard/feedback").await;
    assert!(html.contains("data-kpi=\"unresolved\"><a href=\"#complaints\">0<"));
    let article = section(
        &html,
        &format!("id=\"complaint-{complaint_id}\""),
        "</article>",
    );
    assert!(article.contains("Selesai") && article.contains("Diselesaikan oleh dasbor"));
    assert!(article.contains("&lt;b&gt;besok&lt;&#x2f;b&gt;") && !article.contains("<b>besok"));
    assert!(section(&html, "id=\"complaints\"", "</section>").contains("Tidak ada keluhan terbuka"));
}
