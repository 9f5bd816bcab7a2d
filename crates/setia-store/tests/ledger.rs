//! The ledger pipeline against real databases: attribution, dedupe, points, refunds,
//! redemptions, expiry, sandbox isolation and claims.

use std::sync::Arc;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use setia_core::customer::{ExternalId, PayerName, VirtualAccount};
use setia_core::moota::parse_mutations;
use setia_core::{ApiToken, MerchantId, MerchantName, MerchantTimezone, Money, WebhookSecret};
use setia_store::ledger::{Applied, ManualAttribution, NewOrder, RedemptionOutcome};
use setia_store::testing::TestDatabase;
use setia_store::{CustomerPatch, InboxBody, NewMerchant, PageRequest, Store, WebhookCall};
use sha2::Digest;

struct Shop {
    store: Arc<dyn Store>,
    merchant: MerchantId,
    _database: TestDatabase,
}

fn at(day: i64, hour: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, hour, 0, 0).unwrap() + TimeDelta::days(day)
}

fn ext(id: &str) -> ExternalId {
    ExternalId::parse(id).unwrap()
}

fn rupiah(amount: i64) -> Money {
    Money::from_minor(amount * 100)
}

/// A merchant of its own in `store`: the shop's, or another one beside it.
async fn new_merchant(store: &dyn Store, seed: u8, name: &str, sandbox: bool) -> MerchantId {
    store
        .create_merchant(NewMerchant {
            id: MerchantId::from_random_bytes([seed; 20]),
            name: MerchantName::parse(name).unwrap(),
            timezone: MerchantTimezone::default(),
            webhook_secret: WebhookSecret::parse("AElSnSQj").unwrap(),
            api_token_hash: ApiToken::from_random_bytes([seed; 32]).hash(),
            report_emails: vec![],
            sandbox,
        })
        .await
        .unwrap()
        .id
}

impl Shop {
    async fn open(database: TestDatabase, sandbox: bool) -> Shop {
        let store = setia_store::connect(&database.url).await.unwrap();
        store.migrate().await.unwrap();
        let merchant = new_merchant(&*store, 3, "Toko", sandbox).await;
        Shop {
            store,
            merchant,
            _database: database,
        }
    }

    async fn customer(&self, id: &str, patch: CustomerPatch) {
        self.store
            .upsert_customer(&self.merchant, &ext(id), &patch)
            .await
            .unwrap();
    }

    /// A signed call that passed every check, as the webhook handler hands it to the store.
    fn accepted_call(&self, body: &[u8], now: DateTime<Utc>) -> WebhookCall {
        WebhookCall {
            merchant: self.merchant.to_string(),
            received_at: now,
            remote_addr: "103.236.201.178".into(),
            status: 200,
            reason: String::new(),
            body_sha256: Some(hex::encode(sha2::Sha256::digest(body))),
            body_size: body.len() as u64,
            inbox: Some(InboxBody {
                merchant: self.merchant.clone(),
                body: body.to_vec().into(),
                user_agent: None,
                moota_user: None,
                moota_webhook: None,
            }),
        }
    }

    /// A webhook body through the inbox and one worker step, as of `now`.
    async fn deliver(&self, body: &str, now: DateTime<Utc>) -> Applied {
        let call = self.accepted_call(body.as_bytes(), now);
        self.store
            .record_webhook_calls([call].into())
            .await
            .unwrap();
        let rows = self
            .store
            .claim_inbox(now, TimeDelta::seconds(60), 10)
            .await
            .unwrap();
        assert_eq!(rows.len(), 1);
        let mutations = parse_mutations(&rows[0].body).unwrap();
        self.store
            .apply_mutations(&rows[0], &mutations, now)
            .await
            .unwrap()
            .expect("the claim holds")
    }

    async fn balance(&self, id: &str, now: DateTime<Utc>) -> i64 {
        self.store
            .customer_profile(&self.merchant, &ext(id), now)
            .await
            .unwrap()
            .unwrap()
            .points_balance
    }

    async fn last_purchase_attribution(&self) -> (Option<String>, Option<String>) {
        let page = self
            .store
            .purchases(
                &self.merchant,
                None,
                PageRequest {
                    before: None,
                    limit: 1,
                },
            )
            .await
            .unwrap();
        let purchase = &page.items[0];
        (
            purchase.customer_external_id.clone(),
            purchase.attribution.clone(),
        )
    }
}

fn mutation(
    id: &str,
    when: DateTime<Utc>,
    amount: i64,
    account: &str,
    description: &str,
    bank_type: &str,
) -> String {
    let jakarta = when
        .with_timezone(&chrono_tz::Asia::Jakarta)
        .format("%Y-%m-%d %H:%M:%S");
    format!(
        r#"[{{"mutation_id":"{id}","account_number":"{account}","date":"{jakarta}","description":"{description}","amount":{amount},"type":"CR","bank":{{"bank_type":"{bank_type}"}}}}]"#
    )
}

fn with_va(va: &str) -> CustomerPatch {
    CustomerPatch {
        virtual_account: Some(VirtualAccount::parse(va).unwrap()),
        ..CustomerPatch::default()
    }
}

fn with_payer(name: &str) -> CustomerPatch {
    CustomerPatch {
        payer_names: vec![PayerName::parse(name).unwrap()],
        ..CustomerPatch::default()
    }
}

fn order(id: &str, customer: &str, amount: i64, expires_at: DateTime<Utc>) -> NewOrder {
    NewOrder {
        external_id: ext(id),
        customer: ext(customer),
        amount: rupiah(amount),
        expires_at,
        bank_account_number: None,
        items: Vec::new(),
        referral_code: None,
    }
}

async fn virtual_accounts_and_payer_names(shop: Shop) {
    shop.customer("C1", with_va("8808001")).await;
    shop.customer("C2", with_payer("Budi Santoso")).await;
    shop.customer("C3", with_payer("Siti Rahma")).await;
    shop.customer("C4", with_payer("Siti Rahma")).await;

    let applied = shop
        .deliver(
            &mutation("m1", at(0, 3), 150_000, "8808001", "VA PAYMENT", "bni"),
            at(0, 3),
        )
        .await;
    assert_eq!(
        (
            applied.purchases,
            applied.attributed,
            applied.points_awarded
        ),
        (1, 1, 15)
    );
    assert_eq!(
        shop.last_purchase_attribution().await,
        (Some("C1".into()), Some("virtual_account".into()))
    );

    shop.deliver(
        &mutation(
            "m2",
            at(0, 4),
            20_000,
            "1234",
            "TRSF E-BANKING CR 2711/FTSCY/WS95031 BUDI  santoso",
            "bca",
        ),
        at(0, 4),
    )
    .await;
    assert_eq!(
        shop.last_purchase_attribution().await,
        (Some("C2".into()), Some("payer_name".into()))
    );

    // A payer name two customers share attributes to nobody.
    shop.deliver(
        &mutation(
            "m3",
            at(0, 5),
            20_000,
            "1234",
            "TRANSFER DARI SITI RAHMA",
            "bca",
        ),
        at(0, 5),
    )
    .await;
    assert_eq!(shop.last_purchase_attribution().await, (None, None));
    let queue = shop
        .store
        .purchases(
            &shop.merchant,
            Some(false),
            PageRequest {
                before: None,
                limit: 10,
            },
        )
        .await
        .unwrap();
    assert_eq!(queue.items.len(), 1);

    // Attributing it by hand awards its points as of the purchase.
    let purchase = queue.items[0].id;
    let result = shop
        .store
        .attribute_purchase(&shop.merchant, purchase, &ext("C3"), None, at(1, 0))
        .await
        .unwrap()
        .unwrap();
    assert!(
        matches!(result, ManualAttribution::Attributed(ref p) if p.attribution.as_deref() == Some("manual"))
    );
    assert_eq!(shop.balance("C3", at(1, 0)).await, 2);
    let again = shop
        .store
        .attribute_purchase(&shop.merchant, purchase, &ext("C4"), None, at(1, 0))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again, ManualAttribution::AlreadyAttributed);

    // A payer name the merchant attributes by hand is learned for next time.
    shop.deliver(
        &mutation(
            "m4",
            at(2, 5),
            30_000,
            "1234",
            "MCM InhouseTrf DARI AGUS WIJAYA",
            "bca",
        ),
        at(2, 5),
    )
    .await;
    let agus = shop
        .store
        .purchases(
            &shop.merchant,
            Some(false),
            PageRequest {
                before: None,
                limit: 1,
            },
        )
        .await
        .unwrap()
        .items[0]
        .id;
    shop.customer("C5", CustomerPatch::default()).await;
    shop.store
        .attribute_purchase(&shop.merchant, agus, &ext("C5"), None, at(2, 6))
        .await
        .unwrap();
    shop.deliver(
        &mutation(
            "m5",
            at(3, 5),
            30_000,
            "1234",
            "MCM InhouseTrf DARI AGUS WIJAYA",
            "bca",
        ),
        at(3, 5),
    )
    .await;
    assert_eq!(
        shop.last_purchase_attribution().await,
        (Some("C5".into()), Some("payer_name".into()))
    );
}

async fn orders_by_unique_amount_and_note_code(shop: Shop) {
    let created = shop
        .store
        .create_order(
            &shop.merchant,
            &order("O1", "C1", 250_000, at(2, 0)),
            at(0, 0),
        )
        .await
        .unwrap();
    assert!((1..=999).contains(&created.unique_code));
    assert_eq!(
        created.transfer_amount,
        rupiah(250_000 + created.unique_code)
    );
    assert_eq!(created.status, "pending");
    assert_eq!(created.payment_code.len(), 5);
    let transfer = 250_000 + created.unique_code;

    shop.deliver(
        &mutation("m1", at(1, 0), transfer, "555", "TRSF E-BANKING CR", "bca"),
        at(1, 0),
    )
    .await;
    assert_eq!(
        shop.last_purchase_attribution().await,
        (Some("C1".into()), Some("order".into()))
    );
    let paid = shop
        .store
        .order(&shop.merchant, &ext("O1"), at(1, 1))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(paid.status, "paid");
    assert!(paid.purchase_id.is_some());

    // An expired order is no unique-amount match, but its note code with the exact amount is.
    let late = shop
        .store
        .create_order(
            &shop.merchant,
            &order("O2", "C2", 100_000, at(3, 0)),
            at(2, 0),
        )
        .await
        .unwrap();
    assert_eq!(
        shop.store
            .order(&shop.merchant, &ext("O2"), at(4, 0))
            .await
            .unwrap()
            .unwrap()
            .status,
        "expired"
    );
    let amount = 100_000 + late.unique_code;
    shop.deliver(
        &mutation("m2", at(4, 0), amount, "555", "TRSF CR BUDI", "bca"),
        at(4, 0),
    )
    .await;
    assert_eq!(shop.last_purchase_attribution().await, (None, None));
    let note = format!("TRSF CR {} BUDI", late.payment_code.to_lowercase());
    shop.deliver(
        &mutation("m3", at(4, 1), amount, "555", &note, "bca"),
        at(4, 1),
    )
    .await;
    assert_eq!(
        shop.last_purchase_attribution().await,
        (Some("C2".into()), Some("note_code".into()))
    );
    // A note code with another amount is no match.
    let other = shop
        .store
        .create_order(
            &shop.merchant,
            &order("O3", "C3", 50_000, at(9, 0)),
            at(4, 0),
        )
        .await
        .unwrap();
    let note = format!("TRSF CR {}", other.payment_code);
    shop.deliver(
        &mutation("m4", at(4, 2), 49_000, "555", &note, "bca"),
        at(4, 2),
    )
    .await;
    assert_eq!(shop.last_purchase_attribution().await, (None, None));

    assert!(matches!(
        shop.store
            .create_order(
                &shop.merchant,
                &order("O1", "C1", 1_000, at(9, 0)),
                at(4, 0)
            )
            .await,
        Err(setia_store::StoreError::Conflict(_))
    ));
}

async fn ambiguous_orders_and_exhausted_codes(shop: Shop) {
    // Order A (pending until day 1) holds transfer amount T. 998 orders of amount T - 500
    // take every other code of that amount, so once A has expired the only code left for
    // order B makes B's transfer amount T as well.
    let a = shop
        .store
        .create_order(
            &shop.merchant,
            &order("A", "C1", 100_000, at(1, 0)),
            at(0, 0),
        )
        .await
        .unwrap();
    let transfer = a.transfer_amount.whole_units();
    let b_amount = transfer - 500;
    for n in 0..998 {
        shop.store
            .create_order(
                &shop.merchant,
                &order(&format!("F{n}"), "C9", b_amount, at(30, 0)),
                at(0, 1),
            )
            .await
            .unwrap();
    }
    let b = shop
        .store
        .create_order(
            &shop.merchant,
            &order("B", "C2", b_amount, at(30, 0)),
            at(2, 0),
        )
        .await
        .unwrap();
    assert_eq!((b.unique_code, b.transfer_amount), (500, a.transfer_amount));
    // The 1000th pending order of one amount has no code left, and says so.
    let exhausted = shop
        .store
        .create_order(
            &shop.merchant,
            &order("X", "C2", b_amount, at(30, 0)),
            at(2, 0),
        )
        .await;
    assert!(
        matches!(exhausted, Err(setia_store::StoreError::Conflict(ref m)) if m.contains("999 unique codes")),
        "{exhausted:?}"
    );

    // A payment of T made on day 0 but delivered on day 2 fits both: no match, both ambiguous.
    shop.deliver(
        &mutation("m1", at(0, 12), transfer, "555", "TRSF", "bca"),
        at(2, 1),
    )
    .await;
    assert_eq!(shop.last_purchase_attribution().await, (None, None));
    for id in ["A", "B"] {
        assert_eq!(
            shop.store
                .order(&shop.merchant, &ext(id), at(0, 13))
                .await
                .unwrap()
                .unwrap()
                .status,
            "ambiguous"
        );
    }
    // Another payment of T from day 0, with B's note code: the code settles it.
    let note = format!("TRSF {}", b.payment_code);
    shop.deliver(
        &mutation("m2", at(0, 14), transfer, "555", &note, "bca"),
        at(2, 2),
    )
    .await;
    assert_eq!(
        shop.last_purchase_attribution().await,
        (Some("C2".into()), Some("note_code".into()))
    );
    assert_eq!(
        shop.store
            .order(&shop.merchant, &ext("B"), at(2, 3))
            .await
            .unwrap()
            .unwrap()
            .status,
        "paid"
    );
}

async fn one_mutation_earns_once(shop: Shop) {
    shop.customer("C1", with_va("8808001")).await;
    let body = mutation("m1", at(0, 3), 100_000, "8808001", "VA", "bca");
    let first = shop.deliver(&body, at(0, 3)).await;
    assert_eq!(first.points_awarded, 10);
    // Same mutation_id in a different body (Moota resending with an updated balance).
    let resent = body.replace("\"type\":\"CR\"", "\"type\":\"CR\",\"balance\":5");
    let second = shop.deliver(&resent, at(0, 4)).await;
    assert_eq!(
        (second.repeated, second.purchases, second.points_awarded),
        (1, 0, 0)
    );
    let third = shop
        .deliver(&resent.replace("\"balance\":5", "\"balance\":6"), at(0, 5))
        .await;
    assert_eq!(third.repeated, 1);
    assert_eq!(shop.balance("C1", at(1, 0)).await, 10);
    let profile = shop
        .store
        .customer_profile(&shop.merchant, &ext("C1"), at(1, 0))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (profile.purchases, profile.total_spent),
        (1, rupiah(100_000))
    );
}

async fn points_bonus_tiers_refunds_redemptions_and_expiry(shop: Shop) {
    shop.customer("C1", with_va("8808001")).await;
    // Four purchases of Rp 600,000: the fourth comes after Rp 1,800,000 — still bronze.
    for n in 0..4 {
        shop.deliver(
            &mutation(&format!("m{n}"), at(n, 3), 600_000, "8808001", "VA", "bca"),
            at(n, 3),
        )
        .await;
    }
    assert_eq!(shop.balance("C1", at(4, 0)).await, 4 * 60);
    // The fifth: Rp 2,400,000 in the year before it makes it silver (×1.25) and it is the
    // fifth purchase (+50).
    let fifth = shop
        .deliver(
            &mutation("m4", at(4, 3), 600_000, "8808001", "VA", "bca"),
            at(4, 3),
        )
        .await;
    assert_eq!(fifth.points_awarded, 75 + 50);
    let profile = shop
        .store
        .customer_profile(&shop.merchant, &ext("C1"), at(5, 0))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(profile.tier, "silver");
    assert_eq!(profile.points_balance, 240 + 125);

    // Refunding the fifth purchase reverses its earn and bonus.
    let purchases = shop
        .store
        .purchases(
            &shop.merchant,
            Some(true),
            PageRequest {
                before: None,
                limit: 1,
            },
        )
        .await
        .unwrap();
    let refunded = shop
        .store
        .refund_purchase(&shop.merchant, purchases.items[0].id, at(6, 0))
        .await
        .unwrap()
        .unwrap();
    assert!(refunded.refunded_at.is_some());
    assert_eq!(shop.balance("C1", at(6, 0)).await, 240);
    shop.store
        .refund_purchase(&shop.merchant, purchases.items[0].id, at(6, 1))
        .await
        .unwrap();
    assert_eq!(
        shop.balance("C1", at(6, 1)).await,
        240,
        "a second refund changes nothing"
    );

    // Redemptions: a replay with the same key applies once; a short balance is refused.
    let redeem = |key: &'static str, points: i64, when| {
        let shop = &shop;
        async move {
            shop.store
                .redeem_points(&shop.merchant, &ext("C1"), points, key, "voucher", when)
                .await
                .unwrap()
                .unwrap()
        }
    };
    assert!(matches!(
        redeem("k1", 100, at(7, 0)).await,
        RedemptionOutcome::Redeemed { balance: 140, .. }
    ));
    assert!(matches!(
        redeem("k1", 100, at(7, 1)).await,
        RedemptionOutcome::Replayed { balance: 140, .. }
    ));
    assert_eq!(
        redeem("k1", 90, at(7, 1)).await,
        RedemptionOutcome::KeyReused
    );
    assert_eq!(
        redeem("k2", 141, at(7, 2)).await,
        RedemptionOutcome::InsufficientPoints { balance: 140 }
    );
    assert_eq!(shop.balance("C1", at(7, 3)).await, 140);

    // FIFO: the refund took back the fifth purchase's own 125; the 100 redeemed came out of
    // the first award (60) and the second (40). 366 days on, the first two awards have
    // passed their year: what is left of them (20) expires; two days later the rest.
    let expire = |when| {
        let shop = &shop;
        async move {
            shop.store
                .expire_points(&shop.merchant, when)
                .await
                .unwrap()
        }
    };
    assert_eq!(expire(at(366, 12)).await, 20);
    assert_eq!(expire(at(366, 12)).await, 0, "idempotent");
    assert_eq!(shop.balance("C1", at(366, 12)).await, 120);
    assert_eq!(expire(at(368, 12)).await, 120);
    assert_eq!(shop.balance("C1", at(368, 12)).await, 0);
    let history = shop
        .store
        .points_history(&shop.merchant, setia_core::CustomerId::from_key(1))
        .await
        .unwrap();
    assert!(history
        .iter()
        .all(|e| !e.reason.is_empty() && !e.source.is_empty()));
    assert_eq!(history.iter().filter(|e| e.kind == "expire").count(), 3);
    assert_eq!(history.iter().map(|e| e.points).sum::<i64>(), 0);
}

