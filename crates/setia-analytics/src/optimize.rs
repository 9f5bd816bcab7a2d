//! Maximum likelihood in log-parameter space with argmin: L-BFGS on an analytic gradient,
//! Nelder-Mead as a fallback when the line search gives up early.

use std::cell::RefCell;

use argmin::core::{CostFunction, Executor, Gradient, State, TerminationReason, TerminationStatus};
use argmin::solver::linesearch::MoreThuenteLineSearch;
use argmin::solver::neldermead::NelderMead;
use argmin::solver::quasinewton::LBFGS;

/// Log-parameters are clamped to ±this inside the objective: exp(±30) is far outside any
/// sensible value, and an optimum pressed against the clamp means the likelihood has no
/// interior maximum (the model is not identified by these data).
pub(crate) const LOG_PARAMETER_LIMIT: f64 = 30.0;
/// An optimum with a log-parameter beyond ±this (e^22 ≈ 3.6e9) has run off towards a limit
/// of the parameter space rather than settled: reported as not converged.
const EXTREME_LOG_PARAMETER: f64 = 22.0;
/// Gradient norm (of the mean negative log-likelihood, per log-parameter) accepted as an
/// optimum. L-BFGS is asked for much less; this is the acceptance test afterwards.
const ACCEPTED_GRADIENT_NORM: f64 = 1e-5;
const MAX_ITERATIONS: u64 = 1_000;
/// Nelder-Mead is only a fallback; a flat likelihood must not keep it busy for long.
const MAX_SIMPLEX_ITERATIONS: u64 = 3_000;

/// A model's mean negative log-likelihood and its gradient, as functions of log-parameters.
pub(crate) trait Objective {
    fn value_and_gradient(&self, log_params: &[f64]) -> (f64, Vec<f64>);
}

#[derive(Debug, Clone)]
pub(crate) struct Optimum {
    pub log_params: Vec<f64>,
    /// The objective at `log_params` (not finite if the optimiser found no finite point).
    pub value: f64,
    pub gradient_norm: f64,
    pub converged: bool,
    pub iterations: u64,
    pub at_boundary: bool,
}

/// (log-parameters, value, gradient) of one evaluation.
type Evaluation = (Vec<f64>, f64, Vec<f64>);

/// Wraps an objective for argmin, caching the last evaluation because argmin asks for the
/// cost and the gradient at the same point separately.
struct Problem<'a, O: Objective> {
    objective: &'a O,
    last: RefCell<Option<Evaluation>>,
}

impl<O: Objective> Problem<'_, O> {
    fn evaluate(&self, log_params: &[f64]) -> (f64, Vec<f64>) {
        if let Some((at, value, gradient)) = self.last.borrow().as_ref() {
            if at.as_slice() == log_params {
                return (*value, gradient.clone());
            }
        }
        let clamped: Vec<f64> = log_params
            .iter()
            .map(|p| p.clamp(-LOG_PARAMETER_LIMIT, LOG_PARAMETER_LIMIT))
            .collect();
        let (mut value, mut gradient) = self.objective.value_and_gradient(&clamped);
        for (component, (raw, kept)) in gradient.iter_mut().zip(log_params.iter().zip(&clamped)) {
            // Outside the clamp the objective is flat in that direction.
            if raw != kept || !component.is_finite() {
                *component = 0.0;
            }
        }
        if !value.is_finite() {
            value = f64::MAX / 4.0;
        }
        *self.last.borrow_mut() = Some((log_params.to_vec(), value, gradient.clone()));
        (value, gradient)
    }
}

impl<O: Objective> CostFunction for Problem<'_, O> {
    type Param = Vec<f64>;
    type Output = f64;
    fn cost(&self, param: &Vec<f64>) -> Result<f64, argmin::core::Error> {
        Ok(self.evaluate(param).0)
    }
}

impl<O: Objective> Gradient for Problem<'_, O> {
    type Param = Vec<f64>;
    type Gradient = Vec<f64>;
    fn gradient(&self, param: &Vec<f64>) -> Result<Vec<f64>, argmin::core::Error> {
        Ok(self.evaluate(param).1)
    }
}

fn norm(vector: &[f64]) -> f64 {
    vector.iter().map(|v| v * v).sum::<f64>().sqrt()
}

