//! The one mapping from failures to HTTP: `{"error":{"code","message"}}`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("a valid API token is required (Authorization: Bearer <token>)")]
    Unauthorized,
    #[error("{0}")]
    BadRequest(String),
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    /// A body over the route's limit.
    #[error("{0}")]
    TooLarge(String),
    #[error("internal error")]
    Store(#[from] setia_store::StoreError),
}

impl ApiError {
    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized"),
            ApiError::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            ApiError::Conflict { code, .. } => (StatusCode::CONFLICT, code),
            ApiError::TooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            ApiError::Store(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }
}

impl ApiError {
    /// A store conflict (a clash with existing data) is the caller's to resolve: 409; a
    /// referral code the store cannot use is bad input: 400.
    pub fn from_store(error: setia_store::StoreError) -> ApiError {
        match error {
            setia_store::StoreError::Conflict(message) => ApiError::Conflict {
                code: "conflict",
                message,
            },
            setia_store::StoreError::BadReferral(message) => ApiError::BadRequest(message),
            other => ApiError::Store(other),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        if let ApiError::Store(error) = &self {
            // The detail goes to the log, not to the caller.
            tracing::error!(%error, "request failed");
        }
        let body = serde_json::json!({"error": {"code": code, "message": self.to_string()}});
        (status, Json(body)).into_response()
    }
}