async fn sandbox_mutations_change_no_balance(shop: Shop) {
    shop.customer(
        "C1",
        CustomerPatch {
            email: Some(setia_core::CustomerEmail::parse("c1@example.co.id").unwrap()),
            ..with_va("8808001")
        },
    )
    .await;
    let sandboxed = shop
        .deliver(
            &mutation("m1", at(0, 3), 100_000, "8808001", "VA", "vaSandbox"),
            at(0, 3),
        )
        .await;
    assert_eq!(
        (
            sandboxed.purchases,
            sandboxed.points_awarded,
            sandboxed.emails_enqueued
        ),
        (1, 0, 0)
    );
    let real = shop
        .deliver(
            &mutation("m2", at(0, 4), 100_000, "8808001", "VA", "bca"),
            at(0, 4),
        )
        .await;
    assert_eq!((real.points_awarded, real.emails_enqueued), (10, 1));
    // A second purchase the same local day makes no second thank-you.
    let same_day = shop
        .deliver(
            &mutation("m3", at(0, 5), 100_000, "8808001", "VA", "bca"),
            at(0, 5),
        )
        .await;
    assert_eq!(same_day.emails_enqueued, 0);
    let profile = shop
        .store
        .customer_profile(&shop.merchant, &ext("C1"), at(1, 0))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((profile.purchases, profile.points_balance), (2, 20));
    let columns = shop
        .store
        .purchase_columns(&shop.merchant, at(1, 0))
        .await
        .unwrap();
    assert_eq!(
        columns.customer.len(),
        2,
        "the sandbox payment counts in no metric"
    );
    // A debit is recorded, not a purchase.
    let debit = shop
        .deliver(
            &mutation("m4", at(0, 6), 5_000, "8808001", "BIAYA ADM", "bca")
                .replace("\"CR\"", "\"DB\""),
            at(0, 6),
        )
        .await;
    assert_eq!((debit.mutations, debit.purchases), (1, 0));
}

/// A sandbox merchant (the demo) is a world of its own: its payments, all sandbox, earn
/// points, count in its own numbers and queue its emails, exactly as in production.
async fn a_sandbox_merchant_is_a_world_of_its_own(shop: Shop) {
    shop.customer(
        "C1",
        CustomerPatch {
            email: Some(setia_core::CustomerEmail::parse("c1@example.co.id").unwrap()),
            ..with_va("8808001")
        },
    )
    .await;
    let applied = shop
        .deliver(
            &mutation("m1", at(0, 3), 100_000, "8808001", "VA", "vaSandbox"),
            at(0, 3),
        )
        .await;
    assert_eq!(
        (
            applied.purchases,
            applied.attributed,
            applied.points_awarded,
            applied.emails_enqueued
        ),
        (1, 1, 10, 1)
    );
    let purchases = shop
        .store
        .purchases(
            &shop.merchant,
            None,
            PageRequest {
                before: None,
                limit: 1,
            },
        )
        .await
        .unwrap();
    assert!(purchases.items[0].sandbox);
    let columns = shop
        .store
        .purchase_columns(&shop.merchant, at(1, 0))
        .await
        .unwrap();
    assert_eq!(
        columns.customer.len(),
        1,
        "counted in the sandbox merchant's own metrics"
    );
}

async fn a_lost_claim_writes_nothing(shop: Shop) {
    shop.customer("C1", with_va("8808001")).await;
    let body = mutation("m1", at(0, 3), 100_000, "8808001", "VA", "bca");
    let call = shop.accepted_call(body.as_bytes(), at(0, 3));
    shop.store
        .record_webhook_calls([call].into())
        .await
        .unwrap();
    let stale = shop
        .store
        .claim_inbox(at(0, 3), TimeDelta::seconds(30), 10)
        .await
        .unwrap();
    assert_eq!(stale.len(), 1);
    assert!(
        shop.store
            .claim_inbox(at(0, 3), TimeDelta::seconds(30), 10)
            .await
            .unwrap()
            .is_empty(),
        "leased"
    );
    // The lease runs out; another worker takes the row.
    let later = at(0, 3) + TimeDelta::seconds(31);
    let fresh = shop
        .store
        .claim_inbox(later, TimeDelta::seconds(30), 10)
        .await
        .unwrap();
    assert_eq!(fresh.len(), 1);
    let mutations = parse_mutations(&stale[0].body).unwrap();
    assert_eq!(
        shop.store
            .apply_mutations(&stale[0], &mutations, later)
            .await
            .unwrap(),
        None
    );
    assert!(shop
        .store
        .apply_mutations(&fresh[0], &mutations, later)
        .await
        .unwrap()
        .is_some());
    assert_eq!(shop.balance("C1", later).await, 10);
    assert_eq!(shop.store.inbox_depth().await.unwrap(), 0);

    // A body that is not a mutation list is quarantined, with its error, never dropped.
    let junk = shop.accepted_call(b"{{{", later);
    shop.store
        .record_webhook_calls([junk].into())
        .await
        .unwrap();
    let row = shop
        .store
        .claim_inbox(later, TimeDelta::seconds(30), 10)
        .await
        .unwrap()
        .remove(0);
    assert!(shop
        .store
        .quarantine_inbox(&row, "the body is not JSON", later)
        .await
        .unwrap());
    let quarantined = shop
        .store
        .quarantined(
            &shop.merchant,
            PageRequest {
                before: None,
                limit: 10,
            },
        )
        .await
        .unwrap();
    assert_eq!(
        quarantined.items[0].error.as_deref(),
        Some("the body is not JSON")
    );
}

/// A batch of rows in one transaction: a mutation repeated within the batch earns once, a
/// row whose claim was lost is skipped, and the rest are applied together.
async fn a_batch_applies_rows_together(shop: Shop) {
    shop.customer("C1", with_va("8808001")).await;
    shop.customer("C2", with_va("8808002")).await;
    let bodies = [
        mutation("b1", at(0, 3), 100_000, "8808001", "VA", "bca"),
        mutation("b2", at(0, 3), 200_000, "8808002", "VA", "bca"),
        // b1 again with another balance: a different body, the same mutation.
        mutation("b1", at(0, 3), 100_000, "8808001", "VA", "bca")
            .replace("\"type\":\"CR\"", "\"type\":\"CR\",\"balance\":7"),
    ];
    let calls: Vec<WebhookCall> = bodies
        .iter()
        .map(|body| shop.accepted_call(body.as_bytes(), at(0, 3)))
        .collect();
    shop.store.record_webhook_calls(calls.into()).await.unwrap();
    let mut rows = shop
        .store
        .claim_inbox(at(0, 3), TimeDelta::seconds(60), 10)
        .await
        .unwrap();
    assert_eq!(rows.len(), 3);
    // The third row's claim is lost (as if its lease ran out and another worker took it).
    rows[2].claim_id = "someone-else".into();
    let parsed: Vec<_> = rows
        .iter()
        .map(|row| parse_mutations(&row.body).unwrap())
        .collect();
    let batch: Vec<_> = rows
        .iter()
        .zip(&parsed)
        .map(|(row, mutations)| (row, mutations.as_slice()))
        .collect();
    let outcomes = shop.store.apply_batch(&batch, at(0, 3)).await.unwrap();
    assert_eq!(outcomes.len(), 3);
    assert_eq!(outcomes[0].as_ref().unwrap().points_awarded, 10);
    assert_eq!(outcomes[1].as_ref().unwrap().points_awarded, 20);
    assert_eq!(outcomes[2], None, "a lost claim writes nothing");
    assert_eq!(shop.balance("C1", at(1, 0)).await, 10);
    assert_eq!(shop.balance("C2", at(1, 0)).await, 20);
    assert_eq!(
        shop.store.inbox_depth().await.unwrap(),
        1,
        "the lost row is still pending"
    );

    // Its owner applies it later: the mutation was seen in the batch, so it earns nothing.
    let again = shop
        .store
        .claim_inbox(
            at(0, 3) + TimeDelta::seconds(61),
            TimeDelta::seconds(60),
            10,
        )
        .await
        .unwrap();
    assert_eq!(again.len(), 1);
    let repeated = shop
        .store
        .apply_batch(&[(&again[0], parsed[2].as_slice())], at(0, 5))
        .await
        .unwrap();
    assert_eq!(
        repeated[0].as_ref().map(|a| (a.repeated, a.points_awarded)),
        Some((1, 0))
    );
    assert_eq!(shop.balance("C1", at(1, 0)).await, 10);
    assert_eq!(shop.store.inbox_depth().await.unwrap(), 0);
}

/// Win-back episodes: states for the entry rule, steps and vouchers written only for the
/// treated, a verified purchase ends the episode, unsubscribing ends another, outcomes
/// count the purchases after entry, and a voucher is redeemed once.
async fn winback_episodes_end_on_a_purchase_and_count_what_followed(shop: Shop) {
    use setia_core::winback::EntryReason;
    use setia_store::winback::{NewEpisode, NewStep, NewVoucher, RedeemError};

    let consenting = |va: &str| CustomerPatch {
        email: Some(setia_core::CustomerEmail::parse(&format!("{va}@example.co.id")).unwrap()),
        consent: Some(true),
        ..with_va(va)
    };
    for (id, va) in [("C1", "8808001"), ("C2", "8808002"), ("C3", "8808003")] {
        shop.customer(id, consenting(va)).await;
    }
    let mut keys = Vec::new();
    for id in ["C1", "C2", "C3"] {
        let found = shop.store.customer(&shop.merchant, &ext(id)).await.unwrap();
        keys.push(found.unwrap().id);
    }
    let (c1, c2, c3) = (keys[0], keys[1], keys[2]);
    let states = shop
        .store
        .winback_states(&shop.merchant, &[c1, c2, c3], at(10, 0))
        .await
        .unwrap();
    assert_eq!(states.len(), 3);
    assert!(states[&c1].reachable && !states[&c1].in_episode && states[&c1].episodes == 0);

    let entered = at(10, 3);
    let valid_until = chrono::NaiveDate::from_ymd_opt(2026, 1, 31).unwrap();
    let episode = |customer, holdout| NewEpisode {
        customer,
        number: 1,
        reason: EntryReason::PAlive,
        holdout,
        entered_at: entered,
        counts_from: entered - TimeDelta::hours(3),
        last_step_at: entered + TimeDelta::days(7),
        p_alive: Some(0.2),
        expected_30d: Some(0.4),
        expected_60d: Some(0.7),
        steps: vec![
            NewStep {
                due_at: entered,
                voucher: None,
            },
            NewStep {
                due_at: entered + TimeDelta::days(7),
                voucher: Some(NewVoucher {
                    code: format!("WB-{}", customer.key()),
                    percent: 10,
                    valid_until,
                }),
            },
        ],
    };
    let written = shop
        .store
        .start_winback_episodes(
            &shop.merchant,
            &[episode(c1, false), episode(c2, false), episode(c3, true)],
            entered,
        )
        .await
        .unwrap();
    assert_eq!(written.len(), 3);
    // Written again (a rerun of the same snapshot): nothing new.
    assert!(shop
        .store
        .start_winback_episodes(&shop.merchant, &[episode(c1, false)], entered)
        .await
        .unwrap()
        .is_empty());
    let outbox = shop
        .store
        .outbox_entries(
            &shop.merchant,
            None,
            PageRequest {
                before: None,
                limit: 20,
            },
        )
        .await
        .unwrap()
        .items;
    let winback: Vec<_> = outbox.iter().filter(|e| e.kind == "winback").collect();
    assert_eq!(
        winback.len(),
        4,
        "two steps for each treated customer, none held out"
    );
    let held_out = shop
        .store
        .winback_episode(&shop.merchant, written[2])
        .await
        .unwrap()
        .unwrap();
    assert!(held_out.holdout && held_out.vouchers.is_empty());
    let first = shop
        .store
        .winback_episode(&shop.merchant, written[0])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(first.vouchers.len(), 1);
    assert_eq!((first.vouchers[0].step, first.vouchers[0].percent), (1, 10));

    // C1 pays by transfer two days later: the episode ends with that purchase.
    shop.deliver(
        &mutation("w1", at(12, 4), 150_000, "8808001", "VA", "bca"),
        at(12, 4),
    )
    .await;
    let ended = shop
        .store
        .winback_episode(&shop.merchant, written[0])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ended.end_reason.as_deref(), Some("purchase"));
    // C3 (held out) pays 40 days later: outside the 30-day window, inside the 60-day one.
    shop.deliver(
        &mutation("w2", at(50, 4), 80_000, "8808003", "VA", "bca"),
        at(50, 4),
    )
    .await;
    // C2 unsubscribes: its open episode ends.
    let states = shop
        .store
        .winback_states(&shop.merchant, &[c1, c2], at(11, 0))
        .await
        .unwrap();
    assert!(states[&c2].in_episode || states[&c2].last_ended.is_some());
    shop.store
        .unsubscribe(&shop.merchant, c2, at(11, 0))
        .await
        .unwrap();
    assert_eq!(
        shop.store
            .end_unsubscribed_episodes(&shop.merchant, at(11, 1))
            .await
            .unwrap(),
        1
    );

    let outcomes = shop
        .store
        .winback_outcomes(&shop.merchant, at(0, 0), at(100, 0))
        .await
        .unwrap();
    let by = |id| outcomes.iter().find(|o| o.id == id).unwrap();
    assert_eq!(
        (by(written[0]).purchases_30d, by(written[0]).revenue_30d),
        (1, rupiah(150_000))
    );
    assert_eq!(by(written[1]).purchases_60d, 0);
    assert_eq!(
        (by(written[2]).purchases_30d, by(written[2]).purchases_60d),
        (0, 1)
    );
    assert!(by(written[2]).holdout);

    // The voucher: redeemed once; the same redemption again answers it; another is refused.
    let code = format!("WB-{}", c1.key());
    let today = chrono::NaiveDate::from_ymd_opt(2026, 1, 20).unwrap();
    let redeem = |order: Option<&'static str>, day| {
        let store = &shop.store;
        let merchant = &shop.merchant;
        let code = code.clone();
        async move {
            store
                .redeem_voucher(merchant, &code, order, day, at(19, 0))
                .await
                .unwrap()
        }
    };
    let used = redeem(Some("ORD-9"), today).await.unwrap();
    assert_eq!(used.redeemed_order.as_deref(), Some("ORD-9"));
    assert_eq!(redeem(Some("ORD-9"), today).await.unwrap(), used);
    assert!(matches!(
        redeem(Some("ORD-10"), today).await,
        Err(RedeemError::AlreadyRedeemed { .. })
    ));
    assert!(matches!(
        shop.store
            .redeem_voucher(&shop.merchant, "WB-NOPE", None, today, at(19, 0))
            .await
            .unwrap(),
        Err(RedeemError::Unknown(_))
    ));
    let late = format!("WB-{}", c2.key());
    assert!(matches!(
        shop.store
            .redeem_voucher(
                &shop.merchant,
                &late,
                None,
                chrono::NaiveDate::from_ymd_opt(2026, 2, 1).unwrap(),
                at(31, 0)
            )
            .await
            .unwrap(),
        Err(RedeemError::Expired { .. })
    ));
    assert_eq!(
        shop.store
            .winback_outcomes(&shop.merchant, at(0, 0), at(100, 0))
            .await
            .unwrap()
            .iter()
            .map(|o| o.vouchers_redeemed)
            .sum::<u32>(),
        1
    );
}

impl Shop {
    /// The keys of the customers with purchases, as the nightly run reads them, in order.
    async fn customer_keys(&self) -> Vec<i64> {
        let mut keys = self
            .store
            .purchase_columns(&self.merchant, at(10, 0))
            .await
            .unwrap()
            .customer;
        keys.sort_unstable();
        keys.dedup();
        keys
    }

    /// A nightly run's scores and an empty monthly snapshot as of 2026-01-10; its id.
    async fn save_scores(
        &self,
        scores: Vec<setia_store::analytics::ScoreRow>,
        computed_at: DateTime<Utc>,
    ) -> i64 {
        self.store
            .save_snapshot(
                &self.merchant,
                "2026-01-10",
                "month",
                "{}",
                scores,
                computed_at,
            )
            .await
            .unwrap()
    }

    /// Imports a transactions CSV as `setia transactions import` does.
    async fn import_history(&self, csv: &str) {
        let rows: Vec<_> =
            setia_core::import::TransactionsCsv::new(csv.as_bytes(), MerchantTimezone::default())
                .unwrap()
                .map(Result::unwrap)
                .collect();
        let (sender, receiver) = tokio::sync::mpsc::channel(2);
        sender
            .send(setia_store::ImportMessage::Rows(rows))
            .await
            .unwrap();
        sender
            .send(setia_store::ImportMessage::Finished)
            .await
            .unwrap();
        self.store
            .import_transactions(&self.merchant, receiver)
            .await
            .unwrap();
    }
}

macro_rules! on_every_backend {
    ($($name:ident: $sandbox:expr),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name(super::Shop::open(super::TestDatabase::sqlite(), $sandbox).await).await;
                }
            )*
        }

        #[cfg(feature = "postgres-tests")]
        mod postgres {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name(super::Shop::open(super::TestDatabase::postgres().await, $sandbox).await).await;
                }
            )*
        }
    };
}

on_every_backend!(
    virtual_accounts_and_payer_names: false,
    orders_by_unique_amount_and_note_code: false,
    ambiguous_orders_and_exhausted_codes: false,
    one_mutation_earns_once: false,
    points_bonus_tiers_refunds_redemptions_and_expiry: false,
    sandbox_mutations_change_no_balance: false,
    a_sandbox_merchant_is_a_world_of_its_own: true,
    a_lost_claim_writes_nothing: false,
    a_batch_applies_rows_together: false,
    winback_episodes_end_on_a_purchase_and_count_what_followed: false,
);

mod imported_history {
    use super::*;
    use setia_store::analytics::ScoreRow;
    use setia_store::dashboard::CustomerScores;

    /// A score of `customer` in `segment`, the rest of it plain.
    fn plain_score(customer: i64, segment: &str) -> ScoreRow {
        ScoreRow {
            customer,
            recency_days: 0,
            frequency_days: 0,
            monetary_minor: 10_000_000,
            r: 5,
            f: 1,
            m: 3,
            segment: segment.into(),
            p_alive: Some(0.5),
            expected_purchases_90d: Some(0.1),
            clv_12m_minor: Some(1),
            recommended: Vec::new(),
        }
    }

