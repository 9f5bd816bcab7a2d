//! The webhook endpoint against real databases: Moota's own signed vectors, every way a call
//! can be wrong, the audit log and its budget, and arbitrary input.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::connect_info::MockConnectInfo;
use axum::http::{Request, StatusCode};
use axum::Router;
use setia_core::{ApiToken, MerchantId, MerchantName, MerchantTimezone, WebhookSecret};
use setia_ingest::{Ingest, IngestConfig};
use setia_store::testing::TestDatabase;
use setia_store::{NewMerchant, PageRequest, Store};
use tower::ServiceExt;

const SDK_BODY: &[u8] = include_bytes!("../../../tests/fixtures/moota/webhook-sdk-vector.json");
const SDK_SECRET: &str = "AElSnSQj";
const SDK_SIGNATURE: &str = "08b0c237eb830bcb321726fa2c6378122f6357a0b1b60cf4c4d362aa93380cca";
const HISTORY_BODY: &[u8] =
    include_bytes!("../../../tests/fixtures/moota/webhook-history-vector.json");
const HISTORY_SECRET: &str = "FcZnoVBN";
const HISTORY_SIGNATURE: &str = "48fd0e1eecf65f66196aa1e37a68b0139f8cf29bc5788dd63be6a6b5057cf166";

const MOOTA_ADDRESS: &str = "103.236.201.178";
const PROXY_ADDRESS: &str = "10.0.0.5";

struct Harness {
    store: Arc<dyn Store>,
    ingest: Arc<Ingest>,
    sdk_merchant: MerchantId,
    history_merchant: MerchantId,
    _database: TestDatabase,
}

impl Harness {
    async fn new(database: TestDatabase, config: IngestConfig) -> Harness {
        let store = setia_store::connect(&database.url).await.unwrap();
        store.migrate().await.unwrap();
        let merchant = |n: u8, secret: &str| NewMerchant {
            id: MerchantId::from_random_bytes([n; 20]),
            name: MerchantName::parse("Toko").unwrap(),
            timezone: MerchantTimezone::default(),
            webhook_secret: WebhookSecret::parse(secret).unwrap(),
            api_token_hash: ApiToken::from_random_bytes([n; 32]).hash(),
            report_emails: vec![],
            sandbox: false,
        };
        let sdk_merchant = store
            .create_merchant(merchant(1, SDK_SECRET))
            .await
            .unwrap()
            .id;
        let history_merchant = store
            .create_merchant(merchant(2, HISTORY_SECRET))
            .await
            .unwrap()
            .id;
        let ingest = Ingest::start(store.clone(), config);
        Harness {
            store,
            ingest,
            sdk_merchant,
            history_merchant,
            _database: database,
        }
    }

    fn router(&self, peer: &str) -> Router {
        let peer: SocketAddr = format!("{peer}:40000").parse().unwrap();
        setia_ingest::router(self.ingest.clone()).layer(MockConnectInfo(peer))
    }

    async fn post(
        &self,
        peer: &str,
        merchant: &str,
        body: Vec<u8>,
        headers: &[(&str, &str)],
    ) -> StatusCode {
        let mut request = Request::post(format!("/webhooks/moota/{merchant}"));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = self
            .router(peer)
            .oneshot(request.body(Body::from(body)).unwrap())
            .await
            .unwrap();
        response.status()
    }

    async fn inbox_len(&self, merchant: &MerchantId) -> usize {
        let page = self
            .store
            .inbox_entries(
                merchant,
                PageRequest {
                    before: None,
                    limit: 500,
                },
            )
            .await
            .unwrap();
        page.items.len()
    }

    async fn audit(&self, merchant: &MerchantId) -> Vec<(u16, String)> {
        self.ingest.flush().await;
        let page = self
            .store
            .webhook_deliveries(
                merchant,
                PageRequest {
                    before: None,
                    limit: 500,
                },
            )
            .await
            .unwrap();
        page.items
            .into_iter()
            .map(|e| (e.status, e.reason))
            .collect()
    }
}

fn moota_headers(signature: &str) -> Vec<(&str, &str)> {
    vec![
        ("content-type", "application/json"),
        ("user-agent", "MootaBot/1.50"),
        ("x-moota-user", "user-1"),
        ("x-moota-webhook", "hook-1"),
        ("signature", signature),
    ]
}

fn allowlisted() -> IngestConfig {
    IngestConfig::new(
        Some(MOOTA_ADDRESS.parse().unwrap()),
        PROXY_ADDRESS.parse().unwrap(),
    )
}

