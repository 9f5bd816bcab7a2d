//! The Gamma-Gamma spend model (Fader, Hardie & Lee 2005, "RFM and CLV") and customer
//! lifetime value as lifetimes' `GammaGammaFitter.customer_lifetime_value` computes it.
//!
//! A customer's transaction values are Gamma(p, ν) with ν ~ Gamma(q, v) across customers.
//! The data per repeat customer are x (repeat purchase days) and m, the mean value of a
//! repeat purchase day. Money here is in major currency units (rupiah, dollars), so v is
//! too.

use serde::{Deserialize, Serialize};
use statrs::function::gamma::{digamma, ln_gamma};

use crate::bgnbd::{fit_note, BgNbdHistory, BgNbdParams, FitError, ModelFit, MIN_CUSTOMERS_TO_FIT};
use crate::hyp2f1::Hyp2f1Error;
use crate::optimize::{minimize, Objective};

/// CLV horizon, in months.
pub const CLV_MONTHS: u32 = 12;
/// Monthly discount rate of the CLV.
pub const CLV_MONTHLY_DISCOUNT_RATE: f64 = 0.01;
/// Weeks per month, lifetimes' factor for `freq="W"`.
pub const WEEKS_PER_MONTH: f64 = 4.345;

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct GammaGammaParams {
    pub p: f64,
    pub q: f64,
    pub v: f64,
}

pub type GammaGammaFit = ModelFit<GammaGammaParams>;

impl GammaGammaParams {
    /// E[transaction value] across customers, p·v/(q−1); `None` when q ≤ 1 (infinite).
    pub fn population_mean(&self) -> Option<f64> {
        (self.q > 1.0).then(|| self.p * self.v / (self.q - 1.0))
    }

    /// E[value of a transaction | x, m]: a weighted mean of the population mean and the
    /// customer's own mean m (lifetimes' `conditional_expected_average_profit`).
    pub fn conditional_expected_average_profit(
        &self,
        frequency: u32,
        monetary_value: f64,
    ) -> Option<f64> {
        let population_mean = self.population_mean()?;
        let px = self.p * f64::from(frequency);
        let individual_weight = px / (px + self.q - 1.0);
        Some((1.0 - individual_weight) * population_mean + individual_weight * monetary_value)
    }
}

/// Repeat customers' (x, m), grouped by x so the gamma functions are evaluated once per x.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GammaGammaData {
    /// m of each customer, ordered by x.
    monetary: Vec<f64>,
    /// (x, range into `monetary`, Σ ln m over the range), ascending x.
    groups: Vec<(u32, std::ops::Range<usize>, f64)>,
}

impl GammaGammaData {
    /// Keeps customers with x > 0 and a positive, finite m (a customer whose repeat
    /// purchases were all free carries no information about spend and ln 0 is undefined).
    pub fn new(observations: impl IntoIterator<Item = (u32, f64)>) -> Self {
        let mut kept: Vec<(u32, f64)> = observations
            .into_iter()
            .filter(|(frequency, monetary)| {
                *frequency > 0 && monetary.is_finite() && *monetary > 0.0
            })
            .collect();
        kept.sort_by_key(|(frequency, _)| *frequency);
        let mut groups: Vec<(u32, std::ops::Range<usize>, f64)> = Vec::new();
        for (index, (frequency, monetary)) in kept.iter().enumerate() {
            match groups.last_mut() {
                Some((x, range, sum_ln)) if x == frequency => {
                    range.end = index + 1;
                    *sum_ln += monetary.ln();
                }
                _ => groups.push((*frequency, index..index + 1, monetary.ln())),
            }
        }
        GammaGammaData {
            monetary: kept.into_iter().map(|(_, monetary)| monetary).collect(),
            groups,
        }
    }

    pub fn customers(&self) -> usize {
        self.monetary.len()
    }