    async fn imported_purchases_earn_once_in_order(shop: Shop) {
        // Six purchases of Rp 500,000 (50 points at bronze), listed newest first. Awarded
        // oldest first: the fifth by date is silver (Rp 2,000,000 in the year before: 62) and
        // gets the bonus (50); the sixth is silver too (62).
        let mut csv = String::from("customer_external_id,occurred_at,amount\n");
        for day in (1..=6).rev() {
            csv.push_str(&format!("C1,2026-01-0{day},500000\n"));
        }
        shop.import_history(&csv).await;
        let now = at(10, 0);
        let (purchases, points) = shop
            .store
            .award_missing_points(&shop.merchant, now)
            .await
            .unwrap();
        assert_eq!((purchases, points), (6, 4 * 50 + 62 + 50 + 62));
        assert_eq!(
            shop.store
                .award_missing_points(&shop.merchant, now)
                .await
                .unwrap(),
            (0, 0)
        );
        assert_eq!(shop.balance("C1", now).await, 374);
    }

    /// A run's scores replace the merchant's previous ones, stale ones included, and leave
    /// other merchants' alone: both when a large run rebuilds the scores (SQLite's scores
    /// file) and when a small one changes them in place; the snapshot comes last.
    async fn a_run_replaces_its_scores_and_no_one_elses(shop: Shop) {
        let customers = 25_001;
        let mut csv = String::from("customer_external_id,occurred_at,amount\n");
        for i in 0..customers {
            csv.push_str(&format!("C{i},2026-01-02,100000\n"));
        }
        shop.import_history(&csv).await;
        let keys = shop.customer_keys().await;
        assert_eq!(keys.len(), customers);
        let other = new_merchant(&*shop.store, 4, "Kedai", false).await;
        let mut other_keys = Vec::new();
        for id in ["K1", "K2"] {
            let customer = shop
                .store
                .upsert_customer(&other, &ext(id), &CustomerPatch::default())
                .await
                .unwrap();
            other_keys.push(customer.key());
        }
        let segment_of = |merchant: &MerchantId, id: &'static str| {
            let store = shop.store.clone();
            let merchant = merchant.clone();
            async move {
                store
                    .customer_profile(&merchant, &ext(id), at(10, 0))
                    .await
                    .unwrap()
                    .unwrap()
                    .segment
            }
        };
        // Every customer of a value list, page after page, as (CLV or -1, customer key).
        let listed = |merchant: &MerchantId, list: Option<&'static str>| {
            let store = shop.store.clone();
            let merchant = merchant.clone();
            async move {
                let mut all = Vec::new();
                let mut after = None;
                loop {
                    let page = match list {
                        Some(segment) => {
                            store
                                .segment_by_value(&merchant, segment, after, 7_000)
                                .await
                        }
                        None => store.at_risk_by_value(&merchant, after, 7_000).await,
                    }
                    .unwrap();
                    all.extend(page.items.iter().map(|row| {
                        let clv = row
                            .scores
                            .as_ref()
                            .unwrap()
                            .clv_12m
                            .map_or(-1, |m| m.minor());
                        (clv, row.id.key())
                    }));
                    match page.next_cursor {
                        Some(cursor) => after = Some(cursor),
                        None => break all,
                    }
                }
            }
        };
        let save = |merchant: &MerchantId, rows: Vec<ScoreRow>, hour: u32| {
            let store = shop.store.clone();
            let merchant = merchant.clone();
            async move {
                store
                    .save_snapshot(&merchant, "2026-01-10", "month", "{}", rows, at(10, hour))
                    .await
                    .unwrap()
            }
        };

        save(
            &other,
            other_keys
                .iter()
                .map(|&k| plain_score(k, "loyal"))
                .collect(),
            1,
        )
        .await;
        let first = save(
            &shop.merchant,
            keys.iter()
                .map(|&k| plain_score(k, "new_customers"))
                .collect(),
            2,
        )
        .await;
        assert_eq!(
            segment_of(&shop.merchant, "C0").await.as_deref(),
            Some("new_customers")
        );
        assert_eq!(
            segment_of(&shop.merchant, "C25000").await.as_deref(),
            Some("new_customers")
        );
        assert_eq!(
            segment_of(&other, "K2").await.as_deref(),
            Some("loyal"),
            "another merchant's scores stay"
        );
        assert_eq!(
            listed(&shop.merchant, Some("new_customers")).await.len(),
            customers
        );
        assert_eq!(listed(&other, Some("loyal")).await.len(), 2);
        assert!(
            listed(&shop.merchant, None).await.is_empty(),
            "nobody at risk yet"
        );

        // The small merchant's next run scores K1 only: changed in place, K2's removed.
        save(&other, vec![plain_score(other_keys[0], "champions")], 3).await;
        assert_eq!(segment_of(&other, "K1").await.as_deref(), Some("champions"));
        assert_eq!(
            segment_of(&other, "K2").await,
            None,
            "a stale score is removed"
        );
        assert!(
            listed(&other, Some("loyal")).await.is_empty(),
            "stale list rows go"
        );
        assert_eq!(
            listed(&other, Some("champions")).await,
            [(1, other_keys[0])]
        );
        assert_eq!(
            segment_of(&shop.merchant, "C0").await.as_deref(),
            Some("new_customers")
        );

        // The large merchant's next run scores everyone but C0.
        let c0 = shop
            .store
            .customer(&shop.merchant, &ext("C0"))
            .await
            .unwrap()
            .unwrap()
            .id
            .key();
        // Every third customer at risk, with CLVs that tie and a few without one.
        let later: Vec<ScoreRow> = keys
            .iter()
            .filter(|&&k| k != c0)
            .map(|&k| ScoreRow {
                frequency_days: 2,
                p_alive: Some(if k % 3 == 0 { 0.2 } else { 0.7 }),
                clv_12m_minor: (k % 11 != 0).then_some(k % 97),
                ..plain_score(k, "promising")
            })
            .collect();
        assert_eq!(later.len(), customers - 1);
        let second = save(&shop.merchant, later.clone(), 4).await;
        assert!(second > first);
        assert_eq!(
            segment_of(&shop.merchant, "C0").await,
            None,
            "a stale score is removed"
        );
        assert_eq!(
            segment_of(&shop.merchant, "C25000").await.as_deref(),
            Some("promising")
        );
        assert_eq!(segment_of(&other, "K1").await.as_deref(), Some("champions"));
        // The lists in page order: highest CLV first, ties by customer key, none last.
        let in_page_order =
            |rows: &mut Vec<(i64, i64)>| rows.sort_by_key(|&(clv, key)| (-clv, key));
        let mut at_risk: Vec<(i64, i64)> = later
            .iter()
            .filter(|s| s.p_alive == Some(0.2))
            .map(|s| (s.clv_12m_minor.unwrap_or(-1), s.customer))
            .collect();
        in_page_order(&mut at_risk);
        assert_eq!(listed(&shop.merchant, None).await, at_risk);
        let mut promising: Vec<(i64, i64)> = later
            .iter()
            .map(|s| (s.clv_12m_minor.unwrap_or(-1), s.customer))
            .collect();
        in_page_order(&mut promising);
        assert_eq!(listed(&shop.merchant, Some("promising")).await, promising);
        assert!(listed(&shop.merchant, Some("new_customers"))
            .await
            .is_empty());
        assert_eq!(
            listed(&other, Some("champions")).await,
            [(1, other_keys[0])]
        );
        let latest = shop
            .store
            .latest_snapshot(&shop.merchant, None)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(latest.id, second);
    }

    /// Every value of a score comes back as the run computed it: floats to the last bit,
    /// missing values as missing, and text that PostgreSQL's `COPY` has to escape.
    async fn scores_come_back_as_computed(shop: Shop) {
        shop.import_history(
            "customer_external_id,occurred_at,amount\nC1,2026-01-02,100000\nC2,2026-01-03,5000\n",
        )
        .await;
        let keys = shop.customer_keys().await;
        let segment = "tab\there back\\slash\nline\rreturn, é and 'quotes'";
        let full = ScoreRow {
            recency_days: 8,
            frequency_days: 1,
            r: 2,
            f: 1,
            m: 5,
            p_alive: Some(0.1 + 0.2),
            expected_purchases_90d: Some(1e-300),
            clv_12m_minor: Some(9_007_199_254_740_993),
            ..plain_score(keys[0], segment)
        };
        let empty = ScoreRow {
            customer: keys[1],
            p_alive: None,
            expected_purchases_90d: None,
            clv_12m_minor: None,
            ..full.clone()
        };
        shop.save_scores(vec![empty.clone(), full.clone()], at(10, 1))
            .await;
        let page = shop
            .store
            .segment_by_value(&shop.merchant, segment, None, 10)
            .await
            .unwrap();
        let stored: Vec<(i64, CustomerScores)> = page
            .items
            .into_iter()
            .map(|row| (row.id.key(), row.scores.unwrap()))
            .collect();
        assert_eq!(stored.len(), 2, "{stored:?}");
        for (key, scores) in stored {
            let expected = if key == full.customer { &full } else { &empty };
            assert_eq!(scores.as_of, "2026-01-10");
            assert_eq!(
                (
                    scores.recency_days,
                    scores.frequency_days,
                    scores.monetary.minor()
                ),
                (8, 1, 10_000_000)
            );
            assert_eq!((scores.r, scores.f, scores.m), (2, 1, 5));
            assert_eq!(scores.segment, segment);
            assert_eq!(
                scores.p_alive.map(f64::to_bits),
                expected.p_alive.map(f64::to_bits)
            );
            assert_eq!(
                scores.expected_purchases_90d.map(f64::to_bits),
                expected.expected_purchases_90d.map(f64::to_bits)
            );
            assert_eq!(scores.clv_12m.map(|m| m.minor()), expected.clv_12m_minor);
        }
    }

    /// Two runs of one merchant storing at once (an operator's `setia metrics` during the
    /// nightly run) both succeed, and the scores left are all of one run's.
    async fn two_runs_storing_at_once_leave_one_runs_scores(shop: Shop) {
        let mut csv = String::from("customer_external_id,occurred_at,amount\n");
        for i in 0..5_000 {
            csv.push_str(&format!("C{i},2026-01-02,100000\n"));
        }
        shop.import_history(&csv).await;
        let keys = shop.customer_keys().await;
        let run = |segment: &str| -> Vec<ScoreRow> {
            keys.iter().map(|&k| plain_score(k, segment)).collect()
        };
        for round in 0..3 {
            let (first, second) = tokio::join!(
                shop.save_scores(run("loyal"), at(11, round)),
                shop.save_scores(run("champions"), at(11, round)),
            );
            assert_ne!(first, second);
            let mut counts = Vec::new();
            for segment in ["loyal", "champions"] {
                let page = shop
                    .store
                    .segment_by_value(&shop.merchant, segment, None, 10_000)
                    .await
                    .unwrap();
                counts.push(page.items.len());
            }
            counts.sort_unstable();
            assert_eq!(counts, [0, keys.len()], "round {round}");
        }
    }

    /// A nightly run's claim: one holder at a time, kept by renewal past its first lease,
    /// taken over only once it runs out, and a holder that lost it can neither renew nor
    /// finish.
    async fn a_nightly_claim_is_held_renewed_and_taken_over(shop: Shop) {
        let store = &shop.store;
        let merchant = &shop.merchant;
        let day = "2026-01-09";
        let lease = TimeDelta::seconds(60);
        let t = |seconds: i64| at(10, 2) + TimeDelta::seconds(seconds);
        let claim = |who: &'static str, seconds: i64| async move {
            store
                .claim_nightly_run(merchant, day, who, t(seconds), lease)
                .await
                .unwrap()
        };
        let renew = |who: &'static str, seconds: i64| async move {
            store
                .renew_nightly_run(merchant, day, who, t(seconds), lease)
                .await
                .unwrap()
        };
        let finish = |who: &'static str, seconds: i64| async move {
            store
                .finish_nightly_run(merchant, day, who, t(seconds))
                .await
                .unwrap()
        };
        assert!(claim("a", 0).await);
        assert!(!claim("b", 30).await, "held");
        // Renewed at 40 s, the claim lasts until 100 s, past its first lease.
        assert!(renew("a", 40).await);
        assert!(!claim("b", 90).await, "held by renewal");
        assert!(!renew("b", 90).await, "only the holder renews");
        // Its worker died: the lease runs out at 100 s, and b takes the run over.
        assert!(claim("b", 101).await);
        assert!(!renew("a", 102).await, "a lost its claim");
        assert!(!finish("a", 103).await);
        assert!(finish("b", 104).await);
        // Finished: nobody claims or renews it again, even long after.
        assert!(!claim("c", 1000).await);
        assert!(!renew("b", 1000).await);
        // Another day is a run of its own.
        assert!(store
            .claim_nightly_run(merchant, "2026-01-10", "c", t(1000), lease)
            .await
            .unwrap());
    }

    on_every_backend!(
        imported_purchases_earn_once_in_order: false,
        a_run_replaces_its_scores_and_no_one_elses: false,
        scores_come_back_as_computed: false,
        two_runs_storing_at_once_leave_one_runs_scores: false,
        a_nightly_claim_is_held_renewed_and_taken_over: false,
    );
}

/// Products, order lines and recommendations: the `Catalog` side of the store.
mod catalog {
    use super::*;
    use setia_core::import::{ItemRecord, ItemsCsv, RowError};
    use setia_core::product::{Category, LineItem, ProductName, Quantity, Sku, WebLink};
    use setia_core::{CustomerId, PurchaseId};
    use setia_store::analytics::ScoreRow;
    use setia_store::catalog::{
        ItemImportCounts, ProductSignals, ProductUpsert, PurchaseOwners, UpsertOutcome,
        MAX_PRODUCTS_PER_UPSERT,
    };
    use setia_store::{ImportMessage, StoreError, StoreResult};

    fn sku(text: &str) -> Sku {
        Sku::parse(text).unwrap()
    }

    fn line(code: &str, name: Option<&str>, quantity: i64, price: i64) -> LineItem {
        LineItem {
            sku: sku(code),
            name: name.map(|n| ProductName::parse(n).unwrap()),
            category: None,
            quantity: Quantity::new(quantity).unwrap(),
            unit_price: rupiah(price),
        }
    }

    fn items(csv: &str) -> Vec<ItemRecord> {
        ItemsCsv::new(csv.as_bytes())
            .unwrap()
            .map(Result::unwrap)
            .collect()
    }

    /// Imports items in batches of `per_batch` lines, as `setia items import` sends them.
    async fn import_items(
        shop: &Shop,
        records: Vec<ItemRecord>,
        per_batch: usize,
    ) -> StoreResult<ItemImportCounts> {
        let (sender, receiver) = tokio::sync::mpsc::channel(records.len() + 1);
        for batch in records.chunks(per_batch) {
            sender
                .send(ImportMessage::Rows(batch.to_vec()))
                .await
                .unwrap();
        }
        sender.send(ImportMessage::Finished).await.unwrap();
        shop.store
            .import_items(&shop.merchant, receiver, at(20, 0))
            .await
    }

    /// The newest purchase of a customer.
    async fn purchase_of(shop: &Shop, customer: &str) -> PurchaseId {
        shop.store
            .purchases(
                &shop.merchant,
                None,
                PageRequest {
                    before: None,
                    limit: 100,
                },
            )
            .await
            .unwrap()
            .items
            .into_iter()
            .find(|p| p.customer_external_id.as_deref() == Some(customer))
            .unwrap()
            .id
    }

    async fn skus_of_purchase(shop: &Shop, purchase: PurchaseId) -> Vec<(String, u32)> {
        shop.store
            .purchase_lines(&shop.merchant, purchase.key())
            .await
            .unwrap()
            .into_iter()
            .map(|l| (l.sku, l.quantity))
            .collect()
    }

    async fn customer_key(shop: &Shop, merchant: &MerchantId, id: &str) -> i64 {
        shop.store
            .customer(merchant, &ext(id))
            .await
            .unwrap()
            .unwrap()
            .id
            .key()
    }

    /// The lines of countable purchases up to `until` as (customer, product), as the nightly
    /// run reads them: every line by purchase, turned into customers by the purchases it
    /// read for the metrics.
    async fn countable_lines(
        shop: &Shop,
        merchant: &MerchantId,
        until: DateTime<Utc>,
    ) -> (Vec<i64>, Vec<i64>) {
        let purchases = shop.store.purchase_columns(merchant, until).await.unwrap();
        let basket = shop.store.basket_input(merchant).await.unwrap();
        assert!(
            basket.line_purchase.is_sorted(),
            "lines come in purchase order"
        );
        PurchaseOwners::new(&purchases.purchase, &purchases.customer)
            .customers_of(basket.line_purchase, basket.line_product)
    }

    /// A statement the store offers no way to make (a purchase that lost its customer).
    async fn raw_sql(shop: &Shop, sql: &str) {
        let url = &shop._database.url;
        if url.starts_with("sqlite:") {
            let pool = sqlx::SqlitePool::connect(url).await.unwrap();
            sqlx::query(sql).execute(&pool).await.unwrap();
            pool.close().await;
        } else {
            let pool = sqlx::PgPool::connect(url).await.unwrap();
            sqlx::query(sql).execute(&pool).await.unwrap();
            pool.close().await;
        }
    }

    fn full(code: &str, name: &str, price: i64) -> ProductUpsert {
        ProductUpsert {
            name: Some(ProductName::parse(name).unwrap()),
            price: Some(rupiah(price)),
            url: Some(WebLink::parse(&format!("https://toko.example/p/{code}")).unwrap()),
            image_url: None,
            category: Some(Category::parse("Kopi").unwrap()),
            in_stock: None,
            released_at: Some(at(-30, 0)),
            ..ProductUpsert::of_sku(sku(code))
        }
    }

