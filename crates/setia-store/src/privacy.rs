//! A customer's right to erasure (Indonesia's UU PDP, Law 27 of 2022): one call removes what
//! identifies a person and keeps the anonymous ledger, so the merchant's revenue, cohorts and
//! loyalty liability stay true. What is taken out, and why the row itself stays, is
//! ARCHITECTURE.md's "Access and erasure".

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Serialize;
use setia_core::customer::ExternalId;
use setia_core::{CustomerId, MerchantId};

use crate::StoreResult;

/// What erasing one customer took out, counted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Erasure {
    #[schema(value_type = String, example = "cus_7")]
    pub customer: CustomerId,
    /// The id the anonymous row goes by from now on (`erased-cus_7`); the merchant's old id
    /// is free for a new customer.
    pub external_id: String,
    pub erased_at: DateTime<Utc>,
    /// Payer names that attributed transfers to the customer, removed.
    pub payer_names: u64,
    /// Purchases whose payer name was cleared (the purchases themselves stay).
    pub purchases: u64,
    /// Bank mutations whose description and note were cleared.
    pub mutations: u64,
    /// Stored webhook and reconciliation bodies whose payer text was cleared.
    pub inbox_bodies: u64,
    /// Feedback comments removed (the scores stay).
    pub feedback_comments: u64,
    /// Complaints whose note was removed; open ones are resolved.
    pub complaints: u64,
    /// Emails to the customer or about them not sent yet, cancelled.
    pub emails_cancelled: u64,
    /// Weekly reports, sent or not, whose at-risk list named the customer.
    pub reports: u64,
    /// Points left unspent, written off (nobody can redeem them any more).
    pub points_forfeited: i64,
    /// Referrals the customer made that had not paid out yet, cancelled.
    pub referrals_cancelled: u64,
}

#[async_trait]
pub trait Privacy {
    /// Erases a customer of this merchant in one transaction: name, email, birthday, virtual
    /// account and payer names are removed; the payer text of their bank mutations and of the
    /// stored bodies that carried them, their feedback comments and complaint notes are
    /// cleared; their pending emails are cancelled and their name leaves the weekly reports;
    /// their points are forfeited; consent ends. Purchases, points entries and scores stay,
    /// anonymous, under `erased-{customer}`. `None` when the merchant has no customer by that
    /// id (an erased one included).
    async fn erase_customer(
        &self,
        merchant: &MerchantId,
        customer: &ExternalId,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<Erasure>>;
}

/// The external id an erased customer's row goes by.
pub fn erased_external_id(customer: CustomerId) -> String {
    format!("erased-{customer}")
}

/// A weekly report's frozen figures with `customer` taken out of its at-risk list: the entry
/// stays (the report's totals count it) under its anonymous id and without a name. The shape
/// is `setia_mail::context::ReportPayload`'s (`at_risk: [{customer, external_id, name, …}]`),
/// read as plain JSON here because the store does not depend on the mail crate. `None` when
/// the report does not name the customer.
pub(crate) fn report_without(payload: &str, customer: CustomerId) -> Option<String> {
    let mut value: serde_json::Value = serde_json::from_str(payload).ok()?;
    let mut changed = false;
    for entry in value.get_mut("at_risk")?.as_array_mut()? {
        if entry.get("customer").and_then(|c| c.as_i64()) != Some(customer.key()) {
            continue;
        }
        let Some(fields) = entry.as_object_mut() else {
            continue;
        };
        let anonymous = serde_json::Value::String(erased_external_id(customer));
        let named = fields.get("name").is_some_and(|name| !name.is_null());
        if fields.get("external_id") != Some(&anonymous) || named {
            fields.insert("external_id".into(), anonymous);
            fields.insert("name".into(), serde_json::Value::Null);
            changed = true;
        }
    }
    changed.then(|| value.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_loses_the_customers_name_and_id_and_keeps_its_figures() {
        let payload = r#"{"week":"2026-W49","at_risk_total":2,"at_risk":[
            {"customer":7,"external_id":"C-7","name":"Budi <Santoso>","p_alive":0.2,"monetary_minor":100},
            {"customer":8,"external_id":"C-8","name":"Sari","p_alive":0.3,"monetary_minor":90}],
            "newly_at_risk":[7]}"#;
        let seven = CustomerId::from_key(7);
        let rewritten = report_without(payload, seven).unwrap();
        let value: serde_json::Value = serde_json::from_str(&rewritten).unwrap();
        assert_eq!(value["at_risk"][0]["external_id"], "erased-cus_7");
        assert_eq!(value["at_risk"][0]["name"], serde_json::Value::Null);
        assert_eq!(value["at_risk"][0]["p_alive"], 0.2);
        assert_eq!(value["at_risk"][1]["name"], "Sari");
        assert_eq!(value["newly_at_risk"][0], 7);
        assert!(!rewritten.contains("Budi"), "{rewritten}");
        assert_eq!(report_without(&rewritten, seven), None);
        assert_eq!(report_without(payload, CustomerId::from_key(9)), None);
        assert_eq!(report_without("{}", seven), None);
        assert_eq!(report_without("not json", seven), None);
    }
}