async fn both_vectors_are_committed_byte_for_byte(database: TestDatabase) {
    let h = Harness::new(database, IngestConfig::default()).await;
    for (merchant, body, signature) in [
        (&h.sdk_merchant, SDK_BODY, SDK_SIGNATURE),
        (&h.history_merchant, HISTORY_BODY, HISTORY_SIGNATURE),
    ] {
        let status = h
            .post(
                MOOTA_ADDRESS,
                merchant.as_str(),
                body.to_vec(),
                &moota_headers(signature),
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        let inbox = h
            .store
            .inbox_entries(
                merchant,
                PageRequest {
                    before: None,
                    limit: 10,
                },
            )
            .await
            .unwrap();
        assert_eq!(inbox.items.len(), 1);
        let row = &inbox.items[0];
        assert_eq!(row.body, body, "the inbox keeps the exact bytes");
        assert_eq!(row.body_size, body.len() as u64);
        assert_eq!(row.user_agent.as_deref(), Some("MootaBot/1.50"));
        assert_eq!(row.moota_user.as_deref(), Some("user-1"));
        assert_eq!(row.moota_webhook.as_deref(), Some("hook-1"));
        assert_eq!(row.remote_addr, MOOTA_ADDRESS);
    }
    // Upper-case hex is the same signature; the same bytes again are a duplicate.
    let upper = SDK_SIGNATURE.to_uppercase();
    let status = h
        .post(
            MOOTA_ADDRESS,
            h.sdk_merchant.as_str(),
            SDK_BODY.to_vec(),
            &moota_headers(&upper),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(h.inbox_len(&h.sdk_merchant).await, 1);
    assert_eq!(
        h.audit(&h.sdk_merchant).await,
        vec![
            (200, "duplicate".to_string()),
            (200, "received".to_string())
        ]
    );
}

async fn every_bad_call_is_refused_audited_and_leaves_the_inbox_alone(database: TestDatabase) {
    let h = Harness::new(database, allowlisted()).await;
    let sdk = h.sdk_merchant.to_string();
    let mut one_byte_changed = SDK_BODY.to_vec();
    one_byte_changed[42] ^= 0x01;
    let too_large = vec![b' '; setia_ingest::MAX_BODY_BYTES + 1];
    let large_length = too_large.len().to_string();
    let wrong_secret = setia_core::moota::sign(
        &WebhookSecret::parse("not-the-secret").unwrap(),
        HISTORY_BODY,
    );
    let not_hex = SDK_SIGNATURE.replace('a', "z");
    let cases: Vec<(&str, &str, Vec<u8>, Vec<(&str, &str)>, StatusCode, &str)> = vec![
        (
            "one byte changed",
            MOOTA_ADDRESS,
            one_byte_changed,
            moota_headers(SDK_SIGNATURE),
            StatusCode::UNAUTHORIZED,
            "signature_mismatch",
        ),
        (
            "wrong secret",
            MOOTA_ADDRESS,
            HISTORY_BODY.to_vec(),
            moota_headers(&wrong_secret),
            StatusCode::UNAUTHORIZED,
            "signature_mismatch",
        ),
        (
            "missing header",
            MOOTA_ADDRESS,
            SDK_BODY.to_vec(),
            vec![("content-type", "application/json")],
            StatusCode::UNAUTHORIZED,
            "signature_missing",
        ),
        (
            "non-hex header",
            MOOTA_ADDRESS,
            SDK_BODY.to_vec(),
            moota_headers(&not_hex),
            StatusCode::UNAUTHORIZED,
            "signature_malformed",
        ),
        (
            "empty body",
            MOOTA_ADDRESS,
            vec![],
            moota_headers(SDK_SIGNATURE),
            StatusCode::UNAUTHORIZED,
            "signature_mismatch",
        ),
        (
            "1 MiB + 1 byte, declared",
            MOOTA_ADDRESS,
            too_large.clone(),
            vec![
                ("content-length", large_length.as_str()),
                ("signature", SDK_SIGNATURE),
            ],
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
        ),
        (
            "1 MiB + 1 byte, undeclared",
            MOOTA_ADDRESS,
            too_large,
            moota_headers(SDK_SIGNATURE),
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
        ),
        (
            "disallowed address",
            "198.51.100.7",
            SDK_BODY.to_vec(),
            moota_headers(SDK_SIGNATURE),
            StatusCode::FORBIDDEN,
            "address_not_allowed",
        ),
        (
            "spoofed X-Forwarded-For",
            "198.51.100.7",
            SDK_BODY.to_vec(),
            [
                moota_headers(SDK_SIGNATURE),
                vec![("x-forwarded-for", MOOTA_ADDRESS)],
            ]
            .concat(),
            StatusCode::FORBIDDEN,
            "address_not_allowed",
        ),
        (
            "Moota's address in a line before the one the trusted proxy adds",
            PROXY_ADDRESS,
            SDK_BODY.to_vec(),
            [
                moota_headers(SDK_SIGNATURE),
                vec![
                    ("x-forwarded-for", MOOTA_ADDRESS),
                    ("x-forwarded-for", "198.51.100.7"),
                ],
            ]
            .concat(),
            StatusCode::FORBIDDEN,
            "address_not_allowed",
        ),
    ];
    let mut expected_audit = Vec::new();
    for (name, peer, body, headers, status, reason) in cases {
        assert_eq!(h.post(peer, &sdk, body, &headers).await, status, "{name}");
        assert_eq!(
            h.inbox_len(&h.sdk_merchant).await,
            0,
            "{name}: inbox unchanged"
        );
        expected_audit.insert(0, (status.as_u16(), reason.to_string()));
        assert_eq!(
            h.audit(&h.sdk_merchant).await,
            expected_audit,
            "{name}: audited"
        );
    }

    // Unknown merchants: a well-formed id nobody has, garbage, and a path that is not UTF-8.
    for merchant in ["mer_00000000000000000000", "not-a-merchant", "%FF%FE"] {
        let status = h
            .post(
                MOOTA_ADDRESS,
                merchant,
                SDK_BODY.to_vec(),
                &moota_headers(SDK_SIGNATURE),
            )
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{merchant}");
    }
    h.ingest.flush().await;
    assert_eq!(h.store.inbox_depth().await.unwrap(), 0);

    // Through the trusted proxy, Moota's forwarded address is let in.
    let headers = [
        moota_headers(SDK_SIGNATURE),
        vec![("x-forwarded-for", MOOTA_ADDRESS)],
    ]
    .concat();
    assert_eq!(
        h.post(PROXY_ADDRESS, &sdk, SDK_BODY.to_vec(), &headers)
            .await,
        StatusCode::OK
    );
    let inbox = h
        .store
        .inbox_entries(
            &h.sdk_merchant,
            PageRequest {
                before: None,
                limit: 10,
            },
        )
        .await
        .unwrap();
    assert_eq!(inbox.items[0].remote_addr, MOOTA_ADDRESS);
}

async fn a_flood_of_bad_calls_is_counted_not_stored(database: TestDatabase) {
    let mut config = IngestConfig::default();
    config.rejected_rows_per_minute = 20;
    let h = Harness::new(database, config).await;
    let sdk = h.sdk_merchant.to_string();
    for _ in 0..50 {
        let status = h
            .post(
                MOOTA_ADDRESS,
                &sdk,
                b"[]".to_vec(),
                &moota_headers(SDK_SIGNATURE),
            )
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let rows = h.audit(&h.sdk_merchant).await.len();
    let counted = h.store.suppressed_call_count(&sdk).await.unwrap();
    // The flood may straddle a minute boundary, which gives it a second budget.
    assert!(rows == 20 || rows == 40, "{rows} audit rows");
    assert_eq!(rows as u64 + counted, 50);
}

macro_rules! on_every_backend {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name(setia_store::testing::TestDatabase::sqlite()).await;
                }
            )*
        }

        #[cfg(feature = "postgres-tests")]
        mod postgres {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name(setia_store::testing::TestDatabase::postgres().await).await;
                }
            )*
        }
    };
}

