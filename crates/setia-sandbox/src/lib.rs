//! A Moota sandbox: simulated customers and the bank mutations they would cause, signed
//! exactly as Moota signs, for `setia sandbox push` and `setia demo`.
//!
//! Architecture invariant: knows Moota's wire format and nothing of setia's storage; it
//! talks to setia only through the public webhook endpoint, like Moota does.

pub mod basket;
pub mod feedback;
mod names;
mod push;
pub mod winback;

use chrono::{DateTime, Datelike, NaiveDate, TimeDelta, Utc};
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use serde_json::json;

pub use basket::{catalogue, write_items_csv, BasketError, CatalogueProduct, ItemsSummary};
pub use push::{push, PushError, PushSummary};

/// The merchant's own bank account that transfers arrive on.
pub const MERCHANT_ACCOUNT: &str = "1230004567";

/// A customer of the simulated store, as `customers import` takes them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SimCustomer {
    pub external_id: String,
    pub name: String,
    pub email: String,
    /// `YYYY-MM-DD`.
    pub birthday: String,
    pub virtual_account: String,
    /// How the bank prints the customer's name on a transfer.
    pub payer_name: String,
}

/// `count` customers with Indonesian names, drawn from `seed`; about one in fifty has a
/// birthday on `today` so the birthday offer has someone to greet. External ids are `C` and
/// a zero-padded number, as `setia sandbox generate` names the customers of a history.
pub fn population(seed: u64, count: usize, today: NaiveDate) -> Vec<SimCustomer> {
    let mut rng = StdRng::seed_from_u64(seed);
    let width = count.max(1).to_string().len();
    (0..count)
        .map(|n| {
            let first = *names::FIRST.choose(&mut rng).expect("names");
            let last = *names::LAST.choose(&mut rng).expect("names");
            let year = rng.random_range(1965..=2004);
            let birthday = if rng.random_bool(0.02) {
                NaiveDate::from_ymd_opt(year, today.month(), today.day().min(28)).unwrap_or(today)
            } else {
                NaiveDate::from_ymd_opt(year, 1, 1).expect("a date")
                    + TimeDelta::days(rng.random_range(0..365))
            };
            SimCustomer {
                external_id: format!("C{:0width$}", n + 1),
                name: format!("{first} {last}"),
                email: format!(
                    "{}.{}{}@example.co.id",
                    first.to_lowercase(),
                    last.to_lowercase(),
                    n + 1
                ),
                birthday: birthday.format("%Y-%m-%d").to_string(),
                virtual_account: format!("8808{:08}", 10_000 + n),
                payer_name: format!("{} {}", first.to_uppercase(), last.to_uppercase()),
            }
        })
        .collect()
}

/// The customers file of a population, in the `customers import` format.
pub fn customers_csv(customers: &[SimCustomer]) -> String {
    let mut csv =
        String::from("external_id,name,email,birthday,virtual_account,payer_names,consent\n");
    for c in customers {
        csv.push_str(&format!(
            "{},{},{},{},{},{},true\n",
            c.external_id, c.name, c.email, c.birthday, c.virtual_account, c.payer_name
        ));
    }
    csv
}

/// An order the simulated store registered with setia and is waiting to be paid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingOrder {
    /// Whole Rupiah, unique code included.
    pub transfer_amount: i64,
    pub payment_code: String,
}

/// What kind of mutation a delivery carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryKind {
    Transfer,
    VirtualAccount,
    OrderAmount,
    NoteCode,
    UnknownPayer,
    Debit,
    /// The same body again, byte for byte (Moota resending after a slow answer).
    Duplicate,
    /// The same mutation in a new body (a retry with a later `updated_at`).
    Retry,
}

#[derive(Debug, Clone)]
pub struct Delivery {
    pub kind: DeliveryKind,
    pub body: Vec<u8>,
}

/// Draws mutations from a population, the way Moota's Account Sandbox would report them.
pub struct Simulator {
    rng: StdRng,
    customers: Vec<SimCustomer>,
    orders: Vec<PendingOrder>,
    sent: Vec<(serde_json::Value, Vec<u8>)>,
    counter: u64,
}

/// Bank styles of transfer descriptions (BCA, Mandiri, BRI, BNI).
fn describe(rng: &mut StdRng, payer: &str, at: DateTime<Utc>, amount: i64) -> String {
    let jakarta = at.with_timezone(&chrono_tz::Asia::Jakarta);
    match rng.random_range(0..4) {
        0 => format!(
            "TRSF E-BANKING CR {:02}{:02}/FTSCY/WS{:05} {amount}.00 {payer}",
            jakarta.day(),
            jakarta.month(),
            rng.random_range(10_000..99_999)
        ),
        1 => format!("MCM InhouseTrf DARI {payer}"),
        2 => format!("NBMB {payer} TO TOKO DEMO"),
        _ => format!("TRF/PAY/TOP-UP ECHANNEL {payer}"),
    }
}

