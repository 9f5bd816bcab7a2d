//! The Moota reconciliation card on the dashboard's Payments page, through the real binary:
//! "not set" for a new merchant; the form stores the token and the banks, and the page then
//! says "set" without the token anywhere; an empty token keeps the current one; bad input
//! and a missing or forged CSRF token are refused and change nothing; recorded syncs show
//! their counts and their (escaped) error; and a mutation found by reconciliation carries
//! the "via API" badge in the recent mutations.

use chrono::{NaiveDate, TimeDelta, Utc};
use reqwest::header::LOCATION;
use setia_core::moota_api::{MootaBankId, SyncWindow};
use setia_core::MerchantId;
use setia_store::reconcile::{FoundMutation, MootaSettings, SyncCounts, SyncStarter};
use setia_store::{PageRequest, Store};

use crate::dashboard::{input_value, Dash};
use crate::support::{Process, Setia};
use crate::webhooks::{merchant_with_secret, sign};

crate::on_every_backend!(
    the_card_sets_the_token_and_banks_and_never_shows_the_token,
    bad_input_and_forged_forms_change_nothing,
    recorded_syncs_show_their_counts_and_escaped_errors,
    a_payment_found_by_reconciliation_is_marked_via_api,
);

const TOKEN: &str = "moota-Personal.Token-9xQ2";
/// No Moota here: a scheduled sync, should one start, reaches nothing.
const NO_MOOTA: (&str, &str) = ("SETIA_MOOTA_API_URL", "http://127.0.0.1:9/api/v2");
const FORM: &str = "/dashboard/payments/moota";

fn serve_without_worker(setia: &Setia) -> Process {
    setia.start(
        &["serve", "--listen", "127.0.0.1:0", "--no-worker"],
        &[NO_MOOTA],
    )
}

fn new_merchant(setia: &Setia, name: &str) -> (MerchantId, String) {
    let created = setia.create_merchant(name);
    (
        MerchantId::parse(created["id"].as_str().unwrap()).unwrap(),
        created["api_token"].as_str().unwrap().to_owned(),
    )
}

fn banks(ids: &[&str]) -> Vec<MootaBankId> {
    ids.iter()
        .map(|id| MootaBankId::parse(id).unwrap())
        .collect()
}

/// The Moota card of a Payments page.
fn card(html: &str) -> &str {
    let start = html.find("id=\"moota\"").expect("the Moota card");
    let rest = &html[start..];
    &rest[..rest.find("</section>").expect("the card ends")]
}

/// The `<input …>` tag holding `name="NAME"`.
fn input_tag<'a>(html: &'a str, name: &str) -> &'a str {
    let at = html
        .find(&format!("name=\"{name}\""))
        .unwrap_or_else(|| panic!("an input named {name}"));
    let start = html[..at].rfind('<').unwrap();
    let end = at + html[at..].find('>').unwrap();
    &html[start..=end]
}

async fn settings(store: &dyn Store, merchant: &MerchantId) -> MootaSettings {
    store.moota_settings(merchant).await.unwrap()
}

