//! One conformance suite for the `Store` trait, run against a real SQLite file always and
//! against a real PostgreSQL server with `--features postgres-tests` and
//! `SETIA_TEST_POSTGRES_URL` (each test in a database of its own, dropped afterwards).

use std::sync::Arc;

use chrono::{TimeZone, Utc};
use setia_core::customer::{Consent, CustomerEmail, ExternalId, PayerName, VirtualAccount};
use setia_core::import::{CustomerRecord, RowError, TransactionRecord, TransactionsCsv};
use setia_core::{ApiToken, MerchantId, MerchantName, MerchantTimezone, WebhookSecret};
use setia_store::testing::TestDatabase;
use setia_store::{
    CallOutcome, CustomerImportCounts, ImportBatches, ImportMessage, InboxBody, NewMerchant,
    PageRequest, Store, StoreError, SuppressedCalls, TransactionImportCounts, WebhookCall,
};

/// A store on a fresh database, kept alive as long as the store is used.
struct Backend {
    store: Arc<dyn Store>,
    _database: TestDatabase,
}

async fn open(database: TestDatabase) -> Backend {
    let store = setia_store::connect(&database.url).await.unwrap();
    Backend {
        store,
        _database: database,
    }
}

async fn sqlite() -> Backend {
    open(TestDatabase::sqlite()).await
}

#[cfg(feature = "postgres-tests")]
async fn postgres() -> Backend {
    open(TestDatabase::postgres().await).await
}

fn merchant_id(n: u8) -> MerchantId {
    MerchantId::from_random_bytes([n; 20])
}

fn new_merchant(n: u8, sandbox: bool) -> (NewMerchant, ApiToken) {
    let token = ApiToken::from_random_bytes([n; 32]);
    let merchant = NewMerchant {
        id: merchant_id(n),
        name: MerchantName::parse(&format!("Toko {n}")).unwrap(),
        timezone: MerchantTimezone::parse("Asia/Makassar").unwrap(),
        webhook_secret: WebhookSecret::parse("AElSnSQj").unwrap(),
        api_token_hash: token.hash(),
        report_emails: vec![CustomerEmail::parse("ops@toko.id").unwrap()],
        sandbox,
    };
    (merchant, token)
}

async fn migrated_with_merchant(store: &dyn Store, n: u8) -> MerchantId {
    store.migrate().await.unwrap();
    store
        .create_merchant(new_merchant(n, false).0)
        .await
        .unwrap()
        .id
}

fn batches<T: Send + 'static>(messages: Vec<ImportMessage<T>>) -> ImportBatches<T> {
    let (sender, receiver) = tokio::sync::mpsc::channel(messages.len().max(1));
    for message in messages {
        sender.try_send(message).unwrap();
    }
    receiver
}

fn customer_record(line: u64, external_id: &str) -> CustomerRecord {
    CustomerRecord {
        line,
        external_id: ExternalId::parse(external_id).unwrap(),
        name: None,
        email: None,
        birthday: None,
        virtual_account: None,
        payer_names: vec![],
        consent: None,
        referral_code: None,
    }
}

fn transactions(csv: &str) -> Vec<TransactionRecord> {
    TransactionsCsv::new(csv.as_bytes(), MerchantTimezone::default())
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

async fn readiness_follows_migrations(store: &dyn Store) {
    assert!(
        !store.is_ready().await.unwrap(),
        "a fresh database is not migrated"
    );
    store.migrate().await.unwrap();
    store.migrate().await.unwrap();
    assert!(store.is_ready().await.unwrap());
}

async fn merchants_round_trip(store: &dyn Store) {
    store.migrate().await.unwrap();
    let (new, token) = new_merchant(1, true);
    let created = store.create_merchant(new.clone()).await.unwrap();
    assert_eq!(created.id, new.id);
    assert_eq!(created.name, "Toko 1");
    assert_eq!(created.timezone.name(), "Asia/Makassar");
    assert_eq!(created.webhook_secret.expose(), "AElSnSQj");
    assert_eq!(created.report_emails, vec!["ops@toko.id".to_string()]);
    assert!(created.sandbox);

    let (second, _) = new_merchant(2, false);
    store.create_merchant(second).await.unwrap();
    let listed: Vec<MerchantId> = store
        .list_merchants()
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.id)
        .collect();
    assert_eq!(listed, vec![merchant_id(1), merchant_id(2)]);

    assert_eq!(
        store
            .merchant_by_token(&token.hash())
            .await
            .unwrap()
            .unwrap()
            .id,
        merchant_id(1)
    );
    assert!(store
        .merchant_by_token(&ApiToken::presented("stk_nope").hash())
        .await
        .unwrap()
        .is_none());
    assert!(store.merchant(&merchant_id(9)).await.unwrap().is_none());
    assert!(matches!(
        store.create_merchant(new).await,
        Err(StoreError::Conflict(_))
    ));
}

