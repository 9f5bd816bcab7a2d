//! Login with the API token, sessions, CSRF and the login rate limit.
//!
//! A session is 32 random bytes in an HttpOnly, SameSite=Strict cookie (Secure behind an
//! https `SETIA_PUBLIC_URL`); the store keeps only their SHA-256. The CSRF token of a
//! session is another hash of the same secret (domain-separated), so it needs no storage and
//! a copy of the database yields neither. The login form, which has no session yet, is
//! protected by a double-submit cookie.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::rejection::FormRejection;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use chrono::{TimeDelta, Utc};
use rand::RngCore;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use setia_core::ApiToken;
use setia_ingest::AddressList;
use setia_store::Merchant;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::i18n::Lang;
use super::render::{self, PageError};
use super::Dash;

pub const SESSION_COOKIE: &str = "setia_session";
pub const LOGIN_CSRF_COOKIE: &str = "setia_login_csrf";
pub const LANG_COOKIE: &str = "setia_lang";
/// A session lasts a working day; logging in again starts a new one.
pub const SESSION_LIFETIME: TimeDelta = TimeDelta::hours(12);

/// Failed logins allowed per client address within a window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginLimit {
    pub max_failures: u32,
    pub window: Duration,
}

impl Default for LoginLimit {
    fn default() -> Self {
        LoginLimit {
            max_failures: 10,
            window: Duration::from_secs(15 * 60),
        }
    }
}

/// Failed login attempts per client (an IPv4 address, or an IPv6 /64: one subscriber's
/// network, which its owner can fill with addresses at will), in this process. (Behind a
/// load balancer each node counts its own; the limit still bounds guessing to a few per
/// minute per node.)
pub struct LoginLimiter {
    limit: LoginLimit,
    failures: Mutex<Failures>,
}

#[derive(Default)]
struct Failures {
    by_client: HashMap<IpAddr, VecDeque<Instant>>,
    last_sweep: Option<Instant>,
}

/// More clients than this and stale entries are swept before a new one is added, at most
/// once a second (a sweep walks them all).
const LIMITER_SWEEP_AT: usize = 10_000;
/// The most clients tracked: the memory a flood of fresh networks can take is bounded, and
/// a client beyond it is not counted (guessing a 256-bit token is hopeless anyway).
const LIMITER_MAX_CLIENTS: usize = 200_000;

/// The key failures are counted under.
fn limiter_key(address: IpAddr) -> IpAddr {
    match address.to_canonical() {
        IpAddr::V6(v6) => {
            let network = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(network.into())
        }
        v4 => v4,
    }
}

impl LoginLimiter {
    pub fn new(limit: LoginLimit) -> LoginLimiter {
        LoginLimiter {
            limit,
            failures: Mutex::new(Failures::default()),
        }
    }

    fn recent(&self, times: &mut VecDeque<Instant>, now: Instant) {
        while times
            .front()
            .is_some_and(|t| now.duration_since(*t) >= self.limit.window)
        {
            times.pop_front();
        }
    }

    /// `Err(wait)` when the address has used up its failures.
    pub fn check(&self, address: IpAddr) -> Result<(), Duration> {
        let now = Instant::now();
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let Some(times) = failures.by_client.get_mut(&limiter_key(address)) else {
            return Ok(());
        };
        self.recent(times, now);
        if times.len() >= self.limit.max_failures as usize {
            let oldest = times.front().copied().unwrap_or(now);
            return Err(self.limit.window.saturating_sub(now.duration_since(oldest)));
        }
        Ok(())
    }

    pub fn record_failure(&self, address: IpAddr) {
        let now = Instant::now();
        let key = limiter_key(address);
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let failures = &mut *failures;
        if !failures.by_client.contains_key(&key) {
            let swept_lately = failures
                .last_sweep
                .is_some_and(|at| now.duration_since(at) < Duration::from_secs(1));
            if failures.by_client.len() >= LIMITER_SWEEP_AT && !swept_lately {
                let window = self.limit.window;
                failures.by_client.retain(|_, times| {
                    times
                        .back()
                        .is_some_and(|t| now.duration_since(*t) < window)
                });
                failures.last_sweep = Some(now);
            }
            if failures.by_client.len() >= LIMITER_MAX_CLIENTS {
                return;
            }
        }
        let times = failures.by_client.entry(key).or_default();
        self.recent(times, now);
        times.push_back(now);
    }
}

/// The client's address as the webhook reads it (`setia_ingest::client_address`); a
/// malformed header from our own proxy counts against the proxy.
fn client_address(parts: &Parts, trusted: &AddressList) -> IpAddr {
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| {
            c.0.ip().to_canonical()
        });
    setia_ingest::client_address(peer, &parts.headers, trusted).unwrap_or(peer)
}

