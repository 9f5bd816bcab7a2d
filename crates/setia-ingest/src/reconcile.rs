//! The back door: reconciliation through Moota's API V2. A sync pages through the credit
//! mutations of a window (`GET /mutation`) and puts every one setia has not seen into the
//! inbox as a row of source `api`, which the worker applies like a webhook body; the
//! ledger's (merchant, mutation_id) key counts a mutation that came both ways once.
//!
//! A page is read whole and checked before anything of it is written, so a malformed page
//! stops the sync with the pages before it written and none of it. 401 stops at once (the
//! token is wrong); 429, 5xx, timeouts and refused connections are retried a few times with
//! a growing pause, then the sync fails with the reason and the next one tries again. The
//! token goes only to the configured API's address, in a header marked sensitive, and into
//! no log line, error or answer.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::header::{HeaderValue, ACCEPT, AUTHORIZATION, RETRY_AFTER};
use reqwest::{StatusCode, Url};
use serde::Serialize;
use setia_core::moota::Direction;
use setia_core::moota_api::{
    parse_bank_page, parse_mutation_page, MootaBankId, MootaToken, PageError, SyncWindow,
};
use setia_core::MerchantId;
use setia_store::reconcile::{FoundMutation, SyncCounts, SyncStarter};
use setia_store::{Store, StoreError};

