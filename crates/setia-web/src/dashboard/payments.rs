//! Payments: recent bank mutations with what became of them, the unattributed queue (with
//! a form to attribute each by hand), quarantined webhooks and the webhook audit log.

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use chrono::Utc;
use minijinja::context;
use serde::Deserialize;
use setia_core::customer::ExternalId;
use setia_core::PurchaseId;
use setia_store::ledger::ManualAttribution;
use setia_store::PageRequest;

use super::auth::{CsrfForm, Session};
use super::customers::{id_cursor, PAGE_SIZE};
use super::render::{ser, url_encode, PageError};
use super::Dash;

pub const VIEWS: [&str; 4] = ["mutations", "unattributed", "quarantine", "audit"];

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
    };
    dash.page(&session, "payments", "payments.html", page).await
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