    pub fn log_likelihood(&self, params: &GammaGammaParams) -> f64 {
        self.evaluate(params, false).0
    }

    /// Σ over customers of ln Γ(px+q) − ln Γ(px) − ln Γ(q) + q ln v + (px−1) ln m + px ln x
    /// − (px+q) ln(xm+v), and its gradient with respect to (p, q, v).
    fn evaluate(&self, params: &GammaGammaParams, with_gradient: bool) -> (f64, [f64; 3]) {
        let GammaGammaParams { p, q, v } = *params;
        let (ln_v, ln_gamma_q) = (v.ln(), ln_gamma(q));
        let digamma_q = if with_gradient { digamma(q) } else { 0.0 };
        let mut total = 0.0;
        let mut gradient = [0.0; 3];
        for (frequency, range, sum_ln_monetary) in &self.groups {
            let x = f64::from(*frequency);
            let n = range.len() as f64;
            let px = p * x;
            let mut sum_ln_spend = 0.0;
            let mut sum_inverse_spend = 0.0;
            for &monetary in &self.monetary[range.clone()] {
                let spend = x * monetary + v;
                sum_ln_spend += spend.ln();
                sum_inverse_spend += 1.0 / spend;
            }
            let ln_x = x.ln();
            total += n * (ln_gamma(px + q) - ln_gamma(px) - ln_gamma_q + q * ln_v + px * ln_x)
                + (px - 1.0) * sum_ln_monetary
                - (px + q) * sum_ln_spend;
            if with_gradient {
                let digamma_pxq = digamma(px + q);
                gradient[0] += n * x * (digamma_pxq - digamma(px) + ln_x) + x * sum_ln_monetary
                    - x * sum_ln_spend;
                gradient[1] += n * (digamma_pxq - digamma_q + ln_v) - sum_ln_spend;
                gradient[2] += n * q / v - (px + q) * sum_inverse_spend;
            }
        }
        (total, gradient)
    }
}

struct GammaGammaObjective<'a> {
    data: &'a GammaGammaData,
}

impl Objective for GammaGammaObjective<'_> {
    fn value_and_gradient(&self, log_params: &[f64]) -> (f64, Vec<f64>) {
        let params = params_from_log(log_params);
        let (log_likelihood, gradient) = self.data.evaluate(&params, true);
        let scale = -1.0 / self.data.customers().max(1) as f64;
        let values = [params.p, params.q, params.v];
        let gradient = gradient
            .iter()
            .zip(values)
            .map(|(derivative, value)| scale * derivative * value)
            .collect();
        (scale * log_likelihood, gradient)
    }
}

fn params_from_log(log_params: &[f64]) -> GammaGammaParams {
    let at = |i: usize| log_params.get(i).copied().unwrap_or(0.0).exp();
    GammaGammaParams {
        p: at(0),
        q: at(1),
        v: at(2),
    }
}

