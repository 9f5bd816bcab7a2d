//! Moota's API V2, as reconciliation reads it: the merchant's personal token, the bank ids
//! to watch, the window of days a sync asks for, and the pages of `GET /mutation` and
//! `GET /bank` read into what a sync needs. The HTTP is setia-ingest's; this is the format.
//!
//! A mutation from the API is a webhook mutation with `amount` and `balance` as strings
//! and `bank` possibly null; each one found is put into the inbox as a one-element webhook
//! body, so the worker reads both the same way.

use std::fmt;

use chrono::{NaiveDate, TimeDelta};
use serde_json::Value;

use crate::moota::{parse_mutation, Mutation};

/// A Moota personal token: one string without spaces. Stored because every sync needs it;
/// it never appears in a log or an answer (Debug is redacted, and it is not `Serialize`).
#[derive(Clone, PartialEq, Eq)]
pub struct MootaToken(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MootaTokenError {
    #[error("the Moota token is empty")]
    Empty,
    #[error(
        "the Moota token has a space or line break inside; a token is one string without spaces"
    )]
    Whitespace,
    #[error("the Moota token has a character that is not printable ASCII")]
    NotPrintable,
    #[error("the Moota token is longer than {max} characters")]
    TooLong { max: usize },
}

impl MootaToken {
    pub const MAX_CHARS: usize = 2_048;

