//! Payments: recent bank mutations with what became of them, the unattributed queue (with
//! a form to attribute each by hand), quarantined webhooks and the webhook audit log; and
//! the Moota reconciliation card: whether a token is set (never the token), the banks
//! watched, the recent syncs, and a form to set the token and the banks.

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use chrono::Utc;
use minijinja::context;
use minijinja::value::Value;
use serde::Deserialize;
use setia_core::customer::ExternalId;
use setia_core::moota_api::{MootaBankId, MootaToken, MootaTokenError};
use setia_core::{MerchantId, PurchaseId};
use setia_store::ledger::ManualAttribution;
use setia_store::PageRequest;

use super::auth::{CsrfForm, Session};
use super::customers::{id_cursor, PAGE_SIZE};
use super::render::{ser, url_encode, PageError};
use super::Dash;

pub const VIEWS: [&str; 4] = ["mutations", "unattributed", "quarantine", "audit"];

/// Syncs the Moota card lists, newest first.
const SYNCS_SHOWN: u32 = 10;
/// The most banks the Moota form takes (an account has a handful).
pub const MAX_BANKS: usize = 100;
/// The largest Moota form body accepted: the longest token and the most bank ids, each
/// percent-encoded, with room to spare. A larger body is refused before it is read whole.
pub const MOOTA_FORM_LIMIT: usize = 32 * 1024;
/// Where the Moota form sends the browser back to.
const MOOTA_CARD: &str = "/dashboard/payments#moota";

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct PaymentsQuery {
    view: String,
    cursor: String,
    /// After a form: `attributed` and the purchase, or an error key.
    done: String,
    error: String,
    purchase: String,
}

pub async fn payments(
    State(dash): State<Dash>,
    session: Session,
    Query(query): Query<PaymentsQuery>,
) -> Result<Response, PageError> {
    let view = match query.view.as_str() {
        "" => "mutations",
        v if VIEWS.contains(&v) => v,
        _ => return Err(PageError::BadRequest("view".into())),
    };
    let store = &*dash.store;
    let merchant = &session.merchant.id;
    let page = PageRequest {
        before: id_cursor(&query.cursor)?,
        limit: PAGE_SIZE,
    };
    let list = match view {
        "mutations" => {
            let p = store.recent_mutations(merchant, page).await?;
            context! { items => ser(&p.items), next_cursor => p.next_cursor }
        }
        "unattributed" => {
            let p = store.purchases(merchant, Some(false), page).await?;
            context! { items => ser(&p.items), next_cursor => p.next_cursor }
        }
        "quarantine" => {
            let p = store.quarantined(merchant, page).await?;
            context! { items => ser(&p.items), next_cursor => p.next_cursor }
        }
        _ => {
            let p = store.webhook_deliveries(merchant, page).await?;
            context! { items => ser(&p.items), next_cursor => p.next_cursor }
        }
    };
    let flash = match (query.done.as_str(), query.error.as_str()) {
        ("attributed", _) => {
            Some(context! { kind => "ok", key => "flash_attributed", purchase => &query.purchase })
        }
        (
            _,
            "unknown_customer"
            | "already_attributed"
            | "bad_customer"
            | "bad_order"
            | "unknown_order"
            | "order_not_pending"
            | "order_of_another_customer",
        ) => Some(context! {
            kind => "error",
            key => format!("flash_{}", query.error),
            purchase => &query.purchase,
        }),
        _ => None,
    };
    let page = context! {
        view => view,
        views => VIEWS,
        list => list,
        flash => flash,
        webhook_path => format!("/webhooks/moota/{}", merchant.as_str()),
        moota => moota_card(&dash, merchant).await?,
    };
    dash.page(&session, "payments", "payments.html", page).await
}

