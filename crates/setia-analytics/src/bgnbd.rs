//! The BG/NBD model (Fader, Hardie & Lee 2005, "Counting your customers the easy way").
//!
//! A customer buys as a Poisson process with rate λ ~ Gamma(r, α) while alive and, after
//! each repeat purchase, drops out with probability p ~ Beta(a, b). Time is in weeks; a
//! customer's history is x = repeat purchase days, t_x = weeks from first to last purchase
//! day, T = weeks from first purchase day to `as_of`.
//!
//! The likelihood is evaluated on a compressed summary: customers with identical
//! (x, t_x, T) share one row with a weight, and the terms depending on x alone (the
//! log-gamma and digamma values) are computed once per distinct x.

use serde::{Deserialize, Serialize};
use statrs::function::gamma::{digamma, ln_gamma};

use crate::hyp2f1::{ln_hyp2f1, Hyp2f1Error};
use crate::optimize::{minimize, newton_from, Objective};

/// Fewer customers than this cannot pin down four parameters; the fit is not attempted.
pub const MIN_CUSTOMERS_TO_FIT: u64 = 10;

/// BG/NBD parameters; α is in weeks.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BgNbdParams {
    pub r: f64,
    pub alpha: f64,
    pub a: f64,
    pub b: f64,
}

/// One customer's history in the model's terms.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BgNbdHistory {
    /// x: repeat purchase days (distinct purchase days − 1).
    pub frequency: u32,
    /// t_x: weeks from the first to the last purchase day.
    pub recency_weeks: f64,
    /// T: weeks from the first purchase day to `as_of`.
    pub age_weeks: f64,
}

impl BgNbdHistory {
    /// From whole days, as the batch counts them.
    pub fn from_days(frequency: u32, recency_days: i32, age_days: i32) -> BgNbdHistory {
        BgNbdHistory {
            frequency,
            recency_weeks: f64::from(recency_days) / 7.0,
            age_weeks: f64::from(age_days) / 7.0,
        }
    }
}

/// Why a model was not fitted. Shown to merchants as the report's `reason`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FitError {
    #[error("{0}")]
    NotEnoughData(String),
    #[error("the log-likelihood is not finite at the optimiser's best point")]
    NotFinite,
}

/// A fitted (or attempted) model: `converged` is false when the optimiser stopped without
/// meeting its gradient test or a parameter ran off to a limit; `note` says which.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelFit<P> {
    pub params: P,
    pub log_likelihood: f64,
    pub converged: bool,
    pub iterations: u64,
    pub note: Option<String>,
}

pub type BgNbdFit = ModelFit<BgNbdParams>;

#[derive(Debug, Clone, Copy, PartialEq)]
struct SummaryRow {
    frequency: u32,
    recency_weeks: f64,
    age_weeks: f64,
    customers: f64,
}

/// Histories grouped by identical (x, t_x, T), with the number of customers in each.
///
/// Stored column-wise with each history's x, t_x and T as indices into tables of distinct
/// values: days are whole, so there are at most a few thousand distinct t_x and T however
/// many customers there are, and every logarithm of α + t_x or α + T is computed once per
/// distinct value rather than once per history.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BgNbdSummary {
    /// Per distinct history, sorted by (x, t_x, T).
    frequency_index: Vec<u32>,
    recency_index: Vec<u32>,
    age_index: Vec<u32>,
    weight: Vec<f64>,
    /// (x, total customers with that x), ascending x.
    frequencies: Vec<(u32, f64)>,
    /// Distinct t_x and T, ascending (weeks).
    recencies: Vec<f64>,
    ages: Vec<f64>,
    customers: u64,
}

/// Histories per thread below which splitting the likelihood over threads does not pay.
const HISTORIES_PER_THREAD: usize = 50_000;
/// Above this many distinct histories the fit is first run on a stride sample of them, and
/// the full likelihood is only climbed from that warm start.
const WARM_START_HISTORIES: usize = 20_000;