async fn customers_upsert_by_external_id(store: &dyn Store) {
    let merchant = migrated_with_merchant(store, 1).await;
    let mut siti = customer_record(2, "C1");
    siti.name = Some(setia_core::CustomerName::parse("Siti Rahma").unwrap());
    siti.email = Some(CustomerEmail::parse("siti@example.co.id").unwrap());
    siti.virtual_account = Some(VirtualAccount::parse("8808001").unwrap());
    siti.payer_names = vec![PayerName::parse("siti rahma").unwrap()];
    siti.consent = Some(Consent(false));
    let counts = store
        .import_customers(
            &merchant,
            batches(vec![
                ImportMessage::Rows(vec![siti.clone(), customer_record(3, "C2")]),
                ImportMessage::Finished,
            ]),
        )
        .await
        .unwrap();
    assert_eq!(
        counts,
        CustomerImportCounts {
            inserted: 2,
            updated: 0,
            unchanged: 0
        }
    );

    // Same rows again: nothing changes. A blank field keeps the stored value; a new payer
    // name is added to the ones the customer has.
    let mut blank_siti = customer_record(2, "C1");
    blank_siti.payer_names = vec![PayerName::parse("S RAHMA").unwrap()];
    let counts = store
        .import_customers(
            &merchant,
            batches(vec![
                ImportMessage::Rows(vec![siti.clone(), customer_record(3, "C2")]),
                ImportMessage::Rows(vec![blank_siti]),
                ImportMessage::Finished,
            ]),
        )
        .await
        .unwrap();
    assert_eq!(
        counts,
        CustomerImportCounts {
            inserted: 0,
            updated: 1,
            unchanged: 2
        }
    );

    let stored = store
        .customer(&merchant, &ExternalId::parse("C1").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.name.as_deref(), Some("Siti Rahma"));
    assert_eq!(stored.email.as_deref(), Some("siti@example.co.id"));
    assert_eq!(stored.virtual_account.as_deref(), Some("8808001"));
    assert_eq!(
        stored.payer_names,
        vec!["S RAHMA".to_string(), "SITI RAHMA".to_string()]
    );
    assert!(!stored.consent);
    let plain = store
        .customer(&merchant, &ExternalId::parse("C2").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert!(plain.consent, "consent defaults to true");
}

async fn a_clashing_virtual_account_rolls_the_import_back(store: &dyn Store) {
    let merchant = migrated_with_merchant(store, 1).await;
    let mut first = customer_record(2, "C1");
    first.virtual_account = Some(VirtualAccount::parse("8808001").unwrap());
    let mut clash = customer_record(4, "C3");
    clash.virtual_account = first.virtual_account.clone();
    let result = store
        .import_customers(
            &merchant,
            batches(vec![
                ImportMessage::Rows(vec![first, customer_record(3, "C2"), clash]),
                ImportMessage::Finished,
            ]),
        )
        .await;
    match result {
        Err(StoreError::RowConflict(RowError { line, field, .. })) => {
            assert_eq!((line, field.as_str()), (4, "virtual_account"))
        }
        other => panic!("expected a row conflict, got {other:?}"),
    }
    assert_eq!(store.ledger_summary(&merchant).await.unwrap().customers, 0);
}

async fn transactions_import_idempotently(store: &dyn Store) {
    let merchant = migrated_with_merchant(store, 1).await;
    let file = "customer_external_id,occurred_at,amount\n\
                S1,1997-01-01,29.33\nS1,1997-01-01,29.33\nS2,1997-01-02 10:00:00,10\nS3,1997-01-03,0\n";
    let rows = transactions(file);
    let counts = store
        .import_transactions(
            &merchant,
            batches(vec![
                ImportMessage::Rows(rows.clone()),
                ImportMessage::Finished,
            ]),
        )
        .await
        .unwrap();
    assert_eq!(
        counts,
        TransactionImportCounts {
            inserted: 4,
            skipped_duplicates: 0,
            customers_created: 3
        }
    );
    let again = store
        .import_transactions(
            &merchant,
            batches(vec![ImportMessage::Rows(rows), ImportMessage::Finished]),
        )
        .await
        .unwrap();
    assert_eq!(
        again,
        TransactionImportCounts {
            inserted: 0,
            skipped_duplicates: 4,
            customers_created: 0
        }
    );
    let summary = store.ledger_summary(&merchant).await.unwrap();
    assert_eq!(
        (
            summary.customers,
            summary.purchases,
            summary.revenue.minor()
        ),
        (3, 4, 2933 * 2 + 1000)
    );

    // A reference seen before (in the store or earlier in the same file) is skipped.
    let referenced = transactions(
        "customer_external_id,occurred_at,amount,reference\nS1,1997-02-01,5,INV-1\nS1,1997-02-02,6,INV-1\n",
    );
    let counts = store
        .import_transactions(
            &merchant,
            batches(vec![
                ImportMessage::Rows(referenced),
                ImportMessage::Finished,
            ]),
        )
        .await
        .unwrap();
    assert_eq!(
        counts,
        TransactionImportCounts {
            inserted: 1,
            skipped_duplicates: 1,
            customers_created: 0
        }
    );
}

async fn a_failed_or_interrupted_import_writes_nothing(store: &dyn Store) {
    let merchant = migrated_with_merchant(store, 1).await;
    let rows = transactions("customer_external_id,occurred_at,amount\nS1,1997-01-01,1\n");
    let failure = RowError {
        line: 3,
        field: "amount".into(),
        error: "is negative".into(),
    };
    let failed = store
        .import_transactions(
            &merchant,
            batches(vec![
                ImportMessage::Rows(rows.clone()),
                ImportMessage::Failed(failure),
            ]),
        )
        .await;
    assert!(
        matches!(
            failed,
            Err(StoreError::ImportAborted(RowError { line: 3, .. }))
        ),
        "{failed:?}"
    );
    let interrupted = store
        .import_transactions(&merchant, batches(vec![ImportMessage::Rows(rows)]))
        .await;
    assert!(
        matches!(interrupted, Err(StoreError::ImportInterrupted)),
        "{interrupted:?}"
    );
    let summary = store.ledger_summary(&merchant).await.unwrap();
    assert_eq!((summary.customers, summary.purchases), (0, 0));
}

async fn merchants_never_see_each_other(store: &dyn Store) {
    let a = migrated_with_merchant(store, 1).await;
    let b = store
        .create_merchant(new_merchant(2, false).0)
        .await
        .unwrap()
        .id;
    let rows = transactions("customer_external_id,occurred_at,amount\nS1,1997-01-01,1\n");
    store
        .import_transactions(
            &a,
            batches(vec![
                ImportMessage::Rows(rows.clone()),
                ImportMessage::Finished,
            ]),
        )
        .await
        .unwrap();
    let s1 = ExternalId::parse("S1").unwrap();
    assert!(store.customer(&a, &s1).await.unwrap().is_some());
    assert!(store.customer(&b, &s1).await.unwrap().is_none());
    assert_eq!(store.ledger_summary(&b).await.unwrap().purchases, 0);
    // The same file under B is B's own history, not a duplicate of A's.
    let counts = store
        .import_transactions(
            &b,
            batches(vec![ImportMessage::Rows(rows), ImportMessage::Finished]),
        )
        .await
        .unwrap();
    assert_eq!(counts.inserted, 1);
}

async fn large_imports_span_many_batches(store: &dyn Store) {
    let merchant = migrated_with_merchant(store, 1).await;
    let start = Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap();
    let mut csv = String::from("customer_external_id,occurred_at,amount,reference\n");
    for i in 0..5_000 {
        let at = start + chrono::Duration::minutes(i);
        csv.push_str(&format!("C{},{},{}.50,R{i}\n", i % 700, at.to_rfc3339(), i));
    }
    let rows = transactions(&csv);
    let messages: Vec<_> = rows
        .chunks(1_500)
        .map(|c| ImportMessage::Rows(c.to_vec()))
        .chain([ImportMessage::Finished])
        .collect();
    let counts = store
        .import_transactions(&merchant, batches(messages))
        .await
        .unwrap();
    assert_eq!(
        counts,
        TransactionImportCounts {
            inserted: 5_000,
            skipped_duplicates: 0,
            customers_created: 700
        }
    );
    let summary = store.ledger_summary(&merchant).await.unwrap();
    let expected: i64 = (0..5_000i64).map(|i| i * 100 + 50).sum();
    assert_eq!(summary.revenue.minor(), expected);
}

fn signed_call(merchant: &MerchantId, body: &[u8]) -> WebhookCall {
    use sha2::Digest;
    WebhookCall {
        merchant: merchant.to_string(),
        received_at: Utc.with_ymd_and_hms(2026, 11, 27, 1, 2, 3).unwrap(),
        remote_addr: "103.236.201.178".into(),
        status: 200,
        reason: String::new(),
        body_sha256: Some(hex::encode(sha2::Sha256::digest(body))),
        body_size: body.len() as u64,
        inbox: Some(InboxBody {
            merchant: merchant.clone(),
            body: body.to_vec().into(),
            user_agent: Some("MootaBot/1.50".into()),
            moota_user: Some("u1".into()),
            moota_webhook: Some("w1".into()),
        }),
    }
}

fn rejected_call(merchant: &str, status: u16, reason: &str) -> WebhookCall {
    WebhookCall {
        merchant: merchant.into(),
        received_at: Utc.with_ymd_and_hms(2026, 11, 27, 1, 2, 4).unwrap(),
        remote_addr: "10.0.0.9".into(),
        status,
        reason: reason.into(),
        body_sha256: None,
        body_size: 2_000_000,
        inbox: None,
    }
}

async fn webhook_calls_are_group_committed(store: &dyn Store) {
    let merchant = migrated_with_merchant(store, 1).await;
    let other = store
        .create_merchant(new_merchant(2, false).0)
        .await
        .unwrap()
        .id;
    let body = b"[{\"mutation_id\":\"m1\"}]\n\x00\xff";
    let outcomes = store
        .record_webhook_calls(
            [
                signed_call(&merchant, body),
                rejected_call(merchant.as_str(), 401, "signature_mismatch"),
                signed_call(&merchant, body),
                signed_call(&other, body),
                rejected_call("mer_unknown", 404, "unknown_merchant"),
            ]
            .into(),
        )
        .await
        .unwrap();
    let CallOutcome::Received { inbox_id } = outcomes[0] else {
        panic!("{outcomes:?}")
    };
    assert_eq!(outcomes[1], CallOutcome::Audited);
    assert_eq!(outcomes[2], CallOutcome::Duplicate { inbox_id });
    assert!(
        matches!(outcomes[3], CallOutcome::Received { inbox_id: other_id } if other_id != inbox_id)
    );
    assert_eq!(outcomes[4], CallOutcome::Audited);
    // Later, the same bytes are still a duplicate.
    let later = store
        .record_webhook_calls([signed_call(&merchant, body)].into())
        .await
        .unwrap();
    assert_eq!(later, vec![CallOutcome::Duplicate { inbox_id }]);

    let inbox = store
        .inbox_entries(
            &merchant,
            PageRequest {
                before: None,
                limit: 10,
            },
        )
        .await
        .unwrap();
    assert_eq!(inbox.items.len(), 1);
    assert_eq!(inbox.items[0].body, body.to_vec(), "bytes kept exactly");
    assert_eq!(inbox.items[0].state, "pending");
    assert_eq!(inbox.items[0].moota_webhook.as_deref(), Some("w1"));
    assert_eq!(store.inbox_depth().await.unwrap(), 2);

    let audit = store
        .webhook_deliveries(
            &merchant,
            PageRequest {
                before: None,
                limit: 10,
            },
        )
        .await
        .unwrap();
    let reasons: Vec<(&str, u16)> = audit
        .items
        .iter()
        .map(|e| (e.reason.as_str(), e.status))
        .collect();
    assert_eq!(
        reasons,
        vec![
            ("duplicate", 200),
            ("duplicate", 200),
            ("signature_mismatch", 401),
            ("received", 200)
        ]
    );
    assert_eq!(audit.next_cursor, None);
    assert_eq!(audit.items[2].body_sha256, None);

    // Pages of two, newest first.
    let first = store
        .webhook_deliveries(
            &merchant,
            PageRequest {
                before: None,
                limit: 2,
            },
        )
        .await
        .unwrap();
    assert_eq!(first.items.len(), 2);
    let second = store
        .webhook_deliveries(
            &merchant,
            PageRequest {
                before: first.next_cursor,
                limit: 2,
            },
        )
        .await
        .unwrap();
    assert_eq!(second.items.len(), 2);
    assert!(second.items[0].id < first.items[1].id);
    assert_eq!(second.next_cursor, None);
    let others = store
        .webhook_deliveries(
            &other,
            PageRequest {
                before: None,
                limit: 10,
            },
        )
        .await
        .unwrap();
    assert_eq!(others.items.len(), 1);
}

/// A group that fails (here a body for a merchant that does not exist) writes nothing, and
/// the next group goes through: a failure must not leave the writer inside a transaction.
async fn a_failed_group_leaves_the_writer_usable(store: &dyn Store) {
    let merchant = migrated_with_merchant(store, 1).await;
    let stranger = merchant_id(9);
    let failed = store
        .record_webhook_calls(
            [
                signed_call(&merchant, br#"[{"mutation_id":"first"}]"#),
                signed_call(&stranger, br#"[{"mutation_id":"orphan"}]"#),
            ]
            .into(),
        )
        .await;
    assert!(failed.is_err(), "{failed:?}");
    let page = PageRequest {
        before: None,
        limit: 10,
    };
    let inbox = store.inbox_entries(&merchant, page).await.unwrap();
    assert!(inbox.items.is_empty());
    let deliveries = store.webhook_deliveries(&merchant, page).await.unwrap();
    assert!(deliveries.items.is_empty());

    let outcomes = store
        .record_webhook_calls([signed_call(&merchant, br#"[{"mutation_id":"first"}]"#)].into())
        .await
        .unwrap();
    assert!(
        matches!(outcomes[..], [CallOutcome::Received { .. }]),
        "{outcomes:?}"
    );
    assert_eq!(
        store
            .inbox_entries(&merchant, page)
            .await
            .unwrap()
            .items
            .len(),
        1
    );
}

async fn suppressed_calls_are_counted(store: &dyn Store) {
    store.migrate().await.unwrap();
    let minute = Utc.with_ymd_and_hms(2026, 11, 27, 1, 2, 0).unwrap();
    let entry = |count| SuppressedCalls {
        merchant: "mer_x".into(),
        minute_start: minute,
        reason: "signature_mismatch".into(),
        count,
    };
    store.add_suppressed_calls(&[entry(5)]).await.unwrap();
    store.add_suppressed_calls(&[entry(7)]).await.unwrap();
    assert_eq!(store.suppressed_call_count("mer_x").await.unwrap(), 12);
    assert_eq!(store.suppressed_call_count("mer_y").await.unwrap(), 0);
}

/// Reconciliation: the token and banks round-trip, each found mutation goes into the inbox
/// once (as a row of source `api` with its audit row), the ledger counts it as missed by
/// the webhook, and the scheduled sync is claimed by one caller until it is due again.
async fn reconciliation_puts_each_found_mutation_in_once(store: &dyn Store) {
    use setia_core::moota_api::{MootaBankId, MootaToken, SyncWindow};
    use setia_store::reconcile::{FoundMutation, SyncCounts, SyncStarter};

    let merchant = migrated_with_merchant(store, 1).await;
    let other = migrated_with_merchant(store, 2).await;
    let now = Utc.with_ymd_and_hms(2026, 12, 5, 3, 0, 0).unwrap();
    assert_eq!(store.moota_settings(&merchant).await.unwrap().token, None);
    assert!(store.moota_merchants().await.unwrap().is_empty());
    let token = MootaToken::parse("moota-token-1").unwrap();
    let banks = [MootaBankId::parse("bnk_1").unwrap()];
    assert!(store
        .set_moota_settings(&merchant, Some(&token), Some(&banks))
        .await
        .unwrap());
    assert!(!store
        .set_moota_settings(&merchant_id(9), Some(&token), None)
        .await
        .unwrap());
    let settings = store.moota_settings(&merchant).await.unwrap();
    assert_eq!(
        (settings.token.as_ref(), settings.banks.as_slice()),
        (Some(&token), &banks[..])
    );
    // Banks alone change, the token stays; an empty list is every bank.
    store
        .set_moota_settings(&merchant, None, Some(&[]))
        .await
        .unwrap();
    let settings = store.moota_settings(&merchant).await.unwrap();
    assert_eq!(
        (settings.token.as_ref(), settings.banks.len()),
        (Some(&token), 0)
    );
    assert_eq!(
        store.moota_merchants().await.unwrap(),
        vec![merchant.clone()]
    );

    let day = |d| chrono::NaiveDate::from_ymd_opt(2026, 12, d).unwrap();
    let window = SyncWindow::new(day(4), day(5)).unwrap();
    let sync = store
        .start_moota_sync(&merchant, SyncStarter::Command, window, now)
        .await
        .unwrap();
    let body = |id: &str| {
        format!(
            r#"[{{"mutation_id":"{id}","date":"2026-12-04 10:00:00","amount":"150123.00","type":"CR","description":"TRSF BUDI","bank":{{"bank_type":"bca"}}}}]"#
        )
        .into_bytes()
    };
    let found = |id: &str| FoundMutation {
        mutation_id: id.into(),
        body: body(id),
    };
    assert_eq!(
        store
            .record_found_mutations(
                &merchant,
                sync,
                &[found("m1"), found("m2"), found("m1")],
                now
            )
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        store
            .record_found_mutations(&merchant, sync, &[found("m2")], now)
            .await
            .unwrap(),
        0,
        "found once"
    );
    let ids = ["m1".to_owned(), "m2".to_owned(), "m3".to_owned()];
    let known = store.known_mutations(&merchant, &ids).await.unwrap();
    assert_eq!(known.len(), 2);
    assert!(known.contains("m1") && known.contains("m2"));
    assert!(store
        .known_mutations(&other, &ids)
        .await
        .unwrap()
        .is_empty());
    let audit = store
        .webhook_deliveries(
            &merchant,
            PageRequest {
                before: None,
                limit: 10,
            },
        )
        .await
        .unwrap()
        .items;
    assert_eq!(audit.len(), 2);
    assert!(audit
        .iter()
        .all(|a| a.status == 200 && a.remote_addr == "moota-api"));

    // The worker applies them like webhook bodies; the ledger knows them as missed.
    let claimed = store
        .claim_inbox(now, chrono::TimeDelta::seconds(60), 10)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 2);
    for row in &claimed {
        let mutations = setia_core::moota::parse_mutations(&row.body).unwrap();
        store
            .apply_mutations(row, &mutations, now)
            .await
            .unwrap()
            .unwrap();
    }
    let week = (
        now - chrono::TimeDelta::days(7),
        now + chrono::TimeDelta::seconds(1),
    );
    assert_eq!(
        store
            .missed_by_webhook(&merchant, week.0, week.1)
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        store
            .missed_by_webhook(&other, week.0, week.1)
            .await
            .unwrap(),
        0
    );

    let counts = SyncCounts {
        pages: 1,
        mutations: 3,
        new: 2,
        already_known: 1,
    };
    assert_eq!(store.last_synced_day(&merchant).await.unwrap(), None);
    store
        .finish_moota_sync(&merchant, sync, counts, None, now)
        .await
        .unwrap();
    let failed = store
        .start_moota_sync(
            &merchant,
            SyncStarter::Schedule,
            SyncWindow::new(day(5), day(6)).unwrap(),
            now,
        )
        .await
        .unwrap();
    store
        .finish_moota_sync(
            &merchant,
            failed,
            SyncCounts::default(),
            Some("Moota refused the token"),
            now,
        )
        .await
        .unwrap();
    assert_eq!(
        store.last_synced_day(&merchant).await.unwrap(),
        Some(day(5)),
        "failures do not count"
    );
    let syncs = store
        .moota_syncs(
            &merchant,
            PageRequest {
                before: None,
                limit: 10,
            },
        )
        .await
        .unwrap()
        .items;
    assert_eq!(syncs.len(), 2);
    assert_eq!(syncs[0].error.as_deref(), Some("Moota refused the token"));
    assert_eq!((syncs[1].counts, syncs[1].window), (counts, window));
    assert!(store
        .moota_syncs(
            &other,
            PageRequest {
                before: None,
                limit: 10
            }
        )
        .await
        .unwrap()
        .items
        .is_empty());

    // The scheduled sync: one holder at a time, and not again until it is due.
    let lease = chrono::TimeDelta::minutes(10);
    assert!(store
        .claim_moota_sync(&merchant, "a", now, lease)
        .await
        .unwrap());
    assert!(!store
        .claim_moota_sync(&merchant, "b", now, lease)
        .await
        .unwrap());
    let next = now + chrono::TimeDelta::minutes(30);
    store
        .release_moota_sync(&merchant, "a", next)
        .await
        .unwrap();
    assert!(!store
        .claim_moota_sync(&merchant, "b", now + lease, lease)
        .await
        .unwrap());
    assert!(store
        .claim_moota_sync(&merchant, "b", next, lease)
        .await
        .unwrap());
    // A holder that died: taken over when its lease runs out.
    assert!(!store
        .claim_moota_sync(&merchant, "c", next + chrono::TimeDelta::minutes(5), lease)
        .await
        .unwrap());
    assert!(store
        .claim_moota_sync(
            &merchant,
            "c",
            next + lease + chrono::TimeDelta::seconds(1),
            lease
        )
        .await
        .unwrap());
}

macro_rules! conformance {
    ($backend:ident) => {
        mod $backend {
            macro_rules! case {
                ($name:ident) => {
                    #[tokio::test]
                    async fn $name() {
                        let backend = super::$backend().await;
                        super::$name(&*backend.store).await;
                    }
                };
            }

            case!(readiness_follows_migrations);
            case!(merchants_round_trip);
            case!(customers_upsert_by_external_id);
            case!(a_clashing_virtual_account_rolls_the_import_back);
            case!(transactions_import_idempotently);
            case!(a_failed_or_interrupted_import_writes_nothing);
            case!(merchants_never_see_each_other);
            case!(large_imports_span_many_batches);
            case!(webhook_calls_are_group_committed);
            case!(suppressed_calls_are_counted);
            case!(a_failed_group_leaves_the_writer_usable);
            case!(reconciliation_puts_each_found_mutation_in_once);
        }
    };
}

conformance!(sqlite);
#[cfg(feature = "postgres-tests")]
conformance!(postgres);

/// SQLite's webhook groups have a connection of their own. When another connection holds
/// the write lock (sqlx's writer, or another process such as an import), a group waits for
/// it instead of failing with SQLITE_BUSY, and goes as soon as the lock is free: SQLite's
/// default busy handler would be sleeping 100 ms at a time by then.
#[tokio::test]
async fn sqlite_webhook_groups_wait_for_another_writer() {
    let backend = sqlite().await;
    let merchant = migrated_with_merchant(&*backend.store, 1).await;
    let path = backend._database.url.trim_start_matches("sqlite://");
    let other = rusqlite::Connection::open(path).unwrap();
    other.execute_batch("BEGIN IMMEDIATE").unwrap();

    let store = backend.store.clone();
    let call = signed_call(&merchant, br#"[{"mutation_id":"held"}]"#);
    let group = tokio::spawn(async move { store.record_webhook_calls([call].into()).await });
    // 330 ms: SQLite's default handler has just begun a 100 ms sleep (from 228 ms to 328 ms,
    // then to 428 ms).
    tokio::time::sleep(std::time::Duration::from_millis(330)).await;
    assert!(
        !group.is_finished(),
        "the group went ahead of the write lock"
    );
    let pending: i64 = other
        .query_row("SELECT count(*) FROM inbox", [], |row| row.get(0))
        .unwrap();
    assert_eq!(pending, 0);
    other.execute_batch("COMMIT").unwrap();
    let released = std::time::Instant::now();

    let outcomes = group.await.unwrap().unwrap();
    let late = released.elapsed();
    assert!(
        late < std::time::Duration::from_millis(50),
        "the group committed {late:?} after the lock was free"
    );
    assert!(
        matches!(outcomes[..], [CallOutcome::Received { .. }]),
        "{outcomes:?}"
    );
    let stored: i64 = other
        .query_row("SELECT count(*) FROM inbox", [], |row| row.get(0))
        .unwrap();
    assert_eq!(stored, 1);
}

/// On SQLite, requests hand their calls straight to the webhook writer's queue, and the
/// writer gathers whatever has queued into one group. Here the writer is held on the write
/// lock with one call while four more queue behind it; they then go as one group, whose bad
/// call (a merchant that does not exist) fails alone: its neighbours are written one by one,
/// the duplicate within the group included.
#[tokio::test]
async fn sqlite_queued_calls_are_gathered_and_a_bad_one_fails_alone() {
    let backend = sqlite().await;
    let merchant = migrated_with_merchant(&*backend.store, 1).await;
    let queue = backend
        .store
        .webhook_queue()
        .expect("SQLite's writer gathers its own groups");
    let path = backend._database.url.trim_start_matches("sqlite://");
    let other = rusqlite::Connection::open(path).unwrap();
    other.execute_batch("BEGIN IMMEDIATE").unwrap();

    let send = |call: WebhookCall| {
        let (reply, answer) = tokio::sync::oneshot::channel();
        queue.send(call, Some(reply)).unwrap();
        answer
    };
    let held = send(signed_call(&merchant, br#"[{"mutation_id":"held"}]"#));
    // The writer has taken the first call alone and waits for the lock.
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let body = br#"[{"mutation_id":"queued"}]"#;
    let queued = send(signed_call(&merchant, body));
    let orphan = send(signed_call(
        &merchant_id(9),
        br#"[{"mutation_id":"orphan"}]"#,
    ));
    let again = send(signed_call(&merchant, body));
    queue
        .send(
            rejected_call(merchant.as_str(), 401, "signature_mismatch"),
            None,
        )
        .unwrap();
    other.execute_batch("COMMIT").unwrap();

    assert!(matches!(
        held.await.unwrap(),
        Ok(CallOutcome::Received { .. })
    ));
    let Ok(CallOutcome::Received { inbox_id }) = queued.await.unwrap() else {
        panic!("the queued call was not received")
    };
    assert!(orphan.await.unwrap().is_err());
    assert_eq!(
        again.await.unwrap().unwrap(),
        CallOutcome::Duplicate { inbox_id }
    );
    queue.written().await.unwrap();
    let page = PageRequest {
        before: None,
        limit: 10,
    };
    let deliveries = backend
        .store
        .webhook_deliveries(&merchant, page)
        .await
        .unwrap();
    let reasons: Vec<_> = deliveries
        .items
        .iter()
        .map(|row| row.reason.as_str())
        .collect();
    assert_eq!(
        reasons,
        ["signature_mismatch", "duplicate", "received", "received"]
    );
    assert_eq!(
        backend
            .store
            .inbox_entries(&merchant, page)
            .await
            .unwrap()
            .items
            .len(),
        2
    );
}

/// Once the store is closed, its queue refuses calls instead of leaving them unanswered.
#[tokio::test]
async fn sqlite_webhook_queue_refuses_calls_once_closed() {
    let backend = sqlite().await;
    let merchant = migrated_with_merchant(&*backend.store, 1).await;
    let queue = backend.store.webhook_queue().unwrap();
    backend.store.close().await;
    let (reply, answer) = tokio::sync::oneshot::channel();
    let sent = queue.send(signed_call(&merchant, b"[]"), Some(reply));
    assert!(matches!(sent, Err(StoreError::WriterStopped)), "{sent:?}");
    assert!(answer.await.is_err());
    assert!(matches!(
        queue.written().await,
        Err(StoreError::WriterStopped)
    ));
    assert!(backend.store.webhook_queue().is_none());
}

/// On SQLite the duplicate check is the webhook writer's memory of the inbox. Another
/// process on the same file (here a second store) must still see every body the first one
/// committed, and the first every body of the second.
#[tokio::test]
async fn sqlite_duplicates_are_seen_across_writers_of_one_file() {
    let backend = sqlite().await;
    let merchant = migrated_with_merchant(&*backend.store, 1).await;
    let (one, two) = (br#"[{"mutation_id":"one"}]"#, br#"[{"mutation_id":"two"}]"#);
    let first = backend.store.clone();
    let outcomes = first
        .record_webhook_calls([signed_call(&merchant, one)].into())
        .await
        .unwrap();
    let [CallOutcome::Received { inbox_id: one_id }] = outcomes[..] else {
        panic!("{outcomes:?}")
    };

    let second = setia_store::connect(&backend._database.url).await.unwrap();
    second.migrate().await.unwrap();
    second.prepare_for_webhooks().await.unwrap();
    let outcomes = second
        .record_webhook_calls([signed_call(&merchant, one), signed_call(&merchant, two)].into())
        .await
        .unwrap();
    let [CallOutcome::Duplicate { inbox_id }, CallOutcome::Received { inbox_id: two_id }] =
        outcomes[..]
    else {
        panic!("{outcomes:?}")
    };
    assert_eq!(inbox_id, one_id);

    let outcomes = first
        .record_webhook_calls([signed_call(&merchant, two)].into())
        .await
        .unwrap();
    assert_eq!(outcomes, vec![CallOutcome::Duplicate { inbox_id: two_id }]);
    second.close().await;
}

/// A SQLite file made by the migrations before `version` only, its path, and merchant 1 in it.
async fn sqlite_before_migration(version: &str) -> (TestDatabase, String, MerchantId) {
    let database = TestDatabase::sqlite();
    let path = database.url.trim_start_matches("sqlite://").to_owned();
    std::fs::create_dir_all(std::path::Path::new(&path).parent().unwrap()).unwrap();
    let before = tempfile::tempdir().unwrap();
    for entry in
        std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../../sql/sqlite")).unwrap()
    {
        let entry = entry.unwrap();
        if entry.file_name().to_string_lossy().as_ref() < version {
            std::fs::copy(entry.path(), before.path().join(entry.file_name())).unwrap();
        }
    }
    let old = sqlx::migrate::Migrator::new(before.path()).await.unwrap();
    let options = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(&path)
        .create_if_missing(true);
    let mut connection = sqlx::ConnectOptions::connect(&options).await.unwrap();
    old.run(&mut connection).await.unwrap();
    sqlx::Connection::close(connection).await.unwrap();
    let merchant = merchant_id(1);
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute(
            "INSERT INTO merchants (id, name, timezone, webhook_secret, api_token_hash, \
             created_at_us) VALUES (?1, 'Old', 'Asia/Jakarta', 'secret-0123456789abcdef', 'hash', 0)",
            [merchant.as_str()],
        )
        .unwrap();
    (database, path, merchant)
}

/// A `mutations` row of merchant 1 that refers to inbox row `inbox_id`.
fn insert_mutation(
    db: &rusqlite::Connection,
    mutation_id: &str,
    inbox_id: i64,
) -> rusqlite::Result<usize> {
    db.execute(
        "INSERT INTO mutations (merchant_id, mutation_id, inbox_id, account_number, \
         occurred_at_us, description, amount_minor, direction, created_at_us) \
         VALUES (?1, ?2, ?3, '123', 0, 'TRANSFER', 10000, 'CR', 0)",
        rusqlite::params![merchant_id(1).as_str(), mutation_id, inbox_id],
    )
}

/// Migrations run with foreign keys off, so a reference left dangling must be caught after
/// them: the store refuses to open rather than run on a broken ledger.
#[tokio::test]
async fn sqlite_migrations_refuse_a_dangling_reference() {
    let (database, path, _) = sqlite_before_migration("0007").await;
    // As a tool that does not enforce foreign keys (the sqlite3 shell's default) could.
    let old_db = rusqlite::Connection::open(&path).unwrap();
    old_db.execute_batch("PRAGMA foreign_keys = OFF").unwrap();
    insert_mutation(&old_db, "orphan", 77).unwrap();
    drop(old_db);
    let store = setia_store::connect(&database.url).await.unwrap();
    let migrated = store.migrate().await;
    store.close().await;
    match migrated {
        Err(StoreError::Corrupt(message)) => {
            assert!(message.contains("1 rows refer"), "{message}")
        }
        other => panic!("{other:?}"),
    }
}

/// Migration 0007 rebuilds the inbox without its UNIQUE digest index. A database made by
/// the migrations before it keeps its rows and ids, the ledger's references to them, and
/// its bodies stay duplicates.
#[tokio::test]
async fn sqlite_inbox_rebuild_keeps_rows_and_references() {
    let (database, path, merchant) = sqlite_before_migration("0007").await;
    let body = br#"[{"mutation_id":"before-0007"}]"#;
    let sha256 = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(body))
    };
    let old_db = rusqlite::Connection::open(&path).unwrap();
    old_db
        .execute_batch(&format!(
            "INSERT INTO inbox (id, merchant_id, body, body_sha256, body_size, remote_addr, received_at_us, state) \
             VALUES (41, '{merchant}', x'00', 'aa', 1, '10.0.0.1', 0, 'done'), \
                    (42, '{merchant}', x'{}', '{sha256}', {}, '10.0.0.1', 0, 'done');",
            hex::encode(body),
            body.len()
        ))
        .unwrap();
    insert_mutation(&old_db, "before-0007", 42).unwrap();
    drop(old_db);

    let store = setia_store::connect(&database.url).await.unwrap();
    store.migrate().await.unwrap();
    let outcomes = store
        .record_webhook_calls([signed_call(&merchant, body)].into())
        .await
        .unwrap();
    assert_eq!(outcomes, vec![CallOutcome::Duplicate { inbox_id: 42 }]);
    store.close().await;

    let db = rusqlite::Connection::open(&path).unwrap();
    let ids: Vec<i64> = db
        .prepare("SELECT id FROM inbox ORDER BY id")
        .unwrap()
        .query_map([], |row| row.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(ids, vec![41, 42]);
    let unique_indexes: i64 = db
        .query_row(
            "SELECT count(*) FROM pragma_index_list('inbox') WHERE \"unique\" = 1",
            [],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(unique_indexes, 0, "the digest index is gone");
    let parent: String = db
        .query_row(
            "SELECT \"table\" FROM pragma_foreign_key_list('mutations') WHERE \"from\" = 'inbox_id'",
            [],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(parent, "inbox");
    db.execute_batch("PRAGMA foreign_keys = ON").unwrap();
    let orphan = insert_mutation(&db, "orphan", 99);
    assert!(orphan.is_err(), "the inbox reference is still enforced");
}

/// Migration 0008 rebuilds the inbox with its state check as comparisons, not an IN list:
/// the rows, ids, states and the ledger's references stay, the check still holds, and the
/// webhook writer's insert no longer builds a temporary B-tree per row.
#[tokio::test]
async fn sqlite_inbox_state_check_without_in_list() {
    let (database, path, merchant) = sqlite_before_migration("0008").await;
    let old_db = rusqlite::Connection::open(&path).unwrap();
    old_db
        .execute_batch(&format!(
            "INSERT INTO inbox (id, merchant_id, body, body_sha256, body_size, remote_addr, \
             received_at_us, state, attempts, last_error) VALUES \
             (7, '{merchant}', x'01', 'a1', 1, '10.0.0.1', 5, 'done', 1, NULL), \
             (8, '{merchant}', x'02', 'a2', 1, '10.0.0.1', 6, 'quarantined', 3, 'not JSON'), \
             (9, '{merchant}', x'03', 'a3', 1, '10.0.0.1', 7, 'pending', 0, NULL);"
        ))
        .unwrap();
    insert_mutation(&old_db, "before-0008", 7).unwrap();
    drop(old_db);

    let store = setia_store::connect(&database.url).await.unwrap();
    store.migrate().await.unwrap();
    store.close().await;

    let db = rusqlite::Connection::open(&path).unwrap();
    db.execute_batch("PRAGMA foreign_keys = ON").unwrap();
    let rows: Vec<(i64, String, i64, Option<String>)> = db
        .prepare("SELECT id, state, attempts, last_error FROM inbox ORDER BY id")
        .unwrap()
        .query_map([], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        rows,
        vec![
            (7, "done".into(), 1, None),
            (8, "quarantined".into(), 3, Some("not JSON".into())),
            (9, "pending".into(), 0, None),
        ]
    );
    let bad_state = db.execute("UPDATE inbox SET state = 'lost' WHERE id = 9", []);
    assert!(bad_state.is_err(), "the state check still holds");
    assert!(
        insert_mutation(&db, "orphan", 99).is_err(),
        "the inbox reference is enforced"
    );
    let indexes: Vec<String> = db
        .prepare("SELECT name FROM pragma_index_list('inbox') ORDER BY name")
        .unwrap()
        .query_map([], |row| row.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(indexes, vec!["inbox_by_state", "inbox_quarantined"]);
    // The writer's insert, as `EXPLAIN` shows it: no temporary B-tree for the check.
    let opcodes: Vec<String> = db
        .prepare(
            "EXPLAIN INSERT INTO inbox (merchant_id, body, body_sha256, body_size, remote_addr, \
             received_at_us) VALUES (?1, x'00', 'd', 1, '10.0.0.1', 0)",
        )
        .unwrap()
        .query_map([merchant.as_str()], |row| row.get(1))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(
        !opcodes.iter().any(|op| op == "OpenEphemeral"),
        "{opcodes:?}"
    );
}

// ---------------------------------------------------------------------------------------
// The scheduled Moota sync's start: a sync counts as synced up to the end of its
// window, but never past the day (in Moota's zone, Asia/Jakarta) it started.
// ---------------------------------------------------------------------------------------

async fn a_future_sync_window_counts_only_up_to_the_day_it_ran(store: &dyn Store) {
    use setia_core::moota_api::SyncWindow;
    use setia_store::reconcile::{SyncCounts, SyncStarter};

    let merchant = migrated_with_merchant(store, 1).await;
    let other = migrated_with_merchant(store, 2).await;
    let day = |y, m, d| chrono::NaiveDate::from_ymd_opt(y, m, d).unwrap();
    // (since, until, started at (UTC), error)
    let syncs = [
        // An ordinary sync: its window ends the day it ran.
        (
            day(2026, 11, 19),
            day(2026, 11, 20),
            Utc.with_ymd_and_hms(2026, 11, 20, 3, 0, 0).unwrap(),
            None,
        ),
        // Future windows, from before `setia moota sync` refused them.
        (
            day(2026, 12, 20),
            day(2027, 1, 10),
            Utc.with_ymd_and_hms(2026, 12, 8, 3, 0, 0).unwrap(),
            None,
        ),
        (
            day(2027, 1, 1),
            day(2027, 2, 1),
            Utc.with_ymd_and_hms(2026, 12, 1, 3, 0, 0).unwrap(),
            None,
        ),
        // A failed one counts for nothing, future or not.
        (
            day(2026, 12, 9),
            day(2027, 3, 1),
            Utc.with_ymd_and_hms(2026, 12, 10, 3, 0, 0).unwrap(),
            Some("Moota refused the token"),
        ),
    ];
    for (since, until, started, error) in syncs {
        let window = SyncWindow::new(since, until).unwrap();
        let id = store
            .start_moota_sync(&merchant, SyncStarter::Command, window, started)
            .await
            .unwrap();
        store
            .finish_moota_sync(&merchant, id, SyncCounts::default(), error, started)
            .await
            .unwrap();
    }
    assert_eq!(
        store.last_synced_day(&merchant).await.unwrap(),
        Some(day(2026, 12, 8)),
        "the latest day a successful sync ran, not 2027-02-01"
    );
    // Started 17:30 UTC on the 8th: the 9th in Jakarta, the day its window ends.
    let late = Utc.with_ymd_and_hms(2026, 12, 8, 17, 30, 0).unwrap();
    let window = SyncWindow::new(day(2026, 12, 7), day(2026, 12, 9)).unwrap();
    let id = store
        .start_moota_sync(&merchant, SyncStarter::Schedule, window, late)
        .await
        .unwrap();
    assert_eq!(
        store.last_synced_day(&merchant).await.unwrap(),
        Some(day(2026, 12, 8)),
        "a sync still running does not count"
    );
    store
        .finish_moota_sync(&merchant, id, SyncCounts::default(), None, late)
        .await
        .unwrap();
    assert_eq!(
        store.last_synced_day(&merchant).await.unwrap(),
        Some(day(2026, 12, 9))
    );
    assert_eq!(store.last_synced_day(&other).await.unwrap(), None);
}

mod future_sync_windows {
    macro_rules! case {
        ($backend:ident, $name:ident) => {
            #[tokio::test]
            async fn $name() {
                let backend = super::$backend().await;
                super::a_future_sync_window_counts_only_up_to_the_day_it_ran(&*backend.store).await;
            }
        };
    }

    case!(sqlite, sqlite_counts_only_up_to_the_day_it_ran);
    #[cfg(feature = "postgres-tests")]
    case!(postgres, postgres_counts_only_up_to_the_day_it_ran);
}
