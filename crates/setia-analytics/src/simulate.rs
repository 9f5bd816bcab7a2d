//! Synthetic purchase histories drawn from the models the batch fits.
//!
//! Each customer is acquired (makes a first purchase) at a uniformly random instant of the
//! window. While alive they buy as a Poisson process with rate λ ~ Gamma(r, α) per week;
//! after each repeat purchase they drop out with probability p ~ Beta(a, b) (BG/NBD). Every
//! purchase's amount is Gamma(p_s, ν) with ν ~ Gamma(q, v) per customer (Gamma-Gamma, in
//! major currency units). Draws come from ChaCha8 seeded with the configured seed, so a seed
//! always gives the same rows.
//!
//! Hitting a purchase count: [`SimulationConfig::targeting`] keeps the window, r, a, b and
//! the spend model, and solves for α so that the *expected* number of purchases equals the
//! target (scaling α scales every customer's purchase rate). The expectation is exact under
//! the model: N · (1 + (1/W)∫₀ᵂ E[X(u)] du), with E[X(t)] the BG/NBD expected repeat
//! purchases of a new customer (FHL 2005 eq. 9) and acquisition uniform over the window of
//! W days. Scaling the window instead would move dates outside what the caller asked for.

use std::io::Write;

use chrono::{Datelike, NaiveDate, Offset, TimeZone};
use chrono_tz::Tz;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Beta, Distribution, Exp1, Gamma};

use crate::bgnbd::BgNbdParams;
use crate::calendar::{epoch_day, MICROS_PER_DAY};
use crate::gamma_gamma::GammaGammaParams;
use crate::hyp2f1::Hyp2f1Error;
use crate::input::PurchaseColumns;

/// Why a simulation could not run.
#[derive(Debug, thiserror::Error)]
pub enum SimulationError {
    #[error("invalid simulation parameter: {0}")]
    InvalidParameter(String),
    #[error("{purchases} purchases cannot come from {customers} customers: every customer makes at least one")]
    TooFewPurchases { customers: u64, purchases: u64 },
    #[error("{purchases} purchases are out of reach of these parameters (at most about {reachable:.0} expected); raise a or lower b")]
    TargetUnreachable { purchases: u64, reachable: f64 },
    #[error("computing the expected purchase count failed: {0}")]
    Hypergeometric(#[from] Hyp2f1Error),
    #[error("writing the CSV failed: {0}")]
    Io(#[from] std::io::Error),
}

/// The models' parameters: BG/NBD (α in weeks) and Gamma-Gamma (v in major units).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SimulationParams {
    pub churn: BgNbdParams,
    pub spend: GammaGammaParams,
}

impl Default for SimulationParams {
    /// CDNOW-like buying (r 0.25, α 4 weeks, a 0.8, b 2.5) and a rupiah spend with a mean of
    /// Rp 150 000 per purchase (p 6, q 4, v 75 000).
    fn default() -> Self {
        SimulationParams {
            churn: BgNbdParams {
                r: 0.25,
                alpha: 4.0,
                a: 0.8,
                b: 2.5,
            },
            spend: GammaGammaParams {
                p: 6.0,
                q: 4.0,
                v: 75_000.0,
            },
        }
    }
}

/// The local days over which customers are acquired and observed, both ends included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SimulationWindow {
    first_day: NaiveDate,
    last_day: NaiveDate,
}

impl SimulationWindow {
    pub fn new(first_day: NaiveDate, last_day: NaiveDate) -> Result<Self, SimulationError> {
        if last_day < first_day {
            return Err(SimulationError::InvalidParameter(format!(
                "the window ends ({last_day}) before it starts ({first_day})"
            )));
        }
        Ok(SimulationWindow {
            first_day,
            last_day,
        })
    }

    /// The `days` days ending on `last_day`.
    pub fn ending_on(last_day: NaiveDate, days: u32) -> Result<Self, SimulationError> {
        let first_day = last_day
            .checked_sub_days(chrono::Days::new(u64::from(days.max(1) - 1)))
            .ok_or_else(|| {
                SimulationError::InvalidParameter(format!("{days} days before {last_day}"))
            })?;
        Self::new(first_day, last_day)
    }

    pub fn first_day(&self) -> NaiveDate {
        self.first_day
    }

    pub fn last_day(&self) -> NaiveDate {
        self.last_day
    }