pub fn cookie_value<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.trim())
}

/// A `Set-Cookie` value scoped to the dashboard. `max_age` 0 deletes the cookie.
pub fn set_cookie(
    name: &str,
    value: &str,
    max_age: i64,
    http_only: bool,
    secure: bool,
) -> HeaderValue {
    let mut text = format!("{name}={value}; Path=/dashboard; SameSite=Strict; Max-Age={max_age}");
    if http_only {
        text.push_str("; HttpOnly");
    }
    if secure {
        text.push_str("; Secure");
    }
    // Names and values are ours: hex digits and fixed words.
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static(""))
}

fn random_hex(bytes: usize) -> String {
    let mut buffer = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buffer);
    hex::encode(buffer)
}

fn sha256_hex(parts: &[&[u8]]) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part);
    }
    hex::encode(hasher.finalize())
}

/// What the store keeps of a session secret.
fn session_hash(secret: &str) -> String {
    sha256_hex(&[secret.as_bytes()])
}

/// The CSRF token of a session: derived from its secret, different from what is stored.
fn csrf_token(secret: &str) -> String {
    sha256_hex(&[b"setia-dashboard-csrf\0", secret.as_bytes()])
}

fn equal(a: &str, b: &str) -> bool {
    !a.is_empty() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// The interface language: `?lang=` (remembered in a cookie), else the cookie, else
/// Indonesian. The flag says the cookie should be (re)set.
pub fn language(parts: &Parts) -> (Lang, bool) {
    let from_query = parts.uri.query().and_then(|query| {
        query
            .split('&')
            .filter_map(|pair| pair.split_once('='))
            .find(|(key, _)| *key == "lang")
            .and_then(|(_, value)| Lang::parse(value))
    });
    match from_query {
        Some(lang) => (lang, true),
        None => (
            cookie_value(&parts.headers, LANG_COOKIE)
                .and_then(Lang::parse)
                .unwrap_or_default(),
            false,
        ),
    }
}

/// A logged-in merchant. Pages take it as an extractor; without a valid session the
/// request is sent to the login page.
pub struct Session {
    pub merchant: Merchant,
    pub csrf: String,
    pub lang: Lang,
    /// `?lang=` was given: the response remembers it.
    pub remember_lang: bool,
    /// The page's path (the language links point back to it).
    pub path: String,
    secret_hash: String,
}

impl Session {
    pub fn csrf_matches(&self, presented: &str) -> bool {
        equal(presented, &self.csrf)
    }
}

/// Where a page that needs a session sends a visitor who has none.
fn to_login(parts: &Parts) -> Response {
    let wanted = parts
        .uri
        .path_and_query()
        .map_or("/dashboard/overview", |p| p.as_str());
    let next = if parts.method == axum::http::Method::GET {
        format!("?next={}", render::url_encode(wanted))
    } else {
        String::new()
    };
    Redirect::to(&format!("/dashboard/login{next}")).into_response()
}

impl FromRequestParts<Dash> for Session {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, dash: &Dash) -> Result<Self, Response> {
        let Some(secret) = cookie_value(&parts.headers, SESSION_COOKIE)
            .filter(|s| s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()))
        else {
            return Err(to_login(parts));
        };
        let secret_hash = session_hash(secret);
        let merchant = dash
            .store
            .dashboard_session(&secret_hash, Utc::now())
            .await
            .map_err(|e| PageError::Store(e).into_response())?
            .ok_or_else(|| to_login(parts))?;
        let (lang, remember_lang) = language(parts);
        Ok(Session {
            merchant,
            csrf: csrf_token(secret),
            lang,
            remember_lang,
            path: parts.uri.path().to_owned(),
            secret_hash,
        })
    }
}

/// A form posted by a logged-in merchant whose CSRF token matched. Handlers that change
/// anything take this, so none can forget the check.
pub struct CsrfForm<T> {
    pub session: Session,
    pub form: T,
}

impl<T: DeserializeOwned> FromRequest<Dash> for CsrfForm<T> {
    type Rejection = Response;

    async fn from_request(request: Request, dash: &Dash) -> Result<Self, Response> {
        let (mut parts, body) = request.into_parts();
        let session = Session::from_request_parts(&mut parts, dash).await?;
        let request = Request::from_parts(parts, body);
        let fields = match Form::<HashMap<String, String>>::from_request(request, dash).await {
            Ok(Form(fields)) => fields,
            // A body over the route's limit is named as such; nothing of it was used.
            Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                return Err(PageError::BadRequest("too_large".into()).into_response())
            }
            Err(_) => return Err(PageError::BadRequest("form".into()).into_response()),
        };
        let presented = fields.get("csrf").map_or("", String::as_str);
        if !session.csrf_matches(presented) {
            return Err(PageError::Forbidden.into_response());
        }
        let form = T::deserialize(serde::de::value::MapDeserializer::<
            _,
            serde::de::value::Error,
        >::new(fields.into_iter()))
        .map_err(|e| PageError::BadRequest(e.to_string()).into_response())?;
        Ok(CsrfForm { session, form })
    }
}