on_every_backend!(
    both_vectors_are_committed_byte_for_byte,
    every_bad_call_is_refused_audited_and_leaves_the_inbox_alone,
    a_flood_of_bad_calls_is_counted_not_stored,
);

mod arbitrary_input {
    use proptest::prelude::*;

    use super::*;

    const ALLOWED: [u16; 5] = [200, 401, 403, 404, 413];

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

        #[test]
        fn never_panics_and_answers_only_known_statuses(
            body in proptest::collection::vec(any::<u8>(), 0..2048),
            signature in proptest::option::of("[0-9a-fA-Fz ]{0,70}"),
            forwarded in proptest::option::of("[0-9., a-z:]{0,40}"),
            merchant_is_known in any::<bool>(),
            sign_it in any::<bool>(),
            peer in prop_oneof![Just(MOOTA_ADDRESS), Just(PROXY_ADDRESS), Just("198.51.100.7")],
        ) {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            runtime.block_on(async {
                let h = Harness::new(TestDatabase::sqlite(), allowlisted()).await;
                let merchant = if merchant_is_known { h.sdk_merchant.to_string() } else { "mer_zzzzzzzzzzzzzzzzzzzz".into() };
                let signed = setia_core::moota::sign(&WebhookSecret::parse(SDK_SECRET).unwrap(), &body);
                let mut headers = vec![];
                if let Some(value) = signature.as_deref() {
                    headers.push(("signature", if sign_it { signed.as_str() } else { value }));
                }
                if let Some(value) = forwarded.as_deref() {
                    headers.push(("x-forwarded-for", value));
                }
                let status = h.post(peer, &merchant, body.clone(), &headers).await;
                prop_assert!(ALLOWED.contains(&status.as_u16()), "status {status}");
                let accepted = status == StatusCode::OK;
                prop_assert_eq!(h.inbox_len(&h.sdk_merchant).await, usize::from(accepted));
                Ok(())
            })?;
        }
    }
}