async fn the_card_sets_the_token_and_banks_and_never_shows_the_token(setia: Setia) {
    let (merchant, api_token) = new_merchant(&setia, "Toko Rekonsiliasi");
    let server = serve_without_worker(&setia);
    let store = setia.store().await;
    let dash = Dash::login(&server, &api_token).await;

    // A new merchant: no token, every bank, what reconciliation is and how to turn it on.
    let page = dash.page("/dashboard/payments").await;
    let moota = card(&page);
    assert!(moota.contains("Rekonsiliasi Moota"), "{moota}");
    assert!(moota.contains("data-moota-token=\"not_set\">belum diisi<"));
    assert!(moota.contains("semua bank"));
    assert!(moota.contains("Rekonsiliasi menemukan") && moota.contains("setiap 30 menit"));
    assert!(moota.contains(&format!(
        "setia merchant moota --merchant {merchant} --token-file"
    )));
    assert_eq!(input_value(&page, "moota_banks").as_deref(), Some(""));
    assert!(input_tag(&page, "moota_token").contains("type=\"password\""));
    assert!(!input_tag(&page, "moota_token").contains("value="));
    let (status, english) = dash.get("/dashboard/payments?lang=en").await;
    assert_eq!(status, 200);
    let moota = card(&english);
    assert!(moota.contains("Moota reconciliation") && moota.contains(">not set<"));
    assert!(moota.contains("all banks") && moota.contains("every 30 minutes"));
    // Every view of the page has the card.
    for view in ["unattributed", "quarantine", "audit"] {
        card(&dash.page(&format!("/dashboard/payments?view={view}")).await);
    }

    // Save a token and two banks: stored, and the browser goes back to the card.
    let response = dash
        .post(
            FORM,
            &[
                ("csrf", &dash.csrf),
                ("moota_token", &format!("{TOKEN}\n")),
                ("moota_banks", " bnk_2, bnk_1 ,bnk_2"),
            ],
        )
        .await;
    assert_eq!(response.status(), 303);
    assert_eq!(response.headers()[LOCATION], "/dashboard/payments#moota");
    let stored = settings(&*store, &merchant).await;
    assert_eq!(stored.token.as_ref().map(|t| t.expose()), Some(TOKEN));
    assert_eq!(stored.banks, banks(&["bnk_1", "bnk_2"]));

    // The page says "set" and names the banks, and the token is nowhere in it.
    for path in [
        "/dashboard/payments",
        "/dashboard/payments?lang=en",
        "/dashboard/payments?view=audit",
        "/dashboard/overview",
    ] {
        let (status, html) = dash.get(path).await;
        assert_eq!(status, 200, "{path}");
        assert!(!html.contains(TOKEN), "{path} shows the token");
        assert!(!html.contains("Personal.Token"), "{path} shows part of it");
    }
    let page = dash.page("/dashboard/payments").await;
    let moota = card(&page);
    assert!(moota.contains("data-moota-token=\"set\">tersimpan<"));
    assert!(moota.contains("bnk_1, bnk_2"));
    assert!(
        !moota.contains("Rekonsiliasi menemukan"),
        "no explanation once it is on"
    );
    assert!(moota.contains("Belum ada sinkronisasi"));
    assert_eq!(
        input_value(&page, "moota_banks").as_deref(),
        Some("bnk_1, bnk_2")
    );
    assert!(!input_tag(&page, "moota_token").contains("value="));
    let english = dash.get("/dashboard/payments?lang=en").await.1;
    assert!(card(&english).contains(">set<"));

    // An empty token keeps the token; the banks change.
    let response = dash
        .post(
            FORM,
            &[
                ("csrf", &dash.csrf),
                ("moota_token", ""),
                ("moota_banks", "bnk_3"),
            ],
        )
        .await;
    assert_eq!(response.status(), 303);
    let stored = settings(&*store, &merchant).await;
    assert_eq!(stored.token.as_ref().map(|t| t.expose()), Some(TOKEN));
    assert_eq!(stored.banks, banks(&["bnk_3"]));
    // Empty banks: every bank again, the token still kept.
    let response = dash
        .post(FORM, &[("csrf", &dash.csrf), ("moota_banks", "")])
        .await;
    assert_eq!(response.status(), 303);
    let stored = settings(&*store, &merchant).await;
    assert_eq!(stored.token.as_ref().map(|t| t.expose()), Some(TOKEN));
    assert!(stored.banks.is_empty());
    assert!(card(&dash.page("/dashboard/payments").await).contains("semua bank"));
    // A new token replaces the old one.
    let response = dash
        .post(
            FORM,
            &[
                ("csrf", &dash.csrf),
                ("moota_token", "another-token"),
                ("moota_banks", ""),
            ],
        )
        .await;
    assert_eq!(response.status(), 303);
    let stored = settings(&*store, &merchant).await;
    assert_eq!(
        stored.token.as_ref().map(|t| t.expose()),
        Some("another-token")
    );

    // Neither the token nor the form went to the log.
    let log = std::fs::read_to_string(&server.log).unwrap();
    assert!(
        !log.contains(TOKEN) && !log.contains("another-token"),
        "{log}"
    );
}