/// Moota's API V2 (`SETIA_MOOTA_API_URL` replaces it).
pub const DEFAULT_API_URL: &str = "https://app.moota.co/api/v2";
/// Mutations asked for per page: the most Moota's clients ask for.
const PER_PAGE: u32 = 100;
/// Pages one listing may take before the sync stops: a guard against a server that never
/// says it is done (100 per page, a million mutations).
const MAX_PAGES: u64 = 10_000;
/// Tries per request: the first and three retries.
const ATTEMPTS: u32 = 4;
/// The longest `Retry-After` honoured; a longer one ends the sync, and the next retries.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);
/// The most a page may be: 100 mutations are about 100 KB.
const MAX_PAGE_BYTES: usize = 16 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error(
        "merchant {0} has no Moota token: set one with `setia merchant moota --merchant {0} --token-file FILE`"
    )]
    NoToken(MerchantId),
    #[error(
        "Moota refused the token (401 Unauthorized): set a new one with `setia merchant moota`"
    )]
    Unauthorized,
    #[error("Moota answered {status} to {what}: {message}")]
    Refused {
        status: u16,
        what: String,
        message: String,
    },
    #[error("{what} failed {attempts} times, last with {last}; the next sync tries again")]
    GaveUp {
        what: String,
        attempts: u32,
        last: String,
    },
    #[error("{what} is not a page of Moota's API: {problem}")]
    Malformed { what: String, problem: PageError },
    #[error("{what} did not end after {pages} pages")]
    TooManyPages { what: String, pages: u64 },
    #[error("the Moota API URL {0:?} is not an http or https URL")]
    BadApiUrl(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What a sync did: `{"pages","mutations","new","already_known","window"}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct SyncReport {
    #[serde(flatten)]
    pub counts: SyncCounts,
    pub window: SyncWindow,
}

/// A client of Moota's API V2 at one base URL.
#[derive(Debug, Clone)]
pub struct MootaApi {
    http: reqwest::Client,
    base: Url,
    first_pause: Duration,
}

impl MootaApi {
    pub fn new(base_url: &str) -> Result<MootaApi, SyncError> {
        let bad = || SyncError::BadApiUrl(base_url.to_owned());
        let mut base = Url::parse(base_url.trim_end_matches('/')).map_err(|_| bad())?;
        if !matches!(base.scheme(), "http" | "https") || base.host_str().is_none() {
            return Err(bad());
        }
        base.set_query(None);
        base.set_fragment(None);
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(30))
            // A redirect would carry the token to wherever it points: treat it as an answer.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("setia/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|_| bad())?;
        Ok(MootaApi {
            http,
            base,
            first_pause: Duration::from_secs(1),
        })
    }

    /// The pause before the first retry (doubling after each); tests shorten it.
    pub fn with_first_pause(mut self, pause: Duration) -> MootaApi {
        self.first_pause = pause;
        self
    }

    fn endpoint(&self, path: &str, query: &[(&str, String)]) -> Url {
        let mut url = self.base.clone();
        url.path_segments_mut()
            .expect("an http URL has a path")
            .pop_if_empty()
            .push(path);
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        url
    }

    /// One page's bytes, retried on the answers worth retrying.
    async fn get(&self, token: &MootaToken, url: &Url) -> Result<Vec<u8>, SyncError> {
        let what = describe(url);
        let mut bearer = HeaderValue::from_str(&format!("Bearer {}", token.expose()))
            .map_err(|_| SyncError::Unauthorized)?;
        bearer.set_sensitive(true);
        let mut last = String::new();
        for attempt in 1..=ATTEMPTS {
            let sent = self
                .http
                .get(url.clone())
                .header(AUTHORIZATION, bearer.clone())
                .header(ACCEPT, "application/json")
                .send()
                .await;
            let mut pause = self.first_pause * 2u32.pow(attempt - 1);
            match sent {
                Ok(response) if response.status().is_success() => {
                    match read_limited(response).await {
                        Ok(body) => return Ok(body),
                        Err(error) => last = error,
                    }
                }
                Ok(response) if response.status() == StatusCode::UNAUTHORIZED => {
                    return Err(SyncError::Unauthorized)
                }
                Ok(response)
                    if response.status() == StatusCode::TOO_MANY_REQUESTS
                        || response.status().is_server_error() =>
                {
                    if let Some(wait) = retry_after(&response) {
                        if wait > MAX_RETRY_AFTER {
                            return Err(SyncError::GaveUp {
                                what,
                                attempts: attempt,
                                last: format!(
                                    "{} and Retry-After {}s",
                                    response.status(),
                                    wait.as_secs()
                                ),
                            });
                        }
                        pause = pause.max(wait);
                    }
                    last = response.status().to_string();
                }
                Ok(response) => {
                    let status = response.status().as_u16();
                    let message = read_limited(response)
                        .await
                        .map(|body| moota_message(&body))
                        .unwrap_or_default();
                    return Err(SyncError::Refused {
                        status,
                        what,
                        message,
                    });
                }
                Err(error) => last = transport_error(&error),
            }
            if attempt < ATTEMPTS {
                tracing::warn!(%what, attempt, error = %last, "Moota API: retrying");
                tokio::time::sleep(pause).await;
            }
        }
        Err(SyncError::GaveUp {
            what,
            attempts: ATTEMPTS,
            last,
        })
    }

    /// Every account's bank type, for mutations whose page left `bank` null.
    async fn bank_types(&self, token: &MootaToken) -> Result<HashMap<String, String>, SyncError> {
        let mut types = HashMap::new();
        let mut page = 1u64;
        loop {
            let url = self.endpoint(
                "bank",
                &[
                    ("page", page.to_string()),
                    ("per_page", PER_PAGE.to_string()),
                ],
            );
            let body = self.get(token, &url).await?;
            let read = parse_bank_page(&body).map_err(|problem| SyncError::Malformed {
                what: describe(&url),
                problem,
            })?;
            types.extend(read.banks);
            if read.next_page_url.is_none() {
                return Ok(types);
            }
            page += 1;
            if page > MAX_PAGES {
                return Err(SyncError::TooManyPages {
                    what: describe(&url),
                    pages: MAX_PAGES,
                });
            }
        }
    }
}

/// The request as errors and logs name it: path and query (dates, page), no token.
fn describe(url: &Url) -> String {
    match url.query() {
        Some(query) => format!("GET {}?{query}", url.path()),
        None => format!("GET {}", url.path()),
    }
}

fn retry_after(response: &reqwest::Response) -> Option<Duration> {
    let seconds = response.headers().get(RETRY_AFTER)?.to_str().ok()?;
    seconds.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// A transport failure in words, without the URL (reqwest's Display repeats it).
fn transport_error(error: &reqwest::Error) -> String {
    if error.is_timeout() {
        "a timeout".into()
    } else if error.is_connect() {
        "no connection".into()
    } else if error.is_body() {
        "an answer that broke off".into()
    } else {
        "a failed request".into()
    }
}

async fn read_limited(mut response: reqwest::Response) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| transport_error(&e))? {
        if body.len() + chunk.len() > MAX_PAGE_BYTES {
            return Err(format!(
                "an answer over {} MiB",
                MAX_PAGE_BYTES / 1024 / 1024
            ));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Moota's error text (`{"message"}` or `{"error"}`), short.
fn moota_message(body: &[u8]) -> String {
    let value: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    let text = ["message", "error"]
        .iter()
        .find_map(|key| value.get(key).and_then(|v| v.as_str()))
        .map(str::to_owned)
        .unwrap_or_else(|| String::from_utf8_lossy(body).into_owned());
    text.chars().take(200).collect()
}

/// Syncs one merchant's window: records the sync with its counts (and its error when it
/// fails), and answers what it did.
pub async fn sync(
    store: &dyn Store,
    api: &MootaApi,
    merchant: &MerchantId,
    window: SyncWindow,
    started_by: SyncStarter,
    now: DateTime<Utc>,
) -> Result<SyncReport, SyncError> {
    let settings = store.moota_settings(merchant).await?;
    let token = settings
        .token
        .ok_or_else(|| SyncError::NoToken(merchant.clone()))?;
    let sync_id = store
        .start_moota_sync(merchant, started_by, window, now)
        .await?;
    let mut counts = SyncCounts::default();
    let result = run(
        store,
        api,
        merchant,
        &token,
        &settings.banks,
        window,
        sync_id,
        &mut counts,
        now,
    )
    .await;
    let error = result.as_ref().err().map(ToString::to_string);
    store
        .finish_moota_sync(merchant, sync_id, counts, error.as_deref(), Utc::now())
        .await?;
    metrics::counter!("setia_moota_mutations_found_total").increment(counts.new);
    match &result {
        Ok(()) => {
            metrics::counter!("setia_moota_syncs_total", "result" => "ok").increment(1);
            tracing::info!(%merchant, pages = counts.pages, mutations = counts.mutations,
                new = counts.new, since = %window.since, until = %window.until, "Moota sync done");
        }
        Err(error) => {
            metrics::counter!("setia_moota_syncs_total", "result" => "failed").increment(1);
            tracing::warn!(%merchant, %error, new = counts.new, "Moota sync failed");
        }
    }
    result.map(|()| SyncReport { counts, window })
}

#[allow(clippy::too_many_arguments)]
async fn run(
    store: &dyn Store,
    api: &MootaApi,
    merchant: &MerchantId,
    token: &MootaToken,
    banks: &[MootaBankId],
    window: SyncWindow,
    sync_id: i64,
    counts: &mut SyncCounts,
    now: DateTime<Utc>,
) -> Result<(), SyncError> {
    let every_bank = [None];
    let watched: Vec<Option<&MootaBankId>> = if banks.is_empty() {
        every_bank.to_vec()
    } else {
        banks.iter().map(Some).collect()
    };
    let mut bank_types: Option<HashMap<String, String>> = None;
    for bank in watched {
        let mut page = 1u64;
        loop {
            let mut query = vec![
                ("type", "CR".to_owned()),
                ("start_date", window.since.format("%Y-%m-%d").to_string()),
                ("end_date", window.until.format("%Y-%m-%d").to_string()),
                ("per_page", PER_PAGE.to_string()),
                ("page", page.to_string()),
            ];
            if let Some(bank) = bank {
                query.push(("bank", bank.as_str().to_owned()));
            }
            let url = api.endpoint("mutation", &query);
            let body = api.get(token, &url).await?;
            let read = parse_mutation_page(&body).map_err(|problem| SyncError::Malformed {
                what: describe(&url),
                problem,
            })?;
            counts.pages += 1;
            let credits: Vec<_> = read
                .mutations
                .iter()
                .filter(|m| m.mutation.direction == Direction::Credit)
                .collect();
            let ids: Vec<String> = credits
                .iter()
                .map(|m| m.mutation.mutation_id.clone())
                .chain(read.refused.iter().map(|r| r.mutation_id.clone()))
                .collect();
            let known = store.known_mutations(merchant, &ids).await?;
            let unseen: Vec<_> = credits
                .iter()
                .filter(|m| !known.contains(&m.mutation.mutation_id))
                .collect();
            if bank_types.is_none() && unseen.iter().any(|m| m.lacks_bank()) {
                bank_types = Some(api.bank_types(token).await?);
            }
            let mut found: Vec<FoundMutation> = unseen
                .iter()
                .map(|m| {
                    let bank_type = bank_types
                        .as_ref()
                        .zip(m.bank_id.as_ref())
                        .and_then(|(types, id)| types.get(id))
                        .map(String::as_str);
                    FoundMutation {
                        mutation_id: m.mutation.mutation_id.clone(),
                        body: m.inbox_body(bank_type),
                    }
                })
                .collect();
            // An item setia cannot take goes to the inbox as it came: the worker
            // quarantines it with its reason, so it is seen once, not lost nor retried.
            for refused in &read.refused {
                if known.contains(&refused.mutation_id) {
                    continue;
                }
                tracing::warn!(%merchant, mutation_id = %refused.mutation_id, problem = %refused.problem, "Moota API mutation refused; kept for the quarantine");
                found.push(FoundMutation {
                    mutation_id: refused.mutation_id.clone(),
                    body: refused.inbox_body(),
                });
            }
            let new = if found.is_empty() {
                0
            } else {
                store
                    .record_found_mutations(merchant, sync_id, &found, now)
                    .await?
            };
            let listed = (credits.len() + read.refused.len()) as u64;
            counts.mutations += listed;
            counts.new += new;
            counts.already_known += listed - new;
            // Laravel's next_page_url may drop the query's filters: it says whether there
            // is a next page, and the next request is this one with the page after.
            if read.next_page_url.is_none() {
                break;
            }
            page += 1;
            if page > MAX_PAGES {
                return Err(SyncError::TooManyPages {
                    what: describe(&url),
                    pages: MAX_PAGES,
                });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_go_under_the_base_url_with_their_query() {
        let api = MootaApi::new("https://app.moota.co/api/v2/").unwrap();
        let url = api.endpoint("mutation", &[("type", "CR".into()), ("page", "2".into())]);
        assert_eq!(
            url.as_str(),
            "https://app.moota.co/api/v2/mutation?type=CR&page=2"
        );
        assert_eq!(describe(&url), "GET /api/v2/mutation?type=CR&page=2");
        let local = MootaApi::new("http://127.0.0.1:9/v2").unwrap();
        assert_eq!(
            local.endpoint("bank", &[]).as_str(),
            "http://127.0.0.1:9/v2/bank"
        );
    }

    #[test]
    fn only_http_urls_are_an_api() {
        for bad in ["", "ftp://moota.co", "moota.co/api", "https://"] {
            assert!(
                matches!(MootaApi::new(bad), Err(SyncError::BadApiUrl(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn mootas_error_text_is_read_and_kept_short() {
        assert_eq!(
            moota_message(br#"{"message":"Unauthenticated."}"#),
            "Unauthenticated."
        );
        assert_eq!(moota_message(br#"{"error":"x"}"#), "x");
        assert_eq!(moota_message(b"plain"), "plain");
        assert_eq!(moota_message(&[b'a'; 500]).len(), 200);
    }
}
