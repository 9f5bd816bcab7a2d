//! Customers: RFM segment sizes, the at-risk list by value, search, a segment's customers,
//! and one customer's page (purchases with their attribution, points, tier, emails, and
//! their side of the referral program).

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use chrono::Utc;
use minijinja::context;
use minijinja::value::Value;
use serde::Deserialize;
use setia_core::customer::ExternalId;
use setia_core::referral::ReferralCode;
use setia_core::{CustomerId, MerchantId};
use setia_store::dashboard::CustomerListRow;
use setia_store::engagement::AnswerFilter;
use setia_store::PageRequest;

use futures_util::TryFutureExt;

use super::auth::{CsrfForm, Session};
use super::format::number;
use super::i18n::texts;
use super::render::{ser, PageError};
use super::snapshot::{self, SEGMENTS};
use super::{charts, export, Dash};
use crate::customer_lists::{search_text, CustomerList, ListError};

/// Rows per page in lists.
pub const PAGE_SIZE: u32 = 50;

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct CustomersQuery {
    /// Search text.
    q: String,
    /// A segment's customers.
    segment: String,
    /// `all`: every customer, newest first.
    view: String,
    cursor: String,
}

/// A `before` cursor (an id) from a URL; a bad one is a 400.
pub fn id_cursor(text: &str) -> Result<Option<i64>, PageError> {
    if text.is_empty() {
        return Ok(None);
    }
    text.parse::<i64>()
        .ok()
        .filter(|id| *id > 0)
        .map(Some)
        .ok_or_else(|| PageError::BadRequest("cursor".into()))
}

/// The list a query names: a search, a segment, `view=all`, or the at-risk list.
fn named_list(query: &CustomersQuery) -> Result<CustomerList, PageError> {
    let otherwise = if query.view == "all" {
        CustomerList::All
    } else {
        CustomerList::AtRisk
    };
    CustomerList::named(&query.q, &query.segment, otherwise).map_err(list_error)
}

fn list_error(error: ListError) -> PageError {
    match error {
        ListError::UnknownSegment(_) => PageError::BadRequest("segment".into()),
        ListError::BadCursor(_) => PageError::BadRequest("cursor".into()),
        ListError::Store(error) => PageError::Store(error),
    }
}

/// The query that names a list, for the pager and the export link.
fn query_string(list: &CustomerList) -> String {
    match list {
        CustomerList::Search(q) => form_urlencoded::Serializer::new(String::new())
            .append_pair("q", q)
            .finish(),
        CustomerList::All => "view=all".into(),
        CustomerList::Segment(segment) => format!("segment={}", segment.as_str()),
        CustomerList::AtRisk => "view=at_risk".into(),
    }
}

/// A name for a list's export file, in ASCII letters, digits and `_`.
fn file_stem(list: &CustomerList) -> &'static str {
    match list {
        CustomerList::Segment(segment) => segment.as_str(),
        other => other.mode(),
    }
}

/// Rows fetched per query while exporting.
const EXPORT_PAGE: u32 = 1000;

/// `/dashboard/customers.csv`: the whole list the same query shows on the page, as a CSV
/// download (see [`super::export`]). Streamed a page at a time, so a list of a million
/// customers costs one page of memory; a list whose scores change under the export (the
/// nightly run storing a new day's) ends the download in an error rather than mixing days.
pub async fn export(
    State(dash): State<Dash>,
    session: Session,
    Query(query): Query<CustomersQuery>,
) -> Result<Response, PageError> {
    let list = named_list(&query)?;
    if !query.cursor.is_empty() {
        return Err(PageError::BadRequest("cursor".into()));
    }
    let merchant = session.merchant.id.clone();
    let today = session.merchant.timezone.local_day(Utc::now());
    let file = format!("customers-{}-{today}.csv", file_stem(&list));
    let store = dash.store.clone();
    // The cursor of the next page: empty for the first, None once the last was written.
    let start = (Some(String::new()), export::CsvRows::default());
    let body = futures_util::stream::try_unfold(start, move |(cursor, mut csv)| {
        let store = store.clone();
        let merchant = merchant.clone();
        let list = list.clone();
        async move {
            let Some(cursor) = cursor else {
                tracing::info!(merchant = %merchant, list = list.mode(), rows = csv.rows(), "customers exported");
                return Ok(None);
            };
            let (items, next) = list
                .page(&*store, &merchant, &cursor, EXPORT_PAGE)
                .await
                .map_err(|e| e.to_string())?;
            let bytes = csv.encode(&items).map_err(|e| e.to_string())?;
            Ok(Some((bytes, (next, csv))))
        }
        .inspect_err(|error: &String| tracing::error!(%error, "customers export stopped"))
    });
    Ok(export::csv_response(&file, body))
}

