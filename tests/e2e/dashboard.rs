//! The dashboard through the real binary: every page for an empty merchant and for the
//! CDNOW history, login and sessions, the login rate limit, CSRF on every form, tenant
//! isolation on every route (pages and API), and (with `--features browser-tests`) a real
//! browser, Debian's Chromium, that logs in and reads the pages without a console error or
//! a request to another host, resolves a complaint through its form, and answers a feedback
//! link on a phone's width.

use std::collections::BTreeSet;
use std::sync::Arc;

use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use reqwest::redirect::Policy;
use serde_json::Value;
use setia_core::MerchantId;
use setia_store::engagement::ComplaintStatus;
use setia_store::Store;

use crate::feedback_dashboard::a_complaint;
use crate::support::between;
use crate::support::{api_json, fixture, Process, Setia};
use crate::webhooks::{merchant_with_secret, sign};

crate::on_every_backend!(
    every_page_renders_for_an_empty_merchant,
    every_page_renders_for_the_cdnow_history,
    login_sessions_and_the_rate_limit,
    every_form_needs_its_csrf_token,
    another_merchants_records_are_404_on_every_route,
);

/// Every page a logged-in merchant can open (GET), in both states.
const PAGES: [&str; 19] = [
    "/dashboard/overview",
    "/dashboard/cohorts",
    "/dashboard/cohorts?period=week",
    "/dashboard/customers",
    "/dashboard/customers?view=all",
    "/dashboard/customers?q=ab",
    "/dashboard/customers?segment=champions",
    "/dashboard/feedback",
    "/dashboard/feedback?period=month",
    "/dashboard/feedback?score=1",
    "/dashboard/campaigns",
    "/dashboard/loyalty",
    "/dashboard/payments",
    "/dashboard/payments?view=unattributed",
    "/dashboard/payments?view=quarantine",
    "/dashboard/payments?view=audit",
    "/dashboard/emails",
    "/dashboard/emails?status=failed",
    "/dashboard/emails/preview/thank_you",
];

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(Policy::none())
        .build()
        .unwrap()
}

/// The `name=value` of a Set-Cookie for `name`, and the whole header.
fn set_cookie(response: &reqwest::Response, name: &str) -> Option<(String, String)> {
    response
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .map(|v| {
            let pair = v.split(';').next().unwrap_or_default().to_owned();
            (pair, v.to_owned())
        })
}

/// The value of `<input … name="NAME" value="…">` in a page.
pub(crate) fn input_value(html: &str, name: &str) -> Option<String> {
    let at = html.find(&format!("name=\"{name}\" value=\""))?;
    let rest = &html[at + name.len() + 15..];
    Some(rest[..rest.find('"')?].to_owned())
}

/// A logged-in browser-less client: its cookies and the session's CSRF token.
pub(crate) struct Dash<'a> {
    server: &'a Process,
    client: reqwest::Client,
    cookie: String,
    pub(crate) csrf: String,
}