/// Maximum-likelihood Gamma-Gamma fit, started from p = q = 1 and v = the mean of m.
pub fn fit_gamma_gamma(data: &GammaGammaData) -> Result<GammaGammaFit, FitError> {
    let customers = data.customers() as u64;
    if customers < MIN_CUSTOMERS_TO_FIT {
        return Err(FitError::NotEnoughData(format!(
            "{customers} repeat customer(s) with a positive spend; at least {MIN_CUSTOMERS_TO_FIT} are needed to fit Gamma-Gamma"
        )));
    }
    let mean_monetary = data.monetary.iter().sum::<f64>() / customers as f64;
    let optimum = minimize(
        &GammaGammaObjective { data },
        vec![0.0, 0.0, mean_monetary.ln()],
    );
    let params = params_from_log(&optimum.log_params);
    let log_likelihood = data.log_likelihood(&params);
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

/// Why a CLV could not be computed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ClvError {
    #[error("Gamma-Gamma q = {0} <= 1: the population mean spend is infinite")]
    InfiniteMeanSpend(f64),
    #[error(transparent)]
    Hypergeometric(#[from] Hyp2f1Error),
}

/// Expected discounted purchases over the CLV horizon, before the P(alive) factor:
/// Σ_{k=1..12} [G(4.345k) − G(4.345(k−1))] / 1.01^k, where G is the BG/NBD conditional
/// expectation without P(alive). Depends on (x, T) only, so the batch caches it.
pub(crate) fn discounted_purchase_growth(
    params: &BgNbdParams,
    frequency: u32,
    age_weeks: f64,
) -> Result<f64, Hyp2f1Error> {
    let mut total = 0.0;
    let mut previous = 0.0;
    for month in 1..=CLV_MONTHS {
        let horizon = f64::from(month) * WEEKS_PER_MONTH;
        let cumulative = params.purchase_growth(frequency, age_weeks, horizon)?;
        total += (cumulative - previous)
            / (1.0 + CLV_MONTHLY_DISCOUNT_RATE).powf(horizon / WEEKS_PER_MONTH);
        previous = cumulative;
    }
    Ok(total)
}

/// A customer's 12-month CLV with a 1 % monthly discount, in the currency unit of
/// `monetary_value` (the customer's mean repeat-day value; 0 if none), as lifetimes'
/// `GammaGammaFitter.customer_lifetime_value(bgf, x, t_x, T, m, time=12, freq="W")`.
pub fn customer_lifetime_value(
    churn: &BgNbdParams,
    spend: &GammaGammaParams,
    history: &BgNbdHistory,
    monetary_value: f64,
) -> Result<f64, ClvError> {
    let expected_value = spend
        .conditional_expected_average_profit(history.frequency, monetary_value)
        .ok_or(ClvError::InfiniteMeanSpend(spend.q))?;
    let growth = discounted_purchase_growth(churn, history.frequency, history.age_weeks)?;
    Ok(expected_value * churn.p_alive(history) * growth)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gradient_matches_finite_differences() {
        let data = GammaGammaData::new([
            (1, 20.0),
            (1, 35.5),
            (2, 12.25),
            (2, 80.0),
            (5, 40.0),
            (0, 99.0),
            (3, 0.0),
        ]);
        assert_eq!(data.customers(), 5);
        let params = GammaGammaParams {
            p: 4.0,
            q: 3.0,
            v: 20.0,
        };
        let (_, gradient) = data.evaluate(&params, true);
        let values = [params.p, params.q, params.v];
        for i in 0..3 {
            let step = 1e-6 * values[i];
            let make = |delta: f64| {
                let mut v = values;
                v[i] += delta;
                GammaGammaParams {
                    p: v[0],
                    q: v[1],
                    v: v[2],
                }
            };
            let numeric = (data.log_likelihood(&make(step)) - data.log_likelihood(&make(-step)))
                / (2.0 * step);
            assert!(
                (numeric - gradient[i]).abs() <= 1e-5 * numeric.abs().max(1.0),
                "parameter {i}: analytic {} numeric {numeric}",
                gradient[i]
            );
        }
    }

    #[test]
    fn expected_profit_shrinks_towards_the_population_mean() {
        let params = GammaGammaParams {
            p: 6.0,
            q: 4.0,
            v: 15.0,
        };
        assert_eq!(params.population_mean(), Some(30.0));
        // x = 0: no own information, the population mean.
        assert_eq!(
            params.conditional_expected_average_profit(0, 0.0),
            Some(30.0)
        );
        // x = 1: weight 6/9 on the customer's own 60.
        let expected = (1.0 / 3.0) * 30.0 + (2.0 / 3.0) * 60.0;
        let actual = params.conditional_expected_average_profit(1, 60.0).unwrap();
        assert!((actual - expected).abs() < 1e-12);
        let heavy_tail = GammaGammaParams { q: 0.9, ..params };
        assert_eq!(heavy_tail.population_mean(), None);
    }
}
