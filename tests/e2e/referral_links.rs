//! The referral program's public link, API and dashboard through the real binary: `/r/{code}`
//! tells a friend the offer in the shop's language with names escaped and nothing from
//! another host, and is one 404 for a forged, malformed, oversized or HTML code, a program
//! that is off and an advocate who withdrew; `referral_code` on orders and customers is
//! checked (another shop's code or a program that is off writes nothing) and recorded once
//! (a replay adds nothing; self-referral and a friend who already bought are refused with
//! their reasons); `GET /api/v1/referrals` and a customer's referral; the customers import's
//! `referral_code` column; the Loyalty page's referral section and the customer page.

use serde_json::{json, Value};
use setia_core::{ExternalId, MerchantId};

use crate::dashboard::Dash;
use crate::ledger::{payment, wait_for, Api};
use crate::mail::jakarta_wall_time;
use crate::support::between;
use crate::support::{stderr, Process, Setia};
use crate::webhooks::SECRET;

crate::on_every_backend!(
    the_link_page_shows_the_offer_and_refuses_everything_else,
    referral_codes_through_the_api_and_the_dashboard,
    the_customers_import_takes_a_referral_code_column,
);

const PUBLIC_URL: &str = "https://toko.example";
/// The merchant's own account, which transfers for orders go to.
const ACCOUNT: &str = "5550009";

/// A merchant with a known webhook secret, its id and API token.
fn merchant(setia: &Setia, name: &str, extra: &[&str]) -> (MerchantId, String) {
    let mut args = vec![
        "merchant",
        "create",
        "--name",
        name,
        "--webhook-secret",
        SECRET,
    ];
    args.extend_from_slice(extra);
    let created = setia.json(&args);
    (
        MerchantId::parse(created["id"].as_str().unwrap()).unwrap(),
        created["api_token"].as_str().unwrap().to_owned(),
    )
}

/// Turns `[referral]` on (with a 15% discount on a first order of Rp 150.000) or off.
fn referral_program(setia: &Setia, merchant: &MerchantId, enabled: bool) {
    let program = setia.write(
        &format!("engagement-{merchant}-{enabled}.toml"),
        &format!(
            "[feedback]\nenabled = false\n[referral]\nenabled = {enabled}\n\
             friend_voucher_percent = 15\nmin_first_order_rupiah = 150000\nhold_days = 7\n"
        ),
    );
    let shown = setia.json(&[
        "merchant",
        "engagement",
        "--merchant",
        merchant.as_str(),
        &program,
    ]);
    assert_eq!(shown["referral"]["enabled"], enabled, "{shown}");
}

fn serve(setia: &Setia) -> Process {
    setia.start(
        &["serve", "--listen", "127.0.0.1:0", "--no-scheduler"],
        &[("SETIA_PUBLIC_URL", PUBLIC_URL)],
    )
}

fn api<'a>(server: &'a Process, token: &str) -> Api<'a> {
    Api {
        client: reqwest::Client::new(),
        server,
        token: token.to_owned(),
    }
}

async fn customer(api: &Api<'_>, body: Value) -> Value {
    let (status, answer) = api.post("/customers", body).await;
    assert_eq!(status, 200, "{answer}");
    answer
}

/// A customer's referral answer (their code made on first use).
async fn referral_of(api: &Api<'_>, external_id: &str) -> Value {
    let (status, answer) = api.get(&format!("/customers/{external_id}/referral")).await;
    assert_eq!(status, 200, "{answer}");
    answer
}

async fn code_of(api: &Api<'_>, external_id: &str) -> String {
    referral_of(api, external_id).await["code"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Every referral of the merchant, newest first.
async fn referrals(api: &Api<'_>, query: &str) -> Vec<Value> {
    let (status, page) = api.get(&format!("/referrals{query}")).await;
    assert_eq!(status, 200, "{page}");
    page["items"].as_array().unwrap().clone()
}

fn friend_of<'a>(list: &'a [Value], friend: &str) -> Vec<&'a Value> {
    list.iter()
        .filter(|r| r["friend"]["external_id"] == friend)
        .collect()
}

