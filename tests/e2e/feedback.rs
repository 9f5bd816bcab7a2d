//! The feedback link's page through the real binary: a GET records nothing, a POST records
//! the answer (and a low one opens a complaint), a replay adds nothing, and forged,
//! expired, another merchant's, off-scale, oversized and HTML input are refused or escaped.

use chrono::{TimeDelta, Utc};
use setia_core::engagement::FeedbackKind;
use setia_core::mail_token::FeedbackToken;
use setia_core::MerchantId;
use setia_store::engagement::{AnswerFilter, ComplaintStatus, NewFeedbackRequest};
use setia_store::{PageRequest, Store};

use crate::support::Setia;
use crate::webhooks::merchant_with_secret;

crate::on_every_backend!(the_feedback_link_records_one_answer_and_refuses_the_rest);

fn first(limit: u32) -> PageRequest {
    PageRequest {
        before: None,
        limit,
    }
}

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
        .create_feedback_requests(merchant, &[request], false, Utc::now())
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
    let secret = store
        .mail_merchant(&merchant)
        .await
        .unwrap()
        .unwrap()
        .secret;
    let other_secret = store.mail_merchant(&other).await.unwrap().unwrap().secret;
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
    let (status, shown) = get(format!("{}?score=2", page(&token))).await;
    assert_eq!(status, 200, "{shown}");
    assert!(shown.contains("value=\"2\" checked"), "{shown}");
    assert!(shown.contains("<form method=\"post\">") && !shown.contains("<script"));
    let (status, _) = get(format!("{}?score=<b>", page(&token))).await;
    assert_eq!(status, 200, "an odd score in the link preselects nothing");
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
    let (status, body) = post(
        &token,
        vec![("score", "4".into()), ("comment", "a".repeat(2_001))],
    )
    .await;
    assert_eq!(status, 400);
    assert!(body.contains("2000"), "{body}");
    let oversized = client
        .post(page(&token))
        .form(&[("score", "4".to_owned()), ("comment", "a".repeat(3 << 20))])
        .send()
        .await
        .unwrap();
    assert_eq!(oversized.status().as_u16(), 413);
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
