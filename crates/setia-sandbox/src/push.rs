//! Sending simulated deliveries to a webhook URL at a steady rate, signed as Moota signs.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::Utc;
use serde::Serialize;
use setia_core::moota::sign;
use setia_core::WebhookSecret;

use crate::Simulator;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PushSummary {
    pub sent: u64,
    /// HTTP status → count.
    pub statuses: BTreeMap<u16, u64>,
    /// `{"status": …}` answers of 200s: received, duplicate.
    pub answers: BTreeMap<String, u64>,
    /// Calls that got no HTTP answer at all.
    pub failed: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum PushError {
    #[error("--rate must be from {MIN_RATE} to {MAX_RATE} deliveries a second")]
    BadRate,
    #[error("cannot build an HTTP client: {0}")]
    Client(reqwest::Error),
}

/// The slowest rate taken: one delivery every 1,000 seconds.
pub const MIN_RATE: f64 = 0.001;
/// The fastest: beyond this the interval is shorter than the timer's resolution.
pub const MAX_RATE: f64 = 1_000_000.0;

/// Sends `count` deliveries to `url` at `rate` per second.
pub async fn push(
    simulator: &mut Simulator,
    url: &str,
    secret: &WebhookSecret,
    count: u64,
    rate: f64,
) -> Result<PushSummary, PushError> {
    if !(MIN_RATE..=MAX_RATE).contains(&rate) {
        return Err(PushError::BadRate);
    }
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .map_err(PushError::Client)?;
    let mut ticks = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut summary = PushSummary::default();
    for _ in 0..count {
        ticks.tick().await;
        let delivery = simulator.next(Utc::now());
        let signature = sign(secret, &delivery.body);
        summary.sent += 1;
        let answer = client
            .post(url)
            .header("Content-Type", "application/json")
            .header("User-Agent", "MootaBot/1.50 (setia sandbox)")
            .header("Signature", signature)
            .body(delivery.body)
            .send()
            .await;
        match answer {
            Ok(response) => {
                *summary
                    .statuses
                    .entry(response.status().as_u16())
                    .or_default() += 1;
                if let Ok(body) = response.json::<serde_json::Value>().await {
                    if let Some(status) = body["status"].as_str() {
                        *summary.answers.entry(status.to_owned()).or_default() += 1;
                    }
                }
            }
            Err(_) => summary.failed += 1,
        }
    }
    Ok(summary)
}