impl BgNbdSummary {
    /// From (history, number of customers with it) pairs; equal histories may repeat.
    pub fn from_weighted(histories: impl IntoIterator<Item = (BgNbdHistory, u64)>) -> Self {
        let mut rows: Vec<SummaryRow> = histories
            .into_iter()
            .filter(|(_, count)| *count > 0)
            .map(|(history, count)| SummaryRow {
                frequency: history.frequency,
                recency_weeks: history.recency_weeks,
                age_weeks: history.age_weeks,
                customers: count as f64,
            })
            .collect();
        rows.sort_by(|left, right| {
            left.frequency
                .cmp(&right.frequency)
                .then(left.recency_weeks.total_cmp(&right.recency_weeks))
                .then(left.age_weeks.total_cmp(&right.age_weeks))
        });
        rows.dedup_by(|later, kept| {
            let same = later.frequency == kept.frequency
                && later.recency_weeks == kept.recency_weeks
                && later.age_weeks == kept.age_weeks;
            if same {
                kept.customers += later.customers;
            }
            same
        });
        Self::from_sorted_rows(&rows)
    }

    fn from_sorted_rows(rows: &[SummaryRow]) -> Self {
        let distinct = |values: Vec<f64>| {
            let mut values = values;
            values.sort_by(f64::total_cmp);
            values.dedup();
            values
        };
        let recencies = distinct(rows.iter().map(|row| row.recency_weeks).collect());
        let ages = distinct(rows.iter().map(|row| row.age_weeks).collect());
        let position = |table: &[f64], value: f64| {
            table
                .binary_search_by(|probe| probe.total_cmp(&value))
                .unwrap_or(0) as u32
        };
        let mut frequencies: Vec<(u32, f64)> = Vec::new();
        let mut frequency_index = Vec::with_capacity(rows.len());
        for row in rows {
            match frequencies.last_mut() {
                Some((x, total)) if *x == row.frequency => *total += row.customers,
                _ => frequencies.push((row.frequency, row.customers)),
            }
            frequency_index.push((frequencies.len() - 1) as u32);
        }
        BgNbdSummary {
            frequency_index,
            recency_index: rows
                .iter()
                .map(|row| position(&recencies, row.recency_weeks))
                .collect(),
            age_index: rows
                .iter()
                .map(|row| position(&ages, row.age_weeks))
                .collect(),
            weight: rows.iter().map(|row| row.customers).collect(),
            customers: rows.iter().map(|row| row.customers).sum::<f64>() as u64,
            frequencies,
            recencies,
            ages,
        }
    }

    /// Every `stride`-th history (rows are sorted by x, t_x, T, so the sample spans them).
    fn stride_sample(&self, stride: usize) -> Self {
        let rows: Vec<SummaryRow> = (0..self.weight.len())
            .step_by(stride.max(1))
            .map(|i| SummaryRow {
                frequency: self.frequencies[self.frequency_index[i] as usize].0,
                recency_weeks: self.recencies[self.recency_index[i] as usize],
                age_weeks: self.ages[self.age_index[i] as usize],
                customers: self.weight[i],
            })
            .collect();
        Self::from_sorted_rows(&rows)
    }

    /// One customer per history.
    pub fn from_histories(histories: &[BgNbdHistory]) -> Self {
        Self::from_weighted(histories.iter().map(|history| (*history, 1)))
    }

    pub fn customers(&self) -> u64 {
        self.customers
    }

    /// Customers with x > 0.
    pub fn repeat_customers(&self) -> u64 {
        self.frequencies
            .iter()
            .filter(|(x, _)| *x > 0)
            .map(|(_, customers)| *customers)
            .sum::<f64>() as u64
    }

    /// Σ x over customers.
    pub fn repeat_purchases(&self) -> u64 {
        self.frequencies
            .iter()
            .map(|(x, customers)| f64::from(*x) * customers)
            .sum::<f64>() as u64
    }

    /// Number of distinct (x, t_x, T) rows the likelihood loops over.
    pub fn distinct_histories(&self) -> usize {
        self.weight.len()
    }

    /// The full log-likelihood (FHL 2005 eq. 6) summed over customers.
    pub fn log_likelihood(&self, params: &BgNbdParams) -> f64 {
        self.evaluate(params, false).0
    }

