#!/usr/bin/env python3
"""The lifetimes peer of setia's BG/NBD fit, on the summary setia fitted.

    lifetimes_peer.py SUMMARY.csv OUT.json [per-customer]

SUMMARY.csv is what `bgnbd-fit` (bench/metrics/src/main.rs) wrote: one row
per distinct history, `frequency,recency_days,age_days,customers` (x = repeat purchase days,
t_x and T in days; the model works in weeks, days / 7, as setia's batch does).

Fits `lifetimes.BetaGeoFitter` (penalizer 0, lifetimes' defaults otherwise) two ways:
- grouped: one row per distinct (x, t_x, T) with `weights` = the number of customers, which
  is what lifetimes documents for condensed data and the same input setia's fit loops over;
- per customer (only with the third argument): the grouped rows repeated by their weights,
  one row per customer, which is how lifetimes is usually called.
For each, two times: `fit` as a user calls it (scipy BFGS on the autograd gradient, then the
autograd Hessian and the standard errors lifetimes always computes), and the optimisation
alone (the same `minimize` call `fit` makes, without the Hessian). Reading the CSV is not
timed.
"""

import json
import sys
import time
import warnings

import numpy as np
import pandas as pd
from autograd import value_and_grad
from scipy.optimize import minimize

import lifetimes
from lifetimes import BetaGeoFitter
from lifetimes.utils import _scale_time

warnings.simplefilter("ignore")


def optimisation_only(frequency, recency, age, weights):
    """Exactly the optimisation BetaGeoFitter.fit runs, without the Hessian afterwards."""
    scale = _scale_time(age)
    args = (frequency.astype(int), recency * scale, age * scale, weights, 0.0)
    started = time.perf_counter()
    output = minimize(
        value_and_grad(BetaGeoFitter._negative_log_likelihood),
        jac=True,
        method=None,
        tol=1e-7,
        x0=0.1 * np.ones(4),
        args=args,
        options={"disp": False},
    )
    seconds = time.perf_counter() - started
    r, alpha, a, b = np.exp(output.x)
    return seconds, {"r": r, "alpha": alpha / scale, "a": a, "b": b}, bool(output.success), int(output.nit)


def fit(frequency, recency, age, weights):
    started = time.perf_counter()
    fitter = BetaGeoFitter(penalizer_coef=0.0).fit(frequency, recency, age, weights=weights)
    seconds = time.perf_counter() - started
    params = {name: float(fitter.params_[name]) for name in ("r", "alpha", "a", "b")}
    # lifetimes' own objective (the mean negative log-likelihood), evaluated at its estimate in
    # the original time unit (the fit ran on rescaled times), times the number of customers.
    weights = np.ones(len(frequency)) if weights is None else np.asarray(weights, dtype=float)
    log_params = np.log([params["r"], params["alpha"], params["a"], params["b"]])
    mean = BetaGeoFitter._negative_log_likelihood(
        log_params, np.asarray(frequency).astype(int), recency, age, weights, 0.0
    )
    log_likelihood = -float(mean) * float(weights.sum())
    return seconds, params, log_likelihood


def both_timings(label, f, r, t, fit_weights, optimisation_weights):
    """`fit` as a user calls it, then the optimisation alone, on the same rows."""
    seconds, params, log_likelihood = fit(f, r, t, fit_weights)
    opt_seconds, opt_params, success, iterations = optimisation_only(f, r, t, optimisation_weights)
    print(
        f"lifetimes {label} ({len(f)} rows): fit {seconds:.2f} s, optimisation alone "
        f"{opt_seconds:.2f} s, {params}",
        file=sys.stderr,
    )
    return {
        "fit_seconds": seconds,
        "params": params,
        "log_likelihood": log_likelihood,
        "optimisation_seconds": opt_seconds,
        "optimisation_params": opt_params,
        "optimisation_success": success,
        "optimisation_iterations": iterations,
    }


def main() -> None:
    if len(sys.argv) not in (3, 4):
        sys.exit(__doc__)
    summary_path, out = sys.argv[1], sys.argv[2]
    per_customer = len(sys.argv) == 4 and sys.argv[3] == "per-customer"
    summary = pd.read_csv(summary_path)
    frequency = summary["frequency"].to_numpy(dtype=np.int64)
    recency = summary["recency_days"].to_numpy(dtype=np.float64) / 7.0
    age = summary["age_days"].to_numpy(dtype=np.float64) / 7.0
    weights = summary["customers"].to_numpy(dtype=np.int64)

    result = {
        "peer": f"lifetimes {lifetimes.__version__}",
        "customers": int(weights.sum()),
        "distinct_histories": int(len(summary)),
    }
    result["grouped"] = both_timings("grouped", frequency, recency, age, weights, weights)
    if per_customer:
        f1 = np.repeat(frequency, weights)
        r1 = np.repeat(recency, weights)
        t1 = np.repeat(age, weights)
        result["per_customer"] = both_timings("per customer", f1, r1, t1, None, np.ones_like(f1))
    with open(out, "w") as file:
        json.dump(result, file)


if __name__ == "__main__":
    main()
