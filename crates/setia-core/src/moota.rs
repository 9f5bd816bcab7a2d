//! Moota's webhook signature: hex HMAC-SHA256 of the raw body bytes, keyed with the
//! merchant's webhook secret. Checked on the bytes as received, never on re-serialised JSON.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::merchant::WebhookSecret;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the Signature header is missing")]
    Missing,
    #[error("the Signature header is not 64 hex digits")]
    Malformed,
    #[error("the Signature header does not match the body")]
    Mismatch,
}

impl SignatureError {
    /// The reason recorded in the webhook audit log.
    pub fn reason(self) -> &'static str {
        match self {
            SignatureError::Missing => "signature_missing",
            SignatureError::Malformed => "signature_malformed",
            SignatureError::Mismatch => "signature_mismatch",
        }
    }
}

/// Checks a `Signature` header value (upper- or lower-case hex) in constant time.
pub fn verify_signature(
    secret: &WebhookSecret,
    body: &[u8],
    header: Option<&[u8]>,
) -> Result<(), SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?;
    let header = header.trim_ascii();
    let mut expected = [0u8; 32];
    hex::decode_to_slice(header, &mut expected).map_err(|_| SignatureError::Malformed)?;
    let mut mac = mac(secret);
    mac.update(body);
    mac.verify_slice(&expected)
        .map_err(|_| SignatureError::Mismatch)
}

/// The signature Moota would send for `body`: what the sandbox simulator and tests sign with.
pub fn sign(secret: &WebhookSecret, body: &[u8]) -> String {
    let mut mac = mac(secret);
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

fn mac(secret: &WebhookSecret) -> Hmac<Sha256> {
    Hmac::<Sha256>::new_from_slice(secret.expose().as_bytes())
        .expect("HMAC takes keys of any length")
}

#[cfg(test)]
mod tests {
    use super::*;

    const SDK_BODY: &[u8] = include_bytes!("../../../tests/fixtures/moota/webhook-sdk-vector.json");
    const SDK_SIGNATURE: &str = "08b0c237eb830bcb321726fa2c6378122f6357a0b1b60cf4c4d362aa93380cca";
    const HISTORY_BODY: &[u8] =
        include_bytes!("../../../tests/fixtures/moota/webhook-history-vector.json");
    const HISTORY_SIGNATURE: &str =
        "48fd0e1eecf65f66196aa1e37a68b0139f8cf29bc5788dd63be6a6b5057cf166";

    fn secret(text: &str) -> WebhookSecret {
        WebhookSecret::parse(text).unwrap()
    }

    #[test]
    fn mootas_own_vectors_verify() {
        assert_eq!(SDK_BODY.len(), 2483);
        assert_eq!(HISTORY_BODY.len(), 819);
        let sdk = secret("AElSnSQj");
        let history = secret("FcZnoVBN");
        assert_eq!(
            verify_signature(&sdk, SDK_BODY, Some(SDK_SIGNATURE.as_bytes())),
            Ok(())
        );
        assert_eq!(
            verify_signature(&history, HISTORY_BODY, Some(HISTORY_SIGNATURE.as_bytes())),
            Ok(())
        );
        assert_eq!(sign(&sdk, SDK_BODY), SDK_SIGNATURE);
        let upper = SDK_SIGNATURE.to_uppercase();
        assert_eq!(
            verify_signature(&sdk, SDK_BODY, Some(upper.as_bytes())),
            Ok(())
        );
    }

    #[test]
    fn anything_else_is_rejected() {
        let sdk = secret("AElSnSQj");
        let mut tampered = SDK_BODY.to_vec();
        tampered[100] ^= 1;
        let header = Some(SDK_SIGNATURE.as_bytes());
        assert_eq!(
            verify_signature(&sdk, &tampered, header),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_signature(&secret("FcZnoVBN"), SDK_BODY, header),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_signature(&sdk, SDK_BODY, None),
            Err(SignatureError::Missing)
        );
        assert_eq!(
            verify_signature(&sdk, b"", header),
            Err(SignatureError::Mismatch)
        );
        for bad in [
            "",
            "xyz",
            &SDK_SIGNATURE[..62],
            &format!("{SDK_SIGNATURE}00"),
            &SDK_SIGNATURE.replace('0', "g"),
        ] {
            assert_eq!(
                verify_signature(&sdk, SDK_BODY, Some(bad.as_bytes())),
                Err(SignatureError::Malformed),
                "{bad}"
            );
        }
    }
}

/// One bank mutation of a Moota webhook body, with what setia needs of it. Unknown fields
/// are ignored; the raw body stays in the inbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mutation {
    pub mutation_id: String,
    pub account_number: String,
    pub occurred_at: chrono::DateTime<chrono::Utc>,
    pub description: String,
    pub amount: crate::Money,
    pub direction: Direction,
    pub note: Option<String>,
    pub bank_type: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Money in: a payment.
    Credit,
    /// Money out: recorded, never a purchase.
    Debit,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Credit => "CR",
            Direction::Debit => "DB",
        }
    }
}