async fn bad_input_and_forged_forms_change_nothing(setia: Setia) {
    let (merchant, api_token) = new_merchant(&setia, "Toko Hati-hati");
    let server = serve_without_worker(&setia);
    let store = setia.store().await;
    store
        .set_moota_settings(
            &merchant,
            Some(&setia_core::moota_api::MootaToken::parse(TOKEN).unwrap()),
            Some(&banks(&["bnk_1"])),
        )
        .await
        .unwrap();
    let before = settings(&*store, &merchant).await;
    let dash = Dash::login(&server, &api_token).await;
    let other_session = Dash::login(&server, &api_token).await;

    let too_long = "a".repeat(2_049);
    let huge = "b".repeat(40 * 1024);
    for (form, says_id, says_en) in [
        (
            vec![("moota_token", "ab cd"), ("moota_banks", "bnk_9")],
            "berisi spasi",
            "has a space",
        ),
        (
            vec![("moota_token", "tökén"), ("moota_banks", "bnk_9")],
            "berisi karakter",
            "has a character",
        ),
        (
            vec![("moota_token", too_long.as_str()), ("moota_banks", "bnk_9")],
            "paling banyak 2.048 karakter",
            "at most 2,048 characters",
        ),
        (
            vec![
                ("moota_token", "good-token"),
                ("moota_banks", "bnk_9, bnk 1"),
            ],
            "ID bank yang tidak valid",
            "A bank id is not valid",
        ),
        (
            vec![("moota_banks", "bnk_9,<script>")],
            "ID bank yang tidak valid",
            "A bank id is not valid",
        ),
        (
            vec![
                ("moota_token", "good-token"),
                ("moota_banks", huge.as_str()),
            ],
            "Formulir terlalu besar",
            "The form is too large",
        ),
    ] {
        let mut fields = form.clone();
        fields.push(("csrf", &dash.csrf));
        let response = dash.post(FORM, &fields).await;
        let what = format!(
            "{:?}",
            form.iter().map(|(k, v)| (k, v.len())).collect::<Vec<_>>()
        );
        assert_eq!(response.status(), 400, "{what}");
        let body = response.text().await.unwrap();
        assert!(
            body.contains(says_id) && body.contains(says_en),
            "{what}: {body}"
        );
        assert!(!body.contains("good-token") && !body.contains(TOKEN));
        assert_eq!(
            settings(&*store, &merchant).await,
            before,
            "{what} changed nothing"
        );
    }

    // Without the session's CSRF token: refused, and nothing changes.
    for csrf in [
        None,
        Some(""),
        Some("deadbeef"),
        Some(other_session.csrf.as_str()),
    ] {
        let mut fields = vec![("moota_token", "forged-token"), ("moota_banks", "bnk_evil")];
        if let Some(csrf) = csrf {
            fields.push(("csrf", csrf));
        }
        let response = dash.post(FORM, &fields).await;
        assert_eq!(response.status(), 403, "csrf {csrf:?}");
        assert_eq!(settings(&*store, &merchant).await, before);
    }
    // Not logged in: to the login page, and nothing changes.
    let response = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .post(server.url(FORM))
        .form(&[("moota_token", "anon-token"), ("csrf", &dash.csrf)])
        .send()
        .await
        .unwrap();
    assert!(
        [303, 401, 403].contains(&response.status().as_u16()),
        "{}",
        response.status()
    );
    assert_eq!(settings(&*store, &merchant).await, before);
    // The form still works for the session.
    let response = dash
        .post(
            FORM,
            &[
                ("csrf", &dash.csrf),
                ("moota_banks", "bnk_2"),
                ("moota_token", ""),
            ],
        )
        .await;
    assert_eq!(response.status(), 303);
    let after = settings(&*store, &merchant).await;
    assert_eq!(
        (after.token, after.banks),
        (before.token, banks(&["bnk_2"]))
    );
}