    async fn products_are_upserted_by_sku(shop: Shop) {
        let s = &shop.store;
        let m = &shop.merchant;
        let created = s
            .upsert_products(
                m,
                &[
                    full("KOP-1", "Kopi Gayo", 85_000),
                    ProductUpsert::of_sku(sku("TEH-1")),
                ],
                at(0, 0),
            )
            .await
            .unwrap();
        assert_eq!(
            created.iter().map(|(_, o)| *o).collect::<Vec<_>>(),
            [UpsertOutcome::Created, UpsertOutcome::Created]
        );
        let (kopi, _) = &created[0];
        assert_eq!(kopi.name, "Kopi Gayo");
        assert_eq!(kopi.price, Some(rupiah(85_000)));
        assert_eq!(kopi.category.as_deref(), Some("Kopi"));
        assert_eq!(kopi.released_at, Some(at(-30, 0)));
        assert!(kopi.in_stock, "in stock unless told otherwise");
        let (teh, _) = &created[1];
        assert_eq!((teh.name.as_str(), teh.price), ("TEH-1", None));

        // Fields left out keep what is stored; the same fields again change nothing.
        let changed = s
            .upsert_products(
                m,
                &[
                    ProductUpsert {
                        in_stock: Some(false),
                        ..ProductUpsert::of_sku(sku("KOP-1"))
                    },
                    ProductUpsert {
                        name: Some(ProductName::parse("Teh Melati").unwrap()),
                        ..ProductUpsert::of_sku(sku("TEH-1"))
                    },
                ],
                at(1, 0),
            )
            .await
            .unwrap();
        assert_eq!(changed[0].1, UpsertOutcome::Updated);
        assert_eq!(changed[0].0.name, "Kopi Gayo");
        assert_eq!(
            changed[0].0.url.as_deref(),
            Some("https://toko.example/p/KOP-1")
        );
        assert!(!changed[0].0.in_stock);
        assert_eq!(changed[0].0.updated_at, at(1, 0));
        assert_eq!(changed[0].0.created_at, at(0, 0));
        assert_eq!(changed[1].0.name, "Teh Melati");
        let same = s
            .upsert_products(
                m,
                &[
                    ProductUpsert {
                        in_stock: Some(false),
                        ..full("KOP-1", "Kopi Gayo", 85_000)
                    },
                    ProductUpsert::of_sku(sku("TEH-1")),
                ],
                at(2, 0),
            )
            .await
            .unwrap();
        assert_eq!(
            same.iter()
                .map(|(p, o)| (*o, p.updated_at))
                .collect::<Vec<_>>(),
            [
                (UpsertOutcome::Unchanged, at(1, 0)),
                (UpsertOutcome::Unchanged, at(1, 0))
            ]
        );

        // A SKU twice: the last entry wins, and both report the product as stored.
        let twice = s
            .upsert_products(
                m,
                &[
                    full("GUL-1", "Gula Aren", 20_000),
                    ProductUpsert {
                        price: Some(rupiah(22_000)),
                        ..ProductUpsert::of_sku(sku("GUL-1"))
                    },
                ],
                at(3, 0),
            )
            .await
            .unwrap();
        assert_eq!(
            twice.iter().map(|(_, o)| *o).collect::<Vec<_>>(),
            [UpsertOutcome::Created, UpsertOutcome::Updated]
        );
        assert_eq!(twice[0].0, twice[1].0);
        assert_eq!(
            (twice[1].0.name.as_str(), twice[1].0.price),
            ("Gula Aren", Some(rupiah(22_000)))
        );

        let too_many: Vec<ProductUpsert> = (0..=MAX_PRODUCTS_PER_UPSERT)
            .map(|n| ProductUpsert::of_sku(sku(&format!("X-{n}"))))
            .collect();
        let refused = s.upsert_products(m, &too_many, at(4, 0)).await;
        assert!(
            matches!(refused, Err(StoreError::Conflict(ref message)) if message.contains("at most 1000")),
            "{refused:?}"
        );
        assert_eq!(s.product(m, &sku("X-0")).await.unwrap(), None);
        // Exactly the limit is fine.
        let most = s
            .upsert_products(m, &too_many[..MAX_PRODUCTS_PER_UPSERT], at(4, 0))
            .await
            .unwrap();
        assert_eq!(most.len(), MAX_PRODUCTS_PER_UPSERT);

        // Newest first, in pages.
        let first = s
            .products(
                m,
                PageRequest {
                    before: None,
                    limit: 2,
                },
            )
            .await
            .unwrap();
        assert_eq!(
            first
                .items
                .iter()
                .map(|p| p.sku.as_str())
                .collect::<Vec<_>>(),
            ["X-999", "X-998"]
        );
        let mut seen = first.items.len();
        let mut cursor = first.next_cursor;
        while let Some(before) = cursor {
            let page = s
                .products(
                    m,
                    PageRequest {
                        before: Some(before),
                        limit: 400,
                    },
                )
                .await
                .unwrap();
            seen += page.items.len();
            cursor = page.next_cursor;
            if cursor.is_none() {
                assert_eq!(page.items.last().unwrap().sku, "KOP-1");
            }
        }
        assert_eq!(seen, MAX_PRODUCTS_PER_UPSERT + 3);
        assert_eq!(
            s.product(m, &sku("TEH-1")).await.unwrap().unwrap().name,
            "Teh Melati"
        );
    }

    async fn items_attach_to_imported_purchases_and_orders(shop: Shop) {
        let s = &shop.store;
        let m = &shop.merchant;
        shop.import_history(
            "customer_external_id,occurred_at,amount,reference\n\
             C1,2026-01-02,255000,INV-1\n\
             C2,2026-01-03,12000,INV-2\n",
        )
        .await;
        s.upsert_products(m, &[full("KOP-1", "Kopi Gayo", 85_000)], at(0, 0))
            .await
            .unwrap();
        s.create_order(m, &order("O1", "C3", 50_000, at(30, 0)), at(0, 0))
            .await
            .unwrap();
        let file = "reference,sku,name,quantity,unit_price,category\n\
             INV-1,KOP-1,Another Name,2,85000,\n\
             INV-1,KOP-1,,1,85000,\n\
             INV-2,TEH-1,Teh Melati,1,12000,Teh\n\
             O1,GUL-1,,2,25000,\n";
        let counts = import_items(&shop, items(file), 2).await.unwrap();
        assert_eq!(
            counts,
            ItemImportCounts {
                inserted: 4,
                skipped_duplicates: 0,
                products_created: 2
            }
        );
        let inv1 = purchase_of(&shop, "C1").await;
        assert_eq!(
            skus_of_purchase(&shop, inv1).await,
            [("KOP-1".to_string(), 2), ("KOP-1".to_string(), 1)]
        );
        assert_eq!(
            s.product(m, &sku("KOP-1")).await.unwrap().unwrap().name,
            "Kopi Gayo",
            "a line does not change a known product"
        );
        let teh = s.product(m, &sku("TEH-1")).await.unwrap().unwrap();
        assert_eq!(
            (teh.name.as_str(), teh.price, teh.category.as_deref()),
            ("Teh Melati", Some(rupiah(12_000)), Some("Teh"))
        );
        assert_eq!(
            s.product(m, &sku("GUL-1")).await.unwrap().unwrap().name,
            "GUL-1"
        );
        let o1 = s.order(m, &ext("O1"), at(1, 0)).await.unwrap().unwrap();
        assert_eq!(o1.items.len(), 1);
        assert_eq!(
            (
                o1.items[0].sku.as_str(),
                o1.items[0].quantity,
                o1.items[0].unit_price
            ),
            ("GUL-1", 2, rupiah(25_000))
        );

        // A rerun adds nothing.
        let again = import_items(&shop, items(file), 3).await.unwrap();
        assert_eq!(
            again,
            ItemImportCounts {
                inserted: 0,
                skipped_duplicates: 4,
                products_created: 0
            }
        );

        // A reference that names nothing stops the import at its line; nothing is written.
        let bad = "reference,sku,name,quantity,unit_price\n\
             INV-2,NEW-1,Baru,1,1000\n\
             INV-2,TEH-1,,5,12000\n\
             INV-9,TEH-1,,1,12000\n";
        let refused = import_items(&shop, items(bad), 2).await;
        match refused {
            Err(StoreError::RowConflict(RowError { line, field, error })) => {
                assert_eq!((line, field.as_str()), (4, "reference"));
                assert!(error.contains("\"INV-9\""), "{error}");
            }
            other => panic!("expected a row conflict, got {other:?}"),
        }
        assert_eq!(s.product(m, &sku("NEW-1")).await.unwrap(), None);
        assert_eq!(
            skus_of_purchase(&shop, purchase_of(&shop, "C2").await).await,
            [("TEH-1".to_string(), 1)]
        );

        // Lines of an order the items file named follow it once it is paid.
        let transfer = o1.transfer_amount.whole_units();
        shop.deliver(
            &mutation("m1", at(2, 0), transfer, "555", "TRSF E-BANKING CR", "bca"),
            at(2, 0),
        )
        .await;
        let paid = s.order(m, &ext("O1"), at(2, 1)).await.unwrap().unwrap();
        assert_eq!(paid.status, "paid");
        assert_eq!(
            skus_of_purchase(&shop, paid.purchase_id.unwrap()).await,
            [("GUL-1".to_string(), 2)]
        );
        // An items file naming an order that is paid gives the purchase the line too.
        let late = import_items(
            &shop,
            items("reference,sku,quantity,unit_price\nO1,KOP-1,1,85000\n"),
            10,
        )
        .await
        .unwrap();
        assert_eq!(late.inserted, 1);
        assert_eq!(
            skus_of_purchase(&shop, paid.purchase_id.unwrap()).await,
            [("GUL-1".to_string(), 2), ("KOP-1".to_string(), 1)]
        );
    }

    async fn order_items_become_the_paying_purchases_lines(shop: Shop) {
        let s = &shop.store;
        let m = &shop.merchant;
        let created = s
            .create_order(
                m,
                &NewOrder {
                    items: vec![
                        line("KOP-1", Some("Kopi Gayo"), 2, 85_000),
                        line("TEH-1", None, 1, 12_000),
                    ],
                    ..order("O1", "C1", 182_000, at(2, 0))
                },
                at(0, 0),
            )
            .await
            .unwrap();
        assert_eq!(
            created
                .items
                .iter()
                .map(|l| (l.sku.as_str(), l.name.as_str(), l.quantity, l.unit_price))
                .collect::<Vec<_>>(),
            [
                ("KOP-1", "Kopi Gayo", 2, rupiah(85_000)),
                ("TEH-1", "TEH-1", 1, rupiah(12_000))
            ]
        );
        assert_eq!(
            s.product(m, &sku("TEH-1")).await.unwrap().unwrap().price,
            Some(rupiah(12_000))
        );
        // A failed order (its id is taken) writes no lines and creates no product.
        let taken = s
            .create_order(
                m,
                &NewOrder {
                    items: vec![line("NEW-1", None, 1, 1_000)],
                    ..order("O1", "C1", 1_000, at(2, 0))
                },
                at(0, 0),
            )
            .await;
        assert!(matches!(taken, Err(StoreError::Conflict(_))));
        assert_eq!(s.product(m, &sku("NEW-1")).await.unwrap(), None);

        shop.deliver(
            &mutation(
                "m1",
                at(1, 0),
                created.transfer_amount.whole_units(),
                "555",
                "TRSF E-BANKING CR",
                "bca",
            ),
            at(1, 0),
        )
        .await;
        let paid = s.order(m, &ext("O1"), at(1, 1)).await.unwrap().unwrap();
        assert_eq!(paid.status, "paid");
        assert_eq!(paid.items, created.items);
        assert_eq!(
            skus_of_purchase(&shop, paid.purchase_id.unwrap()).await,
            [("KOP-1".to_string(), 2), ("TEH-1".to_string(), 1)]
        );
        let c1 = customer_key(&shop, m, "C1").await;
        assert_eq!(countable_lines(&shop, m, at(1, 1)).await.0, [c1, c1]);

        // Paid after it expired, recognised by the payment code in the transfer note: the
        // lines pass all the same.
        let late = s
            .create_order(
                m,
                &NewOrder {
                    items: vec![line("TEH-1", None, 3, 12_000)],
                    ..order("O2", "C2", 36_000, at(0, 12))
                },
                at(0, 0),
            )
            .await
            .unwrap();
        let note = format!("TRSF CR {} SITI", late.payment_code);
        shop.deliver(
            &mutation(
                "m2",
                at(1, 2),
                late.transfer_amount.whole_units(),
                "555",
                &note,
                "bca",
            ),
            at(1, 2),
        )
        .await;
        assert_eq!(
            shop.last_purchase_attribution().await,
            (Some("C2".into()), Some("note_code".into()))
        );
        let paid = s.order(m, &ext("O2"), at(1, 3)).await.unwrap().unwrap();
        assert_eq!(
            skus_of_purchase(&shop, paid.purchase_id.unwrap()).await,
            [("TEH-1".to_string(), 3)]
        );
    }

    async fn manual_attribution_pays_an_order(shop: Shop) {
        let s = &shop.store;
        let m = &shop.merchant;
        let o1 = s
            .create_order(
                m,
                &NewOrder {
                    items: vec![line("KOP-1", Some("Kopi Gayo"), 1, 85_000)],
                    ..order("O1", "C1", 85_000, at(5, 0))
                },
                at(0, 0),
            )
            .await
            .unwrap();
        s.create_order(m, &order("O2", "C2", 40_000, at(5, 0)), at(0, 0))
            .await
            .unwrap();
        // Two payments that match nothing: the buyer got the amount wrong.
        for (id, amount) in [("m1", 85_001), ("m2", 85_002)] {
            shop.deliver(
                &mutation(id, at(1, 0), amount, "555", "TRSF E-BANKING CR", "bca"),
                at(1, 0),
            )
            .await;
        }
        let queue = s
            .purchases(
                m,
                Some(false),
                PageRequest {
                    before: None,
                    limit: 10,
                },
            )
            .await
            .unwrap()
            .items;
        let (second, first) = (queue[0].id, queue[1].id);
        let attribute = |purchase: PurchaseId, customer: &'static str, order: &'static str| {
            let store = s.clone();
            let merchant = m.clone();
            async move {
                store
                    .attribute_purchase(
                        &merchant,
                        purchase,
                        &ext(customer),
                        Some(&ext(order)),
                        at(1, 1),
                    )
                    .await
                    .unwrap()
                    .unwrap()
            }
        };
        assert_eq!(
            attribute(first, "C1", "O9").await,
            ManualAttribution::UnknownOrder
        );
        assert_eq!(
            attribute(first, "C1", "O2").await,
            ManualAttribution::OrderOfAnotherCustomer
        );
        // A refusal attributes nothing.
        assert_eq!(
            s.purchases(
                m,
                Some(false),
                PageRequest {
                    before: None,
                    limit: 10
                }
            )
            .await
            .unwrap()
            .items
            .len(),
            2
        );
        let done = attribute(first, "C1", "O1").await;
        assert!(
            matches!(done, ManualAttribution::Attributed(ref p) if p.customer_external_id.as_deref() == Some("C1")),
            "{done:?}"
        );
        let paid = s.order(m, &ext("O1"), at(1, 2)).await.unwrap().unwrap();
        assert_eq!(
            (paid.status.as_str(), paid.purchase_id),
            ("paid", Some(first))
        );
        assert_eq!(
            skus_of_purchase(&shop, first).await,
            [("KOP-1".to_string(), 1)]
        );
        assert_eq!(paid.items, o1.items);
        assert_eq!(
            attribute(second, "C1", "O1").await,
            ManualAttribution::OrderNotPending
        );
        // Without an order, attribution is as before.
        assert!(matches!(
            s.attribute_purchase(m, second, &ext("C2"), None, at(1, 3))
                .await
                .unwrap(),
            Some(ManualAttribution::Attributed(_))
        ));
        assert_eq!(skus_of_purchase(&shop, second).await, []);
        assert_eq!(
            s.order(m, &ext("O2"), at(1, 3))
                .await
                .unwrap()
                .unwrap()
                .status,
            "pending"
        );
    }