    /// Log-likelihood and, if asked, its gradient with respect to (r, α, a, b).
    fn evaluate(&self, params: &BgNbdParams, with_gradient: bool) -> (f64, [f64; 4]) {
        let BgNbdParams { r, alpha, a, b } = *params;
        let mut total = 0.0;
        let mut gradient = [0.0; 4];

        // Terms of x alone: ln Γ(r+x) − ln Γ(r) + r ln α + ln B(a, b+x) − ln B(a, b); and the
        // per-x pieces of the history terms.
        let (ln_gamma_r, ln_gamma_b, ln_gamma_ab) = (ln_gamma(r), ln_gamma(b), ln_gamma(a + b));
        let (digamma_r, digamma_b, digamma_ab) = if with_gradient {
            (digamma(r), digamma(b), digamma(a + b))
        } else {
            (0.0, 0.0, 0.0)
        };
        let ln_alpha = alpha.ln();
        let ln_a = a.ln();
        let mut per_frequency = Vec::with_capacity(self.frequencies.len());
        for &(x, customers) in &self.frequencies {
            let x_value = f64::from(x);
            total += customers
                * (ln_gamma(r + x_value) - ln_gamma_r
                    + r * ln_alpha
                    + ln_gamma_ab
                    + ln_gamma(b + x_value)
                    - ln_gamma_b
                    - ln_gamma(a + b + x_value));
            if with_gradient {
                gradient[0] += customers * (digamma(r + x_value) - digamma_r + ln_alpha);
                gradient[1] += customers * r / alpha;
                gradient[2] += customers * (digamma_ab - digamma(a + b + x_value));
                gradient[3] += customers
                    * (digamma_ab + digamma(b + x_value) - digamma_b - digamma(a + b + x_value));
            }
            let repeat_base = b + x_value - 1.0;
            per_frequency.push(FrequencyTerms {
                repeats: x > 0,
                shape: r + x_value,
                ln_dropout_odds: if x > 0 { ln_a - repeat_base.ln() } else { 0.0 },
                inverse_repeat_base: if x > 0 { 1.0 / repeat_base } else { 0.0 },
            });
        }
        let tables = HistoryTables {
            per_frequency,
            ln_recency: self.recencies.iter().map(|t| (alpha + t).ln()).collect(),
            inverse_recency: self.recencies.iter().map(|t| 1.0 / (alpha + t)).collect(),
            ln_age: self.ages.iter().map(|t| (alpha + t).ln()).collect(),
            inverse_age: self.ages.iter().map(|t| 1.0 / (alpha + t)).collect(),
            inverse_a: 1.0 / a,
        };

        let rows = self.weight.len();
        let threads = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
            .min(rows / HISTORIES_PER_THREAD)
            .max(1);
        let partials: Vec<HistorySums> = if threads == 1 {
            vec![self.history_sums(&tables, 0..rows, with_gradient)]
        } else {
            let chunk = rows.div_ceil(threads);
            std::thread::scope(|scope| {
                let handles: Vec<_> = (0..threads)
                    .map(|t| {
                        let range = (t * chunk)..((t + 1) * chunk).min(rows);
                        let tables = &tables;
                        scope.spawn(move || self.history_sums(tables, range, with_gradient))
                    })
                    .collect();
                handles
                    .into_iter()
                    .map(|handle| handle.join().unwrap_or(HistorySums::NOT_A_NUMBER))
                    .collect()
            })
        };
        for partial in partials {
            total += partial.log_likelihood;
            for (sum, part) in gradient.iter_mut().zip(partial.gradient) {
                *sum += part;
            }
        }
        (total, gradient)
    }