/// The login form's double-submit token and cookie.
async fn login_form(server: &Process, client: &reqwest::Client) -> (String, String) {
    let response = client
        .get(server.url("/dashboard/login"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let (cookie, _) = set_cookie(&response, "setia_login_csrf").expect("a login CSRF cookie");
    let html = response.text().await.unwrap();
    (cookie, input_value(&html, "csrf").expect("a csrf field"))
}

async fn try_login(server: &Process, token: &str) -> reqwest::Response {
    let client = client();
    let (cookie, csrf) = login_form(server, &client).await;
    client
        .post(server.url("/dashboard/login"))
        .header(COOKIE, cookie)
        .form(&[("token", token), ("csrf", &csrf), ("next", "")])
        .send()
        .await
        .unwrap()
}

impl<'a> Dash<'a> {
    pub(crate) async fn login(server: &'a Process, token: &str) -> Dash<'a> {
        let response = try_login(server, token).await;
        assert_eq!(response.status(), 303, "a good token logs in");
        assert_eq!(response.headers()[LOCATION], "/dashboard/overview");
        let (cookie, header) = set_cookie(&response, "setia_session").expect("a session cookie");
        assert!(
            header.contains("HttpOnly") && header.contains("SameSite=Strict"),
            "{header}"
        );
        let client = client();
        let html = client
            .get(server.url("/dashboard/overview"))
            .header(COOKIE, &cookie)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let csrf = input_value(&html, "csrf").expect("the logout form's csrf");
        Dash {
            server,
            client,
            cookie,
            csrf,
        }
    }

    pub(crate) async fn send_get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(self.server.url(path))
            .header(COOKIE, &self.cookie)
            .send()
            .await
            .unwrap()
    }

    pub(crate) async fn get(&self, path: &str) -> (u16, String) {
        let response = self.send_get(path).await;
        let status = response.status().as_u16();
        (status, response.text().await.unwrap())
    }

    pub(crate) async fn page(&self, path: &str) -> String {
        let (status, body) = self.get(path).await;
        assert_eq!(status, 200, "{path}: {body}");
        assert!(body.contains("</html>"), "{path} is a whole page");
        body
    }

    /// A CSV download: its file name and its records, header first.
    pub(crate) async fn csv(&self, path: &str) -> (String, Vec<Vec<String>>) {
        let response = self.send_get(path).await;
        assert_eq!(response.status(), 200, "{path}");
        let headers = response.headers().clone();
        assert_eq!(headers["content-type"], "text/csv; charset=utf-8", "{path}");
        assert_eq!(headers["cache-control"], "no-store", "{path}");
        let disposition = headers["content-disposition"].to_str().unwrap();
        let file = between(disposition, "attachment; filename=\"", "\"").to_owned();
        let body = response.bytes().await.unwrap();
        let records = csv::ReaderBuilder::new()
            .has_headers(false)
            .from_reader(&body[..])
            .records()
            .map(|r| r.unwrap().iter().map(str::to_owned).collect())
            .collect();
        (file, records)
    }

    pub(crate) async fn post(&self, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
        self.client
            .post(self.server.url(path))
            .header(COOKIE, &self.cookie)
            .form(form)
            .send()
            .await
            .unwrap()
    }
}

fn serve_without_worker(setia: &Setia) -> Process {
    setia.start(&["serve", "--listen", "127.0.0.1:0", "--no-worker"], &[])
}

fn token_of(created: &Value) -> String {
    created["api_token"].as_str().unwrap().to_owned()
}

async fn every_page_renders_for_an_empty_merchant(setia: Setia) {
    let created = setia.create_merchant("Toko Kosong");
    let server = serve_without_worker(&setia);
    let dash = Dash::login(&server, &token_of(&created)).await;
    for path in PAGES {
        let body = dash.page(path).await;
        assert!(body.contains("Toko Kosong"), "{path} names the merchant");
        assert!(
            body.contains("lang=\"id\""),
            "{path} is Indonesian by default"
        );
    }
    let overview = dash.page("/dashboard/overview").await;
    assert!(overview.contains("Belum ada snapshot metrik"));
    assert!(overview.contains(&format!(
        "setia metrics --merchant {}",
        created["id"].as_str().unwrap()
    )));
    assert!(dash
        .page("/dashboard/payments?view=unattributed")
        .await
        .contains("Semua pembayaran sudah dikenali"));
    assert!(dash
        .page("/dashboard/customers?view=all")
        .await
        .contains("Belum ada pelanggan"));
    // A query string or path that does not read: the dashboard's own error page, not text.
    let wrong_method = dash
        .client
        .delete(server.url("/dashboard/customers"))
        .header(COOKIE, &dash.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_method.status(), 405);
    assert!(wrong_method.headers().contains_key("allow"));
    assert!(wrong_method
        .text()
        .await
        .unwrap()
        .contains("Permintaan tidak valid"));
    for odd in [
        "/dashboard/customers?q=a&q=b",
        "/dashboard/customers/%FF%FE",
    ] {
        let (status, body) = dash.get(odd).await;
        assert_eq!(status, 400, "{odd}");
        assert!(
            body.contains("</html>") && body.contains("Permintaan tidak valid"),
            "{odd}: {body}"
        );
    }

    // English on request, remembered in a cookie.
    let response = dash
        .client
        .get(server.url("/dashboard/overview?lang=en"))
        .header(COOKIE, &dash.cookie)
        .send()
        .await
        .unwrap();
    let (lang_cookie, _) = set_cookie(&response, "setia_lang").expect("the language is remembered");
    assert!(response
        .text()
        .await
        .unwrap()
        .contains("No metric snapshot yet"));
    let english = dash
        .client
        .get(server.url("/dashboard/loyalty"))
        .header(COOKIE, format!("{}; {lang_cookie}", dash.cookie))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(english.contains("lang=\"en\"") && english.contains("Loyalty program"));

    // The same pages once a (still empty) snapshot exists.
    setia.json(&[
        "metrics",
        "--merchant",
        created["id"].as_str().unwrap(),
        "--as-of",
        "2025-01-31",
    ]);
    for path in PAGES {
        dash.page(path).await;
    }
    let overview = dash.page("/dashboard/overview").await;
    assert!(overview.contains("31 Jan 2025") && overview.contains("data-kpi=\"customers\">0<"));

    // An email preview's HTML comes with a policy of its own, for the sandboxed frame.
    let response = dash
        .client
        .get(server.url("/dashboard/emails/preview/birthday_offer/html"))
        .header(COOKIE, &dash.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let policy = response.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        policy.contains("frame-ancestors 'self'") && policy.contains("default-src 'none'"),
        "{policy}"
    );
    assert!(response.text().await.unwrap().contains("<html"));
    let page = dash.page("/dashboard/emails/preview/birthday_offer").await;
    assert!(page.contains("<iframe") && page.contains("sandbox"));

    // Unknown pages and records are a 404 page, not an error.
    for path in [
        "/dashboard/nope",
        "/dashboard/customers/cus_999999",
        "/dashboard/customers/garbage",
        "/dashboard/emails/preview/nope",
    ] {
        assert_eq!(dash.get(path).await.0, 404, "{path}");
    }
    assert_eq!(dash.get("/dashboard/cohorts?period=year").await.0, 400);
    assert_eq!(dash.get("/dashboard/feedback?period=year").await.0, 400);
    assert_eq!(dash.get("/dashboard/feedback?score=11").await.0, 400);

    // The export of a list with no rows is its header; text a spreadsheet would run as a
    // formula is exported as text, and consent withdrawn says so.
    let (_, empty) = dash.csv("/dashboard/customers.csv?view=all").await;
    assert_eq!(empty.len(), 1, "the header alone");
    let api = reqwest::Client::new();
    for (external, name, consent) in [
        ("=1+2", "@SUM(A1:A9)", false),
        ("B-2", "=HYPERLINK(\"http://evil.example\",\"klik\")", true),
    ] {
        let response = api
            .post(server.url("/api/v1/customers"))
            .bearer_auth(token_of(&created))
            .json(&serde_json::json!({"external_id": external, "name": name, "email": "-x@toko.id", "consent": consent}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }
    let (_, rows) = dash.csv("/dashboard/customers.csv?view=all").await;
    assert_eq!(
        rows[1][..4],
        [
            "B-2",
            "'=HYPERLINK(\"http://evil.example\",\"klik\")",
            "'-x@toko.id",
            "true"
        ]
    );
    assert_eq!(
        rows[2][..4],
        ["'=1+2", "'@SUM(A1:A9)", "'-x@toko.id", "false"]
    );
    assert!(rows[1][4..].iter().all(String::is_empty), "not scored yet");

    // The template preview's sample customer is nobody: its links lead to no real
    // customer's member page or unsubscribe form (the database's first customer is here).
    let (_, preview) = dash.get("/dashboard/emails/preview/thank_you/html").await;
    let preview = preview.replace("&#x2f;", "/");
    let merchant = created["id"].as_str().unwrap();
    for kind in ["/u/", "/m/"] {
        let rest = preview
            .split(&format!("{kind}{merchant}"))
            .nth(1)
            .unwrap_or_else(|| panic!("the preview has a {kind} link: {preview}"));
        let token = rest.split(['"', '<', '&', ' ']).next().unwrap();
        let path = format!("{kind}{merchant}{token}");
        let response = api.get(server.url(&path)).send().await.unwrap();
        assert_eq!(response.status(), 404, "{path}");
    }
}

/// Imports CDNOW and stores the monthly and weekly snapshots as of 1997-09-30.
fn cdnow_merchant(setia: &Setia) -> (MerchantId, Value) {
    let created = setia.create_merchant("CDNOW");
    let id = created["id"].as_str().unwrap();
    setia.json(&[
        "transactions",
        "import",
        "--merchant",
        id,
        &fixture("cdnow/cdnow_sample_transactions.csv"),
    ]);
    setia.json(&[
        "metrics",
        "--merchant",
        id,
        "--as-of",
        "1997-09-30",
        "--period",
        "week",
    ]);
    setia.json(&["metrics", "--merchant", id, "--as-of", "1997-09-30"]);
    (MerchantId::parse(id).unwrap(), created)
}

/// The customer page links in a page, in order.
fn customer_links(html: &str) -> Vec<String> {
    html.match_indices("href=\"/dashboard/customers/cus_")
        .map(|(at, _)| {
            let rest = &html[at + 6..];
            rest[..rest.find('"').unwrap()].to_owned()
        })
        .collect()
}

async fn every_page_renders_for_the_cdnow_history(setia: Setia) {
    let (merchant, created) = cdnow_merchant(&setia);
    let server = serve_without_worker(&setia);
    let dash = Dash::login(&server, &token_of(&created)).await;
    for path in PAGES {
        dash.page(path).await;
    }

    let overview = dash.page("/dashboard/overview").await;
    assert!(
        overview.contains("data-kpi=\"customers\">2.357<"),
        "customers, Indonesian digits"
    );
    assert!(overview.contains("30 Sep 1997"));
    // The card shows the revenue compact, with the exact figure on hover and in the table.
    let exact = between(&overview, "data-exact=\"revenue\">", "<");
    assert!(exact.starts_with("Rp "), "{exact}");
    let card = between(&overview, "data-kpi=\"revenue\" title=\"", "<");
    let (hover, shown) = card.split_once("\">").unwrap();
    assert_eq!(hover, exact);
    assert!(
        shown.starts_with("Rp ") && shown.ends_with(" rb"),
        "compact thousands of Rupiah: {shown}"
    );
    assert_eq!(
        overview.matches("<svg class=\"chart\"").count(),
        2,
        "trend and revenue charts"
    );
    assert!(overview.contains("Sep 1997"), "revenue by month");

    let cohorts = dash.page("/dashboard/cohorts").await;
    assert!(cohorts.contains("Jan 1997") && cohorts.contains("Mar 1997"));
    assert!(cohorts.contains("100%"), "the first period of each cohort");
    assert_eq!(
        cohorts.matches("<svg class=\"chart\"").count(),
        2,
        "two heatmaps"
    );
    let weekly = dash.page("/dashboard/cohorts?period=week").await;
    assert!(weekly.contains("1997-W01"), "weekly cohorts");
    assert!(
        weekly.contains("periode yang masih berjalan") || weekly.contains("masih berjalan"),
        "1997-09-30 is a Tuesday: the last week is in progress"
    );

    // Segments, and the at-risk list by CLV.
    let customers = dash.page("/dashboard/customers").await;
    assert!(customers.contains("Juara") && customers.contains("Hibernasi"));
    let at_risk = customer_links(&customers);
    assert_eq!(at_risk.len(), 50, "a full first page");
    let store = setia.store().await;
    let first = store.at_risk_by_value(&merchant, None, 50).await.unwrap();
    let expected: Vec<String> = first
        .items
        .iter()
        .map(|c| format!("/dashboard/customers/{}", c.id))
        .collect();
    assert_eq!(at_risk, expected);
    let values: Vec<i64> = first
        .items
        .iter()
        .map(|c| {
            let s = c.scores.as_ref().unwrap();
            assert!(s.p_alive.unwrap() < 0.5 && s.frequency_days >= 2);
            s.clv_12m.map_or(-1, |m| m.minor())
        })
        .collect();
    assert!(values.windows(2).all(|w| w[0] >= w[1]), "highest CLV first");
    // Page 2 follows on, with no repeats; every page together is the snapshot's count.
    let next = first.next_cursor.unwrap().to_string();
    let page2 = customer_links(
        &dash
            .page(&format!("/dashboard/customers?view=at_risk&cursor={next}"))
            .await,
    );
    assert!(!page2.is_empty() && page2.iter().all(|l| !at_risk.contains(l)));
    let mut seen = 0;
    let mut after = None;
    loop {
        let page = store.at_risk_by_value(&merchant, after, 500).await.unwrap();
        seen += page.items.len() as u64;
        match page.next_cursor {
            Some(c) => after = Some(c),
            None => break,
        }
    }
    let report: Value = serde_json::from_str(
        &store
            .latest_snapshot(&merchant, Some("month"))
            .await
            .unwrap()
            .unwrap()
            .report,
    )
    .unwrap();
    assert_eq!(seen, report["churn"]["customers_at_risk"].as_u64().unwrap());

    // A customer's page: purchases with how they were attributed, points, tier.
    let customer = dash.page(&at_risk[0]).await;
    assert!(customer.contains("impor"), "imported purchases say so");
    assert!(customer.contains("Rp "));
    assert!(customer.contains("Riwayat poin"));
    assert!(
        ["Bronze", "Silver", "Gold"]
            .iter()
            .any(|tier| customer.contains(tier)),
        "the tier"
    );
    // Search by external id finds them; search is case-insensitive on names and ids.
    let row = store
        .customer_by_key(
            &merchant,
            setia_core::CustomerId::parse(at_risk[0].rsplit('/').next().unwrap()).unwrap(),
        )
        .await
        .unwrap()
        .unwrap();
    let found = dash
        .page(&format!(
            "/dashboard/customers?q={}",
            row.external_id.to_lowercase()
        ))
        .await;
    assert!(customer_links(&found).contains(&at_risk[0]));
    let segment = dash.page("/dashboard/customers?segment=hibernating").await;
    assert_eq!(customer_links(&segment).len(), 50);

    // Every list downloads whole as CSV (more than one of the export's pages of 1,000), in
    // the page's order, every row from the same day's scores.
    let link =
        |list: &str| format!("href=\"/dashboard/customers.csv?{list}\"").replace('/', "&#x2f;");
    assert!(customers.contains(&link("view=at_risk")));
    assert!(segment.contains(&link("segment=hibernating")));
    let (file, rows) = dash.csv("/dashboard/customers.csv?view=at_risk").await;
    assert!(
        file.starts_with("customers-at_risk-") && file.ends_with(".csv"),
        "{file}"
    );
    assert_eq!(rows[0][0], "external_id");
    assert_eq!(rows[0].len(), 15);
    let mut expected = Vec::new();
    let mut after = None;
    loop {
        let page = store.at_risk_by_value(&merchant, after, 500).await.unwrap();
        expected.extend(page.items.iter().map(|c| c.external_id.clone()));
        match page.next_cursor {
            Some(c) => after = Some(c),
            None => break,
        }
    }
    let exported: Vec<String> = rows[1..].iter().map(|r| r[0].clone()).collect();
    assert_eq!(exported, expected, "the at-risk list, by value");
    for row in &rows[1..] {
        let p_alive: f64 = row[11].parse().unwrap();
        assert!(
            p_alive < 0.5 && row[9].parse::<i64>().unwrap() >= 2,
            "{row:?}"
        );
        assert_eq!((row[3].as_str(), row[14].as_str()), ("true", "1997-09-30"));
    }
    let (_, all) = dash.csv("/dashboard/customers.csv?view=all").await;
    let ids: BTreeSet<&String> = all[1..].iter().map(|r| &r[0]).collect();
    assert_eq!(
        (all.len() - 1, ids.len()),
        (2357, 2357),
        "every customer once"
    );
    let (file, hibernating) = dash
        .csv("/dashboard/customers.csv?segment=hibernating")
        .await;
    assert!(file.starts_with("customers-hibernating-"), "{file}");
    let counted = report["rfm"]["segments"]["hibernating"].as_u64().unwrap();
    assert_eq!(hibernating.len() as u64 - 1, counted);
    assert!(hibernating[1..].iter().all(|r| r[4] == "hibernating"));
    let (_, found) = dash
        .csv(&format!(
            "/dashboard/customers.csv?q={}",
            row.external_id.to_lowercase()
        ))
        .await;
    assert!(found[1..].iter().any(|r| r[0] == row.external_id));
    for bad in [
        "/dashboard/customers.csv?segment=nope",
        "/dashboard/customers.csv?view=all&cursor=100",
        "/dashboard/customers.csv?q=a&q=b",
    ] {
        let (status, body) = dash.get(bad).await;
        assert_eq!(status, 400, "{bad}");
        assert!(body.contains("Permintaan tidak valid"), "{bad}: {body}");
    }
    // The same lists through the API, a page of up to 500 at a time.
    let api = reqwest::Client::new();
    let token = token_of(&created);
    let list = |query: &'static str| {
        let api = api.clone();
        let token = token.clone();
        let server = &server;
        async move {
            let mut ids = Vec::new();
            let mut cursor = String::new();
            loop {
                let url = server.url(&format!(
                    "/api/v1/customers?{query}&limit=500&cursor={cursor}"
                ));
                let page = api_json(&api, url, &token).await;
                for item in page["items"].as_array().unwrap() {
                    ids.push(item["external_id"].as_str().unwrap().to_owned());
                    if query.starts_with("segment=") {
                        assert_eq!(item["scores"]["segment"], "hibernating", "{item}");
                    }
                }
                match page["next_cursor"].as_str() {
                    Some(next) => cursor = next.to_owned(),
                    None => return ids,
                }
            }
        }
    };
    assert_eq!(
        list("at_risk=true").await,
        expected,
        "by value, as the page"
    );
    assert_eq!(list("segment=hibernating").await.len() as u64, counted);
    let everyone = list("at_risk=false").await;
    assert_eq!(everyone.len(), 2357);
    let exported_all: Vec<String> = all[1..].iter().map(|r| r[0].clone()).collect();
    assert_eq!(everyone, exported_all, "newest first, as the export");
    let first = api_json(
        &api,
        server.url("/api/v1/customers?at_risk=true&limit=1"),
        &token,
    )
    .await;
    assert_eq!(first["items"][0]["marketing_consent"], true);
    assert_eq!(first["items"][0]["scores"]["as_of"], "1997-09-30");
    let value_cursor = first["next_cursor"].as_str().unwrap().to_owned();
    for bad in [
        "segment=nope".to_owned(),
        "segment=loyal&at_risk=true".to_owned(),
        "q=abc&segment=loyal".to_owned(),
        "at_risk=maybe".to_owned(),
        "limit=0".to_owned(),
        format!("cursor={value_cursor}"),
    ] {
        let response = api
            .get(server.url(&format!("/api/v1/customers?{bad}")))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{bad}");
        let error: Value = response.json().await.unwrap();
        assert_eq!(error["error"]["code"], "bad_request", "{bad}");
    }

    let anonymous = client()
        .get(server.url("/dashboard/customers.csv?view=all"))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 303, "no session, no list");

    let loyalty = dash.page("/dashboard/loyalty").await;
    assert!(loyalty.contains("data-kpi=\"outstanding\">") && loyalty.contains("Program loyalitas"));

    // The OpenAPI document describes the metrics JSON the API really serves.
    let doc = server.openapi().await;
    let served = api_json(&api, server.url("/api/v1/metrics"), &token).await;
    let schemas = &doc["components"]["schemas"];
    let keys = |v: &Value| {
        v.as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect::<BTreeSet<_>>()
    };
    assert_eq!(keys(&schemas["Metrics"]["properties"]), keys(&served));
    for (part, schema) in [
        ("totals", "MetricsTotals"),
        ("churn", "MetricsChurn"),
        ("clv", "MetricsClv"),
        ("loyalty", "MetricsLoyalty"),
    ] {
        assert_eq!(
            keys(&schemas[schema]["properties"]),
            keys(&served[part]),
            "{part}"
        );
    }
    assert_eq!(
        keys(&schemas["MetricsCohort"]["properties"]),
        keys(&served["cohorts"][0])
    );
}

/// The raw SHA-256 hex of a text, as the store keeps session secrets.
fn sha256_hex(text: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(text.as_bytes()))
}

async fn login_sessions_and_the_rate_limit(setia: Setia) {
    let created = setia.create_merchant("Toko");
    let server = serve_without_worker(&setia);
    let anonymous = client();

    // Without a session every page sends the visitor to the login page, and comes back.
    for path in PAGES {
        let response = anonymous.get(server.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 303, "{path}");
        let location = response.headers()[LOCATION].to_str().unwrap().to_owned();
        assert!(
            location.starts_with("/dashboard/login?next=/dashboard/"),
            "{path}: {location}"
        );
    }
    let response = anonymous
        .get(server.url("/dashboard/emails/preview/thank_you/html"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303);
    // A forged or expired cookie is no session either.
    let response = anonymous
        .get(server.url("/dashboard/overview"))
        .header(COOKIE, format!("setia_session={}", "ab".repeat(32)))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303);

    // `next` brings the merchant back to the page they wanted, never to another host.
    let client = client();
    let (cookie, csrf) = login_form(&server, &client).await;
    let response = client
        .post(server.url("/dashboard/login"))
        .header(COOKIE, &cookie)
        .form(&[
            ("token", token_of(&created).as_str()),
            ("csrf", &csrf),
            ("next", "/dashboard/cohorts?period=week"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.headers()[LOCATION],
        "/dashboard/cohorts?period=week"
    );
    let (cookie, csrf) = login_form(&server, &client).await;
    let response = client
        .post(server.url("/dashboard/login"))
        .header(COOKIE, &cookie)
        .form(&[
            ("token", token_of(&created).as_str()),
            ("csrf", &csrf),
            ("next", "//evil.example/x"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.headers()[LOCATION],
        "/dashboard/overview",
        "never to another host"
    );

    // The store keeps only a hash of the session secret.
    let dash = Dash::login(&server, &token_of(&created)).await;
    let secret = dash.cookie.strip_prefix("setia_session=").unwrap();
    let store = setia.store().await;
    let now = chrono::Utc::now();
    assert!(store
        .dashboard_session(secret, now)
        .await
        .unwrap()
        .is_none());
    assert!(store
        .dashboard_session(&sha256_hex(secret), now)
        .await
        .unwrap()
        .is_some());
    assert!(
        !dash.csrf.is_empty() && !secret.contains(&dash.csrf) && dash.csrf != sha256_hex(secret)
    );

    // Logout ends the session: the old cookie no longer opens a page.
    let response = dash
        .post("/dashboard/logout", &[("csrf", &dash.csrf)])
        .await;
    assert_eq!(response.status(), 303);
    assert_eq!(response.headers()[LOCATION], "/dashboard/login");
    assert!(set_cookie(&response, "setia_session")
        .unwrap()
        .1
        .contains("Max-Age=0"));
    assert_eq!(dash.get("/dashboard/overview").await.0, 303);

    // A wrong token is refused with a message; after ten failures from one address even
    // the right token is refused for a while.
    let response = try_login(&server, "stk_wrong").await;
    assert_eq!(response.status(), 401);
    assert!(response
        .text()
        .await
        .unwrap()
        .contains("Token tidak dikenali"));
    for _ in 0..9 {
        assert_eq!(try_login(&server, "stk_wrong").await.status(), 401);
    }
    let response = try_login(&server, &token_of(&created)).await;
    assert_eq!(response.status(), 429, "rate-limited");
    assert!(response.headers().contains_key("retry-after"));
    assert!(response
        .text()
        .await
        .unwrap()
        .contains("Terlalu banyak percobaan"));

    // Secure cookies when the public URL is https.
    let secure = setia.start(
        &["serve", "--listen", "127.0.0.1:0", "--no-worker"],
        &[("SETIA_PUBLIC_URL", "https://setia.example")],
    );
    let response = try_login(&secure, &token_of(&created)).await;
    let (_, header) = set_cookie(&response, "setia_session").unwrap();
    assert!(
        header.contains("; Secure") && header.contains("HttpOnly"),
        "{header}"
    );
    let (_, plain) =
        set_cookie(&try_login(&server, "stk_x").await, "setia_login_csrf").unwrap_or_default();
    assert!(!plain.contains("Secure"));
}

/// Pushes one payment no rule can attribute and processes the inbox; returns its id.
async fn unattributed_purchase(
    setia: &Setia,
    server: &Process,
    merchant: &MerchantId,
    n: usize,
) -> String {
    let body = format!(
        r#"[{{"mutation_id":"dash-{n}","account_number":"1234567890","date":"2025-06-01 10:00:00","description":"TRSF E-BANKING CR PEMBELI TANPA NAMA {n}","amount":{},"type":"CR","balance":0,"bank":{{"bank_type":"bca"}}}}]"#,
        150_000 + n
    )
    .into_bytes();
    let signature = sign(&body);
    let response = reqwest::Client::new()
        .post(server.url(&format!("/webhooks/moota/{merchant}")))
        .header("Signature", signature)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let store = setia.store().await;
    let worker = setia_worker::Worker::new(store.clone(), setia_worker::WorkerConfig::default());
    worker.run_once(chrono::Utc::now()).await.unwrap();
    let page = store
        .purchases(
            merchant,
            Some(false),
            setia_store::PageRequest {
                before: None,
                limit: 10,
            },
        )
        .await
        .unwrap();
    page.items
        .iter()
        .find(|p| p.mutation_id.as_deref() == Some(&format!("dash-{n}")))
        .expect("the payment waits in the unattributed queue")
        .id
        .to_string()
}

pub(crate) async fn add_customer(
    store: &Arc<dyn Store>,
    merchant: &MerchantId,
    external: &str,
    name: &str,
) {
    use setia_core::customer::{CustomerName, ExternalId};
    store
        .upsert_customer(
            merchant,
            &ExternalId::parse(external).unwrap(),
            &setia_store::CustomerPatch {
                name: Some(CustomerName::parse(name).unwrap()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
}

async fn complaint_status(
    store: &Arc<dyn Store>,
    merchant: &MerchantId,
    complaint: i64,
) -> ComplaintStatus {
    store
        .complaint(merchant, complaint)
        .await
        .unwrap()
        .expect("the merchant's complaint")
        .status
}

async fn every_form_needs_its_csrf_token(setia: Setia) {
    let (merchant, token) = merchant_with_secret(&setia);
    let server = serve_without_worker(&setia);
    let store = setia.store().await;
    add_customer(&store, &merchant, "C-1", "Siti Rahayu").await;
    let complaint = a_complaint(&setia, &*store, &merchant, "C-1", "Paket rusak").await;
    let purchase = unattributed_purchase(&setia, &server, &merchant, 1).await;
    let dash = Dash::login(&server, &token).await;

    // Login: no cookie, no field, or a field that does not match the cookie.
    let bare = client();
    let response = bare
        .post(server.url("/dashboard/login"))
        .form(&[("token", token.as_str()), ("csrf", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403, "no login CSRF cookie");
    let (cookie, _) = login_form(&server, &bare).await;
    for csrf in ["", "0123456789abcdef0123456789abcdef"] {
        let response = bare
            .post(server.url("/dashboard/login"))
            .header(COOKIE, &cookie)
            .form(&[("token", token.as_str()), ("csrf", csrf)])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 403, "login with csrf {csrf:?}");
        assert!(set_cookie(&response, "setia_session").is_none());
    }

    // Attribute and logout: without the token, with another, and with another session's.
    let other_session = Dash::login(&server, &token).await;
    let attribute = format!("/dashboard/payments/{purchase}/attribute");
    for form in [
        vec![("customer_external_id", "C-1")],
        vec![("customer_external_id", "C-1"), ("csrf", "")],
        vec![("customer_external_id", "C-1"), ("csrf", "deadbeef")],
        vec![
            ("customer_external_id", "C-1"),
            ("csrf", other_session.csrf.as_str()),
        ],
    ] {
        let response = dash.post(&attribute, &form).await;
        assert_eq!(response.status(), 403, "{form:?}");
        assert!(response.text().await.unwrap().contains("403"));
    }
    for form in [vec![], vec![("csrf", "deadbeef")]] {
        assert_eq!(dash.post("/dashboard/logout", &form).await.status(), 403);
    }
    // The complaint form, the same way.
    let complaint_form = format!("/dashboard/feedback/complaints/{complaint}");
    for form in [
        vec![("status", "resolved")],
        vec![("status", "resolved"), ("csrf", "")],
        vec![("status", "resolved"), ("csrf", "deadbeef")],
        vec![
            ("status", "resolved"),
            ("csrf", other_session.csrf.as_str()),
        ],
    ] {
        let response = dash.post(&complaint_form, &form).await;
        assert_eq!(response.status(), 403, "{form:?}");
    }
    assert_eq!(
        complaint_status(&store, &merchant, complaint).await,
        ComplaintStatus::Open
    );
    // The Moota settings form, the same way.
    for form in [
        vec![("moota_token", "forged-token"), ("moota_banks", "bnk_1")],
        vec![("moota_token", "forged-token"), ("csrf", "")],
        vec![("moota_token", "forged-token"), ("csrf", "deadbeef")],
        vec![
            ("moota_token", "forged-token"),
            ("csrf", other_session.csrf.as_str()),
        ],
    ] {
        let response = dash.post("/dashboard/payments/moota", &form).await;
        assert_eq!(response.status(), 403, "{form:?}");
    }
    assert_eq!(
        store.moota_settings(&merchant).await.unwrap(),
        Default::default(),
        "no Moota token or bank was set"
    );
    assert_eq!(
        dash.get("/dashboard/overview").await.0,
        200,
        "still logged in"
    );
    let queue = store
        .purchases(
            &merchant,
            Some(false),
            setia_store::PageRequest {
                before: None,
                limit: 10,
            },
        )
        .await
        .unwrap();
    assert_eq!(queue.items.len(), 1, "nothing was attributed");

    // With the session's token the forms work.
    let response = dash
        .post(
            &attribute,
            &[("customer_external_id", "C-404"), ("csrf", &dash.csrf)],
        )
        .await;
    assert_eq!(response.status(), 303);
    let location = response.headers()[LOCATION].to_str().unwrap().to_owned();
    assert!(location.contains("error=unknown_customer"));
    assert!(dash
        .page(&location)
        .await
        .contains("Tidak ada pelanggan dengan ID itu"));
    // An order that is not there, or an id that cannot be one: said, and nothing changes.
    for (order, error, says) in [
        ("O-404", "unknown_order", "Tidak ada pesanan dengan ID itu"),
        ("O 1\u{7}", "bad_order", "ID pesanan itu tidak valid"),
    ] {
        let response = dash
            .post(
                &attribute,
                &[
                    ("customer_external_id", "C-1"),
                    ("order_external_id", order),
                    ("csrf", &dash.csrf),
                ],
            )
            .await;
        let location = response.headers()[LOCATION].to_str().unwrap().to_owned();
        assert!(location.contains(&format!("error={error}")), "{location}");
        assert!(dash.page(&location).await.contains(says));
    }
    let response = dash
        .post(
            &attribute,
            &[("customer_external_id", "C-1"), ("csrf", &dash.csrf)],
        )
        .await;
    assert_eq!(response.status(), 303);
    let location = response.headers()[LOCATION].to_str().unwrap().to_owned();
    assert!(dash.page(&location).await.contains("Pembayaran ditetapkan"));
    let queue = store
        .purchases(
            &merchant,
            Some(false),
            setia_store::PageRequest {
                before: None,
                limit: 10,
            },
        )
        .await
        .unwrap();
    assert!(queue.items.is_empty(), "attributed");
    let response = dash
        .post(
            &complaint_form,
            &[("status", "resolved"), ("csrf", &dash.csrf)],
        )
        .await;
    assert_eq!(response.status(), 303);
    assert_eq!(
        complaint_status(&store, &merchant, complaint).await,
        ComplaintStatus::Resolved
    );
    let response = dash
        .post(
            "/dashboard/payments/moota",
            &[
                ("moota_token", "a-real-token"),
                ("moota_banks", "bnk_1"),
                ("csrf", &dash.csrf),
            ],
        )
        .await;
    assert_eq!(response.status(), 303);
    let moota = store.moota_settings(&merchant).await.unwrap();
    assert_eq!(
        (
            moota.token.as_ref().map(|t| t.expose().to_owned()),
            moota.banks.len()
        ),
        (Some("a-real-token".to_owned()), 1)
    );
    let customer_page = dash.page("/dashboard/customers?q=siti").await;
    let link = customer_links(&customer_page).pop().expect("Siti is found");
    assert!(
        dash.page(&link).await.contains("manual"),
        "the purchase shows how it was attributed"
    );
    let mutations = dash.page("/dashboard/payments").await;
    assert!(mutations.contains("PEMBELI TANPA NAMA 1") && mutations.contains("manual"));
    assert!(dash
        .post(
            &attribute,
            &[("customer_external_id", "C-1"), ("csrf", &dash.csrf)]
        )
        .await
        .headers()[LOCATION]
        .to_str()
        .unwrap()
        .contains("already_attributed"));
}

async fn another_merchants_records_are_404_on_every_route(setia: Setia) {
    let (a, a_token) = merchant_with_secret(&setia);
    let b_created = setia.create_merchant("Toko Lain");
    let b = MerchantId::parse(b_created["id"].as_str().unwrap()).unwrap();
    let b_token = token_of(&b_created);
    let server = serve_without_worker(&setia);
    let store = setia.store().await;
    add_customer(&store, &a, "A-SECRET-1", "Rahasia Pelanggan A").await;
    add_customer(&store, &b, "B-1", "Pelanggan B").await;
    let a_purchase = unattributed_purchase(&setia, &server, &a, 7).await;
    let a_complaint = a_complaint(&setia, &*store, &a, "A-SECRET-1", "Rahasia keluhan").await;
    let a_customer = store
        .customer(
            &a,
            &setia_core::customer::ExternalId::parse("A-SECRET-1").unwrap(),
        )
        .await
        .unwrap()
        .unwrap()
        .id
        .to_string();
    let api = reqwest::Client::new();
    let order: Value = api
        .post(server.url("/api/v1/orders"))
        .bearer_auth(&a_token)
        .json(&serde_json::json!({"external_id": "ORD-A", "customer_external_id": "A-SECRET-1", "amount": "125000"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(order["external_id"], "ORD-A");

    // A's Moota token, banks and a failed sync: B sees none of them and cannot change them.
    let a_moota_token = setia_core::moota_api::MootaToken::parse("tokenA.Rahasia.7q").unwrap();
    let a_banks = [setia_core::moota_api::MootaBankId::parse("Rahasia_bank_A").unwrap()];
    store
        .set_moota_settings(&a, Some(&a_moota_token), Some(&a_banks))
        .await
        .unwrap();
    let window = setia_core::moota_api::SyncWindow::new(
        chrono::NaiveDate::from_ymd_opt(2025, 6, 1).unwrap(),
        chrono::NaiveDate::from_ymd_opt(2025, 6, 2).unwrap(),
    )
    .unwrap();
    let a_sync = store
        .start_moota_sync(
            &a,
            setia_store::reconcile::SyncStarter::Command,
            window,
            chrono::Utc::now(),
        )
        .await
        .unwrap();
    store
        .finish_moota_sync(
            &a,
            a_sync,
            setia_store::reconcile::SyncCounts::default(),
            Some("Rahasia sync error"),
            chrono::Utc::now(),
        )
        .await
        .unwrap();
    let a_moota = store.moota_settings(&a).await.unwrap();

    // B's dashboard: A's records do not exist, on every page and form.
    let dash = Dash::login(&server, &b_token).await;
    // B's Moota form changes B's settings only: the merchant is the session's.
    let response = dash
        .post(
            "/dashboard/payments/moota",
            &[
                ("moota_token", "b-moota-token"),
                ("moota_banks", "bnk_b"),
                ("merchant", a.as_str()),
                ("csrf", &dash.csrf),
            ],
        )
        .await;
    assert_eq!(response.status(), 303);
    assert_eq!(
        store.moota_settings(&a).await.unwrap(),
        a_moota,
        "A's Moota settings are untouched"
    );
    assert_eq!(
        store
            .moota_settings(&b)
            .await
            .unwrap()
            .token
            .map(|t| t.expose().to_owned())
            .as_deref(),
        Some("b-moota-token")
    );
    assert_eq!(
        dash.get(&format!("/dashboard/customers/{a_customer}"))
            .await
            .0,
        404
    );
    let response = dash
        .post(
            &format!("/dashboard/payments/{a_purchase}/attribute"),
            &[("customer_external_id", "B-1"), ("csrf", &dash.csrf)],
        )
        .await;
    assert_eq!(response.status(), 404);
    let queue = store
        .purchases(
            &a,
            Some(false),
            setia_store::PageRequest {
                before: None,
                limit: 10,
            },
        )
        .await
        .unwrap();
    assert_eq!(queue.items.len(), 1, "A's payment is untouched");
    let response = dash
        .post(
            &format!("/dashboard/feedback/complaints/{a_complaint}"),
            &[("status", "resolved"), ("note", "B"), ("csrf", &dash.csrf)],
        )
        .await;
    assert_eq!(response.status(), 404);
    let untouched = store.complaint(&a, a_complaint).await.unwrap().unwrap();
    assert_eq!(
        (untouched.status, untouched.note),
        (ComplaintStatus::Open, None),
        "A's complaint is untouched"
    );
    for path in PAGES.iter().copied().chain([
        "/dashboard/customers?q=rahasia",
        "/dashboard/customers?q=A-SECRET-1",
        "/dashboard/payments?view=mutations",
    ]) {
        let (status, body) = dash.get(path).await;
        assert_eq!(status, 200, "{path}");
        assert!(
            customer_links(&body)
                .iter()
                .all(|l| !l.ends_with(&a_customer)),
            "{path} links to A's customer"
        );
        for secret in [
            "Rahasia",
            "A-SECRET-1",
            a_purchase.as_str(),
            a_customer.as_str(),
            "PEMBELI TANPA NAMA 7",
            a.as_str(),
        ] {
            // A search page repeats what was searched for, and nothing else.
            let shown = body.matches(secret).count();
            let echoed = if path.contains(&format!("q={secret}")) {
                2
            } else {
                0
            };
            assert!(shown <= echoed, "{path} shows A's {secret}");
        }
    }
    for path in [
        "/dashboard/customers.csv?view=all",
        "/dashboard/customers.csv?q=rahasia",
        "/dashboard/customers.csv?q=A-SECRET-1",
    ] {
        let (_, rows) = dash.csv(path).await;
        let text = format!("{rows:?}");
        assert!(
            !text.contains("Rahasia") && !text.contains("A-SECRET-1"),
            "{path} exports A's customer"
        );
    }
    // A sees its own.
    let a_dash = Dash::login(&server, &a_token).await;
    let (_, a_rows) = a_dash.csv("/dashboard/customers.csv?view=all").await;
    assert!(a_rows[1..]
        .iter()
        .any(|r| r[0] == "A-SECRET-1" && r[1] == "Rahasia Pelanggan A"));
    assert!(a_dash
        .page(&format!("/dashboard/customers/{a_customer}"))
        .await
        .contains("Rahasia Pelanggan A"));
    let a_payments = a_dash.page("/dashboard/payments?view=unattributed").await;
    assert!(a_payments.contains(&a_purchase));
    assert!(a_payments.contains("Rahasia_bank_A") && a_payments.contains("Rahasia sync error"));
    assert!(
        !a_payments.contains("tokenA"),
        "not even A's own page shows its token"
    );
    assert!(a_dash
        .page("/dashboard/feedback")
        .await
        .contains(&format!("id=\"complaint-{a_complaint}\"")));

    // B's API token: every route naming one of A's records is a 404.
    let call = |method: reqwest::Method, path: String, body: Option<Value>| {
        let mut request = api.request(method, server.url(&path)).bearer_auth(&b_token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        request.send()
    };
    for (method, path, body) in [
        (
            reqwest::Method::GET,
            "/api/v1/customers/A-SECRET-1".to_owned(),
            None,
        ),
        (
            reqwest::Method::POST,
            "/api/v1/customers/A-SECRET-1/redemptions".to_owned(),
            Some(serde_json::json!({"points": 1, "idempotency_key": "k", "reason": "r"})),
        ),
        (
            reqwest::Method::GET,
            "/api/v1/orders/ORD-A".to_owned(),
            None,
        ),
        (
            reqwest::Method::POST,
            format!("/api/v1/purchases/{a_purchase}/attribute"),
            Some(serde_json::json!({"customer_external_id": "B-1"})),
        ),
        (
            reqwest::Method::POST,
            format!("/api/v1/purchases/{a_purchase}/refund"),
            None,
        ),
    ] {
        let response = call(method.clone(), path.clone(), body).await.unwrap();
        assert_eq!(response.status(), 404, "{method} {path}");
        let error: Value = response.json().await.unwrap();
        assert_eq!(error["error"]["code"], "not_found");
    }
    // And B's lists hold none of A's rows.
    for path in [
        "/api/v1/customers",
        "/api/v1/customers?q=rahasia",
        "/api/v1/customers?q=A-SECRET-1",
        "/api/v1/purchases",
        "/api/v1/purchases?attributed=false",
        "/api/v1/webhooks/deliveries",
        "/api/v1/webhooks/quarantine",
        "/api/v1/outbox",
    ] {
        let body = call(reqwest::Method::GET, path.to_owned(), None)
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            !body.contains(&a_purchase) && !body.contains("A-SECRET-1"),
            "{path}: {body}"
        );
    }
    let queue = store
        .purchases(
            &a,
            Some(false),
            setia_store::PageRequest {
                before: None,
                limit: 10,
            },
        )
        .await
        .unwrap();
    assert_eq!(
        queue.items.len(),
        1,
        "A's payment is still A's and unattributed"
    );
}

// ----------------------------------------------------------------------------------------
// A real browser: compiled with `--features browser-tests` (.ci/run installs Chromium and
// turns it on), so a machine without Chromium has no test that cannot pass.

#[cfg(feature = "browser-tests")]
#[tokio::test]
async fn a_real_browser_logs_in_and_reads_the_dashboard() {
    use chromiumoxide::browser::{Browser, BrowserConfig};
    use chromiumoxide::cdp::browser_protocol::log::{EnableParams as LogEnable, EventEntryAdded};
    use chromiumoxide::cdp::browser_protocol::network::EventRequestWillBeSent;
    use chromiumoxide::cdp::browser_protocol::page::CaptureScreenshotFormat;
    use chromiumoxide::cdp::js_protocol::runtime::{
        ConsoleApiCalledType, EventConsoleApiCalled, EventExceptionThrown,
    };
    use chromiumoxide::page::ScreenshotParams;
    use futures_util::StreamExt;
    use std::path::PathBuf;
    use std::time::Duration;

    const CHROMIUM: &str = "/usr/bin/chromium";
    assert!(
        std::path::Path::new(CHROMIUM).exists(),
        "{CHROMIUM} is missing: install Debian's chromium package (.ci/run does)"
    );
    let setia = Setia::on(setia_store::testing::TestDatabase::sqlite());
    let (merchant, created) = cdnow_merchant(&setia);
    let server = serve_without_worker(&setia);
    let origin = server.url("");
    let store = setia.store().await;
    let customer = store
        .at_risk_by_value(&merchant, None, 1)
        .await
        .unwrap()
        .items[0]
        .id
        .to_string();

    let profile = tempfile::tempdir().unwrap();
    let config = BrowserConfig::builder()
        .chrome_executable(CHROMIUM)
        .user_data_dir(profile.path())
        .no_sandbox()
        .window_size(1280, 900)
        .args([
            "disable-gpu",
            "disable-background-networking",
            "no-first-run",
            "disable-component-update",
            "disable-sync",
        ])
        .launch_timeout(Duration::from_secs(60))
        .request_timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    let (mut browser, mut handler) = Browser::launch(config).await.expect("Chromium starts");
    let events = tokio::spawn(async move { while handler.next().await.is_some() {} });

    let page = browser.new_page("about:blank").await.unwrap();
    page.execute(LogEnable::default()).await.unwrap();
    let mut requests = page
        .event_listener::<EventRequestWillBeSent>()
        .await
        .unwrap();
    let mut console = page
        .event_listener::<EventConsoleApiCalled>()
        .await
        .unwrap();
    let mut exceptions = page.event_listener::<EventExceptionThrown>().await.unwrap();
    let mut log = page.event_listener::<EventEntryAdded>().await.unwrap();
    let seen_requests = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let problems = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let collectors = {
        let (seen, problems_a, problems_b, problems_c) = (
            seen_requests.clone(),
            problems.clone(),
            problems.clone(),
            problems.clone(),
        );
        vec![
            tokio::spawn(async move {
                while let Some(event) = requests.next().await {
                    seen.lock().unwrap().push(event.request.url.clone());
                }
            }),
            tokio::spawn(async move {
                while let Some(event) = console.next().await {
                    if matches!(
                        event.r#type,
                        ConsoleApiCalledType::Error
                            | ConsoleApiCalledType::Warning
                            | ConsoleApiCalledType::Assert
                    ) {
                        problems_a
                            .lock()
                            .unwrap()
                            .push(format!("console {:?}: {:?}", event.r#type, event.args));
                    }
                }
            }),
            tokio::spawn(async move {
                while let Some(event) = exceptions.next().await {
                    problems_b
                        .lock()
                        .unwrap()
                        .push(format!("exception: {:?}", event.exception_details));
                }
            }),
            tokio::spawn(async move {
                while let Some(event) = log.next().await {
                    let level = format!("{:?}", event.entry.level).to_lowercase();
                    if level.contains("error") || level.contains("warning") {
                        problems_c.lock().unwrap().push(format!(
                            "log {level}: {} {:?}",
                            event.entry.text, event.entry.url
                        ));
                    }
                }
            }),
        ]
    };

    let shots = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("dashboard-screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let shoot = |name: &str| shots.join(format!("{name}.png"));
    let full = || {
        ScreenshotParams::builder()
            .format(CaptureScreenshotFormat::Png)
            .full_page(true)
            .build()
    };

    // Log in through the form.
    page.goto(format!("{origin}/dashboard/login"))
        .await
        .unwrap();
    page.wait_for_navigation().await.unwrap();
    page.save_screenshot(full(), shoot("login")).await.unwrap();
    page.find_element("#token")
        .await
        .unwrap()
        .click()
        .await
        .unwrap()
        .type_str(token_of(&created))
        .await
        .unwrap();
    page.find_element("button[type=submit]")
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    // The form posts, the server answers 303, the browser follows: wait for the overview.
    let mut url = String::new();
    for _ in 0..150 {
        url = page.url().await.unwrap().unwrap_or_default();
        if url.ends_with("/dashboard/overview") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    if !url.ends_with("/dashboard/overview") {
        page.save_screenshot(full(), shoot("login-failed"))
            .await
            .unwrap();
    }
    assert!(
        url.ends_with("/dashboard/overview"),
        "logged in and on the overview, at {url}"
    );
    page.wait_for_navigation().await.unwrap();

    for (name, path, expect) in [
        ("overview", "/dashboard/overview", "2.357"),
        ("cohorts", "/dashboard/cohorts", "Jan 1997"),
        (
            "customer",
            &format!("/dashboard/customers/{customer}") as &str,
            "Riwayat poin",
        ),
        (
            "overview-en",
            "/dashboard/overview?lang=en",
            "Repeat purchase rate",
        ),
        ("campaigns", "/dashboard/campaigns", "Win-back"),
    ] {
        page.goto(format!("{origin}{path}")).await.unwrap();
        page.wait_for_navigation().await.unwrap();
        let html = page.content().await.unwrap();
        assert!(html.contains(expect), "{path} shows {expect:?}");
        assert!(
            // CDNOW has no win-back episodes: the campaigns page has no chart to draw.
            html.contains("<svg") || name == "customer" || name == "campaigns",
            "{path} has its charts"
        );
        page.save_screenshot(full(), shoot(name)).await.unwrap();
        if name.starts_with("overview") {
            // At 1280 px every card's figure fits its card on one line.
            let broken: Vec<String> = page
                .evaluate(
                    "Array.from(document.querySelectorAll('.kpi .value'))\
                     .filter(e => e.scrollWidth > e.clientWidth || e.getClientRects().length > 1)\
                     .map(e => e.textContent)",
                )
                .await
                .unwrap()
                .into_value()
                .unwrap();
            assert!(
                broken.is_empty(),
                "{path}: figures wider than their card: {broken:?}"
            );
        }
    }
    // Feedback: two answers (a 1 with HTML in its comment opens a complaint) and a request
    // still open, whose link the customer follows on a phone below.
    let now = chrono::Utc::now();
    let asked = crate::feedback_dashboard::requests(
        &setia,
        &*store,
        &merchant,
        &[
            ("F1", now - chrono::TimeDelta::days(3)),
            ("F2", now - chrono::TimeDelta::days(2)),
            ("F3", now - chrono::TimeDelta::days(1)),
        ],
    )
    .await;
    let feedback_answer = crate::feedback_dashboard::answer;
    assert_eq!(
        feedback_answer(&*store, &merchant, asked[0], 5, Some("Cepat sampai"), now).await,
        None
    );
    let complaint = feedback_answer(
        &*store,
        &merchant,
        asked[1],
        1,
        Some("<b>Paket</b> rusak"),
        now,
    )
    .await
    .expect("a 1 opens a complaint");
    page.goto(format!("{origin}/dashboard/feedback"))
        .await
        .unwrap();
    page.wait_for_navigation().await.unwrap();
    let html = page.content().await.unwrap();
    assert!(html.contains("<svg"), "the feedback page has its charts");
    let comment_text: String = page
        .evaluate(format!(
            "document.querySelector('#complaint-{complaint} .comment').textContent"
        ))
        .await
        .unwrap()
        .into_value()
        .unwrap();
    assert_eq!(
        comment_text, "<b>Paket</b> rusak",
        "shown as text, not markup"
    );
    page.save_screenshot(full(), shoot("feedback"))
        .await
        .unwrap();
    // The complaint's form, as a merchant fills it in: status, note, save.
    page.evaluate(format!(
        "document.querySelector('#status-{complaint}').value = 'resolved'"
    ))
    .await
    .unwrap();
    page.find_element(format!("#note-{complaint}"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap()
        .type_str("Diganti baru")
        .await
        .unwrap();
    page.find_element(format!("#complaint-{complaint} button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let mut resolved = None;
    for _ in 0..150 {
        let found = store
            .complaint(&merchant, complaint)
            .await
            .unwrap()
            .unwrap();
        if found.status == ComplaintStatus::Resolved {
            resolved = Some(found);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let resolved = resolved.expect("the browser's form resolved the complaint");
    assert_eq!(
        (resolved.note.as_deref(), resolved.resolved_by.as_deref()),
        (Some("Diganti baru"), Some("dashboard"))
    );
    page.wait_for_navigation().await.unwrap();

    // On a phone's width the overview still fits: nothing wider than the screen.
    page.execute(
        chromiumoxide::cdp::browser_protocol::emulation::SetDeviceMetricsOverrideParams::new(
            390, 844, 3.0, true,
        ),
    )
    .await
    .unwrap();
    page.goto(format!("{origin}/dashboard/overview?lang=id"))
        .await
        .unwrap();
    page.wait_for_navigation().await.unwrap();
    let overflow: i64 = page
        .evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
        .await
        .unwrap()
        .into_value()
        .unwrap();
    assert!(
        overflow <= 0,
        "the overview scrolls sideways on a phone by {overflow}px"
    );
    page.save_screenshot(full(), shoot("overview-phone"))
        .await
        .unwrap();

    // The customer's side, still on a phone: the request's link shows the chosen score
    // selected, the page fits the screen, and sending records the answer.
    let secret = crate::support::mail_secret(&*store, &merchant).await;
    let token = setia_core::mail_token::FeedbackToken::sign(&secret, &merchant, asked[2], now);
    // A full-page screenshot drops the phone's metrics: set them again.
    page.execute(
        chromiumoxide::cdp::browser_protocol::emulation::SetDeviceMetricsOverrideParams::new(
            390, 844, 3.0, true,
        ),
    )
    .await
    .unwrap();
    page.goto(format!("{origin}/f/{token}?score=4"))
        .await
        .unwrap();
    page.wait_for_navigation().await.unwrap();
    let (chosen, overflow): (String, i64) = page
        .evaluate(
            "[document.querySelector('input[name=score]:checked').value, \
              document.documentElement.scrollWidth - document.documentElement.clientWidth]",
        )
        .await
        .unwrap()
        .into_value()
        .unwrap();
    assert_eq!(chosen, "4");
    assert!(
        overflow <= 0,
        "the feedback page scrolls sideways on a phone by {overflow}px"
    );
    page.save_screenshot(full(), shoot("feedback-link-phone"))
        .await
        .unwrap();
    page.find_element("#comment")
        .await
        .unwrap()
        .click()
        .await
        .unwrap()
        .type_str("Bagus")
        .await
        .unwrap();
    page.find_element("button[type=submit]")
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let mut answered = Vec::new();
    for _ in 0..150 {
        answered = store
            .feedback_answers(
                &merchant,
                setia_store::engagement::AnswerFilter::default(),
                setia_store::PageRequest {
                    before: None,
                    limit: 10,
                },
            )
            .await
            .unwrap()
            .items
            .into_iter()
            .filter(|a| a.request_id == asked[2])
            .collect();
        if !answered.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(answered.len(), 1, "the browser's form recorded the answer");
    assert_eq!(
        (answered[0].score, answered[0].comment.as_deref()),
        (4, Some("Bagus"))
    );
    page.wait_for_navigation().await.unwrap();
    assert!(page.content().await.unwrap().contains("Terima kasih"));
    page.save_screenshot(full(), shoot("feedback-thanks"))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;

    browser.close().await.unwrap();
    let _ = browser.wait().await;
    for task in collectors {
        task.abort();
    }
    events.abort();

    let requests = seen_requests.lock().unwrap().clone();
    assert!(
        requests.iter().any(|u| u.contains("/static/setia.css")),
        "the stylesheet was loaded"
    );
    let foreign: Vec<&String> = requests
        .iter()
        .filter(|u| !(u.starts_with(&origin) || u.starts_with("data:") || u.starts_with("about:")))
        .collect();
    assert!(foreign.is_empty(), "requests to another host: {foreign:?}");
    let problems = problems.lock().unwrap().clone();
    assert!(problems.is_empty(), "console errors: {problems:#?}");
    println!("dashboard screenshots: {}", shots.display());
}