    async fn the_basket_holds_only_countable_purchases(shop: Shop) {
        let s = &shop.store;
        let m = &shop.merchant;
        shop.import_history(
            "customer_external_id,occurred_at,amount,reference\n\
             C1,2026-01-02,100000,INV-1\n\
             C2,2026-01-03,100000,INV-2\n\
             C3,2026-01-04,100000,INV-3\n\
             C4,2026-01-05,100000,INV-4\n\
             C5,2026-01-20,100000,INV-5\n",
        )
        .await;
        shop.customer("C6", with_va("8808006")).await;
        let counts = import_items(
            &shop,
            items(
                "reference,sku,quantity,unit_price\n\
                 INV-1,A,1,1000\nINV-1,B,1,1000\nINV-2,B,1,1000\nINV-3,C,1,1000\n\
                 INV-4,D,1,1000\nINV-5,E,1,1000\n",
            ),
            100,
        )
        .await
        .unwrap();
        assert_eq!(counts.inserted, 6);
        // INV-3 is refunded; INV-4 loses its customer; INV-5 comes after the cut-off.
        s.refund_purchase(m, purchase_of(&shop, "C3").await, at(6, 0))
            .await
            .unwrap();
        let inv4 = purchase_of(&shop, "C4").await;
        raw_sql(
            &shop,
            &format!(
                "UPDATE purchases SET customer_id = NULL WHERE id = {}",
                inv4.key()
            ),
        )
        .await;
        // A sandbox payment of an order with lines counts in nothing either.
        let sandboxed = s
            .create_order(
                m,
                &NewOrder {
                    items: vec![line("F", None, 1, 1_000)],
                    ..order("O1", "C6", 10_000, at(9, 0))
                },
                at(0, 0),
            )
            .await
            .unwrap();
        shop.deliver(
            &mutation(
                "m1",
                at(7, 0),
                sandboxed.transfer_amount.whole_units(),
                "555",
                "TRSF",
                "vaSandbox",
            ),
            at(7, 0),
        )
        .await;
        assert_eq!(
            s.order(m, &ext("O1"), at(7, 1))
                .await
                .unwrap()
                .unwrap()
                .status,
            "paid"
        );
        // So does a pending order's line (it has no purchase).
        s.create_order(
            m,
            &NewOrder {
                items: vec![line("G", None, 1, 1_000)],
                ..order("O2", "C6", 20_000, at(9, 0))
            },
            at(0, 0),
        )
        .await
        .unwrap();

        let basket = s.basket_input(m).await.unwrap();
        let lines = countable_lines(&shop, m, at(10, 0)).await;
        let key = |code: &'static str| {
            let store = s.clone();
            let merchant = m.clone();
            async move {
                store
                    .product(&merchant, &sku(code))
                    .await
                    .unwrap()
                    .unwrap()
                    .key
            }
        };
        let (c1, c2) = (
            customer_key(&shop, m, "C1").await,
            customer_key(&shop, m, "C2").await,
        );
        let mut pairs: Vec<(i64, i64)> = lines.0.into_iter().zip(lines.1).collect();
        pairs.sort_unstable();
        let mut expected = vec![
            (c1, key("A").await),
            (c1, key("B").await),
            (c2, key("B").await),
        ];
        expected.sort_unstable();
        assert_eq!(pairs, expected);
        assert_eq!(basket.product.len(), 7, "every product, bought or not");
        assert!(basket.in_stock.iter().all(|s| *s));
        assert_eq!(
            countable_lines(&shop, m, at(30, 0)).await.0.len(),
            4,
            "INV-5 once the cut-off passes it"
        );
    }

    async fn recommendations_are_filtered_when_read(shop: Shop) {
        let s = &shop.store;
        let m = &shop.merchant;
        let catalogue: Vec<ProductUpsert> = ["A", "B", "C", "D", "E", "F"]
            .into_iter()
            .map(|code| ProductUpsert {
                in_stock: Some(code != "E"),
                ..ProductUpsert::of_sku(sku(code))
            })
            .collect();
        let stored = s.upsert_products(m, &catalogue, at(0, 0)).await.unwrap();
        let key: std::collections::HashMap<&str, i64> = stored
            .iter()
            .map(|(p, _)| (p.sku.as_str(), p.key))
            .collect();
        shop.import_history(
            "customer_external_id,occurred_at,amount,reference\n\
             C1,2026-01-02,100000,INV-1\n\
             C4,2026-01-02,100000,INV-4\n",
        )
        .await;
        import_items(
            &shop,
            items("reference,sku,quantity,unit_price\nINV-1,A,1,1000\nINV-4,D,1,1000\n"),
            10,
        )
        .await
        .unwrap();
        shop.customer("C2", CustomerPatch::default()).await;

        // Another merchant, with a customer and a product of its own.
        let other = new_merchant(&**s, 4, "Toko Lain", false).await;
        let stranger = s
            .upsert_customer(&other, &ext("C1"), &CustomerPatch::default())
            .await
            .unwrap();
        let foreign = s
            .upsert_products(&other, &[ProductUpsert::of_sku(sku("A"))], at(0, 0))
            .await
            .unwrap()[0]
            .0
            .key;

        let (c1, c2, c4) = (
            customer_key(&shop, m, "C1").await,
            customer_key(&shop, m, "C2").await,
            customer_key(&shop, m, "C4").await,
        );
        let score = |customer: i64, recommended: Vec<i64>| ScoreRow {
            customer,
            recency_days: 1,
            frequency_days: 1,
            monetary_minor: 10_000_000,
            r: 3,
            f: 1,
            m: 3,
            segment: "new_customers".into(),
            p_alive: None,
            expected_purchases_90d: None,
            clv_12m_minor: None,
            recommended,
        };
        // C1's list holds an out-of-stock product (E), one C1 bought (A) and another
        // merchant's product; C4 is scored with no list; C2 is not scored at all.
        s.save_snapshot(
            m,
            "2026-01-10",
            "month",
            "{}",
            vec![
                score(c1, vec![key["E"], key["A"], foreign, key["B"], key["C"]]),
                score(c4, vec![]),
            ],
            at(10, 0),
        )
        .await
        .unwrap();
        // A first run's signals, replaced by the second's.
        s.save_product_signals(
            m,
            &ProductSignals {
                popular: vec![key["F"]],
                related: vec![(key["F"], vec![(key["A"], 0.1)])],
            },
            at(9, 0),
        )
        .await
        .unwrap();
        s.save_product_signals(
            m,
            &ProductSignals {
                popular: vec![key["A"], key["D"], key["B"], foreign, key["E"], key["F"]],
                related: vec![(
                    key["A"],
                    vec![
                        (key["B"], 0.9),
                        (key["E"], 0.8),
                        (foreign, 0.7),
                        (key["C"], 0.5),
                    ],
                )],
            },
            at(10, 0),
        )
        .await
        .unwrap();

        let asked = [
            CustomerId::from_key(c1),
            CustomerId::from_key(c2),
            CustomerId::from_key(c4),
            stranger,
        ];
        let picks = s.recommendations_for(m, &asked, 3).await.unwrap();
        let skus = |customer: i64| -> Vec<String> {
            picks[&CustomerId::from_key(customer)]
                .iter()
                .map(|p| p.sku.clone())
                .collect()
        };
        assert_eq!(picks.len(), 3, "another merchant's customer is left out");
        assert!(!picks.contains_key(&stranger));
        assert_eq!(skus(c1), ["B", "C", "D"], "stored list, then popular");
        assert_eq!(skus(c2), ["A", "D", "B"], "no list: the popular one");
        assert_eq!(skus(c4), ["A", "B", "F"], "never what they bought (D)");
        // Stock is read now, not when the lists were made.
        s.upsert_products(
            m,
            &[ProductUpsert {
                in_stock: Some(false),
                ..ProductUpsert::of_sku(sku("B"))
            }],
            at(11, 0),
        )
        .await
        .unwrap();
        let picks = s
            .recommendations_for(m, &[CustomerId::from_key(c1)], 10)
            .await
            .unwrap();
        assert_eq!(
            picks[&CustomerId::from_key(c1)]
                .iter()
                .map(|p| p.sku.as_str())
                .collect::<Vec<_>>(),
            ["C", "D", "F"]
        );
        assert_eq!(
            s.recommendations_for(m, &[], 10).await.unwrap(),
            std::collections::HashMap::new()
        );

        let related = s.related_products(m, &sku("A"), 10).await.unwrap().unwrap();
        assert_eq!(
            related
                .iter()
                .map(|(p, similarity)| (p.sku.as_str(), *similarity))
                .collect::<Vec<_>>(),
            [("C", 0.5)],
            "B and E are out of stock, the other merchant's product is not stored"
        );
        s.upsert_products(
            m,
            &[ProductUpsert {
                in_stock: Some(true),
                ..ProductUpsert::of_sku(sku("B"))
            }],
            at(12, 0),
        )
        .await
        .unwrap();
        let top = s.related_products(m, &sku("A"), 1).await.unwrap().unwrap();
        assert_eq!(
            top.iter()
                .map(|(p, s)| (p.sku.as_str(), *s))
                .collect::<Vec<_>>(),
            [("B", 0.9)]
        );
        assert_eq!(
            s.related_products(m, &sku("F"), 10).await.unwrap(),
            Some(vec![]),
            "the first run's list was replaced"
        );
        assert_eq!(s.related_products(m, &sku("ZZZ"), 10).await.unwrap(), None);
        assert_eq!(
            s.related_products(&other, &sku("B"), 10).await.unwrap(),
            None,
            "another merchant's catalogue"
        );
    }

    on_every_backend!(
        products_are_upserted_by_sku: false,
        items_attach_to_imported_purchases_and_orders: false,
        order_items_become_the_paying_purchases_lines: false,
        manual_attribution_pays_an_order: false,
        the_basket_holds_only_countable_purchases: false,
        recommendations_are_filtered_when_read: false,
    );
}

mod feedback {
    use super::*;
    use setia_core::engagement::FeedbackKind;
    use setia_core::feedback::{FeedbackComment, FeedbackScore};
    use setia_core::CustomerId;
    use setia_store::engagement::{AnswerFilter, ComplaintStatus, NewAnswer, NewFeedbackRequest};
    use setia_store::mail::{DeliveryOutcome, FinishedEmail, FollowUp, OutboxKind, OutboxStatus};

    fn csat(score: i64) -> FeedbackScore {
        FeedbackScore::new(FeedbackKind::Csat, score).unwrap()
    }

    /// An answer to `request`; a low one alerts the merchant's two addresses.
    fn answer(request: i64, score: i64, comment: Option<&FeedbackComment>) -> NewAnswer<'_> {
        const ALERT_TO: &[String] = &[];
        NewAnswer {
            request,
            score: csat(score),
            comment,
            opens_complaint: score <= 2,
            alert_to: ALERT_TO,
        }
    }

    fn first(limit: u32) -> PageRequest {
        PageRequest {
            before: None,
            limit,
        }
    }

    /// Two customers' imported purchases, and a request about each.
    async fn two_requests(shop: &Shop) -> (i64, i64, CustomerId) {
        shop.import_history(
            "customer_external_id,occurred_at,amount,reference\nC1,2026-01-02,50000,R1\nC2,2026-01-03,70000,R2\n",
        )
        .await;
        let purchases = shop
            .store
            .purchases(&shop.merchant, None, first(10))
            .await
            .unwrap();
        // Both purchases may be asked about, oldest first; an imported customer without an
        // address is not reachable.
        let candidates = shop
            .store
            .feedback_candidates(&shop.merchant, at(0, 0), at(4, 0), None, 10)
            .await
            .unwrap();
        assert_eq!(candidates.len(), 2);
        assert!(candidates[0].occurred_at < candidates[1].occurred_at);
        assert!(!candidates[0].reachable && !candidates[0].sandbox);
        assert_eq!(candidates[0].last_request_at, None);
        let after_first = shop
            .store
            .feedback_candidates(
                &shop.merchant,
                at(0, 0),
                at(4, 0),
                Some((candidates[0].occurred_at, candidates[0].purchase)),
                10,
            )
            .await
            .unwrap();
        assert_eq!(after_first, candidates[1..]);
        let mut requests = Vec::new();
        for purchase in purchases.items.iter().rev() {
            let customer = shop
                .store
                .customer(
                    &shop.merchant,
                    &ext(purchase.customer_external_id.as_deref().unwrap()),
                )
                .await
                .unwrap()
                .unwrap()
                .id;
            requests.push(NewFeedbackRequest {
                customer,
                purchase: purchase.id.key(),
                kind: FeedbackKind::Csat,
                due_at: at(5, 9),
            });
        }
        let keys = shop
            .store
            .create_feedback_requests(&shop.merchant, &requests, at(2, 0))
            .await
            .unwrap();
        assert_eq!(keys.len(), 2);
        assert_eq!(
            shop.store
                .create_feedback_requests(&shop.merchant, &requests, at(2, 0))
                .await
                .unwrap(),
            Vec::<i64>::new(),
            "a purchase is asked about once"
        );
        let answers = shop
            .store
            .feedback_answers(&shop.merchant, AnswerFilter::default(), first(5))
            .await
            .unwrap();
        assert!(answers.items.is_empty());
        let candidates = shop
            .store
            .feedback_candidates(&shop.merchant, at(0, 0), at(4, 0), None, 10)
            .await
            .unwrap();
        assert!(candidates.is_empty(), "asked purchases are no candidates");

        // Each request is an email; its reminder comes when the email is sent.
        let outbox = shop
            .store
            .outbox_entries(&shop.merchant, None, first(10))
            .await
            .unwrap();
        let mut emails: Vec<(String, String, chrono::DateTime<chrono::Utc>)> = outbox
            .items
            .iter()
            .map(|e| (e.kind.clone(), e.period_key.clone(), e.due_at))
            .collect();
        emails.sort();
        let (k0, k1) = (keys[0], keys[1]);
        assert_eq!(
            emails,
            [
                ("feedback_request".into(), k0.to_string(), at(5, 9)),
                ("feedback_request".into(), k1.to_string(), at(5, 9)),
            ]
        );
        (keys[0], keys[1], requests[0].customer)
    }

    /// The marketing cap's deferral: a deferred row waits until its slot, is no attempt,
    /// and comes back; what was sent is each customer's last marketing email. A follow-up
    /// is written with a sent row whose claim held, and with nothing else.
    async fn deferred_emails_wait_for_their_slot(shop: Shop) {
        let (r1, _, c1) = two_requests(&shop).await;
        let lease = chrono::TimeDelta::minutes(5);
        let claimed = shop.store.claim_outbox(at(5, 9), lease, 10).await.unwrap();
        assert_eq!(claimed.len(), 2);
        assert!(claimed
            .iter()
            .all(|e| e.kind == OutboxKind::FeedbackRequest));
        let (sent, deferred) = if claimed[0].customer == Some(c1) {
            (&claimed[0], &claimed[1])
        } else {
            (&claimed[1], &claimed[0])
        };
        assert_eq!(sent.period_key, r1.to_string());
        let reminder = |email: &setia_store::mail::ClaimedEmail| FollowUp {
            kind: OutboxKind::FeedbackRequest,
            period_key: format!("{}-reminder", email.period_key),
            due_at: at(9, 9),
        };
        let finish = |email: &setia_store::mail::ClaimedEmail, outcome| FinishedEmail {
            id: email.id,
            merchant: email.merchant.clone(),
            claim_id: email.claim_id.clone(),
            outcome,
            follow_up: Some(reminder(email)),
        };
        // A claim that is not this worker's writes neither the outcome nor the follow-up.
        let stale = FinishedEmail {
            claim_id: "another-workers-claim".into(),
            ..finish(sent, DeliveryOutcome::Sent)
        };
        assert_eq!(
            shop.store.finish_outbox(&[stale], at(5, 9)).await.unwrap(),
            0
        );
        let outcomes = [
            finish(sent, DeliveryOutcome::Sent),
            finish(
                deferred,
                DeliveryOutcome::Deferred {
                    until: at(8, 9),
                    reason: "the marketing cap".into(),
                },
            ),
        ];
        assert_eq!(
            shop.store.finish_outbox(&outcomes, at(5, 9)).await.unwrap(),
            2
        );
        let pending = shop
            .store
            .outbox_entries(&shop.merchant, Some(OutboxStatus::Pending), first(10))
            .await
            .unwrap();
        let follow_ups: Vec<_> = pending
            .items
            .iter()
            .map(|e| (e.recipient.clone(), e.period_key.clone(), e.due_at))
            .collect();
        assert_eq!(
            follow_ups,
            [(sent.recipient.clone(), format!("{r1}-reminder"), at(9, 9))],
            "only the sent request has its reminder"
        );
        let waiting = shop
            .store
            .outbox_entries(&shop.merchant, Some(OutboxStatus::Deferred), first(10))
            .await
            .unwrap();
        assert_eq!(waiting.items.len(), 1);
        assert_eq!(
            (waiting.items[0].attempts, waiting.items[0].next_attempt_at),
            (0, Some(at(8, 9)))
        );
        assert!(shop
            .store
            .claim_outbox(at(8, 8), lease, 10)
            .await
            .unwrap()
            .is_empty());
        let again = shop.store.claim_outbox(at(8, 9), lease, 10).await.unwrap();
        assert_eq!(
            again.iter().map(|e| e.id).collect::<Vec<_>>(),
            [deferred.id]
        );
        assert_eq!(again[0].attempts, 1);

        let last = shop
            .store
            .last_marketing_sent(&shop.merchant, &[c1, deferred.customer.unwrap()])
            .await
            .unwrap();
        assert_eq!(last, [(c1, at(5, 9))].into_iter().collect());
        let request = shop
            .store
            .feedback_request(&shop.merchant, r1)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(request.asked_at, Some(at(5, 9)));
        // Both requests were due on 6 January in Jakarta (09:00 UTC is 16:00 there).
        let asked = shop
            .store
            .daily_requests(&shop.merchant, at(0, 0), at(20, 0), 7 * 3600)
            .await
            .unwrap();
        assert_eq!(asked.len(), 1);
        assert_eq!(
            (asked[0].day.to_string(), asked[0].asked, asked[0].answered),
            ("2026-01-06".into(), 2, 0)
        );
    }

    async fn answers_complaints_and_their_queue(shop: Shop) {
        let (r1, r2, c1) = two_requests(&shop).await;
        let request = shop
            .store
            .feedback_request(&shop.merchant, r1)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (request.customer_external_id.as_str(), request.kind),
            ("C1", FeedbackKind::Csat)
        );
        assert_eq!(request.answer, None);

        // A low answer with a comment opens a complaint; answering again changes the answer
        // and opens no second complaint.
        let comment = FeedbackComment::parse("Paket <b>rusak</b>").unwrap();
        let first_answer = shop
            .store
            .record_feedback_answer(
                &shop.merchant,
                NewAnswer {
                    alert_to: &["ops@toko.id".to_owned(), "cs@toko.id".to_owned()],
                    ..answer(r1, 1, comment.as_ref())
                },
                at(6, 10),
            )
            .await
            .unwrap()
            .unwrap();
        assert!(first_answer.first);
        let complaint = first_answer.opened_complaint.expect("a complaint");
        assert_eq!(
            first_answer.answer.comment.as_deref(),
            Some("Paket <b>rusak</b>")
        );
        // The alert goes to both addresses in the same transaction, due now.
        let outbox = shop
            .store
            .outbox_entries(&shop.merchant, None, first(20))
            .await
            .unwrap();
        let mut alerts: Vec<(&str, &str)> = outbox
            .items
            .iter()
            .filter(|e| e.kind == "feedback_alert")
            .map(|e| (e.recipient.as_str(), e.period_key.as_str()))
            .collect();
        alerts.sort();
        let key = complaint.to_string();
        assert_eq!(
            alerts,
            [("cs@toko.id", key.as_str()), ("ops@toko.id", key.as_str())]
        );
        let found = shop
            .store
            .complaint(&shop.merchant, complaint)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(found.purchase_amount.to_string(), "50000.00");
        assert_eq!(found.answer.score, 1);
        let replayed = shop
            .store
            .record_feedback_answer(&shop.merchant, answer(r1, 2, None), at(6, 11))
            .await
            .unwrap()
            .unwrap();
        assert!(!replayed.first && replayed.opened_complaint.is_none());
        assert_eq!(
            (replayed.answer.id, replayed.answer.score),
            (first_answer.answer.id, 2)
        );
        assert_eq!(replayed.answer.answered_at, at(6, 10));
        let good = shop
            .store
            .record_feedback_answer(&shop.merchant, answer(r2, 5, None), at(7, 10))
            .await
            .unwrap()
            .unwrap();
        assert!(good.opened_complaint.is_none());

        let all = shop
            .store
            .feedback_answers(&shop.merchant, AnswerFilter::default(), first(1))
            .await
            .unwrap();
        assert_eq!(all.items[0].score, 5, "newest first");
        assert!(all.next_cursor.is_some());
        let low = AnswerFilter {
            score: Some(2),
            ..AnswerFilter::default()
        };
        let filtered = shop
            .store
            .feedback_answers(&shop.merchant, low, first(10))
            .await
            .unwrap();
        assert_eq!(filtered.items.len(), 1);
        let window = AnswerFilter {
            from: Some(at(7, 0)),
            until: Some(at(8, 0)),
            ..AnswerFilter::default()
        };
        let dated = shop
            .store
            .feedback_answers(&shop.merchant, window, first(10))
            .await
            .unwrap();
        assert_eq!(dated.items.iter().map(|a| a.score).collect::<Vec<_>>(), [5]);
        let of_c1 = AnswerFilter {
            customer: Some(c1),
            ..AnswerFilter::default()
        };
        let theirs = shop
            .store
            .feedback_answers(&shop.merchant, of_c1, first(10))
            .await
            .unwrap();
        assert_eq!(
            theirs.items.iter().map(|a| a.score).collect::<Vec<_>>(),
            [2]
        );

        // Per local day (Jakarta, UTC+7): 10:00 and 11:00 UTC on the 7th and 8th of January.
        let daily = shop
            .store
            .daily_scores(&shop.merchant, at(0, 0), at(20, 0), 7 * 3600)
            .await
            .unwrap();
        let daily: Vec<(String, u8, u64)> = daily
            .iter()
            .map(|d| (d.day.to_string(), d.score, d.answers))
            .collect();
        assert_eq!(
            daily,
            [("2026-01-07".into(), 2, 1), ("2026-01-08".into(), 5, 1)]
        );
        let counts = shop
            .store
            .complaint_counts(&shop.merchant, at(6, 0), at(7, 0))
            .await
            .unwrap();
        assert_eq!((counts.opened, counts.unresolved), (1, 1));
        let later = shop
            .store
            .complaint_counts(&shop.merchant, at(7, 0), at(8, 0))
            .await
            .unwrap();
        assert_eq!((later.opened, later.unresolved), (0, 1));

        // The queue: open, then in progress with a note, then resolved by someone, reopened.
        let open = shop
            .store
            .complaints(&shop.merchant, Some(ComplaintStatus::Open), first(10))
            .await
            .unwrap();
        assert_eq!(open.items.len(), 1);
        assert_eq!(open.items[0].answer.customer_external_id, "C1");
        assert_eq!(
            shop.store
                .customers_with_open_complaints(&shop.merchant, &[c1, good.answer.customer_id])
                .await
                .unwrap(),
            [c1].into_iter().collect()
        );
        let moving = shop
            .store
            .update_complaint(
                &shop.merchant,
                complaint,
                ComplaintStatus::InProgress,
                Some("Ditelepon"),
                "dashboard",
                at(8, 9),
            )
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (
                moving.status,
                moving.note.as_deref(),
                moving.resolved_by.clone()
            ),
            (ComplaintStatus::InProgress, Some("Ditelepon"), None)
        );
        let resolved = shop
            .store
            .update_complaint(
                &shop.merchant,
                complaint,
                ComplaintStatus::Resolved,
                None,
                "api",
                at(9, 9),
            )
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            resolved.note.as_deref(),
            Some("Ditelepon"),
            "a missing note keeps the old one"
        );
        assert_eq!(
            (resolved.resolved_by.as_deref(), resolved.resolved_at),
            (Some("api"), Some(at(9, 9)))
        );
        assert!(shop
            .store
            .customers_with_open_complaints(&shop.merchant, &[c1])
            .await
            .unwrap()
            .is_empty());
        let reopened = shop
            .store
            .update_complaint(
                &shop.merchant,
                complaint,
                ComplaintStatus::Open,
                None,
                "dashboard",
                at(10, 9),
            )
            .await
            .unwrap()
            .unwrap();
        assert_eq!((reopened.resolved_by, reopened.resolved_at), (None, None));

        // Another merchant sees none of it and can change none of it.
        let other = MerchantId::from_random_bytes([9; 20]);
        assert!(shop
            .store
            .feedback_request(&other, r1)
            .await
            .unwrap()
            .is_none());
        assert!(shop
            .store
            .complaint(&other, complaint)
            .await
            .unwrap()
            .is_none());
        assert!(shop
            .store
            .record_feedback_answer(&other, answer(r1, 5, None), at(11, 0))
            .await
            .unwrap()
            .is_none());
        assert!(shop
            .store
            .update_complaint(
                &other,
                complaint,
                ComplaintStatus::Resolved,
                None,
                "x",
                at(11, 0)
            )
            .await
            .unwrap()
            .is_none());
        assert!(shop
            .store
            .complaints(&other, None, first(10))
            .await
            .unwrap()
            .items
            .is_empty());
        assert!(shop
            .store
            .record_feedback_answer(&shop.merchant, answer(9_999, 5, None), at(11, 0))
            .await
            .unwrap()
            .is_none());
    }

    on_every_backend!(answers_complaints_and_their_queue: false, deferred_emails_wait_for_their_slot: false);
}