async fn recorded_syncs_show_their_counts_and_escaped_errors(setia: Setia) {
    let (merchant, api_token) = new_merchant(&setia, "Toko Sinkron");
    let server = serve_without_worker(&setia);
    let store = setia.store().await;
    let window = SyncWindow::new(
        NaiveDate::from_ymd_opt(2026, 11, 20).unwrap(),
        NaiveDate::from_ymd_opt(2026, 12, 4).unwrap(),
    )
    .unwrap();
    let now = Utc::now();
    // A sync whose process died, one that went well, and one that failed (the latest).
    let died = store
        .start_moota_sync(
            &merchant,
            SyncStarter::Schedule,
            window,
            now - TimeDelta::hours(3),
        )
        .await
        .unwrap();
    let ok = store
        .start_moota_sync(
            &merchant,
            SyncStarter::Schedule,
            window,
            now - TimeDelta::hours(2),
        )
        .await
        .unwrap();
    let counts = SyncCounts {
        pages: 3,
        mutations: 41,
        new: 2,
        already_known: 39,
    };
    store
        .finish_moota_sync(
            &merchant,
            ok,
            counts,
            None,
            now - TimeDelta::hours(2) + TimeDelta::seconds(4),
        )
        .await
        .unwrap();
    let failed = store
        .start_moota_sync(
            &merchant,
            SyncStarter::Command,
            window,
            now - TimeDelta::minutes(5),
        )
        .await
        .unwrap();
    let failed_counts = SyncCounts {
        pages: 1,
        mutations: 5,
        new: 0,
        already_known: 5,
    };
    store
        .finish_moota_sync(
            &merchant,
            failed,
            failed_counts,
            Some("Moota answered 401 <script>alert(1)</script> & more"),
            now - TimeDelta::minutes(4),
        )
        .await
        .unwrap();

    let dash = Dash::login(&server, &api_token).await;
    let page = dash.page("/dashboard/payments").await;
    let moota = card(&page);
    assert!(!page.contains("<script>"), "the error is escaped");
    assert!(
        moota.contains("&lt;script&gt;alert(1)&lt;&#x2f;script&gt; &amp; more"),
        "{moota}"
    );
    // The last sync: the failed one, its counts and its error.
    let last = &moota[moota.find("data-moota-last").unwrap()..];
    assert!(
        last.contains("gagal") && last.contains("perintah"),
        "{last}"
    );
    assert!(
        last.contains("20 Nov 2026") && last.contains("4 Des 2026"),
        "{last}"
    );
    assert!(moota.contains("data-moota=\"new\">0<"));
    assert!(moota.contains("data-moota=\"already_known\">5<"));
    assert!(moota.contains("data-moota=\"mutations\">5<"));
    assert!(moota.contains("data-moota=\"pages\">1<"));
    assert!(moota.contains("data-moota=\"error\">Sinkronisasi terakhir gagal: Moota answered 401"));
    // The table: every sync, newest first, each with its counts and result.
    let at = |id: i64| {
        moota
            .find(&format!("id=\"sync-{id}\""))
            .unwrap_or_else(|| panic!("sync {id} in the table"))
    };
    assert!(at(failed) < at(ok) && at(ok) < at(died), "newest first");
    let row = |id: i64| {
        let rest = &moota[at(id)..];
        &rest[..rest.find("</tr>").unwrap()]
    };
    let ok_row = row(ok);
    for cell in [">3<", ">41<", ">2<", ">39<", "berhasil", "jadwal"] {
        assert!(ok_row.contains(cell), "{cell} in {ok_row}");
    }
    assert!(row(failed).contains("gagal") && row(failed).contains("&lt;script&gt;"));
    assert!(row(died).contains("belum selesai"));
    let english = dash.get("/dashboard/payments?lang=en").await.1;
    let moota = card(&english);
    assert!(moota.contains("The last sync failed") && moota.contains("not finished"));
    assert!(moota.contains("Already known") && moota.contains(">schedule<"));
    assert!(!english.contains("<script>"));
}