/// Minimises `objective` from `start`. Never fails: an optimiser error leaves the best point
/// found so far, judged by its gradient like any other.
pub(crate) fn minimize<O: Objective>(objective: &O, start: Vec<f64>) -> Optimum {
    let mut best = start.clone();
    let mut iterations = 0;
    let mut solver_converged = false;

    // The objective is a mean over up to millions of terms, so it is only known to ~1e-13
    // or so: stop once an iteration gains less than that, or the line search burns dozens of
    // evaluations chasing rounding noise. (A gain of 1e-11 in the mean is 1e-5 in the
    // log-likelihood of a million customers.)
    let lbfgs = LBFGS::new(MoreThuenteLineSearch::new(), 10)
        .with_tolerance_grad(1e-8)
        .and_then(|solver| solver.with_tolerance_cost(1e-11));
    if let Ok(solver) = lbfgs {
        let problem = Problem {
            objective,
            last: RefCell::new(None),
        };
        let run = Executor::new(problem, solver)
            .configure(|state| state.param(start.clone()).max_iters(MAX_ITERATIONS))
            .run();
        if let Ok(result) = run {
            let state = result.state();
            if let Some(param) = state.get_best_param() {
                best = param.clone();
            }
            iterations += state.get_iter();
            solver_converged = matches!(
                state.get_termination_status(),
                TerminationStatus::Terminated(TerminationReason::SolverConverged)
            );
        }
    }

    let judge = |point: &[f64]| {
        let (value, gradient) = objective.value_and_gradient(&clamp(point));
        (value, norm(&gradient))
    };
    let (mut value, mut gradient_norm) = judge(&best);

    if !(value.is_finite() && gradient_norm <= ACCEPTED_GRADIENT_NORM) {
        // The line search can stall on flat or badly scaled likelihoods; a simplex search
        // from the best point does not need the gradient.
        if let Some((point, nm_iterations)) = nelder_mead(objective, &best) {
            iterations += nm_iterations;
            let (nm_value, nm_gradient_norm) = judge(&point);
            if nm_value.is_finite() && (nm_value < value || !value.is_finite()) {
                best = point;
                value = nm_value;
                gradient_norm = nm_gradient_norm;
            }
        }
    }

    let at_boundary = best.iter().any(|p| p.abs() >= EXTREME_LOG_PARAMETER);
    let converged = value.is_finite()
        && !at_boundary
        && (gradient_norm <= ACCEPTED_GRADIENT_NORM || (solver_converged && gradient_norm <= 1e-3));
    Optimum {
        log_params: clamp(&best),
        value,
        gradient_norm,
        converged,
        iterations,
        at_boundary,
    }
}

fn clamp(point: &[f64]) -> Vec<f64> {
    point
        .iter()
        .map(|p| p.clamp(-LOG_PARAMETER_LIMIT, LOG_PARAMETER_LIMIT))
        .collect()
}

fn nelder_mead<O: Objective>(objective: &O, start: &[f64]) -> Option<(Vec<f64>, u64)> {
    let mut simplex = vec![start.to_vec()];
    for i in 0..start.len() {
        let mut vertex = start.to_vec();
        vertex[i] += 0.5;
        simplex.push(vertex);
    }
    let solver = NelderMead::new(simplex).with_sd_tolerance(1e-14).ok()?;
    let problem = Problem {
        objective,
        last: RefCell::new(None),
    };
    let result = Executor::new(problem, solver)
        .configure(|state| state.max_iters(MAX_SIMPLEX_ITERATIONS))
        .run()
        .ok()?;
    let state = result.state();
    Some((state.get_best_param()?.clone(), state.get_iter()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (x−3)² + 10(y+1)² in "log-parameters".
    struct Bowl;
    impl Objective for Bowl {
        fn value_and_gradient(&self, p: &[f64]) -> (f64, Vec<f64>) {
            let (x, y) = (p[0], p[1]);
            (
                (x - 3.0).powi(2) + 10.0 * (y + 1.0).powi(2),
                vec![2.0 * (x - 3.0), 20.0 * (y + 1.0)],
            )
        }
    }

    /// Decreasing forever in its only parameter, like a likelihood maximised at a limit.
    struct Slope;
    impl Objective for Slope {
        fn value_and_gradient(&self, p: &[f64]) -> (f64, Vec<f64>) {
            let denominator = (1.0 + p[0] * p[0]).sqrt();
            (1.0 / denominator, vec![-p[0] / denominator.powi(3)])
        }
    }

    #[test]
    fn finds_an_interior_minimum() {
        let optimum = minimize(&Bowl, vec![0.0, 0.0]);
        assert!(optimum.converged, "{optimum:?}");
        assert!((optimum.log_params[0] - 3.0).abs() < 1e-6);
        assert!((optimum.log_params[1] + 1.0).abs() < 1e-6);
    }

    #[test]
    fn reports_a_boundary_optimum_as_not_converged() {
        let optimum = minimize(&Slope, vec![1.0]);
        assert!(!optimum.converged, "{optimum:?}");
    }
}