impl Simulator {
    pub fn new(seed: u64, customers: Vec<SimCustomer>) -> Simulator {
        Simulator {
            rng: StdRng::seed_from_u64(seed),
            customers,
            orders: Vec::new(),
            sent: Vec::new(),
            counter: 0,
        }
    }

    /// Orders waiting for payment: some deliveries will pay them by amount or by note code.
    pub fn expect_orders(&mut self, orders: Vec<PendingOrder>) {
        self.orders = orders;
    }

    fn mutation(
        &mut self,
        at: DateTime<Utc>,
        account: &str,
        description: String,
        amount: i64,
        kind: &str,
        bank_type: &str,
    ) -> serde_json::Value {
        self.counter += 1;
        let jakarta = at.with_timezone(&chrono_tz::Asia::Jakarta);
        // Some banks report only the day: 00:00:00.
        let date = if self.rng.random_bool(0.2) {
            jakarta.format("%Y-%m-%d 00:00:00").to_string()
        } else {
            jakarta.format("%Y-%m-%d %H:%M:%S").to_string()
        };
        let stamp = jakarta.format("%Y-%m-%d %H:%M:%S").to_string();
        let mut mutation = json!({
            "mutation_id": format!("sbx{:016x}", self.rng.random::<u64>() ^ self.counter),
            "token": hex::encode(self.rng.random::<[u8; 8]>()),
            "bank_id": "sandbox-bank",
            "account_number": account,
            "date": date,
            "description": description,
            "amount": amount,
            "type": kind,
            "balance": self.rng.random_range(1_000_000..90_000_000),
            "note": "",
            "created_at": stamp,
            "updated_at": stamp,
            "taggings": [],
            "bank": {"bank_type": bank_type, "label": "Sandbox", "atas_nama": "TOKO DEMO"}
        });
        if self.rng.random_bool(0.1) {
            // Moota leaves it out sometimes.
            mutation
                .as_object_mut()
                .expect("an object")
                .remove("updated_at");
        }
        mutation
    }

    fn finish(&mut self, kind: DeliveryKind, mutation: serde_json::Value) -> Delivery {
        let body = serde_json::to_vec(&json!([mutation])).expect("JSON");
        self.sent.push((mutation, body.clone()));
        if self.sent.len() > 200 {
            self.sent.remove(0);
        }
        Delivery { kind, body }
    }

    fn amount(&mut self) -> i64 {
        self.rng.random_range(50..=5_000) * 500
    }

