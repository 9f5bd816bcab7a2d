//! setia's HTTP surface: one `app()` factory that serves the Moota webhook (from
//! setia-ingest), the JSON API with its OpenAPI document, the dashboard, and the health and
//! metrics endpoints.
//!
//! Architecture invariant: this crate is the edge. Typed errors from the crates below become
//! HTTP statuses and `{"error":{"code","message"}}` here and nowhere else; no SQL, no
//! Polars, no business rule is decided in a handler.

mod api;
pub mod campaign_api;
mod catalog_api;
pub mod customer_data;
mod customer_lists;
mod dashboard;
mod error;
mod feedback;
mod feedback_api;
mod health;
mod ledger_api;
mod member;
mod openapi;
mod outbox_api;
mod referral;
mod referral_api;
mod telemetry;
mod unsubscribe;
mod winback_api;

use std::sync::Arc;

use axum::Router;
use setia_ingest::Ingest;
use setia_store::Store;

pub use dashboard::{LoginLimit, WebConfig};
pub use error::ApiError;
pub use openapi::api_doc;

#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    /// The base of public links (`SETIA_PUBLIC_URL` without a trailing slash, or the
    /// address emails use when it is not set): a referral link is `{public_url}/r/{code}`.
    pub public_url: Arc<str>,
}

/// The whole HTTP application. Serve it with `into_make_service_with_connect_info` so the
/// webhook sees the caller's address.
pub fn app(store: Arc<dyn Store>, ingest: Arc<Ingest>) -> Router {
    app_with(store, ingest, WebConfig::default())
}

/// [`app`] with the settings the dashboard needs (public URL, trusted proxies, mailer).
pub fn app_with(store: Arc<dyn Store>, ingest: Arc<Ingest>, config: WebConfig) -> Router {
    let state = AppState {
        store: store.clone(),
        public_url: referral::public_base(config.public_url.as_deref()).into(),
    };
    Router::new()
        .merge(dashboard::router(store, config))
        .merge(openapi::router())
        .merge(setia_ingest::router(ingest))
        .merge(health::router(state.clone()))
        .merge(unsubscribe::router(state.clone()))
        .merge(feedback::router(state.clone()))
        .merge(referral::router(state.clone()))
        .merge(member::router(state.clone()))
        .nest(
            "/api/v1",
            api::router(state)
                .layer(error::catch_panics())
                .layer(axum::middleware::from_fn(error::json_errors)),
        )
        .layer(error::catch_panics())
        .layer(axum::middleware::from_fn(telemetry::record_latency))
}