    pub fn days(&self) -> u32 {
        (epoch_day(self.last_day) - epoch_day(self.first_day) + 1) as u32
    }
}

impl Default for SimulationWindow {
    /// 2024-01-01 to 2025-12-31: fixed, so a seed gives the same file whenever it runs.
    fn default() -> Self {
        SimulationWindow {
            first_day: NaiveDate::from_ymd_opt(2024, 1, 1).unwrap_or(NaiveDate::MIN),
            last_day: NaiveDate::from_ymd_opt(2025, 12, 31).unwrap_or(NaiveDate::MIN),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SimulationConfig {
    pub customers: u64,
    pub window: SimulationWindow,
    pub params: SimulationParams,
    pub seed: u64,
}

impl SimulationConfig {
    /// `customers` customers with `params` as given.
    pub fn new(
        customers: u64,
        window: SimulationWindow,
        params: SimulationParams,
        seed: u64,
    ) -> Self {
        SimulationConfig {
            customers,
            window,
            params,
            seed,
        }
    }

    /// `customers` customers whose expected purchase count is `purchases`, by solving for α
    /// (all else as in `params`). See the module documentation.
    pub fn targeting(
        customers: u64,
        purchases: u64,
        window: SimulationWindow,
        params: SimulationParams,
        seed: u64,
    ) -> Result<Self, SimulationError> {
        validate(&params)?;
        if purchases < customers {
            return Err(SimulationError::TooFewPurchases {
                customers,
                purchases,
            });
        }
        let mut config = SimulationConfig::new(customers, window, params, seed);
        if customers == 0 {
            return Ok(config);
        }
        let target = purchases as f64;
        let expected_at = |ln_alpha: f64| {
            let churn = BgNbdParams {
                alpha: ln_alpha.exp(),
                ..params.churn
            };
            expected_purchase_count(customers, window, &churn)
        };
        // The expected count falls as α grows (slower buying); bisect on ln α.
        let centre = params.churn.alpha.ln();
        let (mut fast, mut slow) = (centre - 25.0, centre + 25.0);
        let most = expected_at(fast)?;
        if most < target {
            return Err(SimulationError::TargetUnreachable {
                purchases,
                reachable: most,
            });
        }
        if expected_at(slow)? >= target {
            config.params.churn.alpha = slow.exp();
            return Ok(config);
        }
        for _ in 0..100 {
            let middle = 0.5 * (fast + slow);
            if expected_at(middle)? > target {
                fast = middle;
            } else {
                slow = middle;
            }
            if slow - fast < 1e-10 {
                break;
            }
        }
        config.params.churn.alpha = (0.5 * (fast + slow)).exp();
        Ok(config)
    }

    /// The expected number of purchases (first purchases included) under this config.
    pub fn expected_purchases(&self) -> Result<f64, SimulationError> {
        validate(&self.params)?;
        expected_purchase_count(self.customers, self.window, &self.params.churn)
    }
}

/// N · (1 + mean over a uniform acquisition time of E[X(remaining time)]), by Simpson's rule
/// on the smooth, increasing E[X(t)].
fn expected_purchase_count(
    customers: u64,
    window: SimulationWindow,
    churn: &BgNbdParams,
) -> Result<f64, SimulationError> {
    const INTERVALS: u32 = 256;
    let window_weeks = f64::from(window.days()) / 7.0;
    let step = window_weeks / f64::from(INTERVALS);
    let mut integral = 0.0;
    for i in 0..=INTERVALS {
        let weight = if i == 0 || i == INTERVALS {
            1.0
        } else if i % 2 == 1 {
            4.0
        } else {
            2.0
        };
        integral += weight * churn.unconditional_expected_purchases(f64::from(i) * step)?;
    }
    let mean_repeat_purchases = integral * step / 3.0 / window_weeks;
    Ok(customers as f64 * (1.0 + mean_repeat_purchases))
}

fn validate(params: &SimulationParams) -> Result<(), SimulationError> {
    let BgNbdParams { r, alpha, a, b } = params.churn;
    let GammaGammaParams { p, q, v } = params.spend;
    for (name, value) in [
        ("r", r),
        ("alpha", alpha),
        ("a", a),
        ("b", b),
        ("p", p),
        ("q", q),
        ("v", v),
    ] {
        if !(value.is_finite() && value > 0.0) {
            return Err(SimulationError::InvalidParameter(format!(
                "{name} must be a positive number, got {value}"
            )));
        }
    }
    Ok(())
}

/// One simulated purchase, in the merchant's local time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SimulatedPurchase {
    /// 0-based customer number.
    pub customer: u64,
    /// Days since the window's first day.
    pub day_offset: u32,
    /// Seconds since local midnight.
    pub second_of_day: u32,
    pub amount_minor: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SimulationSummary {
    pub customers: u64,
    pub purchases: u64,
    pub revenue_minor: i64,
}

/// Draws every purchase, customer by customer and in time order within a customer, and
/// hands each to `emit`.
pub fn simulate(
    config: &SimulationConfig,
    mut emit: impl FnMut(&SimulatedPurchase) -> Result<(), SimulationError>,
) -> Result<SimulationSummary, SimulationError> {
    validate(&config.params)?;
    let invalid =
        |error: &dyn std::fmt::Display| SimulationError::InvalidParameter(error.to_string());
    let BgNbdParams { r, alpha, a, b } = config.params.churn;
    let GammaGammaParams { p, q, v } = config.params.spend;
    let purchase_rate = Gamma::new(r, 1.0 / alpha).map_err(|e| invalid(&e))?;
    let dropout = Beta::new(a, b).map_err(|e| invalid(&e))?;
    let spend_rate = Gamma::new(q, 1.0 / v).map_err(|e| invalid(&e))?;
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
    let window_days = f64::from(config.window.days());
    let mut summary = SimulationSummary {
        customers: config.customers,
        ..SimulationSummary::default()
    };

    for customer in 0..config.customers {
        let acquired_at = rng.random::<f64>() * window_days;
        let rate_per_day = purchase_rate.sample(&mut rng) / 7.0;
        let dropout_probability = dropout.sample(&mut rng);
        // ν can underflow for tiny q; keep the per-purchase Gamma well defined.
        let nu = spend_rate.sample(&mut rng).clamp(1e-300, 1e300);
        let spend = Gamma::new(p, 1.0 / nu).map_err(|e| invalid(&e))?;

        // The first purchase at acquisition; then repeat purchases until the customer drops
        // out (right after a repeat purchase, with probability p) or the window ends.
        let mut at = acquired_at;
        let mut is_repeat = false;
        loop {
            let purchase = draw_purchase(customer, at, &spend, &mut rng);
            emit(&purchase)?;
            summary.purchases += 1;
            summary.revenue_minor = summary.revenue_minor.saturating_add(purchase.amount_minor);
            if is_repeat && rng.random::<f64>() < dropout_probability {
                break;
            }
            is_repeat = true;
            let wait: f64 = Exp1.sample(&mut rng);
            at += wait / rate_per_day;
            // A zero rate gives an infinite (or NaN) wait: the customer never buys again.
            if at.is_nan() || at >= window_days {
                break;
            }
        }
    }
    Ok(summary)
}

fn draw_purchase(
    customer: u64,
    at: f64,
    spend: &Gamma<f64>,
    rng: &mut ChaCha8Rng,
) -> SimulatedPurchase {
    let day = at.floor();
    let amount_major: f64 = spend.sample(rng);
    SimulatedPurchase {
        customer,
        day_offset: day as u32,
        second_of_day: (((at - day) * 86_400.0) as u32).min(86_399),
        // Capped at 10^13 minor units so a freak draw cannot overflow the totals.
        amount_minor: (amount_major * 100.0).round().clamp(0.0, 1e13) as i64,
    }
}

/// The simulated purchases as batch input: customer keys 1..=N, local times converted to
/// UTC in `zone` (a wall time skipped by daylight saving moves one hour later).
pub fn simulate_columns(
    config: &SimulationConfig,
    zone: Tz,
) -> Result<PurchaseColumns, SimulationError> {
    let expected = config.expected_purchases().unwrap_or(0.0).clamp(0.0, 1e9) as usize;
    let mut columns = PurchaseColumns::with_capacity(expected + expected / 10);
    let first_day = epoch_day(config.window.first_day);
    // Offset (seconds east of UTC) per local day when it is the same all day long.
    let mut day_offsets: Vec<Option<Option<i32>>> = vec![None; config.window.days() as usize];
    let summary = simulate(config, |purchase| {
        let day = first_day + purchase.day_offset as i32;
        let slot = &mut day_offsets[purchase.day_offset as usize];
        let constant_offset = *slot.get_or_insert_with(|| constant_offset_of_day(zone, day));
        let local_micros =
            i64::from(day) * MICROS_PER_DAY + i64::from(purchase.second_of_day) * 1_000_000;
        let utc_micros = match constant_offset {
            Some(offset) => local_micros - i64::from(offset) * 1_000_000,
            None => utc_of_local(zone, local_micros).ok_or_else(|| {
                SimulationError::InvalidParameter(format!(
                    "local time {local_micros} µs cannot be placed in {zone}"
                ))
            })?,
        };
        columns.push(
            purchase.customer as i64 + 1,
            utc_micros,
            purchase.amount_minor,
        );
        Ok(())
    })?;
    debug_assert_eq!(summary.purchases as usize, columns.len());
    Ok(columns)
}

fn constant_offset_of_day(zone: Tz, day: i32) -> Option<i32> {
    let offset_at = |local_micros: i64| {
        let utc = utc_of_local(zone, local_micros)?;
        let instant = chrono::DateTime::from_timestamp_micros(utc)?;
        Some(
            zone.offset_from_utc_datetime(&instant.naive_utc())
                .fix()
                .local_minus_utc(),
        )
    };
    let start = i64::from(day) * MICROS_PER_DAY;
    let morning = offset_at(start)?;
    let evening = offset_at(start + MICROS_PER_DAY - 1)?;
    (morning == evening).then_some(morning)
}

fn utc_of_local(zone: Tz, local_micros: i64) -> Option<i64> {
    let naive = chrono::DateTime::from_timestamp_micros(local_micros)?.naive_utc();
    let resolved = zone.from_local_datetime(&naive).earliest().or_else(|| {
        zone.from_local_datetime(&(naive + chrono::Duration::hours(1)))
            .earliest()
    })?;
    Some(resolved.timestamp_micros())
}

/// Writes the simulated purchases as an import CSV,
/// `customer_external_id,occurred_at,amount,reference`, with a header. Customers are
/// `C` and a zero-padded number; times are local (`YYYY-MM-DD HH:MM:SS`); amounts have two
/// decimals; references are `sim-<seed>-<row>`, unique within the file, so importing the same
/// file twice imports nothing the second time. Wrap slow writers in a `BufWriter` yourself
/// only if you need a specific buffer: this function buffers already.
pub fn write_import_csv<W: Write>(
    config: &SimulationConfig,
    writer: W,
) -> Result<SimulationSummary, SimulationError> {
    let mut out = std::io::BufWriter::with_capacity(1 << 20, writer);
    out.write_all(b"customer_external_id,occurred_at,amount,reference\n")?;
    let dates: Vec<[u8; 10]> = (0..config.window.days())
        .map(|offset| {
            let date = config.window.first_day + chrono::Days::new(u64::from(offset));
            let mut text = [b'0'; 10];
            write_padded(&mut text[0..4], date.year().max(0) as u64);
            text[4] = b'-';
            write_padded(&mut text[5..7], u64::from(date.month()));
            text[7] = b'-';
            write_padded(&mut text[8..10], u64::from(date.day()));
            text
        })
        .collect();
    let id_width = digits(config.customers.max(1));
    let mut reference_prefix = format!("sim-{}-", config.seed).into_bytes();
    reference_prefix.shrink_to_fit();
    let mut line: Vec<u8> = Vec::with_capacity(128);
    let mut row: u64 = 0;
    let summary = simulate(config, |purchase| {
        line.clear();
        line.push(b'C');
        push_padded(&mut line, purchase.customer + 1, id_width);
        line.push(b',');
        line.extend_from_slice(&dates[purchase.day_offset as usize]);
        line.push(b' ');
        let seconds = purchase.second_of_day;
        push_padded(&mut line, u64::from(seconds / 3600), 2);
        line.push(b':');
        push_padded(&mut line, u64::from(seconds / 60 % 60), 2);
        line.push(b':');
        push_padded(&mut line, u64::from(seconds % 60), 2);
        line.push(b',');
        let amount = purchase.amount_minor.max(0) as u64;
        push_padded(&mut line, amount / 100, 1);
        line.push(b'.');
        push_padded(&mut line, amount % 100, 2);
        line.push(b',');
        line.extend_from_slice(&reference_prefix);
        row += 1;
        push_padded(&mut line, row, 1);
        line.push(b'\n');
        out.write_all(&line)?;
        Ok(())
    })?;
    out.flush()?;
    Ok(summary)
}

fn digits(mut value: u64) -> usize {
    let mut count = 1;
    while value >= 10 {
        value /= 10;
        count += 1;
    }
    count
}

/// Appends `value` in decimal, left-padded with zeros to `width` digits.
fn push_padded(out: &mut Vec<u8>, value: u64, width: usize) {
    let mut buffer = [b'0'; 20];
    let length = digits(value).max(width).min(20);
    write_padded(&mut buffer[..length], value);
    out.extend_from_slice(&buffer[..length]);
}

/// Fills `out` with `value` in decimal, right-aligned and zero-padded.
fn write_padded(out: &mut [u8], mut value: u64) {
    for slot in out.iter_mut().rev() {
        *slot = b'0' + (value % 10) as u8;
        value /= 10;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_numbers_without_allocating_strings() {
        let mut out = Vec::new();
        push_padded(&mut out, 7, 3);
        push_padded(&mut out, 12_345, 2);
        push_padded(&mut out, 0, 1);
        assert_eq!(out, b"007123450".to_vec());
        assert_eq!(digits(0), 1);
        assert_eq!(digits(10), 2);
    }

    #[test]
    fn same_seed_same_rows_and_unique_references() {
        let config = SimulationConfig::new(
            200,
            SimulationWindow::default(),
            SimulationParams::default(),
            7,
        );
        let mut first = Vec::new();
        let summary = write_import_csv(&config, &mut first).unwrap();
        let mut second = Vec::new();
        write_import_csv(&config, &mut second).unwrap();
        assert_eq!(first, second);
        let text = String::from_utf8(first).unwrap();
        let mut lines = text.lines();
        assert_eq!(
            lines.next(),
            Some("customer_external_id,occurred_at,amount,reference")
        );
        let rows: Vec<&str> = lines.collect();
        assert_eq!(rows.len() as u64, summary.purchases);
        let mut references: Vec<&str> = rows
            .iter()
            .map(|row| row.rsplit(',').next().unwrap())
            .collect();
        references.sort_unstable();
        references.dedup();
        assert_eq!(references.len(), rows.len());
        let customers: std::collections::HashSet<&str> = rows
            .iter()
            .map(|row| row.split(',').next().unwrap())
            .collect();
        assert_eq!(customers.len(), 200);
        assert!(rows[0].starts_with("C001,20"), "{}", rows[0]);
        let other_seed = SimulationConfig { seed: 8, ..config };
        let mut third = Vec::new();
        write_import_csv(&other_seed, &mut third).unwrap();
        assert_ne!(text.as_bytes(), third.as_slice());
    }

    #[test]
    fn targeting_a_count_lands_near_it() {
        let window = SimulationWindow::default();
        for (customers, purchases) in [(2_000_u64, 10_000_u64), (2_000, 2_500), (500, 6_000)] {
            let config = SimulationConfig::targeting(
                customers,
                purchases,
                window,
                SimulationParams::default(),
                11,
            )
            .unwrap();
            let expected = config.expected_purchases().unwrap();
            assert!(
                (expected - purchases as f64).abs() < 1e-6 * purchases as f64,
                "{expected}"
            );
            let summary = simulate(&config, |_| Ok(())).unwrap();
            let drawn = summary.purchases as f64;
            // Heavy-tailed per-customer counts: allow 25 % sampling error at these sizes.
            assert!(
                (drawn / purchases as f64 - 1.0).abs() < 0.25,
                "{customers} customers, target {purchases}, drew {drawn}"
            );
        }
        assert!(matches!(
            SimulationConfig::targeting(10, 5, window, SimulationParams::default(), 1),
            Err(SimulationError::TooFewPurchases { .. })
        ));
        let capped = SimulationParams {
            churn: BgNbdParams {
                a: 3.0,
                b: 1.0,
                ..SimulationParams::default().churn
            },
            ..SimulationParams::default()
        };
        // a > 1 caps each customer at b/(a−1) = 0.5 expected repeat purchases.
        assert!(matches!(
            SimulationConfig::targeting(100, 1_000, window, capped, 1),
            Err(SimulationError::TargetUnreachable { .. })
        ));
    }
}
