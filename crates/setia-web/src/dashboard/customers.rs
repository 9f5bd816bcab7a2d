//! Customers: RFM segment sizes, the at-risk list by value, search, a segment's customers,
//! and one customer's page (purchases with their attribution, points, tier, emails, and
//! their side of the referral program).

use axum::extract::{Path, Query, State};
use axum::response::Response;
use chrono::Utc;
use minijinja::context;
use minijinja::value::Value;
use serde::Deserialize;
use setia_core::customer::ExternalId;
use setia_core::referral::ReferralCode;
use setia_core::{CustomerId, MerchantId};
use setia_store::dashboard::{CustomerFilter, ValueCursor};
use setia_store::engagement::AnswerFilter;
use setia_store::PageRequest;

use futures_util::TryFutureExt;
use setia_store::dashboard::CustomerListRow;

use super::auth::Session;
use super::format::number;
use super::i18n::texts;
use super::render::{ser, PageError};
use super::snapshot::{self, SEGMENTS};
use super::{charts, export, Dash};

/// Rows per page in lists.
pub const PAGE_SIZE: u32 = 50;
/// The longest search text taken.
const MAX_QUERY: usize = 100;

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

/// The search text taken from a query: trimmed, at most [`MAX_QUERY`] characters.
fn search_text(q: &str) -> String {
    q.trim().chars().take(MAX_QUERY).collect()
}

/// Which list of customers a request asks for; the page and its CSV export take the same
/// query.
#[derive(Debug, Clone, PartialEq, Eq)]
enum CustomerList {
    /// `q=`: name, email or external id containing the text, newest first.
    Search(String),
    /// `view=all`: every customer, newest first.
    All,
    /// `segment=`: an RFM segment's customers, by CLV.
    Segment(&'static str),
    /// The default: repeat customers whose P(alive) fell under 0.5, by CLV.
    AtRisk,
}

impl CustomerList {
    /// An unknown segment is a 400; a search wins over a segment, a segment over a view.
    fn from_query(query: &CustomersQuery) -> Result<CustomerList, PageError> {
        let q = search_text(&query.q);
        let segment = query.segment.trim();
        let segment = if segment.is_empty() {
            None
        } else {
            Some(
                *SEGMENTS
                    .iter()
                    .find(|s| **s == segment)
                    .ok_or_else(|| PageError::BadRequest("segment".into()))?,
            )
        };
        Ok(match segment {
            _ if !q.is_empty() => CustomerList::Search(q),
            Some(segment) => CustomerList::Segment(segment),
            None if query.view == "all" => CustomerList::All,
            None => CustomerList::AtRisk,
        })
    }

    fn mode(&self) -> &'static str {
        match self {
            CustomerList::Search(_) => "search",
            CustomerList::All => "all",
            CustomerList::Segment(_) => "segment",
            CustomerList::AtRisk => "at_risk",
        }
    }

    /// The query that names this list, for the pager and the export link.
    fn query_string(&self) -> String {
        match self {
            CustomerList::Search(q) => form_urlencoded::Serializer::new(String::new())
                .append_pair("q", q)
                .finish(),
            CustomerList::All => "view=all".into(),
            CustomerList::Segment(segment) => format!("segment={segment}"),
            CustomerList::AtRisk => "view=at_risk".into(),
        }
    }

    /// A name for the export's file: the list, in ASCII letters, digits and `_`.
    fn file_stem(&self) -> String {
        match self {
            CustomerList::Search(_) => "search".into(),
            CustomerList::Segment(segment) => (*segment).into(),
            CustomerList::All | CustomerList::AtRisk => self.mode().into(),
        }
    }
}

/// One page of a list after `cursor` (as it travels in a URL; a bad one is a 400), and the
/// cursor of the next page.
async fn list_page(
    store: &dyn setia_store::Store,
    merchant: &MerchantId,
    list: &CustomerList,
    cursor: &str,
    limit: u32,
) -> Result<(Vec<CustomerListRow>, Option<String>), PageError> {
    let by_id = |filter: CustomerFilter| async move {
        let page = store
            .customer_list(
                merchant,
                &filter,
                PageRequest {
                    before: id_cursor(cursor)?,
                    limit,
                },
            )
            .await?;
        Ok::<_, PageError>((page.items, page.next_cursor.map(|c| c.to_string())))
    };
    let after = || {
        if cursor.is_empty() {
            Ok(None)
        } else {
            ValueCursor::parse(cursor)
                .map(Some)
                .ok_or_else(|| PageError::BadRequest("cursor".into()))
        }
    };
    let page = match list {
        CustomerList::Search(q) => return by_id(CustomerFilter::Search(q.clone())).await,
        CustomerList::All => return by_id(CustomerFilter::All).await,
        CustomerList::Segment(segment) => {
            store
                .segment_by_value(merchant, segment, after()?, limit)
                .await?
        }
        CustomerList::AtRisk => store.at_risk_by_value(merchant, after()?, limit).await?,
    };
    Ok((page.items, page.next_cursor.map(|c| c.to_string())))
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
    let list = CustomerList::from_query(&query)?;
    if !query.cursor.is_empty() {
        return Err(PageError::BadRequest("cursor".into()));
    }
    let merchant = session.merchant.id.clone();
    let today = session.merchant.timezone.local_day(Utc::now());
    let file = format!("customers-{}-{today}.csv", list.file_stem());
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
            let (items, next) = list_page(&*store, &merchant, &list, &cursor, EXPORT_PAGE)
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

    let list = CustomerList::from_query(&query)?;
    let (items, next_cursor) = list_page(store, merchant, &list, &query.cursor, PAGE_SIZE).await?;
    let page = context! {
        short_query => !q.is_empty() && q.chars().count() < setia_store::dashboard::SEARCH_MIN_CHARS,
        q => q,
        segment => segment,
        mode => list.mode(),
        base => format!("/dashboard/customers?{}", list.query_string()),
        export => format!("/dashboard/customers.csv?{}", list.query_string()),
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
    // Any id that is not this merchant's customer is the same 404.
    let key = CustomerId::parse(&id).map_err(|_| PageError::NotFound)?;
    let row = store
        .customer_by_key(merchant, key)
        .await?
        .ok_or(PageError::NotFound)?;
    let external = ExternalId::parse(&row.external_id)
        .map_err(|e| PageError::Internal(format!("stored external id: {e}")))?;
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
