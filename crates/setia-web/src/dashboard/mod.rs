//! `/dashboard`: the retention dashboard for marketing teams. Server-side pages (minijinja,
//! auto-escaped), charts drawn here as inline SVG (plotters), one same-origin stylesheet, and
//! a Content-Security-Policy that forbids loading anything from another host.
//!
//! Login takes the merchant's API token and gives a session cookie; every form carries a
//! CSRF token derived from the session; login attempts are rate-limited per client address.
//! Pages read the latest metric snapshots and page through the ledger by index, so they cost
//! the same whatever the merchant's size.

mod auth;
mod campaigns;
mod charts;
mod customers;
mod emails;
mod export;
mod feedback;
mod format;
mod i18n;
mod overview;
mod payments;
mod render;
mod snapshot;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{any, get, post};
use axum::Router;
use setia_ingest::AddressList;
use setia_store::Store;

pub use auth::LoginLimit;

/// What the web app needs beyond the store: how it is reached and what it may use.
#[derive(Clone, Default)]
pub struct WebConfig {
    /// `SETIA_PUBLIC_URL`. When it is https, session cookies are `Secure`.
    pub public_url: Option<String>,
    /// `SETIA_TRUSTED_PROXIES`: only their X-Forwarded-For names the client (for the login
    /// rate limit).
    pub trusted_proxies: AddressList,
    /// Renders the email previews; without it the emails page shows the outbox only.
    pub mailer: Option<Arc<setia_mail::Mailer>>,
    /// Failed logins allowed per client address and window.
    pub login_limit: LoginLimit,
}

impl WebConfig {
    fn secure_cookies(&self) -> bool {
        self.public_url
            .as_deref()
            .is_some_and(|url| url.trim().to_ascii_lowercase().starts_with("https://"))
    }
}

/// Everything the dashboard's handlers share.
#[derive(Clone)]
pub(crate) struct Dash {
    store: Arc<dyn Store>,
    config: Arc<WebConfig>,
    secure_cookies: bool,
    limiter: Arc<auth::LoginLimiter>,
}

pub(crate) fn router(store: Arc<dyn Store>, config: WebConfig) -> Router {
    let state = Dash {
        store,
        secure_cookies: config.secure_cookies(),
        limiter: Arc::new(auth::LoginLimiter::new(config.login_limit)),
        config: Arc::new(config),
    };
    Router::new()
        .route(
            "/dashboard",
            get(|| async { Redirect::to("/dashboard/overview") }),
        )
        .route(
            "/dashboard/",
            get(|| async { Redirect::to("/dashboard/overview") }),
        )
        .route("/dashboard/static/setia.css", get(stylesheet))
        .route("/dashboard/login", get(auth::login_page).post(auth::login))
        .route("/dashboard/logout", post(auth::logout))
        .route("/dashboard/overview", get(overview::overview))
        .route("/dashboard/cohorts", get(overview::cohorts))
        .route("/dashboard/loyalty", get(overview::loyalty))
        .route("/dashboard/customers", get(customers::customers))
        .route("/dashboard/customers.csv", get(customers::export))
        .route("/dashboard/customers/{id}", get(customers::customer))
        .route("/dashboard/customers/{id}/erase", post(customers::erase))
        .route(
            "/dashboard/customers/{id}/export.json",
            get(customers::export_data),
        )
        .route("/dashboard/feedback", get(feedback::feedback))
        .route(
            "/dashboard/feedback/complaints/{id}",
            post(feedback::update_complaint),
        )
        .route(
            "/dashboard/campaigns",
            get(campaigns::campaigns)
                .post(campaigns::create)
                .layer(DefaultBodyLimit::max(campaigns::CAMPAIGN_FORM_LIMIT)),
        )
        .route(
            "/dashboard/campaigns/preview",
            post(campaigns::preview).layer(DefaultBodyLimit::max(campaigns::CAMPAIGN_FORM_LIMIT)),
        )
        .route("/dashboard/campaigns/{id}", get(campaigns::campaign))
        .route("/dashboard/payments", get(payments::payments))
        .route(
            "/dashboard/payments/{id}/attribute",
            post(payments::attribute),
        )
        .route(
            "/dashboard/payments/moota",
            post(payments::moota_settings).layer(DefaultBodyLimit::max(payments::MOOTA_FORM_LIMIT)),
        )
        .route("/dashboard/emails", get(emails::emails))
        .route("/dashboard/emails/preview/{kind}", get(emails::preview))
        .route(
            "/dashboard/emails/preview/{kind}/html",
            get(emails::preview_html),
        )
        .route("/dashboard/{*rest}", any(render::not_found_route))
        .layer(crate::error::catch_panics())
        .layer(axum::middleware::from_fn(render::page_errors))
        .layer(axum::middleware::map_response(security_headers))
        .with_state(state)
}

/// Nothing from another host, no framing by another site, no sniffing, no caching of pages
/// that show a merchant's data.
async fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    if !headers.contains_key(header::CONTENT_SECURITY_POLICY) {
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(
                "default-src 'none'; style-src 'self'; img-src 'self' data:; frame-src 'self'; \
                 form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
            ),
        );
    }
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

const STYLESHEET: &str = include_str!("../../../../templates/web/setia.css");

/// How long browsers keep the stylesheet: its URL carries a hash of its content.
const STYLESHEET_MAX_AGE: Duration = Duration::from_secs(7 * 24 * 3600);

async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8".to_owned()),
            (
                header::CACHE_CONTROL,
                format!("public, max-age={}", STYLESHEET_MAX_AGE.as_secs()),
            ),
        ],
        STYLESHEET,
    )
        .into_response()
}