    /// Σ over histories in `range` of ln[(α+T)^−(r+x) + δ(x>0) a/(b+x−1) (α+t_x)^−(r+x)]
    /// (weighted), and its gradient.
    fn history_sums(
        &self,
        tables: &HistoryTables,
        range: std::ops::Range<usize>,
        with_gradient: bool,
    ) -> HistorySums {
        let mut log_likelihood = 0.0;
        let mut gradient = [0.0; 4];
        for i in range {
            let weight = self.weight[i];
            let terms = &tables.per_frequency[self.frequency_index[i] as usize];
            let age = self.age_index[i] as usize;
            let ln_age = tables.ln_age[age];
            let alive_term = -terms.shape * ln_age;
            if !terms.repeats {
                log_likelihood += weight * alive_term;
                if with_gradient {
                    gradient[0] -= weight * ln_age;
                    gradient[1] -= weight * terms.shape * tables.inverse_age[age];
                }
                continue;
            }
            let recency = self.recency_index[i] as usize;
            let ln_recency = tables.ln_recency[recency];
            let dropped_term = terms.ln_dropout_odds - terms.shape * ln_recency;
            // ln(e^alive + e^dropped) = max + ln(1 + e^−|difference|).
            let difference = dropped_term - alive_term;
            let smaller_share = (-difference.abs()).exp();
            log_likelihood += weight * (alive_term.max(dropped_term) + smaller_share.ln_1p());
            if with_gradient {
                // Share of the "dropped out after the last purchase" branch.
                let dropped_share = if difference >= 0.0 {
                    1.0 / (1.0 + smaller_share)
                } else {
                    smaller_share / (1.0 + smaller_share)
                };
                let alive_share = 1.0 - dropped_share;
                gradient[0] -= weight * (alive_share * ln_age + dropped_share * ln_recency);
                gradient[1] -= weight
                    * terms.shape
                    * (alive_share * tables.inverse_age[age]
                        + dropped_share * tables.inverse_recency[recency]);
                gradient[2] += weight * dropped_share * tables.inverse_a;
                gradient[3] -= weight * dropped_share * terms.inverse_repeat_base;
            }
        }
        HistorySums {
            log_likelihood,
            gradient,
        }
    }
}

/// Per-x pieces of the history terms, for one parameter value.
struct FrequencyTerms {
    repeats: bool,
    /// r + x
    shape: f64,
    /// ln(a / (b + x − 1))
    ln_dropout_odds: f64,
    /// 1 / (b + x − 1)
    inverse_repeat_base: f64,
}

/// Everything the per-history loop looks up, computed once per parameter value.
struct HistoryTables {
    per_frequency: Vec<FrequencyTerms>,
    ln_recency: Vec<f64>,
    inverse_recency: Vec<f64>,
    ln_age: Vec<f64>,
    inverse_age: Vec<f64>,
    inverse_a: f64,
}

struct HistorySums {
    log_likelihood: f64,
    gradient: [f64; 4],
}

impl HistorySums {
    /// What a panicked worker contributes: makes the objective non-finite, never wrong.
    const NOT_A_NUMBER: HistorySums = HistorySums {
        log_likelihood: f64::NAN,
        gradient: [f64::NAN; 4],
    };
}

/// Mean negative log-likelihood in log-parameters, for the optimiser.
struct BgNbdObjective<'a> {
    summary: &'a BgNbdSummary,
}

impl Objective for BgNbdObjective<'_> {
    fn value_and_gradient(&self, log_params: &[f64]) -> (f64, Vec<f64>) {
        let params = params_from_log(log_params);
        let (log_likelihood, gradient) = self.summary.evaluate(&params, true);
        let scale = -1.0 / self.summary.customers.max(1) as f64;
        let values = [params.r, params.alpha, params.a, params.b];
        let gradient = gradient
            .iter()
            .zip(values)
            .map(|(derivative, value)| scale * derivative * value)
            .collect();
        (scale * log_likelihood, gradient)
    }
}

fn params_from_log(log_params: &[f64]) -> BgNbdParams {
    let at = |i: usize| log_params.get(i).copied().unwrap_or(0.0).exp();
    BgNbdParams {
        r: at(0),
        alpha: at(1),
        a: at(2),
        b: at(3),
    }
}