    /// The next delivery, as of `now`.
    pub fn next(&mut self, now: DateTime<Utc>) -> Delivery {
        let at = now - TimeDelta::seconds(self.rng.random_range(0..600));
        let roll = self.rng.random_range(0..100);
        let kind = match roll {
            _ if self.customers.is_empty() => DeliveryKind::UnknownPayer,
            0..35 => DeliveryKind::Transfer,
            35..60 => DeliveryKind::VirtualAccount,
            60..68 if !self.orders.is_empty() => DeliveryKind::OrderAmount,
            68..73 if !self.orders.is_empty() => DeliveryKind::NoteCode,
            60..80 => DeliveryKind::UnknownPayer,
            80..85 => DeliveryKind::Debit,
            85..93 if !self.sent.is_empty() => DeliveryKind::Duplicate,
            93..100 if !self.sent.is_empty() => DeliveryKind::Retry,
            _ => DeliveryKind::Transfer,
        };
        match kind {
            DeliveryKind::Transfer => {
                let customer = self
                    .customers
                    .choose(&mut self.rng)
                    .expect("customers")
                    .clone();
                let amount = self.amount();
                let description = describe(&mut self.rng, &customer.payer_name, at, amount);
                let m = self.mutation(
                    at,
                    MERCHANT_ACCOUNT,
                    description,
                    amount,
                    "CR",
                    "bankTransferSandbox",
                );
                self.finish(kind, m)
            }
            DeliveryKind::VirtualAccount => {
                let customer = self
                    .customers
                    .choose(&mut self.rng)
                    .expect("customers")
                    .clone();
                let amount = self.amount();
                let description = format!("VA PAYMENT {}", customer.virtual_account);
                let m = self.mutation(
                    at,
                    &customer.virtual_account,
                    description,
                    amount,
                    "CR",
                    "vaSandbox",
                );
                self.finish(kind, m)
            }
            DeliveryKind::OrderAmount | DeliveryKind::NoteCode => {
                let index = self.rng.random_range(0..self.orders.len());
                let order = self.orders.swap_remove(index);
                let description = if kind == DeliveryKind::NoteCode {
                    format!("TRSF E-BANKING CR {} PESANAN", order.payment_code)
                } else {
                    "TRSF E-BANKING CR PEMBAYARAN".to_owned()
                };
                let m = self.mutation(
                    at,
                    MERCHANT_ACCOUNT,
                    description,
                    order.transfer_amount,
                    "CR",
                    "bankTransferSandbox",
                );
                self.finish(kind, m)
            }
            DeliveryKind::UnknownPayer => {
                let payer = format!(
                    "{} {}",
                    names::FIRST
                        .choose(&mut self.rng)
                        .expect("names")
                        .to_uppercase(),
                    names::RARE_LAST
                        .choose(&mut self.rng)
                        .expect("names")
                        .to_uppercase()
                );
                let amount = self.amount();
                let description = describe(&mut self.rng, &payer, at, amount);
                let m = self.mutation(
                    at,
                    MERCHANT_ACCOUNT,
                    description,
                    amount,
                    "CR",
                    "bankTransferSandbox",
                );
                self.finish(kind, m)
            }
            DeliveryKind::Debit => {
                let amount = self.rng.random_range(1..=20) * 2_500;
                let m = self.mutation(
                    at,
                    MERCHANT_ACCOUNT,
                    "BIAYA ADM".into(),
                    amount,
                    "DB",
                    "bankTransferSandbox",
                );
                self.finish(kind, m)
            }
            DeliveryKind::Duplicate => {
                let (_, body) = self.sent.choose(&mut self.rng).expect("sent").clone();
                Delivery { kind, body }
            }
            DeliveryKind::Retry => {
                let (mut mutation, _) = self.sent.choose(&mut self.rng).expect("sent").clone();
                let later = (at + TimeDelta::seconds(30)).with_timezone(&chrono_tz::Asia::Jakarta);
                mutation["updated_at"] = json!(later.format("%Y-%m-%d %H:%M:%S").to_string());
                let body = serde_json::to_vec(&json!([mutation])).expect("JSON");
                Delivery { kind, body }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use setia_core::attribution::{payer_name_in, payment_codes_in};
    use setia_core::moota::parse_mutations;

    use super::*;

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, 27).unwrap()
    }

    #[test]
    fn populations_are_repeatable_and_importable() {
        let people = population(7, 300, today());
        assert_eq!(people, population(7, 300, today()));
        assert_ne!(people, population(8, 300, today()));
        let csv = customers_csv(&people);
        let rows: Vec<_> = setia_core::import::CustomersCsv::new(csv.as_bytes())
            .unwrap()
            .collect();
        assert_eq!(rows.len(), 300);
        assert!(
            rows.iter().all(Result::is_ok),
            "every simulated customer imports"
        );
        assert!(
            people.iter().any(|p| p.birthday.ends_with("-11-27")),
            "someone's birthday is today"
        );
    }

    #[test]
    fn deliveries_look_like_mootas_sandbox() {
        let people = population(1, 50, today());
        let mut simulator = Simulator::new(2, people.clone());
        simulator.expect_orders(vec![
            PendingOrder {
                transfer_amount: 150_123,
                payment_code: "K7QX2".into()
            };
            40
        ]);
        let now = Utc::now();
        let mut kinds: HashMap<DeliveryKind, usize> = HashMap::new();
        for _ in 0..2_000 {
            let delivery = simulator.next(now);
            *kinds.entry(delivery.kind).or_default() += 1;
            let mutations = parse_mutations(&delivery.body).expect("Moota's wire format");
            let mutation = &mutations[0];
            assert!(mutation.is_sandbox(), "sandbox bank types only");
            assert!(mutation.occurred_at <= now);
            if delivery.kind == DeliveryKind::Transfer {
                let payer = payer_name_in(&mutation.description).expect("a payer name");
                assert!(
                    people.iter().any(|p| p.payer_name == payer.as_str()),
                    "{}",
                    mutation.description
                );
            }
            if delivery.kind == DeliveryKind::NoteCode {
                assert_eq!(
                    payment_codes_in(&mutation.description),
                    vec!["K7QX2".to_string()]
                );
                assert_eq!(mutation.amount.whole_units(), 150_123);
            }
        }
        for kind in [
            DeliveryKind::Transfer,
            DeliveryKind::VirtualAccount,
            DeliveryKind::Debit,
            DeliveryKind::Duplicate,
            DeliveryKind::Retry,
            DeliveryKind::UnknownPayer,
        ] {
            assert!(
                kinds.get(&kind).copied().unwrap_or(0) > 20,
                "{kind:?}: {kinds:?}"
            );
        }
        assert!(
            kinds[&DeliveryKind::OrderAmount] + kinds[&DeliveryKind::NoteCode] == 40,
            "every order paid once: {kinds:?}"
        );
    }
}