async fn a_payment_found_by_reconciliation_is_marked_via_api(setia: Setia) {
    let (merchant, api_token) = merchant_with_secret(&setia);
    let store = setia.store().await;
    // One mutation a sync found (the webhook never came), before the worker starts.
    let window = SyncWindow::new(
        NaiveDate::from_ymd_opt(2026, 12, 3).unwrap(),
        NaiveDate::from_ymd_opt(2026, 12, 4).unwrap(),
    )
    .unwrap();
    let now = Utc::now();
    let sync = store
        .start_moota_sync(&merchant, SyncStarter::Command, window, now)
        .await
        .unwrap();
    let body = br#"[{"mutation_id":"m1","date":"2026-12-04 10:00:00","amount":"150123.00","type":"CR","description":"TRSF BUDI","bank":{"bank_type":"bca"}}]"#;
    let found = FoundMutation {
        mutation_id: "m1".into(),
        body: body.to_vec(),
    };
    let new = store
        .record_found_mutations(&merchant, sync, &[found], now)
        .await
        .unwrap();
    assert_eq!(new, 1);
    store
        .finish_moota_sync(
            &merchant,
            sync,
            SyncCounts {
                pages: 1,
                mutations: 1,
                new: 1,
                already_known: 0,
            },
            None,
            now,
        )
        .await
        .unwrap();

    // A server with its worker, which applies it; and one payment by webhook, for contrast.
    let server = setia.start(&["serve", "--listen", "127.0.0.1:0"], &[NO_MOOTA]);
    let hooked = br#"[{"mutation_id":"m0","account_number":"1234567890","date":"2026-12-04 09:00:00","description":"TRSF SITI","amount":98000,"type":"CR","balance":0,"bank":{"bank_type":"bca"}}]"#;
    let response = reqwest::Client::new()
        .post(server.url(&format!("/webhooks/moota/{merchant}")))
        .header("Signature", sign(hooked))
        .body(hooked.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let mut applied = Vec::new();
    for _ in 0..200 {
        applied = store
            .purchases(
                &merchant,
                None,
                PageRequest {
                    before: None,
                    limit: 10,
                },
            )
            .await
            .unwrap()
            .items
            .into_iter()
            .filter_map(|p| p.mutation_id)
            .collect();
        if applied.len() == 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    applied.sort();
    assert_eq!(applied, ["m0", "m1"], "the worker applied both");

    let dash = Dash::login(&server, &api_token).await;
    let page = dash.page("/dashboard/payments").await;
    let row = |text: &str| {
        let at = page
            .find(text)
            .unwrap_or_else(|| panic!("{text} in the page"));
        let start = page[..at].rfind("<tr>").unwrap();
        let end = at + page[at..].find("</tr>").unwrap();
        page[start..end].to_owned()
    };
    let missed = row("TRSF BUDI");
    assert!(
        missed.contains("data-reconciled") && missed.contains(">lewat API<"),
        "{missed}"
    );
    assert!(
        missed.contains("webhook-nya tidak pernah datang"),
        "{missed}"
    );
    assert!(!row("TRSF SITI").contains("data-reconciled"));
    assert_eq!(page.matches("data-reconciled").count(), 1);
    // The card counts it as found by the last sync.
    assert!(card(&page).contains("data-moota=\"new\">1<"));
    let english = dash.get("/dashboard/payments?lang=en").await.1;
    assert!(english.contains(">via API<") && english.contains("its webhook never came"));
}