/// Maximum-likelihood BG/NBD fit, started (as lifetimes does) from all parameters = 1.
pub fn fit_bg_nbd(summary: &BgNbdSummary) -> Result<BgNbdFit, FitError> {
    let customers = summary.customers();
    if customers == 0 {
        return Err(FitError::NotEnoughData(
            "no customer has a purchase on or before as_of".to_owned(),
        ));
    }
    if customers < MIN_CUSTOMERS_TO_FIT {
        return Err(FitError::NotEnoughData(format!(
            "{customers} customer(s); at least {MIN_CUSTOMERS_TO_FIT} are needed to fit BG/NBD"
        )));
    }
    if summary.repeat_customers() == 0 {
        return Err(FitError::NotEnoughData(
            "no customer has purchased on two different days, so repeat behaviour cannot be estimated"
                .to_owned(),
        ));
    }
    // Many distinct histories: climb most of the way on a sample, then finish on everything
    // with Newton steps (the sample's optimum is close, so a few suffice), or with L-BFGS
    // should they not get there.
    let objective = BgNbdObjective { summary };
    let mut warm_optimum = None;
    let start = if summary.distinct_histories() > WARM_START_HISTORIES {
        let sample =
            summary.stride_sample(summary.distinct_histories().div_ceil(WARM_START_HISTORIES));
        let warm = minimize(&BgNbdObjective { summary: &sample }, vec![0.0; 4]);
        if warm.converged {
            warm_optimum = newton_from(&objective, &warm.log_params);
            warm.log_params
        } else {
            vec![0.0; 4]
        }
    } else {
        vec![0.0; 4]
    };
    let optimum = match warm_optimum {
        Some(optimum) => optimum,
        None => minimize(&objective, start),
    };
    let params = params_from_log(&optimum.log_params);
    // The optimiser's last judgement was made at exactly these parameters: its objective is
    // the mean negative log-likelihood, so the total needs no further pass over the data.
    let log_likelihood = -optimum.value * summary.customers().max(1) as f64;
    if !log_likelihood.is_finite() {
        return Err(FitError::NotFinite);
    }
    Ok(ModelFit {
        params,
        log_likelihood,
        converged: optimum.converged,
        iterations: optimum.iterations,
        note: fit_note(&optimum),
    })
}

pub(crate) fn fit_note(optimum: &crate::optimize::Optimum) -> Option<String> {
    if optimum.converged {
        None
    } else if optimum.at_boundary {
        Some(
            "the likelihood has no interior maximum on these data (a parameter ran off to its limit)"
                .to_owned(),
        )
    } else {
        Some(format!(
            "the optimiser stopped after {} iterations with gradient norm {:.1e}",
            optimum.iterations, optimum.gradient_norm
        ))
    }
}

impl BgNbdParams {
    /// P(alive | x, t_x, T) (Hardie's note 021, as lifetimes computes it); 1 when x = 0.
    pub fn p_alive(&self, history: &BgNbdHistory) -> f64 {
        if history.frequency == 0 {
            return 1.0;
        }
        let x = f64::from(history.frequency);
        let log_odds_dead = (self.r + x)
            * ((self.alpha + history.age_weeks) / (self.alpha + history.recency_weeks)).ln()
            + (self.a / (self.b + x - 1.0)).ln();
        logistic(-log_odds_dead)
    }

    /// E[purchases in the next `horizon_weeks` | x, t_x, T] (FHL 2005 eq. 10).
    pub fn expected_purchases(
        &self,
        history: &BgNbdHistory,
        horizon_weeks: f64,
    ) -> Result<f64, Hyp2f1Error> {
        Ok(
            self.purchase_growth(history.frequency, history.age_weeks, horizon_weeks)?
                * self.p_alive(history),
        )
    }

    /// E[repeat purchases in `horizon_weeks`] of a newly acquired customer (FHL 2005 eq. 9).
    pub fn unconditional_expected_purchases(&self, horizon_weeks: f64) -> Result<f64, Hyp2f1Error> {
        self.purchase_growth(0, 0.0, horizon_weeks)
    }

