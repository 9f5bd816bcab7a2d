//! `GET|POST /u/{token}`: the unsubscribe link in every customer email (RFC 8058). GET shows
//! a page with a button and changes nothing (mail scanners follow links); POST, from that
//! button or from a mail client's one-click `List-Unsubscribe-Post`, unsubscribes. A token
//! is signed with the merchant's mail secret; a bad one is a 404 that says nothing more.

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use chrono::Utc;
use setia_core::mail_token::UnsubscribeToken;
use setia_store::mail::{EmailLanguage, Subscription};

use crate::AppState;

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/u/{token}", get(show).post(unsubscribe))
        .with_state(state)
}

/// Longer than any genuine token of an email's links (a merchant id, a customer key or
/// request id, an expiry and the MAC's hex digits): anything longer is not read at all.
pub(crate) const MAX_TOKEN_TEXT: usize = 128;

/// A public link's text, unless it is longer than `max` (then it is not read at all) or the
/// path does not decode (bad percent-encoding, not UTF-8): a link like any other that leads
/// nowhere.
pub(crate) fn link_text(path: Result<Path<String>, PathRejection>, max: usize) -> Option<String> {
    let Ok(Path(text)) = path else {
        return None;
    };
    (text.len() <= max).then_some(text)
}

/// The token's merchant and customer, if the token is genuine.
async fn verified(
    state: &AppState,
    token: &str,
) -> Result<Option<UnsubscribeToken>, setia_store::StoreError> {
    let Ok(token) = UnsubscribeToken::parse(token) else {
        return Ok(None);
    };
    let Some(mail) = state.store.mail_merchant(token.merchant()).await? else {
        return Ok(None);
    };
    Ok(token.verify(&mail.secret).then_some(token))
}

async fn show(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
) -> Response {
    // A path that does not read is a link that leads nowhere, like a forged one.
    let token = link_text(path, MAX_TOKEN_TEXT).unwrap_or_default();
    let result = async {
        let Some(token) = verified(&state, &token).await? else {
            return Ok(None);
        };
        state
            .store
            .subscription(token.merchant(), token.customer())
            .await
    }
    .await;
    respond(result, false)
}

async fn unsubscribe(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
) -> Response {
    let token = link_text(path, MAX_TOKEN_TEXT).unwrap_or_default();
    let result = async {
        let Some(token) = verified(&state, &token).await? else {
            return Ok(None);
        };
        let subscription = state
            .store
            .unsubscribe(token.merchant(), token.customer(), Utc::now())
            .await?;
        if subscription.is_some() {
            tracing::info!(merchant = %token.merchant(), customer = %token.customer(), "customer unsubscribed");
        }
        Ok(subscription)
    }
    .await;
    respond(result, true)
}

fn respond(
    result: Result<Option<Subscription>, setia_store::StoreError>,
    posted: bool,
) -> Response {
    let (status, body) = match result {
        Ok(Some(subscription)) => (StatusCode::OK, page(&subscription, posted)),
        Ok(None) => (
            StatusCode::NOT_FOUND,
            layout(
                "id",
                "Tautan tidak berlaku / Link not valid",
                "<p>Tautan berhenti berlangganan ini tidak berlaku.</p>\
                 <p>This unsubscribe link is not valid.</p>",
            ),
        ),
        Err(error) => {
            tracing::error!(%error, "unsubscribe failed");
            (StatusCode::SERVICE_UNAVAILABLE, try_again_page())
        }
    };
    public_page(status, body, Forms::ToItself)
}

/// Whether a public page has a form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Forms {
    None,
    /// Forms that post to the page's own address.
    ToItself,
}

/// A public link's page (unsubscribe, feedback, referral, member). The link carries its
/// token in the address, so the page is never cached and never sends a Referer; it loads
/// nothing, may not be framed (a one-click form in a frame is a clickjacking target), and
/// its forms may post only to itself.
pub(crate) fn public_page(status: StatusCode, body: String, forms: Forms) -> Response {
    let policy = match forms {
        Forms::None => {
            "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; \
             form-action 'none'; frame-ancestors 'none'"
        }
        Forms::ToItself => {
            "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; \
             form-action 'self'; frame-ancestors 'none'"
        }
    };
    let mut response = (status, Html(body)).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(policy),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

fn page(subscription: &Subscription, posted: bool) -> String {
    let merchant = escape(&subscription.merchant_name);
    let english = subscription.language == EmailLanguage::English;
    let lang = subscription.language.as_str();
    match (subscription.unsubscribed_at.is_some(), english) {
        (true, false) => layout(
            lang,
            "Berhenti berlangganan",
            &format!(
                "<p>Anda {} berhenti berlangganan email dari <strong>{merchant}</strong>. \
                 Anda tidak akan menerima email lagi dari kami.</p>",
                if posted { "sudah" } else { "telah" }
            ),
        ),
        (true, true) => layout(
            lang,
            "Unsubscribed",
            &format!(
                "<p>You are unsubscribed from <strong>{merchant}</strong>'s emails. \
                 You will not get any more email from us.</p>"
            ),
        ),
        (false, false) => layout(
            lang,
            "Berhenti berlangganan?",
            &format!(
                "<p>Berhenti menerima email dari <strong>{merchant}</strong>?</p>\
                 <form method=\"post\"><button type=\"submit\" style=\"padding:10px 18px;font-size:15px;\">\
                 Ya, berhenti berlangganan</button></form>"
            ),
        ),
        (false, true) => layout(
            lang,
            "Unsubscribe?",
            &format!(
                "<p>Stop getting email from <strong>{merchant}</strong>?</p>\
                 <form method=\"post\"><button type=\"submit\" style=\"padding:10px 18px;font-size:15px;\">\
                 Yes, unsubscribe</button></form>"
            ),
        ),
    }
}

/// What a public link's page says when the store failed (in both languages: the merchant's
/// is not known then).
pub(crate) fn try_again_page() -> String {
    layout(
        "id",
        "Coba lagi / Try again",
        "<p>Terjadi gangguan; silakan coba lagi sebentar lagi.</p>\
         <p>Something went wrong; please try again shortly.</p>",
    )
}

/// A small standalone page (no asset from anywhere, not even the browser's favicon request),
/// shared by the public link pages.
pub(crate) fn layout(lang: &str, title: &str, body: &str) -> String {
    format!(
        "<!doctype html><html lang=\"{lang}\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <meta name=\"robots\" content=\"noindex\"><link rel=\"icon\" href=\"data:,\">\
         <title>{title}</title></head>\
         <body style=\"font-family:Helvetica,Arial,sans-serif;max-width:480px;margin:48px auto;padding:0 16px;color:#111827;\">\
         <h1 style=\"font-size:22px;\">{title}</h1>{body}</body></html>"
    )
}

pub(crate) fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            other => escaped.push(other),
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_escaped() {
        assert_eq!(
            escape("<script>alert(1)</script> & Co."),
            "&lt;script&gt;alert(1)&lt;/script&gt; &amp; Co."
        );
        let subscription = Subscription {
            merchant_name: "<b>Toko</b>".into(),
            language: EmailLanguage::English,
            customer_name: None,
            unsubscribed_at: None,
        };
        let html = page(&subscription, false);
        assert!(html.contains("&lt;b&gt;Toko&lt;/b&gt;") && !html.contains("<b>Toko"));
        assert!(html.contains("<form method=\"post\">"));
    }
}