/// A GET of a public page: status, headers and body.
async fn fetch(client: &reqwest::Client, url: &str) -> (u16, reqwest::header::HeaderMap, String) {
    let response = client.get(url).send().await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    (status, headers, response.text().await.unwrap())
}

/// Every value of `attribute="…"` in a page.
fn attribute_values<'a>(html: &'a str, attribute: &str) -> Vec<&'a str> {
    let needle = format!("{attribute}=\"");
    html.match_indices(&needle)
        .map(|(at, _)| {
            let rest = &html[at + needle.len()..];
            &rest[..rest.find('"').unwrap()]
        })
        .collect()
}

/// What every public link page keeps to: no script, nothing from another host, an empty
/// favicon, not cached.
fn assert_self_contained(html: &str, headers: &reqwest::header::HeaderMap) {
    assert!(!html.to_ascii_lowercase().contains("<script"), "{html}");
    for attribute in ["src", "href", "action"] {
        for value in attribute_values(html, attribute) {
            assert!(
                !value.contains("://") && !value.starts_with("//"),
                "{attribute}={value:?} loads from another host"
            );
        }
    }
    assert!(
        html.contains("<link rel=\"icon\" href=\"data:,\">"),
        "{html}"
    );
    assert!(html.contains("name=\"viewport\""), "phone-friendly");
    assert_eq!(headers["cache-control"], "no-store");
    assert!(headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let policy = headers["content-security-policy"].to_str().unwrap();
    assert!(
        policy.contains("default-src 'none'") && !policy.contains("script-src"),
        "{policy}"
    );
}

/// The one 404 every dead link gets: no echo of what was asked.
fn assert_dead_link(status: u16, html: &str, asked: &str) {
    assert_eq!(status, 404, "{asked:?}: {html}");
    assert!(html.contains("Tautan undangan ini tidak berlaku"), "{html}");
    assert!(html.contains("This invitation link is not valid"));
    if asked.len() >= 4 {
        assert!(!html.contains(asked), "the 404 repeats {asked:?}");
    }
    assert!(
        !html.contains("<b>") && !html.contains("&lt;b&gt;"),
        "{html}"
    );
}

async fn the_link_page_shows_the_offer_and_refuses_everything_else(setia: Setia) {
    let (shop, token) = merchant(&setia, "Toko <i>Kopi</i> & Co", &[]);
    referral_program(&setia, &shop, true);
    let (other, other_token) = merchant(&setia, "Toko Lain", &[]);
    referral_program(&setia, &other, true);
    let (test_shop, test_token) = merchant(&setia, "Toko Uji", &["--sandbox"]);
    referral_program(&setia, &test_shop, true);
    let server = serve(&setia);
    let shop_api = api(&server, &token);
    let other_api = api(&server, &other_token);
    let test_api = api(&server, &test_token);
    let client = reqwest::Client::new();
    let page = |code: &str| server.url(&format!("/r/{code}"));

    for (external_id, name) in [
        ("A1", "Ani <b>x</b>"),
        ("B1", "<b>Budi</b> Santoso"),
        ("W1", "Wati Consent"),
        ("U1", "Umar Unsub"),
    ] {
        customer(
            &shop_api,
            json!({"external_id": external_id, "name": name, "email": format!("{}@example.co.id", external_id.to_lowercase()), "consent": true}),
        )
        .await;
    }
    customer(&other_api, json!({"external_id": "O1", "name": "Oki"})).await;
    customer(&test_api, json!({"external_id": "T1", "name": "Tina Uji"})).await;
    let ani = referral_of(&shop_api, "A1").await;
    let ani_code = ani["code"].as_str().unwrap().to_owned();
    assert_eq!(ani_code.len(), 8);
    assert_eq!(ani["link"], format!("{PUBLIC_URL}/r/{ani_code}"));
    assert_eq!(
        code_of(&shop_api, "A1").await,
        ani_code,
        "the same code ever after"
    );
    let budi_code = code_of(&shop_api, "B1").await;
    let wati_code = code_of(&shop_api, "W1").await;
    let umar_code = code_of(&shop_api, "U1").await;
    let other_code = code_of(&other_api, "O1").await;
    let test_code = code_of(&test_api, "T1").await;

    // The offer, in Indonesian (the shop's email language), names escaped.
    let (status, headers, html) = fetch(&client, &page(&ani_code)).await;
    assert_eq!(status, 200, "{html}");
    assert_self_contained(&html, &headers);
    assert!(html.contains("<html lang=\"id\">"));
    assert!(
        html.contains(&format!(
            "<strong>Ani</strong> mengundang Anda ke <strong>Toko &lt;i&gt;Kopi&lt;/i&gt; &amp; Co</strong>: \
             diskon <strong>15%</strong> untuk pesanan pertama Anda minimal <strong>Rp 150.000</strong> \
             — pakai kode <strong>{ani_code}</strong> saat checkout."
        )),
        "{html}"
    );
    assert!(
        html.contains(&format!(">{ani_code}</p>")),
        "the code shown big"
    );
    assert!(!html.contains("<b>") && !html.contains("<i>"), "{html}");
    assert!(!html.contains("sandbox"));
    // The first name only, escaped where it holds HTML.
    let (status, _, html) = fetch(&client, &page(&budi_code)).await;
    assert_eq!(status, 200);
    assert!(
        html.contains("<strong>&lt;b&gt;Budi&lt;/b&gt;</strong> mengundang"),
        "{html}"
    );
    assert!(!html.contains("Santoso") && !html.contains("<b>"));
    // Typed as a person may: small letters, O for 0 and I or L for 1.
    let typed = ani_code.to_lowercase().replace('0', "o").replace('1', "l");
    let (status, _, html) = fetch(&client, &page(&typed)).await;
    assert_eq!(status, 200);
    assert!(html.contains(&format!(">{ani_code}</p>")));

    // In English once the shop writes to its customers in English.
    setia.json(&["mail", "language", "--merchant", shop.as_str(), "en"]);
    let (status, headers, html) = fetch(&client, &page(&ani_code)).await;
    assert_eq!(status, 200);
    assert_self_contained(&html, &headers);
    assert!(html.contains("<html lang=\"en\">"));
    assert!(
        html.contains(&format!(
            "<strong>Ani</strong> invites you to <strong>Toko &lt;i&gt;Kopi&lt;/i&gt; &amp; Co</strong>: \
             <strong>15% off</strong> your first order of at least <strong>Rp 150.000</strong> \
             — use code <strong>{ani_code}</strong> at checkout."
        )),
        "{html}"
    );
    // A sandbox shop says it is a test shop.
    let (status, _, html) = fetch(&client, &page(&test_code)).await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("toko uji coba (sandbox)"), "{html}");
    assert!(html.contains("<strong>Tina</strong> mengundang Anda ke <strong>Toko Uji</strong>"));
    // Another shop's code shows that shop, not this one.
    let (status, _, html) = fetch(&client, &page(&other_code)).await;
    assert_eq!(status, 200);
    assert!(html.contains("Toko Lain") && !html.contains("Kopi"));

    // Dead links: forged (a valid form nobody was given), malformed, oversized, HTML, bytes
    // that are not text. One 404, the input never repeated.
    let forged = {
        let mut forged = ani_code.clone();
        let last = forged.pop().unwrap();
        forged.push(if last == 'Z' { 'Y' } else { 'Z' });
        forged
    };
    for code in [
        forged.as_str(),
        "ABC",
        "ABCDEFGU",
        "ABCD-234",
        &format!("{ani_code}0"),
        &"A".repeat(5_000),
    ] {
        let (status, headers, html) = fetch(&client, &page(code)).await;
        assert_dead_link(status, &html, code);
        assert_self_contained(&html, &headers);
    }
    for (path, asked) in [
        ("%3Cb%3Ex%3C%2Fb%3E", "<b>x</b>"),
        ("%3Cscript%3Ealert(1)%3C%2Fscript%3E", "alert(1)"),
        ("%FF%FE%FD%FC%FB%FA%F9%F8", "\u{fffd}"),
        ("%00ABCDEFG", "ABCDEFG"),
    ] {
        let (status, _, html) = fetch(&client, &page(path)).await;
        assert_dead_link(status, &html, asked);
    }
    // Only GET: a POST (or any other method) is refused and changes nothing.
    for method in [
        reqwest::Method::POST,
        reqwest::Method::PUT,
        reqwest::Method::DELETE,
        reqwest::Method::PATCH,
    ] {
        let response = client
            .request(method.clone(), page(&ani_code))
            .form(&[("code", ani_code.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 405, "{method}");
    }
    assert!(
        referrals(&shop_api, "").await.is_empty(),
        "no page view or refused method recorded a referral"
    );

    // An advocate who withdrew consent, or unsubscribed, has no live link.
    customer(&shop_api, json!({"external_id": "W1", "consent": false})).await;
    let store = setia.store().await;
    let umar = store
        .customer(&shop, &ExternalId::parse("U1").unwrap())
        .await
        .unwrap()
        .unwrap()
        .id;
    store
        .unsubscribe(&shop, umar, chrono::Utc::now())
        .await
        .unwrap()
        .unwrap();
    for code in [&wati_code, &umar_code] {
        let (status, _, html) = fetch(&client, &page(code)).await;
        assert_dead_link(status, &html, code);
        assert!(!html.contains("Wati") && !html.contains("Umar"));
    }

    // A program turned off: every link of the shop is dead, and comes back when it is on.
    referral_program(&setia, &shop, false);
    for code in [&ani_code, &budi_code] {
        let (status, _, html) = fetch(&client, &page(code)).await;
        assert_dead_link(status, &html, code);
        assert!(!html.contains("Kopi"), "the 404 names no shop");
    }
    let (status, _, _) = fetch(&client, &page(&other_code)).await;
    assert_eq!(status, 200, "another shop's program is its own");
    referral_program(&setia, &shop, true);
    assert_eq!(fetch(&client, &page(&ani_code)).await.0, 200);
}

async fn referral_codes_through_the_api_and_the_dashboard(setia: Setia) {
    let (shop, token) = merchant(&setia, "Toko Sahabat", &[]);
    referral_program(&setia, &shop, true);
    let (other, other_token) = merchant(&setia, "Toko Lain", &[]);
    referral_program(&setia, &other, true);
    let (off, off_token) = merchant(&setia, "Toko Tanpa Referral", &[]);
    // A friend who bought before setia knew of the referral.
    let history = setia.write(
        "history.csv",
        "customer_external_id,occurred_at,amount,reference\nE1,2025-01-10,90000,INV-E1\n",
    );
    setia.json(&[
        "transactions",
        "import",
        "--merchant",
        shop.as_str(),
        &history,
    ]);
    let server = serve(&setia);
    let shop_api = api(&server, &token);
    let other_api = api(&server, &other_token);
    let off_api = api(&server, &off_token);

    customer(
        &shop_api,
        json!({"external_id": "A1", "name": "Ani <b>x</b>", "email": "ani@example.co.id", "consent": true}),
    )
    .await;
    customer(&other_api, json!({"external_id": "O1", "name": "Oki"})).await;
    customer(&off_api, json!({"external_id": "Z1", "name": "Zaki"})).await;

    // A customer's referral: unknown (or another shop's) is a 404; a shop whose program is
    // off gets a 409 that says so, and no code is made.
    let (status, error) = shop_api.get("/customers/NOBODY/referral").await;
    assert_eq!(
        (status, &error["error"]["code"]),
        (404, &json!("not_found"))
    );
    assert_eq!(other_api.get("/customers/A1/referral").await.0, 404);
    let (status, error) = off_api.get("/customers/Z1/referral").await;
    assert_eq!(status, 409, "{error}");
    assert_eq!(error["error"]["code"], "referral_program_off");
    assert!(error["error"]["message"]
        .as_str()
        .unwrap()
        .contains("[referral] enabled = true"));
    let ani = referral_of(&shop_api, "A1").await;
    let code = ani["code"].as_str().unwrap().to_owned();
    assert_eq!(ani["external_id"], "A1");
    assert_eq!(ani["link"], format!("{PUBLIC_URL}/r/{code}"));
    assert_eq!(
        (&ani["referred_by"], &ani["referred"]),
        (&Value::Null, &json!([]))
    );
    let other_code = code_of(&other_api, "O1").await;

    // Another shop's code on an order: a 400, and neither the order nor its buyer exists.
    let (status, error) = shop_api
        .post(
            "/orders",
            json!({"external_id": "O-STOLEN", "customer_external_id": "N1", "amount": "200000", "referral_code": other_code}),
        )
        .await;
    assert_eq!(status, 400, "{error}");
    assert!(error["error"]["message"]
        .as_str()
        .unwrap()
        .contains("referral_code"));
    assert_eq!(shop_api.get("/orders/O-STOLEN").await.0, 404);
    assert_eq!(shop_api.get("/customers/N1").await.0, 404);
    // A code of the right form nobody was given, and a malformed one: the same.
    for bad in ["ZZZZZZZZ", "not-a-code", "<b>x</b>"] {
        let (status, _) = shop_api
            .post(
                "/customers",
                json!({"external_id": "N2", "referral_code": bad}),
            )
            .await;
        assert_eq!(status, 400, "{bad}");
    }
    assert_eq!(shop_api.get("/customers/N2").await.0, 404);

    // The program turned off: its codes are refused and nothing is written.
    referral_program(&setia, &shop, false);
    let (status, error) = shop_api
        .post(
            "/orders",
            json!({"external_id": "O-OFF", "customer_external_id": "N3", "amount": "200000", "referral_code": code}),
        )
        .await;
    assert_eq!(status, 400, "{error}");
    let (status, _) = shop_api
        .post(
            "/customers",
            json!({"external_id": "N4", "referral_code": code}),
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(shop_api.get("/orders/O-OFF").await.0, 404);
    assert_eq!(shop_api.get("/customers/N3").await.0, 404);
    assert_eq!(shop_api.get("/customers/N4").await.0, 404);
    assert_eq!(shop_api.get("/customers/A1/referral").await.0, 409);
    assert!(referrals(&shop_api, "").await.is_empty());
    referral_program(&setia, &shop, true);

    // A friend's order with Ani's code (typed in small letters): pending until they pay.
    let (status, order) = shop_api
        .post(
            "/orders",
            json!({"external_id": "O-F1", "customer_external_id": "F1", "amount": "200000", "referral_code": code.to_lowercase()}),
        )
        .await;
    assert_eq!(status, 201, "{order}");
    let transfer: i64 = order["transfer_amount"]
        .as_str()
        .unwrap()
        .strip_suffix(".00")
        .unwrap()
        .parse()
        .unwrap();
    // A friend's account with the code, sent twice (a store retrying): one referral.
    for _ in 0..2 {
        customer(
            &shop_api,
            json!({"external_id": "F2", "name": "<i>Fajar</i> Friend", "referral_code": code}),
        )
        .await;
    }
    // Ani's own code on her own order, and a friend who had bought before: refused.
    let (status, _) = shop_api
        .post(
            "/orders",
            json!({"external_id": "O-SELF", "customer_external_id": "A1", "amount": "200000", "referral_code": code}),
        )
        .await;
    assert_eq!(status, 201);
    customer(
        &shop_api,
        json!({"external_id": "E1", "referral_code": code}),
    )
    .await;

    let all = referrals(&shop_api, "").await;
    assert_eq!(all.len(), 4, "{all:#?}");
    let ids: Vec<i64> = all.iter().map(|r| r["id"].as_i64().unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "newest first: {ids:?}");
    let f2 = friend_of(&all, "F2");
    assert_eq!(f2.len(), 1, "the replay added nothing");
    assert_eq!(
        (&f2[0]["status"], &f2[0]["via"], &f2[0]["reason"]),
        (&json!("pending"), &json!("customer"), &Value::Null)
    );
    assert_eq!(f2[0]["advocate"]["external_id"], "A1");
    let own = friend_of(&all, "A1");
    assert_eq!(
        (&own[0]["status"], &own[0]["reason"], &own[0]["via"]),
        (
            &json!("refused"),
            &json!("self_same_customer"),
            &json!("order")
        )
    );
    let e1 = friend_of(&all, "E1");
    assert_eq!(
        (&e1[0]["status"], &e1[0]["reason"]),
        (&json!("refused"), &json!("existing_customer"))
    );
    assert_eq!(friend_of(&all, "F1")[0]["status"], "pending");

    // F1 pays by transfer: the referral qualifies, its reward waits for the hold.
    assert_eq!(
        shop_api
            .webhook(
                &shop,
                payment(
                    "ref-f1",
                    ACCOUNT,
                    transfer,
                    "TRSF E-BANKING CR FIRMAN TEMAN",
                    &jakarta_wall_time(chrono::Utc::now()),
                ),
            )
            .await,
        200
    );
    wait_for("F1's referral to qualify", async || {
        referrals(&shop_api, "?status=qualified").await.len() == 1
    })
    .await;
    let qualified = referrals(&shop_api, "?status=qualified").await;
    assert_eq!(qualified[0]["friend"]["external_id"], "F1");
    assert_eq!(qualified[0]["via"], "order");
    assert_eq!(qualified[0]["purchase_amount"], format!("{transfer}.00"));
    assert!(qualified[0]["reward_due_at"].is_string());
    assert!(qualified[0]["purchase_id"]
        .as_str()
        .unwrap()
        .starts_with("pur_"));

    // The status filter, a bad one, paging.
    let refused = referrals(&shop_api, "?status=refused").await;
    assert_eq!(refused.len(), 2);
    assert!(refused.iter().all(|r| r["status"] == "refused"));
    assert_eq!(referrals(&shop_api, "?status=pending").await.len(), 1);
    assert!(referrals(&shop_api, "?status=rewarded").await.is_empty());
    assert_eq!(referrals(&shop_api, "?status=").await.len(), 4);
    for bad in ["paid", "PENDING", "<b>x</b>"] {
        let (status, error) = shop_api
            .get(&format!(
                "/referrals?status={}",
                bad.replace('<', "%3C").replace('>', "%3E")
            ))
            .await;
        assert_eq!(status, 400, "{bad}: {error}");
        let message = error["error"]["message"].as_str().unwrap();
        assert!(
            message.contains("pending, qualified, rewarded, refused, cancelled"),
            "{message}"
        );
        assert!(!message.contains("<b>"), "{message}");
    }
    let (status, first) = shop_api.get("/referrals?limit=3").await;
    assert_eq!(status, 200);
    assert_eq!(first["items"].as_array().unwrap().len(), 3);
    let cursor = first["next_cursor"]
        .as_str()
        .expect("a next page")
        .to_owned();
    let (_, rest) = shop_api
        .get(&format!("/referrals?limit=3&cursor={cursor}"))
        .await;
    assert_eq!(rest["items"].as_array().unwrap().len(), 1);
    assert!(rest["next_cursor"].is_null());
    assert_eq!(shop_api.get("/referrals?cursor=abc").await.0, 400);
    assert_eq!(shop_api.get("/referrals?limit=0").await.0, 400);
    // Another shop sees none of them.
    assert!(referrals(&other_api, "").await.is_empty());
    let anonymous = reqwest::Client::new()
        .get(server.url("/api/v1/referrals"))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);

    // Both sides in a customer's referral.
    let ani = referral_of(&shop_api, "A1").await;
    assert_eq!(ani["code"], code.as_str(), "the same code");
    let friends: Vec<&str> = ani["referred"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["friend"]["external_id"].as_str().unwrap())
        .collect();
    assert_eq!(friends, ["E1", "F2", "F1"], "newest first, herself apart");
    assert_eq!(ani["referred_by"]["reason"], "self_same_customer");
    let fajar = referral_of(&shop_api, "F2").await;
    assert_eq!(fajar["referred_by"]["advocate"]["external_id"], "A1");
    assert_eq!(fajar["referred_by"]["status"], "pending");
    assert_ne!(fajar["code"], code.as_str(), "a code of his own");

    // The dashboard: the Loyalty page's referral section.
    let dash = Dash::login(&server, &token).await;
    let loyalty = dash.page("/dashboard/loyalty").await.replace("&#x2f;", "/");
    assert!(loyalty.contains("id=\"referrals\""), "the section is shown");
    assert!(loyalty.contains("data-referral=\"on\""));
    assert!(
        !loyalty.contains("[referral]\nenabled = true"),
        "no instructions once on"
    );
    assert!(loyalty.contains("Teman mendapat diskon 15% untuk pesanan pertama minimal Rp 150.000"));
    assert!(loyalty.contains("data-kpi=\"referrals\">4<"), "{loyalty}");
    assert!(loyalty.contains("data-kpi=\"referred_customers\">1<"));
    let revenue = setia_core::format_rupiah(setia_core::Money::from_minor(transfer * 100));
    assert!(loyalty.contains(&format!(
        "data-kpi=\"referred_revenue\" title=\"{revenue}\">{revenue}<"
    )));
    for (status, count) in [
        ("pending", 1),
        ("qualified", 1),
        ("rewarded", 0),
        ("refused", 2),
        ("cancelled", 0),
    ] {
        assert!(
            loyalty.contains(&format!("data-status=\"{status}\">{count}<")),
            "{status}: {count}"
        );
    }
    assert!(loyalty.contains("data-reason=\"self_same_customer\">1<"));
    assert!(loyalty.contains("data-reason=\"existing_customer\">1<"));
    assert!(
        loyalty.contains("Mengajak diri sendiri"),
        "reasons in words"
    );
    assert!(loyalty.contains("Teman sudah pernah membeli sebelumnya"));
    // Top advocates: Ani, one qualified, her friends' revenue.
    let top = between(&loyalty, "data-advocate=\"A1\">", "</tr>");
    assert!(top.contains("Ani &lt;b&gt;x&lt;/b&gt;"), "{top}");
    assert!(top.contains(&revenue), "{top}");
    assert!(top.contains("/dashboard/customers/cus_"));
    assert!(
        !loyalty.contains("<b>x") && !loyalty.contains("<i>Fajar"),
        "names escaped"
    );
    // The latest referrals, their status filter and paging.
    let list = between(&loyalty, "id=\"referral-list\"", "</section>");
    assert!(list.contains("&lt;i&gt;Fajar&lt;/i&gt; Friend"), "{list}");
    assert!(list.contains("data-referral-reason=\"existing_customer\""));
    assert!(list.contains("akun pelanggan") && list.contains("pesanan"));
    let filtered = dash
        .page("/dashboard/loyalty?referral_status=refused")
        .await;
    let list = between(&filtered, "id=\"referral-list\"", "</section>");
    assert_eq!(list.matches("data-referral-id=").count(), 2, "{list}");
    assert!(!list.contains("data-referral-status=\"pending\""));
    assert_eq!(
        dash.get("/dashboard/loyalty?referral_status=paid").await.0,
        400
    );
    assert_eq!(dash.get("/dashboard/loyalty?referrals=abc").await.0, 400);
    let english = dash.page("/dashboard/loyalty?lang=en").await;
    assert!(english.contains("Referral program") && english.contains("Referred themselves"));
    assert!(english.contains("The friend had bought before"));

    // The customer pages: Ani's code, link and friends; Fajar's advocate.
    let store = setia.store().await;
    let key = |external: &'static str| {
        let store = store.clone();
        let shop = shop.clone();
        async move {
            store
                .customer(&shop, &ExternalId::parse(external).unwrap())
                .await
                .unwrap()
                .unwrap()
                .id
        }
    };
    let ani_page = dash
        .page(&format!("/dashboard/customers/{}", key("A1").await))
        .await
        .replace("&#x2f;", "/");
    let card = between(&ani_page, "id=\"referral\"", "</section>");
    assert!(
        card.contains(&format!("data-referral-code>{code}<")),
        "{card}"
    );
    assert!(card.contains(&format!("data-referral-link>{PUBLIC_URL}/r/{code}<")));
    assert!(
        !card.contains("data-referral-live=\"false\""),
        "her link is live"
    );
    for friend in ["E1", "F2", "F1"] {
        assert!(
            card.contains(&format!("data-referred=\"{friend}\"")),
            "{friend}"
        );
    }
    assert!(card.contains("&lt;i&gt;Fajar&lt;/i&gt; Friend"));
    assert!(card.contains("Teman sudah pernah membeli sebelumnya"));
    let fajar_page = dash
        .page(&format!("/dashboard/customers/{}", key("F2").await))
        .await
        .replace("&#x2f;", "/");
    let card = between(&fajar_page, "id=\"referral\"", "</section>");
    let by = between(card, "data-referred-by>", "</p>");
    assert!(
        by.contains("Ani &lt;b&gt;x&lt;/b&gt;") && by.contains("menunggu"),
        "{by}"
    );
    assert!(card.contains("Belum mengajak teman"));
    let f1_page = dash
        .page(&format!("/dashboard/customers/{}?lang=en", key("F1").await))
        .await;
    let by = between(&f1_page, "data-referred-by>", "</p>");
    assert!(by.contains("qualified") && by.contains(&revenue), "{by}");

    // A shop without the program: no referral section, no referral card.
    let off_dash = Dash::login(&server, &off_token).await;
    let page = off_dash.page("/dashboard/loyalty").await;
    assert!(
        !page.contains("id=\"referrals\""),
        "no section while off and empty"
    );
    let zaki = store
        .customer(&off, &ExternalId::parse("Z1").unwrap())
        .await
        .unwrap()
        .unwrap()
        .id;
    let page = off_dash.page(&format!("/dashboard/customers/{zaki}")).await;
    assert!(
        !page.contains("id=\"referral\""),
        "no card while off and uninvolved"
    );
}

async fn the_customers_import_takes_a_referral_code_column(setia: Setia) {
    let (shop, token) = merchant(&setia, "Toko Impor", &[]);
    referral_program(&setia, &shop, true);
    let server = serve(&setia);
    let shop_api = api(&server, &token);
    customer(
        &shop_api,
        json!({"external_id": "A1", "name": "Ani", "consent": true}),
    )
    .await;
    let code = code_of(&shop_api, "A1").await;

    // An unknown code stops the import at its line and field; nothing is imported.
    let first = if code.starts_with('Z') { "Y" } else { "Z" };
    let forged = format!("{first}{}", &code[1..]);
    let file = setia.write(
        "bad.csv",
        &format!(
            "external_id,name,email,referral_code\nI1,Indah,indah@example.co.id,{code}\nI2,Iwan,iwan@example.co.id,{forged}\n"
        ),
    );
    let output = setia.run(&["customers", "import", "--merchant", shop.as_str(), &file]);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    let message = stderr(&output);
    assert!(
        message.contains("line 3") && message.contains("referral_code"),
        "{message}"
    );
    assert!(message.contains("bad.csv"), "{message}");
    for external in ["I1", "I2"] {
        assert_eq!(shop_api.get(&format!("/customers/{external}")).await.0, 404);
    }
    assert!(referrals(&shop_api, "").await.is_empty());
    // A malformed one is refused when the file is checked, naming the field.
    let file = setia.write(
        "malformed.csv",
        "external_id,name,referral_code\nI3,Ina,not-a-code\n",
    );
    let output = setia.run(&["customers", "import", "--merchant", shop.as_str(), &file]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("referral_code"),
        "{}",
        stderr(&output)
    );
    assert_eq!(shop_api.get("/customers/I3").await.0, 404);

    // A good code is recorded, via the import; importing the file again adds nothing.
    let file = setia.write(
        "good.csv",
        &format!(
            "external_id,name,email,referral_code\nI1,Indah,indah@example.co.id,{}\nI4,Imam,imam@example.co.id,\n",
            code.to_lowercase()
        ),
    );
    for _ in 0..2 {
        let summary = setia.json(&["customers", "import", "--merchant", shop.as_str(), &file]);
        assert_eq!(summary["rows"], 2, "{summary}");
        assert_eq!(summary["rejected"], json!([]));
    }
    let all = referrals(&shop_api, "").await;
    assert_eq!(all.len(), 1, "{all:#?}");
    assert_eq!(
        (
            &all[0]["friend"]["external_id"],
            &all[0]["advocate"]["external_id"],
            &all[0]["via"],
            &all[0]["status"]
        ),
        (
            &json!("I1"),
            &json!("A1"),
            &json!("import"),
            &json!("pending")
        )
    );
    let indah = referral_of(&shop_api, "I1").await;
    assert_eq!(indah["referred_by"]["via"], "import");
}