impl Mutation {
    /// Moota's Account Sandbox: a bank type such as `vaSandbox` or `bankTransferSandbox`.
    pub fn is_sandbox(&self) -> bool {
        self.bank_type
            .as_deref()
            .is_some_and(|t| t.to_ascii_lowercase().contains("sandbox"))
    }

    /// A payment that can be a purchase: money in, more than zero.
    pub fn is_payment(&self) -> bool {
        self.direction == Direction::Credit && self.amount > crate::Money::ZERO
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PayloadError {
    #[error("the body is not JSON: {0}")]
    NotJson(String),
    #[error("the body is not a JSON array of mutations")]
    NotAnArray,
    #[error("mutation {index}: {problem}")]
    BadMutation { index: usize, problem: String },
}

/// Parses a webhook body: a JSON array of mutations. `amount` may be a number or a string;
/// `date` is Asia/Jakarta wall time (`00:00:00` when the bank gives no time).
pub fn parse_mutations(body: &[u8]) -> Result<Vec<Mutation>, PayloadError> {
    let value: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| PayloadError::NotJson(e.to_string()))?;
    let items = value.as_array().ok_or(PayloadError::NotAnArray)?;
    items
        .iter()
        .enumerate()
        .map(|(index, item)| {
            parse_mutation(item).map_err(|problem| PayloadError::BadMutation { index, problem })
        })
        .collect()
}

/// [`parse_mutations`], also refusing a mutation dated after `now` plus
/// [`crate::time::PURCHASE_CLOCK_GRACE`]: a bank cannot report a transfer from the future.
/// `now` is the receiver's clock (core reads none); the error is a [`PayloadError`] like any
/// other, so the worker quarantines the row instead of retrying it.
pub fn parse_mutations_at(
    body: &[u8],
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Vec<Mutation>, PayloadError> {
    let mutations = parse_mutations(body)?;
    for (index, mutation) in mutations.iter().enumerate() {
        crate::time::check_not_future(mutation.occurred_at, now).map_err(|e| {
            PayloadError::BadMutation {
                index,
                problem: format!("date: {e}"),
            }
        })?;
    }
    Ok(mutations)
}

pub(crate) fn parse_mutation(item: &serde_json::Value) -> Result<Mutation, String> {
    let text = |name: &str| -> Option<String> {
        match item.get(name)? {
            serde_json::Value::String(s) => Some(s.clone()),
            serde_json::Value::Number(n) => Some(n.to_string()),
            _ => None,
        }
    };
    let required = |name: &str| {
        text(name)
            .filter(|v| !v.trim().is_empty())
            .ok_or(format!("{name} is missing"))
    };
    let mutation_id = required("mutation_id")?;
    if mutation_id.len() > 200 {
        return Err("mutation_id is longer than 200 characters".into());
    }
    let date = required("date")?;
    let occurred_at = crate::MerchantTimezone::default()
        .parse_occurred_at(&date)
        .map_err(|e| format!("date: {e}"))?;
    let amount = crate::Money::from_json(item.get("amount").ok_or("amount is missing")?)
        .map_err(|e| format!("amount: {e}"))?;
    let direction = match required("type")?.to_ascii_uppercase().as_str() {
        "CR" => Direction::Credit,
        "DB" => Direction::Debit,
        other => return Err(format!("type {other:?} is neither CR nor DB")),
    };
    Ok(Mutation {
        mutation_id,
        account_number: text("account_number").unwrap_or_default(),
        occurred_at,
        description: text("description").unwrap_or_default(),
        amount,
        direction,
        note: text("note").filter(|n| !n.trim().is_empty()),
        bank_type: item
            .get("bank")
            .and_then(|bank| bank.get("bank_type"))
            .and_then(|t| t.as_str())
            .map(str::to_owned),
    })
}

/// A stored body with the payer's words taken out of the mutations `erased` names: their
/// `description` and `note` become empty, everything else (amount, date, account, ids) stays,
/// so the body still parses as the same mutations. `None` when the body names none of them
/// (or is not a body setia could read: nothing of a customer was taken from it).
pub fn redact_payer_text(body: &[u8], erased: &std::collections::HashSet<&str>) -> Option<Vec<u8>> {
    let mut value: serde_json::Value = serde_json::from_slice(body).ok()?;
    let mut changed = false;
    for item in value.as_array_mut()? {
        let id = match item.get("mutation_id") {
            Some(serde_json::Value::String(id)) => id.clone(),
            Some(serde_json::Value::Number(id)) => id.to_string(),
            _ => continue,
        };
        if !erased.contains(id.as_str()) {
            continue;
        }
        let Some(fields) = item.as_object_mut() else {
            continue;
        };
        for name in ["description", "note"] {
            if let Some(text) = fields.get_mut(name) {
                if !matches!(text, serde_json::Value::String(s) if s.is_empty()) {
                    *text = serde_json::Value::String(String::new());
                    changed = true;
                }
            }
        }
    }
    changed.then(|| serde_json::to_vec(&value).expect("a JSON value serializes"))
}

#[cfg(test)]
mod payload_tests {
    use super::*;

    #[test]
    fn redaction_empties_the_payer_text_of_the_named_mutations_only() {
        let body = br#"[{"mutation_id":"m1","date":"2026-12-01 10:00:00","amount":150123,"type":"CR","description":"TRSF E-BANKING CR 0112 BUDI SANTOSO","note":"for <b>order</b>"},
            {"mutation_id":"m2","date":"2026-12-01 11:00:00","amount":90000,"type":"CR","description":"TRSF AGUS WIJAYA","note":""}]"#;
        let erased = std::collections::HashSet::from(["m1"]);
        let redacted = redact_payer_text(body, &erased).unwrap();
        let text = String::from_utf8(redacted.clone()).unwrap();
        assert!(!text.contains("BUDI") && !text.contains("order"), "{text}");
        assert!(text.contains("AGUS WIJAYA"), "{text}");
        let before = parse_mutations(body).unwrap();
        let after = parse_mutations(&redacted).unwrap();
        assert_eq!(after[0].description, "");
        assert_eq!(after[0].note, None);
        assert_eq!(
            (after[0].amount, after[0].occurred_at, &after[1]),
            (before[0].amount, before[0].occurred_at, &before[1])
        );
        // Once redacted, or when no mutation of the body is named, nothing changes.
        assert_eq!(redact_payer_text(&redacted, &erased), None);
        assert_eq!(
            redact_payer_text(body, &std::collections::HashSet::from(["m3"])),
            None
        );
        assert_eq!(redact_payer_text(b"not json", &erased), None);
        assert_eq!(redact_payer_text(br#"{"mutation_id":"m1"}"#, &erased), None);
    }

    #[test]
    fn both_fixture_bodies_parse() {
        let sdk = parse_mutations(include_bytes!(
            "../../../tests/fixtures/moota/webhook-sdk-vector.json"
        ))
        .unwrap();
        let history = parse_mutations(include_bytes!(
            "../../../tests/fixtures/moota/webhook-history-vector.json"
        ))
        .unwrap();
        assert!(!sdk.is_empty() && !history.is_empty());
        for mutation in sdk.iter().chain(&history) {
            assert!(!mutation.mutation_id.is_empty());
        }
    }

    #[test]
    fn amounts_dates_and_directions() {
        let body = br#"[
            {"mutation_id":"a","date":"2026-11-27 00:00:00","amount":"100123.00","type":"CR","description":"x","bank":{"bank_type":"vaSandbox"},"extra":{"ignored":true}},
            {"mutation_id":"b","date":"2026-11-27 23:59:00","amount":3799460.89,"type":"db"}
        ]"#;
        let parsed = parse_mutations(body).unwrap();
        assert_eq!(parsed[0].amount.minor(), 10_012_300);
        assert_eq!(
            parsed[0].occurred_at.to_rfc3339(),
            "2026-11-26T17:00:00+00:00"
        );
        assert!(parsed[0].is_sandbox() && parsed[0].is_payment());
        assert_eq!(parsed[1].amount.minor(), 379_946_089);
        assert_eq!(parsed[1].direction, Direction::Debit);
        assert!(!parsed[1].is_payment() && !parsed[1].is_sandbox());
    }

    #[test]
    fn implausible_dates_and_amounts_are_bad_mutations() {
        // A body dated -262143, once parsed, panicked the worker on every claim. As a
        // BadMutation the worker quarantines it like any unreadable body.
        for bad in [
            r#"[{"mutation_id":"old1","date":"-262143-01-05 00:00:00","amount":"150000","type":"CR","account_number":"8808001"}]"#,
            r#"[{"mutation_id":"far1","date":"+200000-01-01 00:00:00","amount":"150000","type":"CR"}]"#,
            r#"[{"mutation_id":"old2","date":"1969-12-31 23:59:59","amount":"150000","type":"CR"}]"#,
            r#"[{"mutation_id":"big1","date":"2026-11-27 10:00:00","amount":"92233720368547758.07","type":"CR"}]"#,
            r#"[{"mutation_id":"big2","date":"2026-11-27 10:00:00","amount":1000000000000.01,"type":"CR"}]"#,
        ] {
            let parsed = parse_mutations(bad.as_bytes());
            assert!(
                matches!(parsed, Err(PayloadError::BadMutation { index: 0, .. })),
                "{bad}: {parsed:?}"
            );
        }
        let error = parse_mutations(
            br#"[{"mutation_id":"old1","date":"-262143-01-05 00:00:00","amount":"150000","type":"CR"}]"#,
        )
        .unwrap_err();
        assert!(
            error.to_string().starts_with("mutation 0: date: "),
            "{error}"
        );
    }

    #[test]
    fn with_the_receivers_clock_future_mutations_are_bad() {
        let now = chrono::DateTime::parse_from_rfc3339("2026-11-27T03:00:00Z")
            .unwrap()
            .to_utc();
        let body = br#"[
            {"mutation_id":"a","date":"2026-11-28 10:00:00","amount":1,"type":"CR"},
            {"mutation_id":"b","date":"2062-11-27 10:00:00","amount":1,"type":"CR"}
        ]"#;
        assert_eq!(parse_mutations(body).unwrap().len(), 2);
        let error = parse_mutations_at(body, now).unwrap_err();
        assert!(
            matches!(&error, PayloadError::BadMutation { index: 1, problem } if problem.contains("in the future")),
            "{error}"
        );
        assert!(matches!(
            parse_mutations_at(b"", now),
            Err(PayloadError::NotJson(_))
        ));
        let today = br#"[{"mutation_id":"a","date":"2026-11-27 10:00:00","amount":1,"type":"CR"}]"#;
        assert_eq!(parse_mutations_at(today, now).unwrap().len(), 1);
    }

    #[test]
    fn what_is_not_a_mutation_list_is_an_error() {
        assert!(matches!(
            parse_mutations(b""),
            Err(PayloadError::NotJson(_))
        ));
        assert!(matches!(
            parse_mutations(b"{\"a\":1}"),
            Err(PayloadError::NotAnArray)
        ));
        for bad in [
            r#"[{"date":"2026-11-27 10:00:00","amount":1,"type":"CR"}]"#,
            r#"[{"mutation_id":"a","date":"27/11/2026","amount":1,"type":"CR"}]"#,
            r#"[{"mutation_id":"a","date":"2026-11-27 10:00:00","amount":"1.001","type":"CR"}]"#,
            r#"[{"mutation_id":"a","date":"2026-11-27 10:00:00","amount":1,"type":"XX"}]"#,
        ] {
            assert!(
                matches!(
                    parse_mutations(bad.as_bytes()),
                    Err(PayloadError::BadMutation { index: 0, .. })
                ),
                "{bad}"
            );
        }
    }
}