/// The caller's address, for the login rate limit.
pub struct ClientAddress(pub IpAddr);

impl FromRequestParts<Dash> for ClientAddress {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, dash: &Dash) -> Result<Self, Self::Rejection> {
        Ok(ClientAddress(client_address(
            parts,
            &dash.config.trusted_proxies,
        )))
    }
}

/// The login page's language and the request's own headers.
pub struct LoginContext {
    lang: Lang,
    remember_lang: bool,
    headers: HeaderMap,
}

impl FromRequestParts<Dash> for LoginContext {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &Dash) -> Result<Self, Self::Rejection> {
        let (lang, remember_lang) = language(parts);
        Ok(LoginContext {
            lang,
            remember_lang,
            headers: parts.headers.clone(),
        })
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct NextQuery {
    next: String,
}

/// Only a path inside the dashboard: never another host (`//evil`, `/\evil`).
fn safe_next(next: &str) -> &str {
    let ok = next.starts_with("/dashboard/")
        && !next.starts_with("/dashboard/login")
        && !next.contains("//")
        && !next.contains('\\')
        && next.bytes().all(|b| b.is_ascii_graphic());
    if ok {
        next
    } else {
        "/dashboard/overview"
    }
}

/// Renders the login form with a fresh double-submit CSRF token.
fn login_form(
    dash: &Dash,
    context: &LoginContext,
    status: StatusCode,
    error: Option<&str>,
    next: &str,
) -> Response {
    let token = random_hex(16);
    let mut response = render::login_page(context.lang, status, &token, error, safe_next(next));
    let headers = response.headers_mut();
    headers.append(
        header::SET_COOKIE,
        set_cookie(LOGIN_CSRF_COOKIE, &token, 3600, true, dash.secure_cookies),
    );
    if context.remember_lang {
        headers.append(
            header::SET_COOKIE,
            lang_cookie(context.lang, dash.secure_cookies),
        );
    }
    response
}

pub fn lang_cookie(lang: Lang, secure: bool) -> HeaderValue {
    set_cookie(LANG_COOKIE, lang.code(), 365 * 24 * 3600, false, secure)
}

pub async fn login_page(
    State(dash): State<Dash>,
    context: LoginContext,
    axum::extract::Query(query): axum::extract::Query<NextQuery>,
) -> Response {
    // Already logged in: straight on.
    if let Some(secret) = cookie_value(&context.headers, SESSION_COOKIE) {
        if let Ok(Some(_)) = dash
            .store
            .dashboard_session(&session_hash(secret), Utc::now())
            .await
        {
            return Redirect::to(safe_next(&query.next)).into_response();
        }
    }
    login_form(&dash, &context, StatusCode::OK, None, &query.next)
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct LoginForm {
    token: String,
    csrf: String,
    next: String,
}

pub async fn login(
    State(dash): State<Dash>,
    ClientAddress(address): ClientAddress,
    context: LoginContext,
    form: Result<Form<LoginForm>, FormRejection>,
) -> Response {
    if let Err(wait) = dash.limiter.check(address) {
        tracing::warn!(%address, "dashboard login refused: too many failed attempts");
        let mut response = login_form(
            &dash,
            &context,
            StatusCode::TOO_MANY_REQUESTS,
            Some("too_many_attempts"),
            "",
        );
        if let Ok(value) = HeaderValue::from_str(&wait.as_secs().max(1).to_string()) {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        return response;
    }
    let Ok(Form(form)) = form else {
        return PageError::BadRequest("form".into()).into_response();
    };
    let cookie = cookie_value(&context.headers, LOGIN_CSRF_COOKIE).unwrap_or("");
    if !equal(&form.csrf, cookie) {
        return PageError::Forbidden.into_response();
    }
    let token = form.token.trim();
    let merchant = if token.is_empty() {
        None
    } else {
        match dash
            .store
            .merchant_by_token(&ApiToken::presented(token).hash())
            .await
        {
            Ok(found) => found,
            Err(error) => return PageError::Store(error).into_response(),
        }
    };
    let Some(merchant) = merchant else {
        dash.limiter.record_failure(address);
        tracing::info!(%address, "dashboard login with an unknown token");
        return login_form(
            &dash,
            &context,
            StatusCode::UNAUTHORIZED,
            Some("bad_token"),
            &form.next,
        );
    };
    let secret = random_hex(32);
    let now = Utc::now();
    if let Err(error) = dash
        .store
        .create_dashboard_session(
            &merchant.id,
            &session_hash(&secret),
            now,
            now + SESSION_LIFETIME,
        )
        .await
    {
        return PageError::Store(error).into_response();
    }
    tracing::info!(merchant = %merchant.id, "dashboard login");
    let mut response = Redirect::to(safe_next(&form.next)).into_response();
    let headers = response.headers_mut();
    headers.append(
        header::SET_COOKIE,
        set_cookie(
            SESSION_COOKIE,
            &secret,
            SESSION_LIFETIME.num_seconds(),
            true,
            dash.secure_cookies,
        ),
    );
    headers.append(
        header::SET_COOKIE,
        set_cookie(LOGIN_CSRF_COOKIE, "", 0, true, dash.secure_cookies),
    );
    response
}

#[derive(Debug, Default, Deserialize)]
pub struct NoFields {}

pub async fn logout(State(dash): State<Dash>, posted: CsrfForm<NoFields>) -> Response {
    if let Err(error) = dash
        .store
        .delete_dashboard_session(&posted.session.secret_hash)
        .await
    {
        return PageError::Store(error).into_response();
    }
    let mut response = Redirect::to("/dashboard/login").into_response();
    response.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(SESSION_COOKIE, "", 0, true, dash.secure_cookies),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limiter_refuses_after_the_allowed_failures_and_counts_per_address() {
        let limiter = LoginLimiter::new(LoginLimit {
            max_failures: 3,
            window: Duration::from_secs(60),
        });
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        for _ in 0..3 {
            assert!(limiter.check(a).is_ok());
            limiter.record_failure(a);
        }
        let wait = limiter.check(a).unwrap_err();
        assert!(wait <= Duration::from_secs(60) && wait > Duration::from_secs(50));
        assert!(limiter.check(b).is_ok(), "another address is not affected");
    }

    #[test]
    fn an_ipv6_network_counts_as_one_client() {
        let limiter = LoginLimiter::new(LoginLimit {
            max_failures: 2,
            window: Duration::from_secs(60),
        });
        let one: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let same_network: IpAddr = "2001:db8:1:2:ffff:ffff:ffff:fff0".parse().unwrap();
        let next_network: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        limiter.record_failure(one);
        limiter.record_failure(same_network);
        assert!(limiter
            .check("2001:db8:1:2:abcd::9".parse().unwrap())
            .is_err());
        assert!(limiter.check(next_network).is_ok());
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        limiter.record_failure(mapped);
        limiter.record_failure("192.0.2.7".parse().unwrap());
        assert!(limiter.check("192.0.2.7".parse().unwrap()).is_err());
        assert!(limiter.check("192.0.2.8".parse().unwrap()).is_ok());
    }

    #[test]
    fn the_limiter_forgets_failures_older_than_the_window() {
        let limiter = LoginLimiter::new(LoginLimit {
            max_failures: 1,
            window: Duration::from_millis(30),
        });
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        limiter.record_failure(a);
        assert!(limiter.check(a).is_err());
        std::thread::sleep(Duration::from_millis(40));
        assert!(limiter.check(a).is_ok());
    }

    #[test]
    fn csrf_tokens_are_not_the_stored_hash_and_compare_exactly() {
        let secret = "ab".repeat(32);
        assert_ne!(csrf_token(&secret), session_hash(&secret));
        assert!(equal(&csrf_token(&secret), &csrf_token(&secret)));
        assert!(!equal("", ""), "an empty token never matches");
        assert!(!equal(&csrf_token(&secret), &csrf_token(&"cd".repeat(32))));
    }

    #[test]
    fn next_stays_inside_the_dashboard() {
        assert_eq!(
            safe_next("/dashboard/cohorts?period=week"),
            "/dashboard/cohorts?period=week"
        );
        for bad in [
            "https://evil.example/",
            "//evil.example",
            "/dashboard//evil",
            "/dashboard/\\x",
            "/api/v1/metrics",
            "/dashboard/login",
            "",
        ] {
            assert_eq!(safe_next(bad), "/dashboard/overview", "{bad}");
        }
    }

    #[test]
    fn cookies_are_read_by_exact_name() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; setia_session_x=2; setia_session=3"),
        );
        assert_eq!(cookie_value(&headers, "setia_session"), Some("3"));
        assert_eq!(cookie_value(&headers, "b"), None);
        let set = set_cookie("n", "v", 60, true, true);
        let text = set.to_str().unwrap();
        assert!(
            text.contains("HttpOnly")
                && text.contains("SameSite=Strict")
                && text.contains("Secure")
        );
    }
}