mod referrals {
    use super::*;
    use setia_core::customer::CustomerEmail;
    use setia_core::engagement::EngagementProgram;
    use setia_core::referral::{ReferralCode, ReferralStatus};
    use setia_core::CustomerId;
    use setia_store::referral::{Referral, ReferralVia, ReferredBy};
    use setia_store::StoreError;

    fn everything(limit: u32) -> PageRequest {
        PageRequest {
            before: None,
            limit,
        }
    }

    /// Turns the program on (rewards capped at `cap` a month) and gives Ani, the advocate,
    /// her code.
    async fn program_and_advocate(shop: &Shop, cap: u32) -> (ReferralCode, CustomerId) {
        let mut program = EngagementProgram::standard();
        program.referral.enabled = true;
        program.referral.max_rewards_per_month = cap;
        shop.store
            .set_engagement_program(&shop.merchant, &program)
            .await
            .unwrap();
        shop.customer(
            "ANI",
            CustomerPatch {
                email: Some(CustomerEmail::parse("Ani.S@toko.example").unwrap()),
                virtual_account: Some(VirtualAccount::parse("8808001").unwrap()),
                payer_names: vec![PayerName::parse("Ani Suryani").unwrap()],
                ..CustomerPatch::default()
            },
        )
        .await;
        code_of(shop, "ANI").await
    }

    /// A customer's code, made on first use and the same when asked again.
    async fn code_of(shop: &Shop, external_id: &str) -> (ReferralCode, CustomerId) {
        let customer = shop
            .store
            .customer(&shop.merchant, &ext(external_id))
            .await
            .unwrap()
            .unwrap()
            .id;
        let secret = shop
            .store
            .mail_merchant(&shop.merchant)
            .await
            .unwrap()
            .unwrap()
            .secret;
        let codes = shop
            .store
            .referral_codes(&shop.merchant, &secret, &[customer], at(0, 0))
            .await
            .unwrap();
        let again = shop
            .store
            .referral_codes(
                &shop.merchant,
                &secret,
                &[customer, CustomerId::from_key(999_999)],
                at(0, 1),
            )
            .await
            .unwrap();
        assert_eq!(
            codes, again,
            "a code is made once; an unknown customer gets none"
        );
        (codes[&customer].clone(), customer)
    }

    /// A customer write whose referral code cannot be used fails whole, saying `why`: no
    /// customer is made.
    async fn refused_write(shop: &Shop, external_id: &str, patch: &CustomerPatch, why: &str) {
        let error = shop
            .store
            .upsert_customer(&shop.merchant, &ext(external_id), patch)
            .await
            .unwrap_err();
        assert!(
            matches!(&error, StoreError::BadReferral(m) if m.contains(why)),
            "{error}"
        );
        assert!(shop
            .store
            .customer(&shop.merchant, &ext(external_id))
            .await
            .unwrap()
            .is_none());
    }

    /// An order of `amount` by `customer` carrying `code`, placed at `now`.
    async fn referred_order(
        shop: &Shop,
        id: &str,
        customer: &str,
        amount: i64,
        code: &ReferralCode,
        now: DateTime<Utc>,
    ) -> i64 {
        let created = shop
            .store
            .create_order(
                &shop.merchant,
                &NewOrder {
                    referral_code: Some(code.clone()),
                    ..order(id, customer, amount, now + TimeDelta::days(1))
                },
                now,
            )
            .await
            .unwrap();
        amount + created.unique_code
    }

    async fn referral_of(shop: &Shop, friend: &str) -> Referral {
        let mut found: Vec<Referral> = shop
            .store
            .referrals(&shop.merchant, None, everything(100))
            .await
            .unwrap()
            .items
            .into_iter()
            .filter(|r| r.friend.external_id == friend)
            .collect();
        assert_eq!(found.len(), 1, "{friend}: {found:?}");
        found.remove(0)
    }

    fn status(referral: &Referral) -> (&'static str, Option<&'static str>) {
        (referral.status, referral.reason)
    }

    /// Every rule that refuses a referral when a store reports it, with its reason; a
    /// replayed report, an unknown code and a program that is off.
    async fn referrals_stand_or_are_refused_with_their_reason(shop: Shop) {
        let (code, _) = program_and_advocate(&shop, 10).await;
        let referred = |code: &ReferralCode| CustomerPatch {
            referred_by: Some(ReferredBy {
                code: code.clone(),
                via: ReferralVia::Customer,
            }),
            ..CustomerPatch::default()
        };
        // A new customer stands; the same report again changes nothing.
        shop.customer("BUDI", referred(&code)).await;
        shop.customer("BUDI", referred(&code)).await;
        let budi = referral_of(&shop, "BUDI").await;
        assert_eq!(status(&budi), ("pending", None));
        assert_eq!(
            (budi.advocate.external_id.as_str(), budi.via),
            ("ANI", ReferralVia::Customer)
        );

        // The advocate herself, by customer, by address and by virtual account.
        shop.customer("ANI", referred(&code)).await;
        shop.customer(
            "ANI2",
            CustomerPatch {
                email: Some(CustomerEmail::parse("anis+promo@TOKO.example").unwrap()),
                ..referred(&code)
            },
        )
        .await;
        let ani_gmail = CustomerPatch {
            email: Some(CustomerEmail::parse("ani.s@toko.example").unwrap()),
            ..referred(&code)
        };
        shop.customer("ANI3", ani_gmail).await;
        let refused: Vec<_> = shop
            .store
            .referrals(
                &shop.merchant,
                Some(ReferralStatus::Refused),
                everything(10),
            )
            .await
            .unwrap()
            .items
            .iter()
            .map(|r| (r.friend.external_id.clone(), r.reason))
            .collect();
        assert_eq!(
            refused,
            [
                ("ANI3".to_owned(), Some("self_same_email")),
                ("ANI".to_owned(), Some("self_same_customer")),
            ],
            "anis@ is another mailbox than ani.s@ outside Gmail"
        );
        assert_eq!(status(&referral_of(&shop, "ANI2").await), ("pending", None));

        // A customer who bought before, and an account older than a day.
        shop.import_history(
            "customer_external_id,occurred_at,amount,reference\nCITRA,2026-01-02,50000,R1\n",
        )
        .await;
        shop.customer("CITRA", referred(&code)).await;
        assert_eq!(
            status(&referral_of(&shop, "CITRA").await),
            ("refused", Some("existing_customer"))
        );
        shop.customer("DEWI", CustomerPatch::default()).await;
        referred_order(
            &shop,
            "O-DEWI",
            "DEWI",
            150_000,
            &code,
            Utc::now() + TimeDelta::days(2),
        )
        .await;
        assert_eq!(
            status(&referral_of(&shop, "DEWI").await),
            ("refused", Some("existing_account"))
        );

        // Another advocate for a friend already referred: recorded, refused.
        shop.customer("EKO", CustomerPatch::default()).await;
        let (eko_code, _) = code_of(&shop, "EKO").await;
        shop.customer("BUDI", referred(&eko_code)).await;
        let budis: Vec<_> = shop
            .store
            .referrals(&shop.merchant, None, everything(100))
            .await
            .unwrap()
            .items
            .into_iter()
            .filter(|r| r.friend.external_id == "BUDI")
            .map(|r| (r.advocate.external_id, r.status, r.reason))
            .collect();
        assert_eq!(
            budis,
            [
                ("EKO".to_owned(), "refused", Some("already_referred")),
                ("ANI".to_owned(), "pending", None),
            ]
        );

        // A code of nobody's: the write fails whole, no customer is made.
        let forged = ReferralCode::parse("ZZZZ2222").unwrap();
        refused_write(&shop, "FAJAR", &referred(&forged), "ZZZZ2222").await;
        let error = shop
            .store
            .create_order(
                &shop.merchant,
                &NewOrder {
                    referral_code: Some(forged),
                    ..order("O-FAJAR", "FAJAR", 150_000, at(3, 0))
                },
                at(2, 0),
            )
            .await
            .unwrap_err();
        assert!(matches!(error, StoreError::BadReferral(_)));
        assert!(shop
            .store
            .customer(&shop.merchant, &ext("FAJAR"))
            .await
            .unwrap()
            .is_none());
        assert!(shop
            .store
            .order(&shop.merchant, &ext("O-FAJAR"), at(2, 0))
            .await
            .unwrap()
            .is_none());

        // With the program off, no code is taken.
        shop.store
            .set_engagement_program(&shop.merchant, &EngagementProgram::standard())
            .await
            .unwrap();
        refused_write(&shop, "GITA", &referred(&code), "off").await;
    }

    /// The friend's first verified payment qualifies (or refuses) the referral; the reward
    /// is paid once after the hold, whatever is replayed; a refund in the hold cancels it.
    async fn the_first_payment_qualifies_and_the_hold_pays_once(shop: Shop) {
        let (code, ani) = program_and_advocate(&shop, 2).await;
        let transfer = referred_order(&shop, "O-BUDI", "BUDI", 150_000, &code, at(1, 0)).await;
        let body = mutation(
            "m-budi",
            at(1, 2),
            transfer,
            "555",
            "TRSF E-BANKING CR",
            "bca",
        );
        shop.deliver(&body, at(1, 2)).await;
        let budi = referral_of(&shop, "BUDI").await;
        assert_eq!(status(&budi), ("qualified", None));
        assert_eq!(budi.reward_due_at, Some(at(8, 2)));
        assert_eq!(budi.purchase_amount, Some(rupiah(transfer)));
        // Moota sends the mutation again (in a body of its own): recorded once, nothing else.
        let again = shop.deliver(&format!(" {body}"), at(1, 3)).await;
        assert_eq!(again.repeated, 1);
        assert_eq!(referral_of(&shop, "BUDI").await, budi);

        // Under the minimum, and paid with the advocate's own payer name.
        let small = referred_order(&shop, "O-CITRA", "CITRA", 99_000, &code, at(1, 0)).await;
        shop.deliver(
            &mutation("m-citra", at(1, 4), small, "555", "TRSF", "bca"),
            at(1, 4),
        )
        .await;
        assert_eq!(
            status(&referral_of(&shop, "CITRA").await),
            ("refused", Some("below_minimum"))
        );
        let own = referred_order(&shop, "O-DEWI", "DEWI", 200_000, &code, at(1, 0)).await;
        shop.deliver(
            &mutation(
                "m-dewi",
                at(1, 5),
                own,
                "555",
                "TRSF E-BANKING CR 0601/FTSCY/WS1 ANI SURYANI",
                "bca",
            ),
            at(1, 5),
        )
        .await;
        assert_eq!(
            status(&referral_of(&shop, "DEWI").await),
            ("refused", Some("self_same_payer_name"))
        );

        // A second qualifies; with Budi's that is the month's cap of 2, so a third is refused.
        let refunded = referred_order(&shop, "O-EKO", "EKO", 300_000, &code, at(1, 0)).await;
        shop.deliver(
            &mutation("m-eko", at(1, 6), refunded, "555", "TRSF", "bca"),
            at(1, 6),
        )
        .await;
        let eko = referral_of(&shop, "EKO").await;
        assert_eq!(status(&eko), ("qualified", None));
        let capped = referred_order(&shop, "O-FAJAR", "FAJAR", 120_000, &code, at(1, 0)).await;
        shop.deliver(
            &mutation("m-fajar", at(1, 7), capped, "555", "TRSF", "bca"),
            at(1, 7),
        )
        .await;
        assert_eq!(
            status(&referral_of(&shop, "FAJAR").await),
            ("refused", Some("monthly_cap"))
        );
        // Eko's payment is refunded in the hold: cancelled, never paid.
        shop.store
            .refund_purchase(&shop.merchant, eko.purchase_id.unwrap(), at(3, 0))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            status(&referral_of(&shop, "EKO").await),
            ("cancelled", Some("refunded"))
        );

        // The hold: nothing before it ends, one reward after, however often the pass runs.
        let before = shop.balance("ANI", at(8, 0)).await;
        assert!(shop
            .store
            .reward_due_referrals(&shop.merchant, 200, at(8, 1))
            .await
            .unwrap()
            .is_empty());
        let paid = shop
            .store
            .reward_due_referrals(&shop.merchant, 200, at(8, 3))
            .await
            .unwrap();
        assert_eq!(
            paid.iter()
                .map(|p| (p.referral, p.advocate, p.points))
                .collect::<Vec<_>>(),
            [(budi.id, ani, 200)]
        );
        assert!(shop
            .store
            .reward_due_referrals(&shop.merchant, 200, at(9, 0))
            .await
            .unwrap()
            .is_empty());
        assert_eq!(shop.balance("ANI", at(9, 0)).await, before + 200);
        let rewarded = referral_of(&shop, "BUDI").await;
        assert_eq!(
            (rewarded.status, rewarded.rewarded_at, rewarded.points),
            ("rewarded", Some(at(8, 3)), Some(200))
        );
        let entries: Vec<_> = shop
            .store
            .points_history(&shop.merchant, ani)
            .await
            .unwrap()
            .into_iter()
            .filter(|e| e.source.starts_with("referral:"))
            .map(|e| (e.source, e.points))
            .collect();
        assert_eq!(entries, [(format!("referral:{}", budi.id), 200)]);
        let emails: Vec<_> = shop
            .store
            .outbox_entries(&shop.merchant, None, everything(50))
            .await
            .unwrap()
            .items
            .into_iter()
            .filter(|e| e.kind == "referral_reward")
            .map(|e| (e.recipient, e.period_key))
            .collect();
        assert_eq!(emails, [(ani.to_string(), budi.id.to_string())]);

        // The summary and each side's view.
        let summary = shop
            .store
            .referral_summary(&shop.merchant, 5)
            .await
            .unwrap();
        assert_eq!(
            (
                summary.referred_customers,
                summary.referred_payments,
                summary.referred_revenue
            ),
            (1, 1, rupiah(transfer))
        );
        assert_eq!(summary.top_advocates.len(), 1);
        assert_eq!(
            (
                summary.top_advocates[0].rewarded,
                summary.top_advocates[0].points
            ),
            (1, 200)
        );
        let count = |s: &str, r: Option<&str>| {
            summary
                .counts
                .iter()
                .find(|c| c.status == s && c.reason == r)
                .map_or(0, |c| c.count)
        };
        assert_eq!(
            (
                count("rewarded", None),
                count("cancelled", Some("refunded")),
                count("refused", Some("monthly_cap"))
            ),
            (1, 1, 1)
        );
        let anis = shop
            .store
            .customer_referrals(&shop.merchant, ani)
            .await
            .unwrap();
        assert_eq!(anis.code.as_deref(), Some(code.as_str()));
        assert_eq!(anis.referred.len(), 5);
        assert!(anis.referred_by.is_none());
        let budis = shop
            .store
            .customer_referrals(&shop.merchant, budi.friend.id)
            .await
            .unwrap();
        assert_eq!(budis.referred_by.map(|r| r.id), Some(budi.id));
        let link = shop.store.referral_link(&code).await.unwrap().unwrap();
        assert_eq!(
            (link.merchant, link.advocate, link.advocate_active),
            (shop.merchant.clone(), ani, true)
        );
    }

    on_every_backend!(
        referrals_stand_or_are_refused_with_their_reason: false,
        the_first_payment_qualifies_and_the_hold_pays_once: false,
    );
}