    /// The token as a file holds it: one line break at the end (an editor's or `echo`'s) is
    /// allowed; any other space is a mistake worth stopping for.
    pub fn parse(text: &str) -> Result<MootaToken, MootaTokenError> {
        let text = text
            .strip_suffix("\r\n")
            .or_else(|| text.strip_suffix('\n'))
            .unwrap_or(text);
        if text.is_empty() {
            return Err(MootaTokenError::Empty);
        }
        if text.chars().any(char::is_whitespace) {
            return Err(MootaTokenError::Whitespace);
        }
        if !text.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(MootaTokenError::NotPrintable);
        }
        if text.len() > Self::MAX_CHARS {
            return Err(MootaTokenError::TooLong {
                max: Self::MAX_CHARS,
            });
        }
        Ok(MootaToken(text.to_owned()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for MootaToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MootaToken(<redacted>)")
    }
}

/// A Moota bank id (`bank_id` of `GET /bank`), not an account number.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct MootaBankId(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bank id {0:?} is not a Moota bank id (1 to 64 letters, digits, '_' or '-')")]
pub struct BadBankId(pub String);

impl MootaBankId {
    pub fn parse(text: &str) -> Result<MootaBankId, BadBankId> {
        let text = text.trim();
        let ok = (1..=64).contains(&text.len())
            && text
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if ok {
            Ok(MootaBankId(text.to_owned()))
        } else {
            Err(BadBankId(text.to_owned()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The days a sync asks Moota for, both included (`start_date` and `end_date`, days in
/// Asia/Jakarta as Moota's dates are).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct SyncWindow {
    pub since: NaiveDate,
    pub until: NaiveDate,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WindowError {
    #[error("--since {since} is after --until {until}")]
    SinceAfterUntil { since: NaiveDate, until: NaiveDate },
    #[error("the window {since} to {until} is longer than {max} days; sync it in parts")]
    TooLong {
        since: NaiveDate,
        until: NaiveDate,
        max: i64,
    },
    #[error(
        "--{flag} {day} is after today ({today} in Asia/Jakarta, Moota's days); \
         a sync covers days that have happened"
    )]
    AfterToday {
        flag: &'static str,
        day: NaiveDate,
        today: NaiveDate,
    },
}

impl SyncWindow {
    /// The longest window one sync asks for: a year of mutations is a few thousand pages
    /// for a busy shop, and a longer backfill is better run in parts.
    pub const MAX_DAYS: i64 = 366;

    pub fn new(since: NaiveDate, until: NaiveDate) -> Result<SyncWindow, WindowError> {
        if since > until {
            return Err(WindowError::SinceAfterUntil { since, until });
        }
        if (until - since).num_days() + 1 > Self::MAX_DAYS {
            return Err(WindowError::TooLong {
                since,
                until,
                max: Self::MAX_DAYS,
            });
        }
        Ok(SyncWindow { since, until })
    }

    /// A window asked for by hand (`--since`, `--until`): as `new`, and neither day after
    /// `today` (Moota's). A sync records its window's end as synced, so a future one would
    /// move the scheduled window's start past days no sync covered.
    pub fn requested(
        since: NaiveDate,
        until: NaiveDate,
        today: NaiveDate,
    ) -> Result<SyncWindow, WindowError> {
        for (flag, day) in [("since", since), ("until", until)] {
            if day > today {
                return Err(WindowError::AfterToday { flag, day, today });
            }
        }
        SyncWindow::new(since, until)
    }

    /// The scheduled sync's window: from the day before the end of the last successful
    /// sync (a day of overlap, for mutations Moota reports late), never before the day the
    /// merchant started on setia (older payments are history, imported, not webhooks
    /// missed), until today.
    pub fn scheduled(
        last_until: Option<NaiveDate>,
        merchant_since: NaiveDate,
        today: NaiveDate,
    ) -> SyncWindow {
        // `pred_opt`: a stored day at chrono's minimum has no day before it.
        let overlap = last_until.and_then(|day| day.pred_opt());
        let since = overlap
            .unwrap_or(merchant_since)
            .max(merchant_since)
            .max(today - TimeDelta::days(Self::MAX_DAYS - 1))
            .min(today);
        SyncWindow {
            since,
            until: today,
        }
    }
}

/// One mutation of a page: what the ledger will read, and the JSON object as Moota sent it.
#[derive(Debug, Clone, PartialEq)]
pub struct PagedMutation {
    pub mutation: Mutation,
    pub bank_id: Option<String>,
    raw: Value,
}

impl PagedMutation {
    /// `bank` is null: the mutation does not say which kind of account it is from (a
    /// sandbox account must never count as money).
    pub fn lacks_bank(&self) -> bool {
        self.raw.get("bank").is_none_or(Value::is_null)
    }

    /// The inbox body for this mutation: a webhook body of one mutation, with `bank`
    /// filled in from `GET /bank` when the page left it null.
    pub fn inbox_body(&self, bank_type: Option<&str>) -> Vec<u8> {
        let mut raw = self.raw.clone();
        if let (true, Some(bank_type), Some(object)) =
            (self.lacks_bank(), bank_type, raw.as_object_mut())
        {
            object.insert(
                "bank".into(),
                serde_json::json!({"bank_id": self.bank_id, "bank_type": bank_type}),
            );
        }
        serde_json::to_vec(&[raw]).expect("a JSON value serialises")
    }
}

/// An item of a page that is no payment setia can take (a field missing, a date or amount
/// out of bounds). A sync writes it to the inbox as it came, where the worker quarantines
/// it with the same reason: it is seen on the Payments page instead of lost, and the rest
/// of its page is not held back by it.
#[derive(Debug, Clone, PartialEq)]
pub struct RefusedItem {
    /// Its `mutation_id`, or for an item that names none a key made from its content
    /// ([`UNNAMED_PREFIX`] and a hash), so the same item on a later sync is known.
    pub mutation_id: String,
    pub problem: String,
    raw: Value,
}

impl RefusedItem {
    /// The inbox body: a webhook body of this one item, as Moota gave it.
    pub fn inbox_body(&self) -> Vec<u8> {
        serde_json::to_vec(&[&self.raw]).expect("a JSON value serialises")
    }
}

/// A page of `GET /mutation` (Laravel's paginator).
#[derive(Debug, Clone, PartialEq)]
pub struct MutationPage {
    pub mutations: Vec<PagedMutation>,
    pub refused: Vec<RefusedItem>,
    pub next_page_url: Option<String>,
}

/// A page of `GET /bank`: each account's bank id and type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BankPage {
    pub banks: Vec<(String, String)>,
    pub next_page_url: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PageError {
    #[error("the page is not JSON: {0}")]
    NotJson(String),
    #[error("the page has no \"data\" array")]
    NoData,
    #[error("\"next_page_url\" is neither a string nor null")]
    BadNextPage,
    #[error("item {index} of \"data\": {problem}")]
    BadItem { index: usize, problem: String },
}

fn page_parts(body: &[u8]) -> Result<(Vec<Value>, Option<String>), PageError> {
    let mut page: Value =
        serde_json::from_slice(body).map_err(|e| PageError::NotJson(e.to_string()))?;
    let next_page_url = match page.get("next_page_url") {
        None | Some(Value::Null) => None,
        Some(Value::String(url)) if url.is_empty() => None,
        Some(Value::String(url)) => Some(url.clone()),
        Some(_) => return Err(PageError::BadNextPage),
    };
    match page.get_mut("data").map(Value::take) {
        Some(Value::Array(items)) => Ok((items, next_page_url)),
        _ => Err(PageError::NoData),
    }
}

/// Reads a page of `GET /mutation`. An item that does not parse is refused alone
/// ([`RefusedItem`]): one item Moota gets wrong must not stop a merchant's reconciliation
/// for as long as Moota lists it.
pub fn parse_mutation_page(body: &[u8]) -> Result<MutationPage, PageError> {
    let (items, next_page_url) = page_parts(body)?;
    let mut mutations = Vec::with_capacity(items.len());
    let mut refused = Vec::new();
    for raw in items {
        match parse_mutation(&raw) {
            Ok(mutation) => {
                let bank_id = raw
                    .get("bank_id")
                    .and_then(Value::as_str)
                    .filter(|id| !id.is_empty())
                    .map(str::to_owned);
                mutations.push(PagedMutation {
                    mutation,
                    bank_id,
                    raw,
                });
            }
            Err(problem) => refused.push(RefusedItem {
                mutation_id: named_mutation(&raw).unwrap_or_else(|| unnamed_key(&raw)),
                problem,
                raw,
            }),
        }
    }
    Ok(MutationPage {
        mutations,
        refused,
        next_page_url,
    })
}

/// The `mutation_id` of an item that did not parse, when it has a usable one.
fn named_mutation(raw: &Value) -> Option<String> {
    let id = match raw.get("mutation_id")? {
        Value::String(id) => id.clone(),
        Value::Number(n) => n.to_string(),
        _ => return None,
    };
    let usable = !id.trim().is_empty() && id.chars().count() <= 200;
    usable.then_some(id)
}

/// How the key of a refused item without a usable `mutation_id` starts.
pub const UNNAMED_PREFIX: &str = "unnamed-";

/// The key of an item without a usable `mutation_id`: the same item gets the same key on
/// every sync, so the inbox keeps it once.
fn unnamed_key(raw: &Value) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(serde_json::to_vec(raw).expect("a JSON value serialises"));
    format!("{UNNAMED_PREFIX}{}", &hex::encode(digest)[..32])
}

/// Reads a page of `GET /bank`.
pub fn parse_bank_page(body: &[u8]) -> Result<BankPage, PageError> {
    let (items, next_page_url) = page_parts(body)?;
    let banks = items
        .iter()
        .enumerate()
        .map(|(index, item)| {
            let field = |name: &str| {
                item.get(name)
                    .and_then(Value::as_str)
                    .filter(|v| !v.is_empty())
                    .map(str::to_owned)
                    .ok_or_else(|| PageError::BadItem {
                        index,
                        problem: format!("{name} is missing"),
                    })
            };
            Ok((field("bank_id")?, field("bank_type")?))
        })
        .collect::<Result<Vec<_>, PageError>>()?;
    Ok(BankPage {
        banks,
        next_page_url,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::moota::{parse_mutations, Direction};
    use crate::Money;

    const PAGE: &[u8] = include_bytes!("../../../tests/fixtures/moota/api-mutation-page.json");

    fn day(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn tokens_are_one_string_without_spaces() {
        assert_eq!(
            MootaToken::parse("abc.DEF-123\n").unwrap().expose(),
            "abc.DEF-123"
        );
        assert_eq!(MootaToken::parse("abc\r\n").unwrap().expose(), "abc");
        assert_eq!(MootaToken::parse(""), Err(MootaTokenError::Empty));
        assert_eq!(MootaToken::parse("\n"), Err(MootaTokenError::Empty));
        assert_eq!(MootaToken::parse("ab cd"), Err(MootaTokenError::Whitespace));
        assert_eq!(MootaToken::parse(" abc"), Err(MootaTokenError::Whitespace));
        assert_eq!(
            MootaToken::parse("abc\n\n"),
            Err(MootaTokenError::Whitespace)
        );
        assert_eq!(
            MootaToken::parse("abc\tx"),
            Err(MootaTokenError::Whitespace)
        );
        assert_eq!(
            MootaToken::parse("tökén"),
            Err(MootaTokenError::NotPrintable)
        );
        assert!(matches!(
            MootaToken::parse(&"a".repeat(MootaToken::MAX_CHARS + 1)),
            Err(MootaTokenError::TooLong { .. })
        ));
        let token = MootaToken::parse("secret-token").unwrap();
        assert!(!format!("{token:?}").contains("secret"));
    }

    #[test]
    fn bank_ids_are_short_and_plain() {
        assert_eq!(
            MootaBankId::parse(" bnk_A9-s8 ").unwrap().as_str(),
            "bnk_A9-s8"
        );
        for bad in ["", "a b", "a/b", &"x".repeat(65)] {
            assert!(MootaBankId::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn windows_run_forwards_and_are_bounded() {
        assert!(SyncWindow::new(day("2026-12-01"), day("2026-12-01")).is_ok());
        assert_eq!(
            SyncWindow::new(day("2026-12-02"), day("2026-12-01")),
            Err(WindowError::SinceAfterUntil {
                since: day("2026-12-02"),
                until: day("2026-12-01")
            })
        );
        assert!(SyncWindow::new(day("2025-01-01"), day("2026-01-02")).is_err());
        assert!(SyncWindow::new(day("2025-01-02"), day("2026-01-02")).is_ok());
    }

    #[test]
    fn a_requested_window_ends_by_today() {
        let today = day("2026-12-08");
        assert_eq!(
            SyncWindow::requested(day("2026-12-01"), today, today),
            Ok(SyncWindow {
                since: day("2026-12-01"),
                until: today
            })
        );
        assert_eq!(
            SyncWindow::requested(day("2026-12-20"), day("2027-01-10"), today),
            Err(WindowError::AfterToday {
                flag: "since",
                day: day("2026-12-20"),
                today
            })
        );
        let until = SyncWindow::requested(today, day("2026-12-09"), today).unwrap_err();
        assert_eq!(
            until,
            WindowError::AfterToday {
                flag: "until",
                day: day("2026-12-09"),
                today
            }
        );
        assert!(until
            .to_string()
            .starts_with("--until 2026-12-09 is after today"));
        // A future --since with the default --until (today) says so, not "after --until".
        assert!(matches!(
            SyncWindow::requested(day("2026-12-09"), today, today),
            Err(WindowError::AfterToday { flag: "since", .. })
        ));
        // The other rules still hold.
        assert!(matches!(
            SyncWindow::requested(today, day("2026-12-01"), today),
            Err(WindowError::SinceAfterUntil { .. })
        ));
    }

    #[test]
    fn the_scheduled_window_overlaps_the_last_by_a_day() {
        let today = day("2026-12-06");
        let started = day("2026-11-01");
        let window = SyncWindow::scheduled(Some(day("2026-12-03")), started, today);
        assert_eq!((window.since, window.until), (day("2026-12-02"), today));
        // The first sync starts the day the merchant did.
        let first = SyncWindow::scheduled(None, started, today);
        assert_eq!(first.since, started);
        // Never before the merchant started, never after today, never longer than allowed.
        let early = SyncWindow::scheduled(Some(day("2026-11-01")), started, today);
        assert_eq!(early.since, started);
        let odd = SyncWindow::scheduled(Some(day("2026-12-20")), started, today);
        assert_eq!(odd.since, today);
        let old = SyncWindow::scheduled(None, day("2020-01-01"), today);
        assert_eq!((today - old.since).num_days() + 1, SyncWindow::MAX_DAYS);
        // A stored end at chrono's first day has no day of overlap before it: no panic.
        let first_day = SyncWindow::scheduled(Some(NaiveDate::MIN), started, today);
        assert_eq!(first_day.since, started);
    }

    #[test]
    fn the_sample_page_reads_with_string_amounts_and_a_null_bank() {
        let page = parse_mutation_page(PAGE).unwrap();
        assert_eq!(
            page.next_page_url.as_deref(),
            Some("https://app.moota.co/api/v2/mutation?page=2")
        );
        assert_eq!(page.mutations.len(), 2);
        let first = &page.mutations[0];
        assert_eq!(first.mutation.mutation_id, "mut_Q1w2E3r4T5");
        assert_eq!(first.mutation.amount, Money::from_minor(25_012_300));
        assert_eq!(first.mutation.direction, Direction::Credit);
        assert_eq!(first.mutation.bank_type.as_deref(), Some("bca"));
        assert!(!first.lacks_bank());
        let second = &page.mutations[1];
        assert!(second.lacks_bank());
        assert_eq!(second.bank_id.as_deref(), Some("bnk_A9s8D7f6"));
        // Its inbox body is a webhook body the worker reads, with the bank filled in.
        let body = second.inbox_body(Some("vaSandbox"));
        let read = parse_mutations(&body).unwrap();
        assert_eq!(read.len(), 1);
        assert_eq!(read[0].mutation_id, "mut_Z9x8C7v6B5");
        assert!(read[0].is_sandbox());
        assert_eq!(read[0].amount, Money::from_minor(7_500_000));
        // Without a known type it stays as Moota sent it.
        let plain = parse_mutations(&second.inbox_body(None)).unwrap();
        assert_eq!(plain[0].bank_type, None);
    }

    #[test]
    fn a_bad_item_is_refused_alone() {
        let bad = br#"{"data":[{"mutation_id":"a","date":"2026-12-04 00:00:00","amount":"1.00","type":"CR"},
                             {"mutation_id":"b","date":"yesterday","amount":"1.00","type":"CR"},
                             {"mutation_id":7,"date":"-262143-01-05 00:00:00","amount":"1.00","type":"CR"}],
                      "next_page_url":null}"#;
        let page = parse_mutation_page(bad).unwrap();
        assert_eq!(page.mutations.len(), 1);
        let refused: Vec<&str> = page
            .refused
            .iter()
            .map(|r| r.mutation_id.as_str())
            .collect();
        assert_eq!(refused, ["b", "7"]);
        assert!(
            page.refused[0].problem.contains("date"),
            "{:?}",
            page.refused[0]
        );
        // Its inbox body is the item as it came, which the worker refuses the same way.
        let body = page.refused[0].inbox_body();
        assert_eq!(
            parse_mutations(&body)
                .unwrap_err()
                .to_string()
                .contains("date"),
            true
        );
        // One that names no mutation is keyed by its content: the same item, the same key.
        let nameless = [
            br#"{"data":[{"date":"yesterday","amount":"1.00","type":"CR"}]}"#.as_slice(),
            br#"{"data":[{"mutation_id":"","date":"yesterday"}]}"#,
            br#"{"data":[{"mutation_id":{"x":1},"date":"yesterday"}]}"#,
        ];
        let keys: Vec<String> = nameless
            .iter()
            .map(|body| {
                let page = parse_mutation_page(body).unwrap();
                assert!(page.mutations.is_empty());
                page.refused[0].mutation_id.clone()
            })
            .collect();
        for key in &keys {
            assert!(key.starts_with(UNNAMED_PREFIX) && key.len() == 40, "{key}");
        }
        assert!(keys[0] != keys[1] && keys[1] != keys[2] && keys[0] != keys[2]);
        let again = parse_mutation_page(nameless[0]).unwrap();
        assert_eq!(again.refused[0].mutation_id, keys[0]);
        assert_eq!(
            parse_mutation_page(b"<html>"),
            Err(PageError::NotJson(
                "expected value at line 1 column 1".into()
            ))
        );
        assert_eq!(
            parse_mutation_page(b"{\"message\":\"x\"}"),
            Err(PageError::NoData)
        );
        assert_eq!(
            parse_mutation_page(b"{\"data\":[],\"next_page_url\":5}"),
            Err(PageError::BadNextPage)
        );
        let last = parse_mutation_page(b"{\"data\":[],\"next_page_url\":null}").unwrap();
        assert_eq!((last.mutations.len(), last.next_page_url), (0, None));
    }

    #[test]
    fn bank_pages_give_each_accounts_type() {
        let page = parse_bank_page(
            br#"{"data":[{"bank_id":"b1","bank_type":"bca","account_number":"1"},
                        {"bank_id":"b2","bank_type":"vaSandbox"}],"next_page_url":null}"#,
        )
        .unwrap();
        assert_eq!(
            page.banks,
            vec![
                ("b1".to_owned(), "bca".to_owned()),
                ("b2".to_owned(), "vaSandbox".to_owned())
            ]
        );
        assert!(parse_bank_page(br#"{"data":[{"bank_id":"b1"}]}"#).is_err());
    }
}
