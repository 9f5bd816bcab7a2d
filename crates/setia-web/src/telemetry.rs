//! Prometheus metrics: one process-wide recorder, and a request latency histogram.

use std::collections::HashMap;
use std::sync::{OnceLock, RwLock};
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use metrics::Histogram;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

pub const REQUEST_DURATION: &str = "setia_http_request_duration_seconds";

/// How often histogram samples are folded into their buckets and quantiles.
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// The recorder is global to the process; every app in it (tests start several) shares it.
pub fn prometheus() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let handle = PrometheusBuilder::new()
            .set_buckets_for_metric(
                Matcher::Full(REQUEST_DURATION.to_owned()),
                &[
                    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                ],
            )
            .expect("valid buckets")
            .install_recorder()
            .expect("the only metrics recorder of this process");
        // The recorder keeps every histogram sample until upkeep folds it in. A scrape does
        // that too, but a server nobody scrapes would otherwise grow by every request.
        let upkeep = handle.clone();
        let started = std::thread::Builder::new()
            .name("metrics-upkeep".into())
            .spawn(move || loop {
                std::thread::sleep(UPKEEP_EVERY);
                upkeep.run_upkeep();
            });
        if let Err(error) = started {
            tracing::warn!(%error, "no metrics upkeep thread; histograms drain only when scraped");
        }
        handle
    })
}

pub async fn record_latency(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = request.extensions().get::<MatchedPath>().cloned();
    let method = method_label(request.method());
    let response = next.run(request).await;
    let route = route.as_ref().map_or("unmatched", MatchedPath::as_str);
    latency_histogram(route, method, response.status()).record(started.elapsed().as_secs_f64());
    response
}

/// Each route's histograms by method and status.
type Histograms = HashMap<Box<str>, HashMap<(&'static str, StatusCode), Histogram>>;

/// The histogram of one (route, method, status), kept once looked up: building the
/// recorder's key every time cost three strings and a hashed label list per request, on the
/// webhook's hot path. The routes and statuses a server answers are few, so this stays small.
fn latency_histogram(route: &str, method: &'static str, status: StatusCode) -> Histogram {
    static KNOWN: OnceLock<RwLock<Histograms>> = OnceLock::new();
    let known = KNOWN.get_or_init(RwLock::default);
    let key = (method, status);
    let found = known
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .get(route)
        .and_then(|by_status| by_status.get(&key).cloned());
    if let Some(histogram) = found {
        return histogram;
    }
    let histogram = metrics::histogram!(
        REQUEST_DURATION,
        "method" => key.0,
        "route" => route.to_owned(),
        "status" => key.1.as_u16().to_string()
    );
    known
        .write()
        .unwrap_or_else(|e| e.into_inner())
        .entry(route.into())
        .or_default()
        .insert(key, histogram.clone());
    histogram
}

/// The standard methods by name, any other as `other`: a client that makes up methods must
/// not make up histograms.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::CONNECT => "CONNECT",
        Method::TRACE => "TRACE",
        _ => "other",
    }
}