mod perks {
    use super::*;
    use setia_core::customer::CustomerEmail;
    use setia_core::engagement::EngagementProgram;
    use setia_core::perks::{nudge_windows, NudgeWindow};
    use setia_core::CustomerId;
    use setia_store::mail::OutboxKind;
    use setia_store::perks::{CustomerSpend, TierWelcomePayload};

    /// Silver's entry is 100 points and a 10% voucher, gold's 500 points.
    async fn perks_program(shop: &Shop) {
        let mut program = EngagementProgram::standard();
        program.perks.silver.entry_points = 100;
        program.perks.silver.entry_voucher_percent = Some(10);
        program.perks.silver.perks = vec!["Gratis ongkir".into()];
        program.perks.gold.entry_points = 500;
        shop.store
            .set_engagement_program(&shop.merchant, &program)
            .await
            .unwrap();
    }

    fn reachable(va: Option<&str>, email: &str) -> CustomerPatch {
        CustomerPatch {
            email: Some(CustomerEmail::parse(email).unwrap()),
            virtual_account: va.map(|va| VirtualAccount::parse(va).unwrap()),
            consent: Some(true),
            ..CustomerPatch::default()
        }
    }

    async fn id_of(shop: &Shop, external_id: &str) -> CustomerId {
        shop.store
            .customer(&shop.merchant, &ext(external_id))
            .await
            .unwrap()
            .unwrap()
            .id
    }

    /// The welcome rows in the outbox: (recipient, tier, payload), by recipient.
    async fn welcomes(
        shop: &Shop,
        now: DateTime<Utc>,
    ) -> Vec<(String, String, TierWelcomePayload)> {
        let mut rows: Vec<_> = shop
            .store
            .claim_outbox(now, TimeDelta::seconds(1), 100)
            .await
            .unwrap()
            .into_iter()
            .filter(|row| row.kind == OutboxKind::TierWelcome)
            .map(|row| {
                let payload = serde_json::from_str(row.payload.as_deref().unwrap()).unwrap();
                (row.recipient, row.period_key, payload)
            })
            .collect();
        rows.sort_by(|a, b| a.0.cmp(&b.0));
        rows
    }

    async fn a_crossing_by_purchase_awards_and_welcomes_once(shop: Shop) {
        perks_program(&shop).await;
        shop.customer("C1", reachable(Some("8808001"), "c1@toko.example"))
            .await;
        shop.deliver(
            &mutation("m1", at(0, 3), 1_500_000, "8808001", "VA", "bca"),
            at(0, 3),
        )
        .await;
        assert_eq!(shop.balance("C1", at(0, 4)).await, 150);
        // Rp 1.500.000 before, Rp 2.100.000 with it: silver. 60 points at bronze, and the
        // entry's 100.
        let second = mutation("m2", at(1, 3), 600_000, "8808001", "VA", "bca");
        let crossed = shop.deliver(&second, at(1, 3)).await;
        assert_eq!(crossed.points_awarded, 60 + 100);
        assert_eq!(shop.balance("C1", at(1, 4)).await, 150 + 60 + 100);
        // Moota sends it again: nothing more.
        let resent = second.replace("\"type\":\"CR\"", "\"type\":\"CR\",\"balance\":5");
        assert_eq!(shop.deliver(&resent, at(1, 5)).await.repeated, 1);
        assert_eq!(shop.balance("C1", at(1, 6)).await, 310);
        let c1 = id_of(&shop, "C1").await;
        let crossings = shop.store.tier_crossings(&shop.merchant, c1).await.unwrap();
        assert_eq!(crossings.len(), 1);
        assert_eq!((crossings[0].tier, crossings[0].points), ("silver", 100));
        assert!(shop
            .store
            .holds_tier_entry(&shop.merchant, c1, setia_core::loyalty::Tier::Silver)
            .await
            .unwrap());
        let history = shop.store.points_history(&shop.merchant, c1).await.unwrap();
        let entry = history
            .iter()
            .find(|e| e.source.starts_with("tier:"))
            .unwrap();
        assert_eq!((entry.kind.as_str(), entry.points), ("bonus", 100));
        assert!(entry.reason.contains("Silver"), "{}", entry.reason);

        // The refund of the purchase that reached silver takes the entry back with the earn.
        let purchases = shop
            .store
            .purchases(
                &shop.merchant,
                Some(true),
                PageRequest {
                    before: None,
                    limit: 1,
                },
            )
            .await
            .unwrap();
        shop.store
            .refund_purchase(&shop.merchant, purchases.items[0].id, at(2, 0))
            .await
            .unwrap();
        assert_eq!(shop.balance("C1", at(2, 1)).await, 150);
        assert!(!shop
            .store
            .holds_tier_entry(&shop.merchant, c1, setia_core::loyalty::Tier::Silver)
            .await
            .unwrap());
        // A later genuine crossing earns the entry again; the welcome was sent for silver
        // already, so there is still one.
        shop.deliver(
            &mutation("m3", at(3, 3), 700_000, "8808001", "VA", "bca"),
            at(3, 3),
        )
        .await;
        assert_eq!(shop.balance("C1", at(3, 4)).await, 150 + 70 + 100);
        let crossings = shop.store.tier_crossings(&shop.merchant, c1).await.unwrap();
        assert_eq!(crossings.len(), 2);
        assert!(crossings[0].reversed_at.is_some() && crossings[1].reversed_at.is_none());

        // Member to gold in one purchase: both entries, one welcome, for gold.
        shop.customer("C2", reachable(Some("8808002"), "c2@toko.example"))
            .await;
        shop.deliver(
            &mutation("m4", at(3, 5), 10_000_000, "8808002", "VA", "bca"),
            at(3, 5),
        )
        .await;
        assert_eq!(shop.balance("C2", at(3, 6)).await, 1_000 + 100 + 500);
        let sent = welcomes(&shop, at(4, 0)).await;
        let (c2, silver) = (id_of(&shop, "C2").await, "silver".to_owned());
        assert_eq!(sent.len(), 2, "{sent:?}");
        assert_eq!(
            (sent[0].0.clone(), sent[0].1.clone()),
            (c1.to_string(), silver)
        );
        assert_eq!(
            sent[0].2,
            TierWelcomePayload {
                tier: "silver".into(),
                title: "Silver".into(),
                perks: vec!["Gratis ongkir".into()],
                entry_points: 100,
                voucher_percent: Some(10),
            }
        );
        assert_eq!(
            (sent[1].0.clone(), sent[1].1.as_str()),
            (c2.to_string(), "gold")
        );
        assert_eq!(
            (sent[1].2.entry_points, sent[1].2.voucher_percent),
            (600, None)
        );
    }

    async fn a_sandbox_world_crosses_nothing(shop: Shop) {
        perks_program(&shop).await;
        shop.customer("C1", reachable(Some("8808001"), "c1@toko.example"))
            .await;
        shop.deliver(
            &mutation("m1", at(0, 3), 3_000_000, "8808001", "VA", "bca"),
            at(0, 3),
        )
        .await;
        assert_eq!(shop.balance("C1", at(0, 4)).await, 300, "points, no entry");
        let c1 = id_of(&shop, "C1").await;
        assert!(shop
            .store
            .tier_crossings(&shop.merchant, c1)
            .await
            .unwrap()
            .is_empty());
        assert!(welcomes(&shop, at(1, 0)).await.is_empty());
    }

    async fn an_import_awards_every_crossing_and_mails_the_last_week(shop: Shop) {
        perks_program(&shop).await;
        shop.customer("OLD", reachable(None, "old@toko.example"))
            .await;
        shop.customer("NEW", reachable(None, "new@toko.example"))
            .await;
        // OLD reached silver on 2 January, NEW on 8 February; the import runs on 10 February.
        shop.import_history(
            "customer_external_id,occurred_at,amount\n\
             OLD,2026-01-02,2500000\nNEW,2026-01-20,1000000\nNEW,2026-02-08,1500000\n",
        )
        .await;
        let now = at(40, 0);
        let (_, points) = shop
            .store
            .award_missing_points(&shop.merchant, now)
            .await
            .unwrap();
        assert_eq!(points, (250 + 100) + (100 + 150 + 100));
        assert_eq!(shop.balance("OLD", now).await, 350);
        assert_eq!(shop.balance("NEW", now).await, 350);
        // Run again: nothing.
        assert_eq!(
            shop.store
                .award_missing_points(&shop.merchant, now)
                .await
                .unwrap(),
            (0, 0)
        );
        assert_eq!(shop.balance("NEW", now).await, 350);
        let (old, new) = (id_of(&shop, "OLD").await, id_of(&shop, "NEW").await);
        for customer in [old, new] {
            assert_eq!(
                shop.store
                    .tier_crossings(&shop.merchant, customer)
                    .await
                    .unwrap()
                    .len(),
                1
            );
        }
        let sent = welcomes(&shop, now).await;
        assert_eq!(sent.len(), 1, "{sent:?}");
        assert_eq!(sent[0].0, new.to_string());
    }

    /// The customers in a nudge window, with their spend of the year before `now`.
    async fn trailing_spends(
        shop: &Shop,
        windows: &[NudgeWindow],
        now: DateTime<Utc>,
    ) -> Vec<CustomerSpend> {
        shop.store
            .spend_in_windows(&shop.merchant, windows, now)
            .await
            .unwrap()
    }

    async fn nudges_go_to_customers_near_the_next_tier_once_a_year(shop: Shop) {
        for (id, email) in [
            ("NEAR_SILVER", "a@toko.example"),
            ("FAR", "b@toko.example"),
            ("NEAR_GOLD", "c@toko.example"),
            ("GONE", "d@toko.example"),
        ] {
            shop.customer(id, reachable(None, email)).await;
        }
        shop.customer(
            "NO_CONSENT",
            CustomerPatch {
                email: Some(CustomerEmail::parse("e@toko.example").unwrap()),
                consent: Some(false),
                ..CustomerPatch::default()
            },
        )
        .await;
        shop.import_history(
            "customer_external_id,occurred_at,amount\n\
             NEAR_SILVER,2026-01-05,1000000\nNEAR_SILVER,2026-01-06,700000\n\
             FAR,2026-01-05,1000000\nNEAR_GOLD,2026-01-05,9000000\n\
             GONE,2026-01-05,1700000\nNO_CONSENT,2026-01-05,1900000\n\
             NEAR_SILVER,2025-01-01,900000\n",
        )
        .await;
        let gone = id_of(&shop, "GONE").await;
        shop.store
            .unsubscribe(&shop.merchant, gone, at(10, 0))
            .await
            .unwrap();
        let now = at(20, 0);
        let program = setia_core::loyalty::LoyaltyProgram::default();
        let windows = nudge_windows(&program, 20);
        let enqueue = |round: &'static str| {
            let (shop, windows) = (&shop, &windows);
            async move {
                let spends = trailing_spends(shop, windows, now).await;
                let mut added = Vec::new();
                for window in windows {
                    let near: Vec<CustomerId> = spends
                        .iter()
                        .filter(|spend| window.contains(spend.spent))
                        .map(|spend| spend.customer)
                        .collect();
                    let period = format!("{}-{round}", window.tier.as_str());
                    added.push(
                        shop.store
                            .enqueue_tier_nudges(&shop.merchant, &period, &near, now, now)
                            .await
                            .unwrap(),
                    );
                }
                added
            }
        };
        // Every customer in a window, mailable or not, with the spend of the trailing year;
        // FAR (Rp 1.000.000) is in none.
        let mut spends: Vec<(CustomerId, i64)> = trailing_spends(&shop, &windows, now)
            .await
            .iter()
            .map(|spend| (spend.customer, spend.spent.minor()))
            .collect();
        spends.sort();
        let mut expected_spends = vec![
            (id_of(&shop, "NEAR_SILVER").await, 170_000_000),
            (id_of(&shop, "NEAR_GOLD").await, 900_000_000),
            (gone, 170_000_000),
            (id_of(&shop, "NO_CONSENT").await, 190_000_000),
        ];
        expected_spends.sort();
        assert_eq!(spends, expected_spends);
        assert_eq!(
            shop.store
                .spend_in_windows(&shop.merchant, &[], now)
                .await
                .unwrap(),
            vec![]
        );
        // The purchase of 2025 is out of the trailing year: NEAR_SILVER has Rp 1.700.000.
        assert_eq!(enqueue("2026").await, vec![1, 1]);
        assert_eq!(enqueue("2026").await, vec![0, 0], "once per tier and year");
        let rows = shop
            .store
            .claim_outbox(now, TimeDelta::seconds(1), 100)
            .await
            .unwrap();
        let mut nudged: Vec<(String, String)> = rows
            .iter()
            .filter(|row| row.kind == OutboxKind::TierNudge)
            .map(|row| (row.recipient.clone(), row.period_key.clone()))
            .collect();
        nudged.sort();
        let mut expected = vec![
            (
                id_of(&shop, "NEAR_SILVER").await.to_string(),
                "silver-2026".to_owned(),
            ),
            (
                id_of(&shop, "NEAR_GOLD").await.to_string(),
                "gold-2026".to_owned(),
            ),
        ];
        expected.sort();
        assert_eq!(nudged, expected);
    }

    /// More customers near a tier than one write takes: every one is nudged, once.
    async fn nudges_beyond_one_write_reach_everyone_once(shop: Shop) {
        let many = setia_store::perks::NUDGES_PER_WRITE + 500;
        let mut csv = String::from("customer_external_id,occurred_at,amount\n");
        for i in 0..many {
            let id = format!("N{i}");
            shop.customer(&id, reachable(None, &format!("n{i}@toko.example")))
                .await;
            csv.push_str(&format!("{id},2026-01-05,1700000\n"));
        }
        shop.import_history(&csv).await;
        let now = at(20, 0);
        let program = setia_core::loyalty::LoyaltyProgram::default();
        let windows = nudge_windows(&program, 20);
        let spends = trailing_spends(&shop, &windows, now).await;
        assert_eq!(spends.len(), many);
        let near: Vec<CustomerId> = spends.iter().map(|spend| spend.customer).collect();
        for expected in [many as u64, 0] {
            let added = shop
                .store
                .enqueue_tier_nudges(&shop.merchant, "silver-2026", &near, now, now)
                .await
                .unwrap();
            assert_eq!(added, expected);
        }
    }

    on_every_backend!(
        a_crossing_by_purchase_awards_and_welcomes_once: false,
        a_sandbox_world_crosses_nothing: true,
        an_import_awards_every_crossing_and_mails_the_last_week: false,
        nudges_go_to_customers_near_the_next_tier_once_a_year: false,
        nudges_beyond_one_write_reach_everyone_once: false,
    );
}

mod campaigns {
    use super::*;
    use setia_core::campaign::{in_holdout, Audience, CampaignDraft, CampaignInput, Wave};
    use setia_core::customer::CustomerEmail;
    use setia_core::engagement::CampaignSettings;
    use setia_core::CustomerId;
    use setia_store::analytics::ScoreRow;
    use setia_store::campaign::{CampaignStatus, NewRecipient};
    use setia_store::mail::OutboxStatus;

    fn everything(limit: u32) -> PageRequest {
        PageRequest {
            before: None,
            limit,
        }
    }

    /// Customers of known tier (trailing spend) and segment (scores):
    /// Gita gold and a champion, Sari silver and loyal, Maya member in the RFM cell
    /// `at_risk` (P(alive) 0.9), Rudi member, hibernating and at risk by the churn model,
    /// Mira member without purchases or scores; Umar gold but unsubscribed and Nina gold
    /// without an address, whom no audience reaches.
    async fn fixture(shop: &Shop) -> Vec<(&'static str, CustomerId)> {
        shop.import_history(
            "customer_external_id,occurred_at,amount\n\
             GITA,2026-01-02,12000000\nSARI,2026-01-02,3000000\nMAYA,2026-01-02,100000\n\
             RUDI,2026-01-02,50000\nUMAR,2026-01-02,15000000\nNINA,2026-01-02,15000000\n",
        )
        .await;
        for id in ["GITA", "SARI", "MAYA", "RUDI", "MIRA", "UMAR"] {
            shop.customer(
                id,
                CustomerPatch {
                    email: Some(
                        CustomerEmail::parse(&format!("{}@example.co.id", id.to_lowercase()))
                            .unwrap(),
                    ),
                    consent: Some(true),
                    ..CustomerPatch::default()
                },
            )
            .await;
        }
        let mut keys = Vec::new();
        for id in ["GITA", "SARI", "MAYA", "RUDI", "MIRA", "UMAR", "NINA"] {
            let customer = shop
                .store
                .customer(&shop.merchant, &ext(id))
                .await
                .unwrap()
                .unwrap();
            keys.push((id, customer.id));
        }
        let key = |name: &str| keys.iter().find(|(n, _)| *n == name).unwrap().1;
        shop.store
            .unsubscribe(&shop.merchant, key("UMAR"), at(5, 0))
            .await
            .unwrap();
        let score = |name: &str, segment: &str, frequency_days: i64, p_alive: f64| ScoreRow {
            customer: key(name).key(),
            recency_days: 5,
            frequency_days,
            monetary_minor: 10_000_000,
            r: 3,
            f: 3,
            m: 3,
            segment: segment.into(),
            p_alive: Some(p_alive),
            expected_purchases_90d: Some(0.1),
            clv_12m_minor: Some(1),
            recommended: Vec::new(),
        };
        let scores = vec![
            score("GITA", "champions", 4, 0.95),
            score("SARI", "loyal", 3, 0.8),
            score("MAYA", "at_risk", 2, 0.9),
            score("RUDI", "hibernating", 3, 0.2),
            score("UMAR", "champions", 4, 0.2),
        ];
        shop.save_scores(scores, at(10, 0)).await;
        keys
    }

    /// Every member of `audience`, read two customers at a time.
    async fn members(shop: &Shop, audience: &str) -> Vec<(CustomerId, Tier)> {
        let audience = Audience::parse(audience).unwrap();
        let mut after = CustomerId::from_key(0);
        let mut found = Vec::new();
        loop {
            let chunk = shop
                .store
                .audience_chunk(&shop.merchant, &audience, after, 2, at(10, 0))
                .await
                .unwrap();
            found.extend(chunk.members.iter().map(|m| (m.customer, m.tier)));
            match chunk.scanned_to {
                Some(to) => after = to,
                None => return found,
            }
        }
    }

    use setia_core::loyalty::Tier;