    /// The conditional expectation without its P(alive) factor:
    /// (a+b+x−1)/(a−1) · [1 − ((α+T)/(α+T+t))^(r+x) ₂F₁(r+x, b+x; a+b+x−1; t/(α+T+t))].
    pub(crate) fn purchase_growth(
        &self,
        frequency: u32,
        age_weeks: f64,
        horizon_weeks: f64,
    ) -> Result<f64, Hyp2f1Error> {
        // a = 1 is a removable singularity (0/0); step around it symmetrically.
        const AROUND_ONE: f64 = 1e-7;
        if (self.a - 1.0).abs() < AROUND_ONE {
            let below = BgNbdParams {
                a: 1.0 - 2.0 * AROUND_ONE,
                ..*self
            };
            let above = BgNbdParams {
                a: 1.0 + 2.0 * AROUND_ONE,
                ..*self
            };
            return Ok(0.5
                * (below.purchase_growth(frequency, age_weeks, horizon_weeks)?
                    + above.purchase_growth(frequency, age_weeks, horizon_weeks)?));
        }
        if horizon_weeks <= 0.0 {
            return Ok(0.0);
        }
        let x = f64::from(frequency);
        let base = self.alpha + age_weeks;
        let z = horizon_weeks / (base + horizon_weeks);
        let ln_one_minus_z = -(horizon_weeks / base).ln_1p();
        let ln_hypergeometric = ln_hyp2f1(self.r + x, self.b + x, self.a + self.b + x - 1.0, z)?;
        let remaining = -(ln_hypergeometric + (self.r + x) * ln_one_minus_z).exp_m1();
        Ok((self.a + self.b + x - 1.0) / (self.a - 1.0) * remaining)
    }
}

fn logistic(value: f64) -> f64 {
    if value >= 0.0 {
        1.0 / (1.0 + (-value).exp())
    } else {
        let e = value.exp();
        e / (1.0 + e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Finite differences of the log-likelihood agree with the analytic gradient.
    #[test]
    fn gradient_matches_finite_differences() {
        let summary = BgNbdSummary::from_weighted([
            (BgNbdHistory::from_days(0, 0, 200), 30),
            (BgNbdHistory::from_days(0, 0, 5), 3),
            (BgNbdHistory::from_days(1, 40, 150), 7),
            (BgNbdHistory::from_days(3, 120, 250), 4),
            (BgNbdHistory::from_days(12, 260, 270), 2),
        ]);
        let params = BgNbdParams {
            r: 0.7,
            alpha: 3.1,
            a: 0.6,
            b: 1.9,
        };
        let (_, gradient) = summary.evaluate(&params, true);
        let values = [params.r, params.alpha, params.a, params.b];
        for i in 0..4 {
            let step = 1e-6 * values[i];
            let mut up = values;
            let mut down = values;
            up[i] += step;
            down[i] -= step;
            let make = |v: [f64; 4]| BgNbdParams {
                r: v[0],
                alpha: v[1],
                a: v[2],
                b: v[3],
            };
            let numeric = (summary.log_likelihood(&make(up)) - summary.log_likelihood(&make(down)))
                / (2.0 * step);
            assert!(
                (numeric - gradient[i]).abs() <= 1e-5 * numeric.abs().max(1.0),
                "parameter {i}: analytic {} numeric {numeric}",
                gradient[i]
            );
        }
    }

    #[test]
    fn compression_merges_identical_histories() {
        let summary = BgNbdSummary::from_histories(&[
            BgNbdHistory::from_days(1, 7, 14),
            BgNbdHistory::from_days(0, 0, 14),
            BgNbdHistory::from_days(1, 7, 14),
        ]);
        assert_eq!(summary.customers(), 3);
        assert_eq!(summary.distinct_histories(), 2);
        assert_eq!(summary.repeat_customers(), 2);
        assert_eq!(summary.repeat_purchases(), 2);
    }

    #[test]
    fn a_equal_to_one_is_handled_as_a_limit() {
        let history = BgNbdHistory::from_days(2, 100, 200);
        let at = |a: f64| {
            BgNbdParams {
                r: 0.3,
                alpha: 5.0,
                a,
                b: 2.0,
            }
            .expected_purchases(&history, 13.0)
            .unwrap()
        };
        let limit = at(1.0);
        assert!(limit.is_finite() && limit > 0.0);
        assert!((limit - 0.5 * (at(1.0 - 1e-4) + at(1.0 + 1e-4))).abs() < 1e-6);
    }
}
