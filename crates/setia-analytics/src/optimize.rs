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

/// Gradient norm at which `newton_from` stops stepping: far below the acceptance test, so its
/// optimum is as tight as L-BFGS's.
const NEWTON_GRADIENT_NORM: f64 = 1e-9;
const MAX_NEWTON_STEPS: u64 = 30;

/// Newton steps from `start`, a point already near the optimum (e.g. the optimum of a sample of
/// the data), with the Hessian taken once at `start` by forward differences of the analytic
/// gradient. Each step costs one evaluation, against about 1.3 per L-BFGS iteration that must
/// also learn the curvature. `None` when the Hessian is not positive definite there or the
/// steps do not reach the acceptance test: the caller then runs `minimize`.
pub(crate) fn newton_from<O: Objective>(objective: &O, start: &[f64]) -> Option<Optimum> {
    let n = start.len();
    let mut point = clamp(start);
    let (mut value, mut gradient) = objective.value_and_gradient(&point);
    if !value.is_finite() || gradient.iter().any(|g| !g.is_finite()) {
        return None;
    }
    let mut evaluations = 1;
    let mut hessian = vec![vec![0.0; n]; n];
    for i in 0..n {
        let step = 1e-5 * (1.0 + point[i].abs());
        let mut shifted = point.clone();
        shifted[i] += step;
        let (_, shifted_gradient) = objective.value_and_gradient(&shifted);
        evaluations += 1;
        for j in 0..n {
            hessian[i][j] = (shifted_gradient[j] - gradient[j]) / step;
        }
    }
    for i in 0..n {
        for j in 0..i {
            let mean = 0.5 * (hessian[i][j] + hessian[j][i]);
            hessian[i][j] = mean;
            hessian[j][i] = mean;
        }
    }
    let factor = cholesky(&hessian)?;
    let mut steps = 0;
    while steps < MAX_NEWTON_STEPS && norm(&gradient) > NEWTON_GRADIENT_NORM {
        steps += 1;
        let direction = cholesky_solve(&factor, &gradient);
        let mut scale = 1.0;
        let mut moved = false;
        for _ in 0..8 {
            let candidate: Vec<f64> = clamp(
                &point
                    .iter()
                    .zip(&direction)
                    .map(|(p, d)| p - scale * d)
                    .collect::<Vec<_>>(),
            );
            let (candidate_value, candidate_gradient) = objective.value_and_gradient(&candidate);
            evaluations += 1;
            if candidate_value.is_finite() && candidate_value <= value {
                point = candidate;
                value = candidate_value;
                gradient = candidate_gradient;
                moved = true;
                break;
            }
            scale *= 0.5;
        }
        if !moved {
            // No step lowers the objective any more: it is at its rounding floor.
            break;
        }
    }
    let gradient_norm = norm(&gradient);
    if !(gradient_norm <= ACCEPTED_GRADIENT_NORM) {
        return None;
    }
    let at_boundary = point.iter().any(|p| p.abs() >= EXTREME_LOG_PARAMETER);
    Some(Optimum {
        log_params: point,
        value,
        gradient_norm,
        converged: !at_boundary,
        iterations: evaluations,
        at_boundary,
    })
}

/// Lower-triangular L with L Lᵀ = `matrix`, or `None` if it is not positive definite.
fn cholesky(matrix: &[Vec<f64>]) -> Option<Vec<Vec<f64>>> {
    let n = matrix.len();
    let mut lower = vec![vec![0.0; n]; n];
    for i in 0..n {
        for j in 0..=i {
            let sum: f64 = (0..j).map(|k| lower[i][k] * lower[j][k]).sum();
            if i == j {
                let pivot = matrix[i][i] - sum;
                if !(pivot.is_finite() && pivot > 0.0) {
                    return None;
                }
                lower[i][j] = pivot.sqrt();
            } else {
                lower[i][j] = (matrix[i][j] - sum) / lower[j][j];
            }
        }
    }
    Some(lower)
}

/// x with L Lᵀ x = b.
fn cholesky_solve(lower: &[Vec<f64>], b: &[f64]) -> Vec<f64> {
    let n = b.len();
    let mut y = vec![0.0; n];
    for i in 0..n {
        let sum: f64 = (0..i).map(|k| lower[i][k] * y[k]).sum();
        y[i] = (b[i] - sum) / lower[i][i];
    }
    let mut x = vec![0.0; n];
    for i in (0..n).rev() {
        let sum: f64 = (i + 1..n).map(|k| lower[k][i] * x[k]).sum();
        x[i] = (y[i] - sum) / lower[i][i];
    }
    x
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
    fn newton_steps_finish_from_a_nearby_point() {
        let optimum = newton_from(&Bowl, &[2.9, -1.05]).expect("a convex bowl");
        assert!(optimum.converged, "{optimum:?}");
        assert!((optimum.log_params[0] - 3.0).abs() < 1e-8);
        assert!((optimum.log_params[1] + 1.0).abs() < 1e-8);
        assert!(optimum.iterations < 10, "{optimum:?}");
    }

    #[test]
    fn newton_gives_up_where_the_curvature_is_not_positive() {
        // Concave in x: no positive-definite Hessian, so the caller must use `minimize`.
        struct Saddle;
        impl Objective for Saddle {
            fn value_and_gradient(&self, p: &[f64]) -> (f64, Vec<f64>) {
                (p[1] * p[1] - p[0] * p[0], vec![-2.0 * p[0], 2.0 * p[1]])
            }
        }
        assert!(newton_from(&Saddle, &[0.5, 0.5]).is_none());
    }

    #[test]
    fn reports_a_boundary_optimum_as_not_converged() {
        let optimum = minimize(&Slope, vec![1.0]);
        assert!(!optimum.converged, "{optimum:?}");
    }
}