    async fn audiences_select_exactly_their_customers(shop: Shop) {
        let keys = fixture(&shop).await;
        let key = |name: &str| keys.iter().find(|(n, _)| *n == name).unwrap().1;
        for (audience, expected) in [
            ("tier:gold", vec![("GITA", Tier::Gold)]),
            ("tier:silver", vec![("SARI", Tier::Silver)]),
            (
                "tier:member",
                vec![
                    ("MAYA", Tier::Bronze),
                    ("RUDI", Tier::Bronze),
                    ("MIRA", Tier::Bronze),
                ],
            ),
            ("segment:champions", vec![("GITA", Tier::Gold)]),
            ("segment:at_risk", vec![("MAYA", Tier::Bronze)]),
            ("segment:cant_lose", vec![]),
            ("at_risk", vec![("RUDI", Tier::Bronze)]),
            (
                "tier:gold+at_risk+segment:loyal",
                vec![
                    ("GITA", Tier::Gold),
                    ("SARI", Tier::Silver),
                    ("RUDI", Tier::Bronze),
                ],
            ),
            (
                "all",
                vec![
                    ("GITA", Tier::Gold),
                    ("SARI", Tier::Silver),
                    ("MAYA", Tier::Bronze),
                    ("RUDI", Tier::Bronze),
                    ("MIRA", Tier::Bronze),
                ],
            ),
        ] {
            let mut expected: Vec<(CustomerId, Tier)> =
                expected.into_iter().map(|(n, t)| (key(n), t)).collect();
            expected.sort();
            assert_eq!(members(&shop, audience).await, expected, "{audience}");
        }
    }

    async fn waves_come_due_in_order_and_a_rerun_adds_nothing(shop: Shop) {
        let keys = fixture(&shop).await;
        let key = |name: &str| keys.iter().find(|(n, _)| *n == name).unwrap().1;
        let send_at = at(12, 3);
        let draft = CampaignDraft::parse(
            &CampaignInput {
                name: "Early access",
                audience: "all",
                subject: "Hi {{name}}",
                body: "New **collection**",
                send_at: Some(send_at),
                early_access_days: Some(2),
            },
            &CampaignSettings {
                holdout_percent: 0,
                result_days: 14,
            },
            at(10, 0),
        )
        .unwrap();
        let campaign = shop
            .store
            .create_campaign(&shop.merchant, &draft, at(10, 0))
            .await
            .unwrap();
        assert_eq!(campaign.status, CampaignStatus::Scheduled);
        assert!(shop
            .store
            .due_campaigns(&shop.merchant, at(12, 2))
            .await
            .unwrap()
            .is_empty());
        assert_eq!(
            shop.store
                .due_campaigns(&shop.merchant, send_at)
                .await
                .unwrap()
                .len(),
            1
        );
        // Recipients as the pass writes them, Mira held out by hand to see a holdout pass.
        let recipients: Vec<NewRecipient> = members(&shop, "all")
            .await
            .into_iter()
            .map(|(customer, tier)| NewRecipient {
                customer,
                wave: Wave::of(tier),
                holdout: customer == key("MIRA"),
                due_at: Wave::of(tier).due_at(send_at, Some(2)),
            })
            .collect();
        let first = &recipients[..2];
        let cursor = first.iter().map(|r| r.customer).max();
        assert_eq!(
            shop.store
                .add_campaign_recipients(&shop.merchant, campaign.id, first, cursor)
                .await
                .unwrap(),
            2
        );
        assert_eq!(
            shop.store
                .campaign_audience_cursor(&shop.merchant, campaign.id)
                .await
                .unwrap(),
            cursor.unwrap()
        );
        // A pass cut off and run again writes the same recipients once.
        for _ in 0..2 {
            shop.store
                .add_campaign_recipients(&shop.merchant, campaign.id, &recipients, None)
                .await
                .unwrap();
        }
        let campaign_rows = |status: Option<OutboxStatus>| {
            let store = shop.store.clone();
            let merchant = shop.merchant.clone();
            async move {
                let mut rows: Vec<(String, chrono::DateTime<Utc>)> = store
                    .outbox_entries(&merchant, status, everything(100))
                    .await
                    .unwrap()
                    .items
                    .into_iter()
                    .filter(|e| e.kind == "campaign")
                    .map(|e| (e.recipient, e.due_at))
                    .collect();
                rows.sort();
                rows
            }
        };
        let wave = |now: chrono::DateTime<Utc>| {
            let store = shop.store.clone();
            let merchant = shop.merchant.clone();
            async move {
                let mut total = (0, 0);
                loop {
                    let step = store
                        .enqueue_campaign_wave(&merchant, campaign.id, now, 1)
                        .await
                        .unwrap();
                    if step.due == 0 {
                        return total;
                    }
                    total = (total.0 + step.due, total.1 + step.enqueued);
                }
            }
        };
        assert_eq!(wave(send_at - TimeDelta::seconds(1)).await, (0, 0));
        // Gold at send_at, silver two days later, the rest two days after that.
        assert_eq!(wave(send_at).await, (1, 1));
        assert_eq!(
            campaign_rows(None).await,
            vec![(key("GITA").to_string(), send_at)]
        );
        assert_eq!(wave(send_at + TimeDelta::days(2)).await, (1, 1));
        let later = wave(send_at + TimeDelta::days(4)).await;
        assert_eq!(later, (3, 2), "Maya, Rudi and Mira's turn; Mira held out");
        let mut expected = vec![
            (key("GITA").to_string(), send_at),
            (key("SARI").to_string(), send_at + TimeDelta::days(2)),
            (key("MAYA").to_string(), send_at + TimeDelta::days(4)),
            (key("RUDI").to_string(), send_at + TimeDelta::days(4)),
        ];
        expected.sort();
        assert_eq!(campaign_rows(None).await, expected);
        // Again: nothing is due twice, and the campaign is now sent.
        assert_eq!(wave(send_at + TimeDelta::days(5)).await, (0, 0));
        let stored = shop
            .store
            .campaign(&shop.merchant, campaign.id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(stored.status, CampaignStatus::Sent);
        let delivery = shop
            .store
            .campaign_delivery(&shop.merchant, campaign.id)
            .await
            .unwrap();
        assert_eq!(
            (
                delivery.recipients,
                delivery.treated,
                delivery.holdout,
                delivery.pending
            ),
            (5, 4, 1, 4)
        );
        assert_eq!(
            delivery
                .waves
                .iter()
                .map(|w| (w.wave, w.due_at, w.treated))
                .collect::<Vec<_>>(),
            vec![
                (0, send_at, 1),
                (1, send_at + TimeDelta::days(2), 1),
                (2, send_at + TimeDelta::days(4), 2)
            ]
        );
        // Another merchant sees none of it.
        let other = MerchantId::from_random_bytes([4; 20]);
        assert!(shop
            .store
            .campaign(&other, campaign.id)
            .await
            .unwrap()
            .is_none());
        assert_eq!(
            shop.store
                .campaigns(&shop.merchant, everything(10))
                .await
                .unwrap()
                .items
                .len(),
            1
        );
        let outcomes = shop
            .store
            .campaign_outcomes(&shop.merchant, campaign.id)
            .await
            .unwrap();
        assert_eq!(outcomes.len(), 5);
        assert_eq!(outcomes.iter().filter(|o| o.holdout).count(), 1);
        // Imports are not verified payments: nobody bought in the window.
        assert!(outcomes.iter().all(|o| o.purchases == 0));
        // Gita's email goes out; she pays by transfer a day later and again three weeks
        // later (outside the 14-day window), then unsubscribes.
        let claimed = shop
            .store
            .claim_outbox(send_at + TimeDelta::days(4), TimeDelta::seconds(60), 100)
            .await
            .unwrap();
        let gita_row = claimed
            .iter()
            .find(|row| row.customer == Some(key("GITA")))
            .unwrap();
        let finished = [setia_store::mail::FinishedEmail {
            id: gita_row.id,
            merchant: shop.merchant.clone(),
            claim_id: gita_row.claim_id.clone(),
            outcome: setia_store::mail::DeliveryOutcome::Sent,
            follow_up: None,
        }];
        shop.store
            .finish_outbox(&finished, send_at + TimeDelta::days(4))
            .await
            .unwrap();
        shop.customer("GITA", with_va("8809001")).await;
        for (id, day) in [("g1", 1), ("g2", 21)] {
            let when = send_at + TimeDelta::days(day);
            shop.deliver(&mutation(id, when, 250_000, "8809001", "VA", "bca"), when)
                .await;
        }
        shop.store
            .unsubscribe(&shop.merchant, key("GITA"), send_at + TimeDelta::days(22))
            .await
            .unwrap();
        let delivery = shop
            .store
            .campaign_delivery(&shop.merchant, campaign.id)
            .await
            .unwrap();
        assert_eq!((delivery.sent, delivery.unsubscribed), (1, 1));
        let outcomes = shop
            .store
            .campaign_outcomes(&shop.merchant, campaign.id)
            .await
            .unwrap();
        let bought: Vec<_> = outcomes.iter().filter(|o| o.purchases > 0).collect();
        assert_eq!(bought.len(), 1);
        assert_eq!(
            (bought[0].purchases, bought[0].revenue, bought[0].due_at),
            (1, rupiah(250_000), send_at)
        );
        // The draw itself is the core's, stable per campaign.
        assert_eq!(
            in_holdout(&shop.merchant, campaign.id, key("GITA"), 10),
            in_holdout(&shop.merchant, campaign.id, key("GITA"), 10)
        );
    }

    on_every_backend!(
        audiences_select_exactly_their_customers: false,
        waves_come_due_in_order_and_a_rerun_adds_nothing: false,
    );
}

/// Values at the edges of i64 and of chrono's range: each is an answer or an error, never
/// a panic that takes the worker down.
mod extreme_values {
    use super::*;
    use setia_core::loyalty::{LoyaltyProgram, MAX_PURCHASE_POINTS};
    use setia_core::CustomerId;
    use setia_store::StoreError;

    /// A statement the store offers no way to make: a program or a purchase as an older
    /// setia (or a since-fixed parser) let in.
    async fn raw_sql(shop: &Shop, sql: &str) {
        let url = &shop._database.url;
        if url.starts_with("sqlite:") {
            let pool = sqlx::SqlitePool::connect(url).await.unwrap();
            sqlx::query(sql).execute(&pool).await.unwrap();
            pool.close().await;
        } else {
            let pool = sqlx::PgPool::connect(url).await.unwrap();
            sqlx::query(sql).execute(&pool).await.unwrap();
            pool.close().await;
        }
    }

    /// An imported purchase of customer C1, attributed, at `occurred_at`.
    async fn purchase_of_c1(shop: &Shop, key: &str, occurred_at: DateTime<Utc>, minor: i64) {
        raw_sql(
            shop,
            &format!(
                "INSERT INTO purchases (merchant_id, customer_id, occurred_at_us, amount_minor, source, \
                 source_key, attribution, sandbox, created_at_us) VALUES ('{merchant}', \
                 (SELECT id FROM customers WHERE merchant_id = '{merchant}' AND external_id = 'C1'), \
                 {at}, {minor}, 'import', '{key}', 'import', FALSE, 0)",
                merchant = shop.merchant,
                at = occurred_at.timestamp_micros(),
            ),
        )
        .await;
    }

    async fn points_of_c1(shop: &Shop) -> Vec<(String, i64)> {
        shop.store
            .points_history(&shop.merchant, CustomerId::from_key(1))
            .await
            .unwrap()
            .into_iter()
            .map(|entry| (entry.kind, entry.points))
            .collect()
    }

    async fn expiry_at_the_edges_of_time_panics_nowhere(shop: Shop) {
        shop.customer("C1", CustomerPatch::default()).await;
        let program = LoyaltyProgram::from_toml("expiry_days = 36500").unwrap();
        shop.store
            .set_loyalty_program(&shop.merchant, &program)
            .await
            .unwrap();
        // Earned 20,000 days before chrono's last date: 100 years later is past it, so the
        // points never expire.
        let late = DateTime::<Utc>::MAX_UTC - TimeDelta::days(20_000);
        purchase_of_c1(&shop, "late", late, rupiah(500_000).minor()).await;
        let now = DateTime::<Utc>::MAX_UTC - TimeDelta::days(1);
        assert_eq!(
            shop.store
                .award_missing_points(&shop.merchant, now)
                .await
                .unwrap(),
            (1, 50)
        );
        assert_eq!(shop.balance("C1", now).await, 50);
        assert_eq!(
            shop.store.expire_points(&shop.merchant, now).await.unwrap(),
            0
        );
        // An expiry run at chrono's first instant has nothing a whole expiry before it.
        assert_eq!(
            shop.store
                .expire_points(&shop.merchant, DateTime::<Utc>::MIN_UTC)
                .await
                .unwrap(),
            0
        );
        assert_eq!(shop.balance("C1", now).await, 50);
    }

    async fn a_purchase_at_the_start_of_time_is_an_error_not_a_panic(shop: Shop) {
        shop.customer("C1", CustomerPatch::default()).await;
        let early = DateTime::<Utc>::MIN_UTC + TimeDelta::days(10);
        purchase_of_c1(&shop, "early", early, rupiah(150_000).minor()).await;
        let refused = shop
            .store
            .award_missing_points(&shop.merchant, at(0, 0))
            .await;
        assert!(
            matches!(&refused, Err(StoreError::Corrupt(m)) if m.contains("no 365 days before it")),
            "{refused:?}"
        );
        assert_eq!(points_of_c1(&shop).await, vec![], "nothing half-written");
    }

    async fn a_program_stored_before_the_bounds_is_read_within_them(shop: Shop) {
        // What `merchant loyalty` accepted before the bounds: a point per rupiah, a bonus of
        // i64::MAX on every purchase, thresholds out of reach and a "never" expiry.
        raw_sql(
            &shop,
            &format!(
                "UPDATE merchants SET loyalty_program = 'rupiah_per_point = 1\n\
                 silver_threshold_rupiah = 100000000000000000\n\
                 gold_threshold_rupiah = 100000000000000000\n\
                 bonus_every = 1\nbonus_points = 9223372036854775807\n\
                 birthday_points = 9223372036854775807\nexpiry_days = 100000000\n' \
                 WHERE id = '{}'",
                shop.merchant
            ),
        )
        .await;
        let program = shop.store.loyalty_program(&shop.merchant).await.unwrap();
        assert_eq!(
            (
                program.silver_threshold_rupiah,
                program.bonus_points,
                program.birthday_points,
                program.expiry_days
            ),
            (10_000_000_000_000, 1_000_000_000, 1_000_000_000, 36_500)
        );
        // Two purchases of a quarter of what i64 holds (two of the largest would overflow
        // the profile's SQL SUM of amounts, which is the amount bound's to prevent): a
        // trillion points and the capped bonus each, added up without an overflow.
        shop.customer("C1", CustomerPatch::default()).await;
        let huge = i64::MAX / 4 / 100 * 100;
        purchase_of_c1(&shop, "huge1", at(0, 0), huge).await;
        purchase_of_c1(&shop, "huge2", at(1, 0), huge).await;
        let each = MAX_PURCHASE_POINTS + 1_000_000_000;
        assert_eq!(
            shop.store
                .award_missing_points(&shop.merchant, at(2, 0))
                .await
                .unwrap(),
            (2, 2 * each)
        );
        assert_eq!(
            points_of_c1(&shop).await,
            vec![
                ("earn".into(), MAX_PURCHASE_POINTS),
                ("bonus".into(), 1_000_000_000),
                ("earn".into(), MAX_PURCHASE_POINTS),
                ("bonus".into(), 1_000_000_000),
            ]
        );
        assert_eq!(shop.balance("C1", at(2, 0)).await, 2 * each);
        assert_eq!(
            shop.store
                .expire_points(&shop.merchant, at(2, 0))
                .await
                .unwrap(),
            0
        );
    }

    async fn an_order_amount_without_room_for_a_code_is_bad_input(shop: Shop) {
        let new_order = |id: &str, minor: i64| NewOrder {
            amount: Money::from_minor(minor),
            ..order(id, "C1", 0, at(2, 0))
        };
        // Rp 999 below i64::MAX sen: the highest code still fits, so every code does.
        let fits = shop
            .store
            .create_order(
                &shop.merchant,
                &new_order("O1", i64::MAX - 99_900),
                at(0, 0),
            )
            .await
            .unwrap();
        assert_eq!(
            fits.transfer_amount.minor(),
            i64::MAX - 99_900 + fits.unique_code * 100
        );
        for minor in [i64::MAX - 99_899, i64::MAX] {
            let refused = shop
                .store
                .create_order(&shop.merchant, &new_order("O2", minor), at(0, 0))
                .await;
            assert!(
                matches!(&refused, Err(StoreError::Invalid(m))
                    if m.starts_with("amount: ") && m.contains("no room for a unique code")),
                "{refused:?}"
            );
        }
    }

    async fn note_codes_are_tried_once_each_and_sixteen_at_most(shop: Shop) {
        // Orders that expired, so the unique amount matches nothing and only a note code can.
        let expired_order = |id: &'static str, customer: &'static str| {
            let shop = &shop;
            async move {
                shop.store
                    .create_order(
                        &shop.merchant,
                        &order(id, customer, 100_000, at(1, 0)),
                        at(0, 0),
                    )
                    .await
                    .unwrap()
            }
        };
        let first = expired_order("O1", "C1").await;
        let amount = 100_000 + first.unique_code;
        // Its code twice among a thousand copies of one other code-shaped word: two
        // distinct codes, one order.
        let note = format!(
            "{} {} {}",
            first.payment_code,
            "HRGA2 ".repeat(1_000),
            first.payment_code
        );
        shop.deliver(
            &mutation("m1", at(2, 0), amount, "555", &note, "bca"),
            at(2, 0),
        )
        .await;
        assert_eq!(
            shop.last_purchase_attribution().await,
            (Some("C1".into()), Some("note_code".into()))
        );
        // After sixteen other distinct code-shaped words the code is not looked at.
        let second = expired_order("O2", "C2").await;
        let amount = 100_000 + second.unique_code;
        let decoys: Vec<String> = b"ABCDEFGHJKMNPQRSTWXYZ"
            .iter()
            .map(|letter| format!("Q7Q7{}", *letter as char))
            .filter(|decoy| *decoy != second.payment_code)
            .take(16)
            .collect();
        let note = format!("{} {}", decoys.join(" "), second.payment_code);
        shop.deliver(
            &mutation("m2", at(2, 1), amount, "555", &note, "bca"),
            at(2, 1),
        )
        .await;
        assert_eq!(shop.last_purchase_attribution().await, (None, None));
        // The fifteenth word is still looked at.
        let note = format!("{} {}", decoys[..15].join(" "), second.payment_code);
        shop.deliver(
            &mutation("m3", at(2, 2), amount, "555", &note, "bca"),
            at(2, 2),
        )
        .await;
        assert_eq!(
            shop.last_purchase_attribution().await,
            (Some("C2".into()), Some("note_code".into()))
        );
    }

    on_every_backend!(
        expiry_at_the_edges_of_time_panics_nowhere: false,
        a_purchase_at_the_start_of_time_is_an_error_not_a_panic: false,
        a_program_stored_before_the_bounds_is_read_within_them: false,
        an_order_amount_without_room_for_a_code_is_bad_input: false,
        note_codes_are_tried_once_each_and_sixteen_at_most: false,
    );
}
