//! The webhook request, check by check.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{ConnectInfo, Path, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use setia_core::moota::verify_signature;
use setia_core::MerchantId;
use setia_store::{CallOutcome, InboxBody, WebhookCall};
use sha2::{Digest, Sha256};

use crate::audit_budget::UNKNOWN_MERCHANT;
use crate::client_addr::client_address;
use crate::{Ingest, MAX_BODY_BYTES};

/// Why a call was turned away: its status, the audit log's reason and the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rejection {
    UnknownMerchant,
    BodyTooLarge,
    UnreadableBody,
    AddressNotAllowed,
    Signature(setia_core::moota::SignatureError),
    Unavailable,
}

impl Rejection {
    fn status(self) -> StatusCode {
        match self {
            Rejection::UnknownMerchant => StatusCode::NOT_FOUND,
            Rejection::BodyTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Rejection::UnreadableBody => StatusCode::BAD_REQUEST,
            Rejection::AddressNotAllowed => StatusCode::FORBIDDEN,
            Rejection::Signature(_) => StatusCode::UNAUTHORIZED,
            Rejection::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn reason(self) -> &'static str {
        match self {
            Rejection::UnknownMerchant => "unknown_merchant",
            Rejection::BodyTooLarge => "body_too_large",
            Rejection::UnreadableBody => "body_unreadable",
            Rejection::AddressNotAllowed => "address_not_allowed",
            Rejection::Signature(error) => error.reason(),
            Rejection::Unavailable => "unavailable",
        }
    }

    fn message(self) -> String {
        match self {
            Rejection::UnknownMerchant => "no merchant has this webhook URL".into(),
            Rejection::BodyTooLarge => format!("the body is larger than {MAX_BODY_BYTES} bytes"),
            Rejection::UnreadableBody => "the body could not be read".into(),
            Rejection::AddressNotAllowed => "this source address may not send webhooks".into(),
            Rejection::Signature(error) => error.to_string(),
            Rejection::Unavailable => "the webhook could not be stored; retry later".into(),
        }
    }
}

impl IntoResponse for Rejection {
    fn into_response(self) -> Response {
        let body = serde_json::json!({"error": {"code": self.reason(), "message": self.message()}});
        (self.status(), Json(body)).into_response()
    }
}

/// What is known of a call when it is answered, for its audit row.
struct Call {
    merchant: String,
    received_at: DateTime<Utc>,
    remote_addr: IpAddr,
    body_sha256: Option<String>,
    body_size: u64,
}

impl Call {
    fn into_audit_row(
        self,
        status: StatusCode,
        reason: &str,
        inbox: Option<InboxBody>,
    ) -> WebhookCall {
        WebhookCall {
            merchant: self.merchant,
            received_at: self.received_at,
            remote_addr: self.remote_addr.to_string(),
            status: status.as_u16(),
            reason: reason.to_owned(),
            body_sha256: self.body_sha256,
            body_size: self.body_size,
            inbox,
        }
    }
}

pub async fn receive(
    State(ingest): State<Arc<Ingest>>,
    merchant_text: Result<Path<String>, PathRejection>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
) -> Response {
    // A path that does not decode names no merchant: refused like any unknown one.
    let merchant_text = merchant_text.map(|Path(text)| text).unwrap_or_default();
    let mut call = Call {
        merchant: first_chars(&merchant_text, 64).to_owned(),
        received_at: Utc::now(),
        remote_addr: peer.ip(),
        body_sha256: None,
        body_size: declared_length(request.headers()).unwrap_or(0),
    };
    let (parts, body) = request.into_parts();
    match verify(&ingest, &mut call, &parts.headers, body).await {
        Ok(inbox) => commit(&ingest, call, inbox).await,
        Err(rejection) => {
            reject(&ingest, call, rejection).await;
            rejection.into_response()
        }
    }
}

async fn verify(
    ingest: &Ingest,
    call: &mut Call,
    headers: &HeaderMap,
    body: Body,
) -> Result<InboxBody, Rejection> {
    let merchant_id = MerchantId::parse(&call.merchant).map_err(|_| Rejection::UnknownMerchant)?;
    let merchant = match ingest.merchants.get(&merchant_id).await {
        Ok(Some(merchant)) => merchant,
        Ok(None) => return Err(Rejection::UnknownMerchant),
        Err(error) => {
            tracing::error!(%error, "merchant lookup failed");
            return Err(Rejection::Unavailable);
        }
    };
    if call.body_size > MAX_BODY_BYTES as u64 {
        return Err(Rejection::BodyTooLarge);
    }
    let body = match Limited::new(body, MAX_BODY_BYTES).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(error) if error.is::<LengthLimitError>() => {
            call.body_size = MAX_BODY_BYTES as u64 + 1;
            return Err(Rejection::BodyTooLarge);
        }
        Err(_) => return Err(Rejection::UnreadableBody),
    };
    call.body_size = body.len() as u64;
    call.body_sha256 = Some(hex_digest(&body));

