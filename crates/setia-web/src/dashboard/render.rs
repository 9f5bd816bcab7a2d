//! The templates (embedded in the binary, HTML auto-escaped) and the page responses.

use std::sync::OnceLock;

use axum::extract::Request;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};
use minijinja::value::Value;
use minijinja::{context, Environment, UndefinedBehavior};
use sha2::{Digest, Sha256};

use super::auth::{lang_cookie, Session};
use super::i18n::{self, Lang};
use super::{format, Dash, STYLESHEET};

macro_rules! templates {
    ($($name:literal),* $(,)?) => {
        &[$(($name, include_str!(concat!("../../../../templates/web/", $name)))),*]
    };
}

const TEMPLATES: &[(&str, &str)] = templates![
    "layout.html",
    "macros.html",
    "login.html",
    "error.html",
    "overview.html",
    "cohorts.html",
    "customers.html",
    "customer.html",
    "feedback.html",
    "campaigns.html",
    "campaign_form.html",
    "campaign_new.html",
    "campaign.html",
    "loyalty.html",
    "payments.html",
    "emails.html",
    "email_preview.html",
];

fn environment() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Environment::new();
        // `.html` templates are HTML-escaped (minijinja's default for the extension); a
        // misspelt variable is an error, not an empty cell.
        env.set_undefined_behavior(UndefinedBehavior::SemiStrict);
        format::register(&mut env);
        for (name, source) in TEMPLATES {
            // The templates are part of the build; `every_template_compiles` checks them.
            if let Err(error) = env.add_template(name, source) {
                tracing::error!(%error, template = name, "a dashboard template does not compile");
            }
        }
        env
    })
}

/// The stylesheet's URL, with a hash of its content so browsers may cache it.
pub fn stylesheet_url() -> &'static str {
    static URL: OnceLock<String> = OnceLock::new();
    URL.get_or_init(|| {
        let digest = Sha256::digest(STYLESHEET.as_bytes());
        format!(
            "/dashboard/static/setia.css?v={}",
            &hex::encode(digest)[..12]
        )
    })
}

/// Any serialisable value as a template value.
pub fn ser<T: serde::Serialize>(value: T) -> Value {
    Value::from(minijinja::value::Serde(value))
}

