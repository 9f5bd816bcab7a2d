//! The one mapping from failures to HTTP: `{"error":{"code","message"}}`.

use std::any::Any;

use axum::extract::Request;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use tower_http::catch_panic::CatchPanicLayer;

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
    /// What axum refused before a handler ran ([`json_errors`]), with its status and words.
    #[error("{message}")]
    Refused { status: StatusCode, message: String },
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
            ApiError::Refused { status, .. } => (*status, refusal_code(*status)),
        }
    }
}

fn refusal_code(status: StatusCode) -> &'static str {
    match status {
        StatusCode::BAD_REQUEST => "bad_request",
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        StatusCode::UNPROCESSABLE_ENTITY => "unprocessable",
        _ if status.is_server_error() => "internal",
        _ => "error",
    }
}

impl ApiError {
    /// A store conflict (a clash with existing data) is the caller's to resolve: 409; a
    /// referral code or a value the store cannot use is bad input: 400.
    pub fn from_store(error: setia_store::StoreError) -> ApiError {
        match error {
            setia_store::StoreError::Conflict(message) => ApiError::Conflict {
                code: "conflict",
                message,
            },
            error @ setia_store::StoreError::Erased(_) => ApiError::Conflict {
                code: "erased",
                message: error.to_string(),
            },
            setia_store::StoreError::BadReferral(message)
            | setia_store::StoreError::Invalid(message) => ApiError::BadRequest(message),
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

/// What axum refuses before a handler runs (a query string or path that does not read, a body
/// over its limit, a method the route does not take) comes in plain text or empty. This runs
/// the request and answers such a refusal with `shown(status, its words)` instead, keeping the
/// status and a 405's `Allow`; an answer already in the surface's content type `own` passes.
pub(crate) async fn restyle_refusals(
    request: Request,
    next: Next,
    own: &str,
    shown: impl FnOnce(StatusCode, String) -> Response,
) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    let in_own_shape = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|value| value.as_bytes().starts_with(own.as_bytes()));
    if in_own_shape || !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let allow = response.headers().get(header::ALLOW).cloned();
    // A refusal's text is a line; more than this is not one.
    let text = axum::body::to_bytes(response.into_body(), 16 * 1024)
        .await
        .map(|bytes| String::from_utf8_lossy(&bytes).trim().to_owned())
        .unwrap_or_default();
    let message = if text.is_empty() {
        status.canonical_reason().unwrap_or("error").to_owned()
    } else {
        text
    };
    let mut answer = shown(status, message);
    *answer.status_mut() = status;
    if let Some(allow) = allow {
        answer.headers_mut().insert(header::ALLOW, allow);
    }
    answer
}

/// A handler that panics answers a plain 500 (each surface's refusal layer, outside this
/// one, gives it that surface's shape) and the panic is logged and counted, instead of the
/// connection being dropped with no answer.
pub(crate) fn catch_panics() -> CatchPanicLayer<fn(Box<dyn Any + Send + 'static>) -> Response> {
    CatchPanicLayer::custom(answer_panic as fn(_) -> _)
}

fn answer_panic(payload: Box<dyn Any + Send + 'static>) -> Response {
    let message = payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_default();
    metrics::counter!("setia_http_panics_total").increment(1);
    tracing::error!(panic = %message, "request handler panicked");
    (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
}

/// The layer over `/api/v1`: axum's refusals in the API's JSON shape.
pub async fn json_errors(request: Request, next: Next) -> Response {
    restyle_refusals(request, next, "application/json", |status, message| {
        let mut answer = ApiError::Refused { status, message }.into_response();
        if status == StatusCode::PAYLOAD_TOO_LARGE {
            // The rest of that body was never read, so the connection cannot carry another
            // request; saying so keeps a client's pool from sending the next one on it.
            answer
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        answer
    })
    .await
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::{header, Request, StatusCode};
    use setia_core::{ApiToken, MerchantId, MerchantName, MerchantTimezone, WebhookSecret};
    use setia_ingest::{Ingest, IngestConfig};
    use setia_store::NewMerchant;
    use tower::ServiceExt;

    /// A body over the API's 2 MiB limit is refused by axum before any handler reads it; the
    /// answer is the API's JSON all the same. (Over TCP the client would race the server
    /// closing the connection on the unread body, so this goes through `oneshot`.)
    #[tokio::test]
    async fn a_body_over_the_limit_is_a_json_413() {
        let database = setia_store::testing::TestDatabase::sqlite();
        let store = setia_store::connect(&database.url).await.unwrap();
        store.migrate().await.unwrap();
        let token = ApiToken::from_random_bytes([7; 32]);
        store
            .create_merchant(NewMerchant {
                id: MerchantId::from_random_bytes([7; 20]),
                name: MerchantName::parse("Toko Besar").unwrap(),
                timezone: MerchantTimezone::default(),
                webhook_secret: WebhookSecret::parse("AElSnSQj").unwrap(),
                api_token_hash: token.hash(),
                report_emails: vec![],
                sandbox: false,
            })
            .await
            .unwrap();
        let app = crate::app(store.clone(), Ingest::start(store, IngestConfig::default()));
        let oversized = format!(r#"{{"external_id":"{}"}}"#, "a".repeat(3 << 20));
        let response = app
            .oneshot(
                Request::post("/api/v1/customers")
                    .header(header::AUTHORIZATION, format!("Bearer {}", token.expose()))
                    .header(header::CONTENT_TYPE, "application/json")
                    .body(Body::from(oversized))
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
        assert_eq!(response.headers()[header::CONNECTION], "close");
        let body = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .unwrap();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["error"]["code"], "payload_too_large", "{body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("length limit"),
            "{body}"
        );
    }

    /// A handler that panics gets an answer in its surface's shape, and the server goes on.
    #[tokio::test]
    async fn a_handler_that_panics_answers_500() {
        async fn buggy() -> &'static str {
            panic!("a bug")
        }
        let api = axum::Router::new()
            .route("/api", axum::routing::get(buggy))
            .layer(super::catch_panics())
            .layer(axum::middleware::from_fn(super::json_errors));
        let response = api
            .clone()
            .oneshot(Request::get("/api").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let body = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .unwrap();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["error"]["code"], "internal", "{body}");
        assert!(
            !body.to_string().contains("a bug"),
            "the detail is logged only"
        );
        // The same router answers again.
        let again = api
            .oneshot(Request::get("/api").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(again.status(), StatusCode::INTERNAL_SERVER_ERROR);
    }
}