pub async fn customers(
    State(dash): State<Dash>,
    session: Session,
    Query(query): Query<CustomersQuery>,
) -> Result<Response, PageError> {
    let lang = session.lang;
    let store = &*dash.store;
    let merchant = &session.merchant.id;
    let q = search_text(&query.q);
    let segment = query.segment.trim();

    let latest = snapshot::history(store, merchant).await?;
    let segments = latest.latest().map(|summary| {
        let counts: Vec<u64> = SEGMENTS
            .iter()
            .map(|s| summary.rfm.segments.get(*s).copied().unwrap_or(0))
            .collect();
        (
            summary.as_of.clone(),
            summary.churn.customers_at_risk,
            counts,
        )
    });
    let tr = texts(lang);
    let segments_view = match &segments {
        Some((as_of, at_risk, counts)) => {
            let labels: Vec<String> = SEGMENTS
                .iter()
                .map(|s| tr.get(&format!("segment_{s}")).to_owned())
                .collect();
            let values: Vec<f64> = counts.iter().map(|c| *c as f64).collect();
            let rows: Vec<_> = SEGMENTS
                .iter()
                .zip(counts)
                .map(|(s, c)| context! { segment => *s, count => c })
                .collect();
            Some(context! {
                as_of => as_of,
                at_risk => at_risk,
                rows => rows,
                svg => charts::bars(tr.get("chart_segments"), &labels, &values, &|v| number(v, 0, lang))?,
            })
        }
        None => None,
    };

    let list = named_list(&query)?;
    let (items, next_cursor) = list
        .page(store, merchant, &query.cursor, PAGE_SIZE)
        .await
        .map_err(list_error)?;
    let page = context! {
        short_query => !q.is_empty() && q.chars().count() < setia_store::dashboard::SEARCH_MIN_CHARS,
        q => q,
        segment => segment,
        mode => list.mode(),
        base => format!("/dashboard/customers?{}", query_string(&list)),
        export => format!("/dashboard/customers.csv?{}", query_string(&list)),
        list => context! { items => ser(&items), next_cursor => next_cursor },
        segments => segments_view,
    };
    dash.page(&session, "customers", "customers.html", page)
        .await
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct CustomerPageQuery {
    /// Older purchases: a purchase id cursor.
    purchases: String,
    /// Older points entries.
    points: String,
}

/// As many as the nightly run keeps per customer.
const CUSTOMER_PAGE_RECOMMENDATIONS: usize = 10;

/// The customer's side of the referral program: their code and link (the code made on first
/// use while the program is on, as the API makes it, so the merchant can hand it over), who
/// referred them and whom they referred. Nothing when the program is off and the customer
/// has no part in it.
async fn referral_card(
    dash: &Dash,
    merchant: &MerchantId,
    customer: CustomerId,
) -> Result<Option<Value>, PageError> {
    let store = &*dash.store;
    let enabled = store.engagement_program(merchant).await?.referral.enabled;
    let referrals = store.customer_referrals(merchant, customer).await?;
    let mut code = referrals
        .code
        .as_deref()
        .map(|c| {
            ReferralCode::parse(c)
                .map_err(|_| PageError::Internal(format!("stored referral code {c:?}")))
        })
        .transpose()?;
    if enabled && code.is_none() {
        if let Some(mail) = store.mail_merchant(merchant).await? {
            code = store
                .referral_codes(merchant, &mail.secret, &[customer], Utc::now())
                .await?
                .remove(&customer);
        }
    }
    if !enabled
        && code.is_none()
        && referrals.referred_by.is_none()
        && referrals.referred.is_empty()
    {
        return Ok(None);
    }
    // Whether the link opens the offer: the page is a 404 for a customer who withdrew.
    let live = match &code {
        Some(code) => store
            .referral_link(code)
            .await?
            .is_some_and(|link| link.advocate_active && enabled),
        None => false,
    };
    let base = crate::referral::public_base(dash.config.public_url.as_deref());
    Ok(Some(context! {
        enabled => enabled,
        link => code.as_ref().map(|c| c.link(&base)),
        code => code.map(|c| c.to_string()),
        live => live,
        referred_by => ser(&referrals.referred_by),
        referred => ser(&referrals.referred),
    }))
}

pub async fn customer(
    State(dash): State<Dash>,
    session: Session,
    Path(id): Path<String>,
    Query(query): Query<CustomerPageQuery>,
) -> Result<Response, PageError> {
    let store = &*dash.store;
    let merchant = &session.merchant.id;
    let (key, row, external) = merchants_customer(store, merchant, &id).await?;
    let profile = store
        .customer_profile(merchant, &external, Utc::now())
        .await?
        .ok_or(PageError::NotFound)?;
    let details = store.customer(merchant, &external).await?;
    let purchases = store
        .customer_purchases(
            merchant,
            key,
            PageRequest {
                before: id_cursor(&query.purchases)?,
                limit: PAGE_SIZE,
            },
        )
        .await?;
    let points = store
        .customer_points(
            merchant,
            key,
            PageRequest {
                before: id_cursor(&query.points)?,
                limit: PAGE_SIZE,
            },
        )
        .await?;
    let emails = store
        .customer_emails(
            merchant,
            key,
            PageRequest {
                before: None,
                limit: 20,
            },
        )
        .await?;
    let recommendations = store
        .recommendations_for(merchant, &[key], CUSTOMER_PAGE_RECOMMENDATIONS)
        .await?
        .remove(&key)
        .unwrap_or_default();
    let feedback = store
        .feedback_answers(
            merchant,
            AnswerFilter {
                customer: Some(key),
                ..AnswerFilter::default()
            },
            PageRequest {
                before: None,
                limit: 20,
            },
        )
        .await?;
    let referral = referral_card(&dash, merchant, key).await?;
    let page = context! {
        customer => ser(&row),
        referral => referral,
        recommendations => ser(&recommendations),
        feedback => ser(&feedback.items),
        profile => ser(&profile),
        details => ser(&details),
        purchases => context! { items => ser(&purchases.items), next_cursor => purchases.next_cursor },
        points => context! { items => ser(&points.items), next_cursor => points.next_cursor },
        emails => ser(&emails.items),
        more_emails => emails.next_cursor.is_some(),
    };
    dash.page(&session, "customers", "customer.html", page)
        .await
}

/// The merchant's customer a path names (`cus_N`), with their external id. Any id that is
/// not this merchant's customer is the same 404.
async fn merchants_customer(
    store: &dyn setia_store::Store,
    merchant: &MerchantId,
    id: &str,
) -> Result<(CustomerId, CustomerListRow, ExternalId), PageError> {
    let key = CustomerId::parse(id).map_err(|_| PageError::NotFound)?;
    let row = store
        .customer_by_key(merchant, key)
        .await?
        .ok_or(PageError::NotFound)?;
    let external = ExternalId::parse(&row.external_id)
        .map_err(|e| PageError::Internal(format!("stored external id: {e}")))?;
    Ok((key, row, external))
}

/// `GET /dashboard/customers/{id}/export.json`: the customer's data as one JSON file, for
/// their right of access (`crate::customer_data`).
pub async fn export_data(
    State(dash): State<Dash>,
    session: Session,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let merchant = &session.merchant.id;
    let (key, _, external) = merchants_customer(&*dash.store, merchant, &id).await?;
    let data = crate::customer_data::gather(&*dash.store, merchant, &external, Utc::now())
        .await?
        .ok_or(PageError::NotFound)?;
    let body = serde_json::to_vec_pretty(&data)
        .map_err(|e| PageError::Internal(format!("customer data: {e}")))?;
    tracing::info!(merchant = %merchant, customer = %key, "customer data exported in the dashboard");
    Ok(export::download(
        &crate::customer_data::file_name(key),
        "application/json",
        body.into(),
    ))
}

#[derive(Debug, Deserialize)]
pub struct EraseForm {
    /// The customer's external id, typed again: an erasure cannot be undone.
    #[serde(default)]
    confirm: String,
}

/// `POST /dashboard/customers/{id}/erase`: erases the customer at their request
/// (`setia_store::Privacy::erase_customer`) once the form repeats their external id; back to
/// the customer's page, which then shows the anonymous row.
pub async fn erase(
    State(dash): State<Dash>,
    Path(id): Path<String>,
    posted: CsrfForm<EraseForm>,
) -> Result<Response, PageError> {
    let merchant = &posted.session.merchant.id;
    let (_, row, external) = merchants_customer(&*dash.store, merchant, &id).await?;
    if posted.form.confirm.trim() != row.external_id {
        return Err(PageError::BadRequest("erase_confirm".into()));
    }
    let erasure = dash
        .store
        .erase_customer(merchant, &external, Utc::now())
        .await?
        .ok_or(PageError::NotFound)?;
    // The log names the anonymous row only: the old id may itself identify the person.
    tracing::info!(merchant = %merchant, customer = %erasure.customer, "customer erased in the dashboard");
    Ok(Redirect::to(&format!("/dashboard/customers/{}", erasure.customer)).into_response())
}