/// Percent-encodes everything but unreserved characters and `/`.
pub fn url_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~' | b'/') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// Why a page could not be shown. Each becomes a small page in both languages.
#[derive(Debug, thiserror::Error)]
pub enum PageError {
    #[error("not found")]
    NotFound,
    #[error("the form's security token is missing or wrong")]
    Forbidden,
    #[error("bad request: {0}")]
    BadRequest(String),
    #[error("store: {0}")]
    Store(#[from] setia_store::StoreError),
    #[error("template: {0}")]
    Render(#[from] minijinja::Error),
    #[error("{0}")]
    Internal(String),
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let (status, key) = match &self {
            PageError::NotFound => (StatusCode::NOT_FOUND, "not_found"),
            PageError::Forbidden => (StatusCode::FORBIDDEN, "forbidden"),
            PageError::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            PageError::Store(_) | PageError::Render(_) | PageError::Internal(_) => {
                tracing::error!(error = %self, "dashboard page failed");
                (StatusCode::INTERNAL_SERVER_ERROR, "internal")
            }
        };
        let id = i18n::texts(Lang::Id);
        let en = i18n::texts(Lang::En);
        let title_key = format!("error_{key}");
        // A bad request may say what was wrong, when its detail names a text.
        let detail_key = match &self {
            PageError::BadRequest(detail) => format!("error_bad_request_{detail}"),
            _ => String::new(),
        };
        let rendered = environment().get_template("error.html").and_then(|t| {
            t.render(context! {
                css => stylesheet_url(),
                status => status.as_u16(),
                title_id => id.get(&title_key),
                title_en => en.get(&title_key),
                detail_id => id.find(&detail_key),
                detail_en => en.find(&detail_key),
                back_id => id.get("error_back"),
                back_en => en.get("error_back"),
            })
        });
        let body = rendered.unwrap_or_else(|_| status.to_string());
        (status, Html(body)).into_response()
    }
}

pub async fn not_found_route() -> Response {
    PageError::NotFound.into_response()
}

/// The layer over `/dashboard`: axum's refusals (a query string or path that does not read,
/// a method a route does not take) as the dashboard's error page, with their status.
pub async fn page_errors(request: Request, next: Next) -> Response {
    crate::error::restyle_refusals(request, next, "text/html", |status, message| {
        match status {
            StatusCode::NOT_FOUND => PageError::NotFound,
            StatusCode::PAYLOAD_TOO_LARGE => PageError::BadRequest("too_large".into()),
            _ if status.is_server_error() => PageError::Internal(message),
            _ => PageError::BadRequest(String::new()),
        }
        .into_response()
    })
    .await
}

fn render(template: &str, context: Value) -> Result<String, PageError> {
    Ok(environment().get_template(template)?.render(context)?)
}

pub fn login_page(
    lang: Lang,
    status: StatusCode,
    csrf: &str,
    error: Option<&str>,
    next: &str,
) -> Response {
    let result = render(
        "login.html",
        context! {
            lang => lang.code(),
            tr => i18n::value(lang),
            css => stylesheet_url(),
            csrf => csrf,
            error => error,
            next => next,
            path => "/dashboard/login",
        },
    );
    match result {
        Ok(body) => (status, Html(body)).into_response(),
        Err(error) => error.into_response(),
    }
}

/// The navigation's sections, in order.
pub const SECTIONS: [&str; 8] = [
    "overview",
    "cohorts",
    "customers",
    "feedback",
    "campaigns",
    "loyalty",
    "payments",
    "emails",
];

impl Dash {
    /// A page inside the layout: the merchant, the navigation with what needs attention, the
    /// language switch and the logout form around `template` rendered with `page`.
    pub async fn page(
        &self,
        session: &Session,
        section: &str,
        template: &str,
        page: Value,
    ) -> Result<Response, PageError> {
        let attention = self.store.attention_counts(&session.merchant.id).await?;
        let merchant = &session.merchant;
        let context = context! {
            lang => session.lang.code(),
            tr => i18n::value(session.lang),
            tz => merchant.timezone.name(),
            css => stylesheet_url(),
            csrf => &session.csrf,
            section => section,
            sections => SECTIONS,
            path => &session.path,
            attention => ser(attention),
            merchant => context! {
                id => merchant.id.as_str(),
                name => &merchant.name,
                sandbox => merchant.sandbox,
                timezone => merchant.timezone.name(),
            },
            page => page,
        };
        let body = render(template, context)?;
        let mut response = Html(body).into_response();
        if session.remember_lang {
            response.headers_mut().append(
                header::SET_COOKIE,
                lang_cookie(session.lang, self.secure_cookies),
            );
        }
        Ok(response)
    }
}

/// A response whose body is someone else's HTML (an email preview): shown in a sandboxed
/// frame of our own pages only, with the inline styles emails need and nothing else.
pub fn foreign_html(body: String) -> Response {
    let mut response = Html(body).into_response();
    response.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'self'; \
             base-uri 'none'; form-action 'none'",
        ),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_compiles() {
        let mut env = Environment::new();
        format::register(&mut env);
        for (name, source) in TEMPLATES {
            env.add_template(name, source)
                .unwrap_or_else(|e| panic!("{name}: {e:#}"));
        }
    }

    #[test]
    fn html_is_escaped() {
        let mut env = Environment::new();
        env.add_template("x.html", "{{ v }}").unwrap();
        let out = env
            .get_template("x.html")
            .unwrap()
            .render(context! { v => "<script>alert(1)</script>" })
            .unwrap();
        assert_eq!(out, "&lt;script&gt;alert(1)&lt;&#x2f;script&gt;");
    }

    #[test]
    fn url_encoding_keeps_paths_readable() {
        assert_eq!(
            url_encode("/dashboard/cohorts?period=week"),
            "/dashboard/cohorts%3Fperiod%3Dweek"
        );
    }
}
