//! `/healthz` (the process answers), `/readyz` (the database answers and is migrated) and
//! `/metrics` (Prometheus text).

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};

use crate::telemetry::prometheus;
use crate::AppState;

pub fn router(state: AppState) -> Router {
    // Installing the recorder here means counters recorded before the first scrape count.
    prometheus();
    Router::new()
        .route(
            "/healthz",
            get(|| async { Json(serde_json::json!({"status": "ok"})) }),
        )
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .with_state(state)
}

async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    match state.store.is_ready().await {
        Ok(true) => (StatusCode::OK, Json(serde_json::json!({"status": "ready"}))),
        Ok(false) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(serde_json::json!({"status": "not_migrated"})),
        ),
        Err(error) => {
            tracing::warn!(%error, "readiness check failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(serde_json::json!({"status": "database_unreachable"})),
            )
        }
    }
}

async fn metrics_text(State(state): State<AppState>) -> impl IntoResponse {
    match state.store.inbox_depth().await {
        Ok(depth) => metrics::gauge!("setia_inbox_depth").set(depth as f64),
        Err(error) => tracing::warn!(%error, "could not read the inbox depth"),
    }
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        prometheus().render(),
    )
}