/// The Moota card: whether a token is set (only that: the token itself never reaches a
/// page), the banks watched, and the last syncs, newest first.
async fn moota_card(dash: &Dash, merchant: &MerchantId) -> Result<Value, PageError> {
    let store = &*dash.store;
    let settings = store.moota_settings(merchant).await?;
    let syncs = store
        .moota_syncs(
            merchant,
            PageRequest {
                before: None,
                limit: SYNCS_SHOWN,
            },
        )
        .await?;
    let banks: Vec<String> = settings
        .banks
        .iter()
        .map(|b| b.as_str().to_owned())
        .collect();
    Ok(context! {
        token_set => settings.token.is_some(),
        banks_text => banks.join(", "),
        banks => banks,
        last => syncs.items.first().map(ser),
        syncs => ser(&syncs.items),
        max_token => MootaToken::MAX_CHARS,
        max_banks => MAX_BANKS,
    })
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct AttributeForm {
    customer_external_id: String,
    /// The customer's pending order this transfer pays (optional): its lines pass to the
    /// purchase.
    order_external_id: String,
}

fn back(error: Option<&str>, purchase: PurchaseId) -> Response {
    let query = match error {
        None => format!("done=attributed&purchase={purchase}"),
        Some(error) => format!("error={error}&purchase={purchase}"),
    };
    Redirect::to(&format!("/dashboard/payments?view=unattributed&{query}")).into_response()
}

/// `POST /dashboard/payments/{pur_N}/attribute`: the same rule as the API's manual
/// attribution (points awarded as of the purchase, the payer name learned).
pub async fn attribute(
    State(dash): State<Dash>,
    Path(id): Path<String>,
    posted: CsrfForm<AttributeForm>,
) -> Result<Response, PageError> {
    let merchant = &posted.session.merchant.id;
    let purchase = PurchaseId::parse(&id).map_err(|_| PageError::NotFound)?;
    let store = &*dash.store;
    let Ok(customer) = ExternalId::parse(posted.form.customer_external_id.trim()) else {
        return Ok(back(Some("bad_customer"), purchase));
    };
    let order = match posted.form.order_external_id.trim() {
        "" => None,
        text => match ExternalId::parse(text) {
            Ok(order) => Some(order),
            Err(_) => return Ok(back(Some("bad_order"), purchase)),
        },
    };
    if store.customer(merchant, &customer).await?.is_none() {
        // Say so on the queue, unless the purchase is not in this merchant's queue at all.
        let exists = store
            .purchases(
                merchant,
                Some(false),
                PageRequest {
                    before: Some(purchase.key() + 1),
                    limit: 1,
                },
            )
            .await?
            .items
            .first()
            .is_some_and(|p| p.id == purchase);
        return if exists {
            Ok(back(Some("unknown_customer"), purchase))
        } else {
            Err(PageError::NotFound)
        };
    }
    match store
        .attribute_purchase(merchant, purchase, &customer, order.as_ref(), Utc::now())
        .await?
    {
        None => Err(PageError::NotFound),
        Some(ManualAttribution::AlreadyAttributed) => {
            Ok(back(Some("already_attributed"), purchase))
        }
        Some(ManualAttribution::UnknownOrder) => Ok(back(Some("unknown_order"), purchase)),
        Some(ManualAttribution::OrderNotPending) => Ok(back(Some("order_not_pending"), purchase)),
        Some(ManualAttribution::OrderOfAnotherCustomer) => {
            Ok(back(Some("order_of_another_customer"), purchase))
        }
        Some(ManualAttribution::Attributed(_)) => {
            tracing::info!(merchant = %merchant, %purchase, customer = %url_encode(customer.as_str()), "attributed by hand in the dashboard");
            Ok(back(None, purchase))
        }
    }
}

/// The Moota form. No `Debug`: it holds the token. A field that is absent changes nothing.
#[derive(Default, Deserialize)]
#[serde(default)]
pub struct MootaForm {
    /// A new token; empty keeps the current one.
    #[serde(deserialize_with = "present")]
    moota_token: Option<String>,
    /// Bank ids separated by commas; empty (or `all`/`semua`): every bank.
    #[serde(deserialize_with = "present")]
    moota_banks: Option<String>,
}

/// A form field that is there, even empty (an absent one is `None`, by `default`).
fn present<'de, D: serde::Deserializer<'de>>(field: D) -> Result<Option<String>, D::Error> {
    String::deserialize(field).map(Some)
}

/// A new token from the form: none when the field is empty (keep the current one). What is
/// wrong with a bad one is named, never the token.
fn moota_token(text: Option<&str>) -> Result<Option<MootaToken>, PageError> {
    let Some(text) = text.filter(|t| !t.is_empty()) else {
        return Ok(None);
    };
    let detail = match MootaToken::parse(text) {
        Ok(token) => return Ok(Some(token)),
        Err(MootaTokenError::Empty) => return Ok(None),
        Err(MootaTokenError::Whitespace) => "moota_token_space",
        Err(MootaTokenError::NotPrintable) => "moota_token_character",
        Err(MootaTokenError::TooLong { .. }) => "moota_token_too_long",
    };
    Err(PageError::BadRequest(detail.into()))
}

/// The banks from the form, as the CLI's `--banks` reads them: ids separated by commas,
/// sorted and without repeats; empty, `all` or `semua`: every bank (an empty list).
fn moota_banks(text: &str) -> Result<Vec<MootaBankId>, PageError> {
    let text = text.trim();
    if text.is_empty() || text.eq_ignore_ascii_case("all") || text.eq_ignore_ascii_case("semua") {
        return Ok(Vec::new());
    }
    let mut banks = text
        .split(',')
        .filter(|id| !id.trim().is_empty())
        .map(|id| MootaBankId::parse(id).map_err(|_| PageError::BadRequest("moota_bank".into())))
        .collect::<Result<Vec<_>, _>>()?;
    banks.sort();
    banks.dedup();
    if banks.len() > MAX_BANKS {
        return Err(PageError::BadRequest("moota_banks_too_many".into()));
    }
    Ok(banks)
}

/// `POST /dashboard/payments/moota`: the session's merchant's Moota token (when one is
/// given) and banks. Bad input is a 400 page naming the problem, and changes nothing.
pub async fn moota_settings(
    State(dash): State<Dash>,
    posted: CsrfForm<MootaForm>,
) -> Result<Response, PageError> {
    let merchant = &posted.session.merchant.id;
    let token = moota_token(posted.form.moota_token.as_deref())?;
    let banks = posted
        .form
        .moota_banks
        .as_deref()
        .map(moota_banks)
        .transpose()?;
    if token.is_none() && banks.is_none() {
        return Ok(Redirect::to(MOOTA_CARD).into_response());
    }
    if !dash
        .store
        .set_moota_settings(merchant, token.as_ref(), banks.as_deref())
        .await?
    {
        return Err(PageError::NotFound);
    }
    tracing::info!(
        merchant = %merchant,
        token = if token.is_some() { "replaced" } else { "kept" },
        banks = banks.as_ref().map_or(0, Vec::len),
        "Moota settings changed in the dashboard"
    );
    Ok(Redirect::to(MOOTA_CARD).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn detail<T>(result: Result<T, PageError>) -> String {
        match result {
            Err(PageError::BadRequest(detail)) => detail,
            Err(other) => panic!("not a bad request: {other}"),
            Ok(_) => panic!("accepted"),
        }
    }

    #[test]
    fn an_empty_token_keeps_the_current_one_and_a_bad_one_is_named() {
        assert!(moota_token(None).unwrap().is_none());
        assert!(moota_token(Some("")).unwrap().is_none());
        assert!(moota_token(Some("\r\n")).unwrap().is_none());
        assert_eq!(
            moota_token(Some("abc.DEF-123\n"))
                .unwrap()
                .unwrap()
                .expose(),
            "abc.DEF-123"
        );
        assert_eq!(detail(moota_token(Some("ab cd"))), "moota_token_space");
        assert_eq!(detail(moota_token(Some(" abc"))), "moota_token_space");
        assert_eq!(detail(moota_token(Some("tökén"))), "moota_token_character");
        let long = "a".repeat(MootaToken::MAX_CHARS + 1);
        assert_eq!(detail(moota_token(Some(&long))), "moota_token_too_long");
        // The error texts say 2,048.
        assert_eq!(MootaToken::MAX_CHARS, 2_048);
    }

    #[test]
    fn banks_are_a_comma_separated_list_and_empty_is_every_bank() {
        let ids = |text| {
            moota_banks(text)
                .unwrap()
                .iter()
                .map(|b| b.as_str().to_owned())
                .collect::<Vec<_>>()
        };
        assert!(ids("").is_empty() && ids("  ").is_empty() && ids("ALL").is_empty());
        assert!(ids("semua").is_empty());
        assert_eq!(ids(" bnk_2, bnk-1 ,bnk_2,"), ["bnk-1", "bnk_2"]);
        assert_eq!(detail(moota_banks("bnk 1")), "moota_bank");
        assert_eq!(detail(moota_banks("bnk_1, <b>")), "moota_bank");
        assert_eq!(detail(moota_banks(&"b".repeat(65))), "moota_bank");
        let many: Vec<String> = (0..=MAX_BANKS).map(|n| format!("b{n}")).collect();
        assert_eq!(detail(moota_banks(&many.join(","))), "moota_banks_too_many");
        // The error text says 100.
        assert_eq!(MAX_BANKS, 100);
    }
}