    let client = client_address(call.remote_addr, &headers, &ingest.config.trusted_proxies);
    if let Some(client) = client {
        call.remote_addr = client;
    }
    if let Some(allowed) = &ingest.config.allowed {
        if !client.is_some_and(|address| allowed.contains(address)) {
            return Err(Rejection::AddressNotAllowed);
        }
    }

    let signature = headers.get("signature").map(|v| v.as_bytes());
    verify_signature(&merchant.webhook_secret, &body, signature).map_err(Rejection::Signature)?;

    let text = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(|v| first_chars(v, 200).to_owned())
    };
    Ok(InboxBody {
        merchant: merchant_id,
        body,
        user_agent: text(header::USER_AGENT.as_str()),
        moota_user: text("x-moota-user"),
        moota_webhook: text("x-moota-webhook"),
    })
}

async fn commit(ingest: &Ingest, call: Call, inbox: InboxBody) -> Response {
    match ingest
        .writer
        .commit(call.into_audit_row(StatusCode::OK, "", Some(inbox)))
        .await
    {
        Ok(CallOutcome::Received { .. }) => {
            metrics::counter!("setia_webhooks_accepted_total").increment(1);
            accepted(r#"{"status":"received"}"#)
        }
        Ok(CallOutcome::Duplicate { .. }) => {
            metrics::counter!("setia_webhooks_duplicate_total").increment(1);
            accepted(r#"{"status":"duplicate"}"#)
        }
        Ok(CallOutcome::Audited) | Err(_) => {
            metrics::counter!("setia_webhooks_rejected_total", "reason" => "unavailable")
                .increment(1);
            Rejection::Unavailable.into_response()
        }
    }
}

/// A 200 with a fixed JSON body: every accepted webhook gets one of two.
fn accepted(body: &'static str) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response()
}

async fn reject(ingest: &Ingest, call: Call, rejection: Rejection) {
    metrics::counter!("setia_webhooks_rejected_total", "reason" => rejection.reason()).increment(1);
    tracing::info!(
        // The caller's text, quoted: a newline in it must not start a forged log line.
        merchant = ?call.merchant,
        remote_addr = %call.remote_addr,
        reason = rejection.reason(),
        "webhook rejected"
    );
    let budget_key = if rejection == Rejection::UnknownMerchant {
        UNKNOWN_MERCHANT
    } else {
        call.merchant.as_str()
    };
    if ingest
        .budget
        .admit(budget_key, rejection.reason(), call.received_at)
    {
        ingest
            .writer
            .audit(call.into_audit_row(rejection.status(), rejection.reason(), None))
            .await;
    }
}

/// The body's sha256 as lowercase hex, written digit by digit into its final string:
/// `hex::encode` collects the text one `char` at a time.
fn hex_digest(body: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut text = String::with_capacity(64);
    for byte in Sha256::digest(body) {
        text.push(char::from(DIGITS[usize::from(byte >> 4)]));
        text.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
    text
}

/// The first `count` characters of `text`: what the audit log keeps of a field the caller
/// chose. Slicing, not collecting char by char (a quarter of the handler's own instructions).
fn first_chars(text: &str, count: usize) -> &str {
    if text.len() <= count {
        // No more bytes than `count`, so no more characters either.
        return text;
    }
    match text.char_indices().nth(count) {
        Some((end, _)) => &text[..end],
        None => text,
    }
}

fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::{first_chars, hex_digest};

    #[test]
    fn hex_digest_is_lowercase_sha256() {
        assert_eq!(
            hex_digest(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn first_chars_counts_characters_not_bytes() {
        assert_eq!(first_chars("abc", 5), "abc");
        assert_eq!(first_chars("abcdef", 3), "abc");
        assert_eq!(first_chars("", 3), "");
        // Two-byte characters: four of them are eight bytes.
        assert_eq!(first_chars("éééééé", 4), "éééé");
        assert_eq!(first_chars("ééé", 4), "ééé");
        assert_eq!(first_chars("ab", 0), "");
    }
}
