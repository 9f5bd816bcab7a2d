//! The statistics a holdout comparison needs (DESIGN §8 "Holdout"): running means and
//! variances, Student's t distribution, and Welch's interval for a difference of two means.
//! Pure functions of their arguments, shared by setia-analytics (the win-back results) and
//! setia-mail (the weekly report's win-back line).
//!
//! **Welch's interval.** For two independent samples with means m₁, m₂, sample variances
//! s₁², s₂² (divisor n − 1) and sizes n₁, n₂ ≥ 2, the difference m₁ − m₂ has standard error
//! se = √(s₁²/n₁ + s₂²/n₂), and the interval is (m₁ − m₂) ± t(1 − α/2; ν)·se with the
//! Welch–Satterthwaite degrees of freedom ν = se⁴ / ((s₁²/n₁)²/(n₁−1) + (s₂²/n₂)²/(n₂−1)).
//! It assumes neither equal variances nor equal sizes (a 10% holdout is nine times smaller
//! than the treated group), and by the central limit theorem it holds for 0/1 outcomes
//! ("bought or not") and skewed amounts alike once the groups are a few dozen strong.
//! There is no interval when a group has fewer than two members (no variance to estimate)
//! or when neither group varies at all (every customer alike, say nobody bought): the data
//! then say nothing about how much the difference could vary, and a zero-width interval
//! would claim certainty.
//!
//! **Student's t.** The quantile is found by bisection on the distribution function, which
//! is the regularized incomplete beta function (a continued fraction, Lentz's method) with
//! ln Γ by Lanczos' approximation; accurate to about 1e-10 for any real ν ≥ 1 (Welch's ν is
//! real), checked against known values here and against statrs in setia-analytics' tests.

/// A running count, mean and sum of squared deviations (Welford's method, stable for
/// amounts in the billions of minor units).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Sample {
    n: u64,
    mean: f64,
    m2: f64,
}

impl Sample {
    pub fn push(&mut self, x: f64) {
        self.n += 1;
        let delta = x - self.mean;
        self.mean += delta / self.n as f64;
        self.m2 += delta * (x - self.mean);
    }

    pub fn n(&self) -> u64 {
        self.n
    }

    /// None when empty.
    pub fn mean(&self) -> Option<f64> {
        (self.n > 0).then_some(self.mean)
    }

    /// The sample variance (divisor n − 1); None under two members.
    pub fn variance(&self) -> Option<f64> {
        (self.n >= 2).then(|| (self.m2 / (self.n - 1) as f64).max(0.0))
    }
}

impl FromIterator<f64> for Sample {
    fn from_iter<I: IntoIterator<Item = f64>>(values: I) -> Sample {
        let mut sample = Sample::default();
        for x in values {
            sample.push(x);
        }
        sample
    }
}

/// A difference of means with its interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WelchInterval {
    /// mean(first) − mean(second).
    pub difference: f64,
    pub std_error: f64,
    /// Welch–Satterthwaite degrees of freedom.
    pub df: f64,
    pub low: f64,
    pub high: f64,
}

impl WelchInterval {
    /// Half the interval's width (it is symmetric about the difference).
    pub fn margin(&self) -> f64 {
        (self.high - self.low) / 2.0
    }

    /// Everything multiplied by `factor` (≥ 0), e.g. a per-customer difference times the
    /// treated group's size: the total it brought.
    pub fn scaled(&self, factor: f64) -> WelchInterval {
        WelchInterval {
            difference: self.difference * factor,
            std_error: self.std_error * factor,
            df: self.df,
            low: self.low * factor,
            high: self.high * factor,
        }
    }

    pub fn contains(&self, value: f64) -> bool {
        self.low <= value && value <= self.high
    }
}

/// Welch's interval for mean(`first`) − mean(`second`) at `confidence` (0.95 for 95%); see
/// the module documentation for when there is none.
pub fn welch(first: &Sample, second: &Sample, confidence: f64) -> Option<WelchInterval> {
    let (v1, v2) = (first.variance()?, second.variance()?);
    let (n1, n2) = (first.n as f64, second.n as f64);
    let (a, b) = (v1 / n1, v2 / n2);
    let se2 = a + b;
    let usable = se2 > 0.0 && se2.is_finite() && confidence > 0.0 && confidence < 1.0;
    if !usable {
        return None;
    }
    let df = se2 * se2 / (a * a / (n1 - 1.0) + b * b / (n2 - 1.0));
    let std_error = se2.sqrt();
    let t = students_t_quantile(0.5 + confidence / 2.0, df);
    let difference = first.mean - second.mean;
    Some(WelchInterval {
        difference,
        std_error,
        df,
        low: difference - t * std_error,
        high: difference + t * std_error,
    })
}

/// P(T ≤ t) for Student's t with `df` > 0 degrees of freedom.
pub fn students_t_cdf(t: f64, df: f64) -> f64 {
    if t.is_nan() || df.is_nan() || df <= 0.0 {
        return f64::NAN;
    }
    let tail = upper_tail(t.abs(), df);
    if t >= 0.0 {
        1.0 - tail
    } else {
        tail
    }
}

/// P(T > t) for t ≥ 0: ½·I_x(ν/2, ½) with x = ν/(ν + t²).
fn upper_tail(t: f64, df: f64) -> f64 {
    if t.is_infinite() {
        return 0.0;
    }
    let t2 = t * t;
    let x = df / (df + t2);
    let y = t2 / (df + t2);
    0.5 * regularized_beta(df / 2.0, 0.5, x, y)
}

/// The t with P(T ≤ t) = `p`, for 0 < p < 1 and `df` > 0 (NaN outside).
pub fn students_t_quantile(p: f64, df: f64) -> f64 {
    if p.is_nan() || p <= 0.0 || p >= 1.0 || df.is_nan() || df <= 0.0 {
        return f64::NAN;
    }
    if p == 0.5 {
        return 0.0;
    }
    // Solve for the upper tail q = min(p, 1 − p) on t ≥ 0, where the tail falls as t grows.
    let q = p.min(1.0 - p);
    let mut high = 2.0;
    while upper_tail(high, df) > q {
        high *= 2.0;
        if !high.is_finite() {
            return if p > 0.5 {
                f64::INFINITY
            } else {
                -f64::INFINITY
            };
        }
    }
    let mut low = 0.0;
    for _ in 0..200 {
        let mid = 0.5 * (low + high);
        if upper_tail(mid, df) > q {
            low = mid;
        } else {
            high = mid;
        }
        if high - low <= 1e-14 * high {
            break;
        }
    }
    let t = 0.5 * (low + high);
    if p > 0.5 {
        t
    } else {
        -t
    }
}

/// ln Γ(x) for x > 0 (Lanczos, g = 7, nine terms: about 15 significant digits).
pub fn ln_gamma(x: f64) -> f64 {
    const COEFFICIENTS: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        // Reflection: Γ(x)Γ(1 − x) = π / sin(πx).
        let pi = std::f64::consts::PI;
        return (pi / (pi * x).sin()).abs().ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut sum = COEFFICIENTS[0];
    for (i, c) in COEFFICIENTS.iter().enumerate().skip(1) {
        sum += c / (x + i as f64);
    }
    let t = x + 7.5;
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + sum.ln()
}

/// I_x(a, b), the regularized incomplete beta function, given x and y = 1 − x (passed
/// separately so a tail close to 1 keeps its precision).
fn regularized_beta(a: f64, b: f64, x: f64, y: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    if y <= 0.0 {
        return 1.0;
    }
    let ln_front = ln_gamma(a + b) - ln_gamma(a) - ln_gamma(b) + a * x.ln() + b * y.ln();
    let front = ln_front.exp();
    // The continued fraction converges fast below the mean; use the symmetry above it.
    if x < (a + 1.0) / (a + b + 2.0) {
        front * beta_fraction(a, b, x) / a
    } else {
        1.0 - front * beta_fraction(b, a, y) / b
    }
}

/// The continued fraction of I_x(a, b) (Numerical Recipes' betacf, modified Lentz).
fn beta_fraction(a: f64, b: f64, x: f64) -> f64 {
    const TINY: f64 = 1e-300;
    const EPSILON: f64 = 1e-15;
    let (qab, qap, qam) = (a + b, a + 1.0, a - 1.0);
    let mut c = 1.0;
    let mut d = 1.0 - qab * x / qap;
    if d.abs() < TINY {
        d = TINY;
    }
    d = 1.0 / d;
    let mut h = d;
    // Converges in O(√max(a, b)) steps; a million degrees of freedom take about a thousand.
    for m in 1..100_000 {
        let m = f64::from(m);
        let m2 = 2.0 * m;
        let aa = m * (b - m) * x / ((qam + m2) * (a + m2));
        d = 1.0 + aa * d;
        if d.abs() < TINY {
            d = TINY;
        }
        c = 1.0 + aa / c;
        if c.abs() < TINY {
            c = TINY;
        }
        d = 1.0 / d;
        h *= d * c;
        let aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2));
        d = 1.0 + aa * d;
        if d.abs() < TINY {
            d = TINY;
        }
        c = 1.0 + aa / c;
        if c.abs() < TINY {
            c = TINY;
        }
        d = 1.0 / d;
        let step = d * c;
        h *= step;
        if (step - 1.0).abs() < EPSILON {
            break;
        }
    }
    h
}

/// The median (mean of the middle two for an even count), or `None` for no values.
pub fn median(values: &mut [i32]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let count = values.len();
    let middle = count / 2;
    let (below, upper_middle, _) = values.select_nth_unstable(middle);
    let upper_middle = f64::from(*upper_middle);
    if count % 2 == 1 {
        Some(upper_middle)
    } else {
        let lower_middle = below.iter().copied().max().map_or(upper_middle, f64::from);
        Some((lower_middle + upper_middle) / 2.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(actual: f64, expected: f64, tolerance: f64) {
        assert!(
            (actual - expected).abs() <= tolerance * expected.abs().max(1.0),
            "{actual} against {expected}"
        );
    }

    #[test]
    fn t_quantiles_match_the_tables() {
        // 97.5% points, computed with mpmath at 30 digits.
        for (df, t) in [
            (1.0, 12.706_204_736_174_693),
            (2.0, 4.302_652_729_749_462),
            (3.0, 3.182_446_305_283_708),
            (5.0, 2.570_581_835_636_315),
            (10.0, 2.228_138_851_986_274),
            (30.0, 2.042_272_456_301_238),
            (120.0, 1.979_930_405_082_44),
            (1e6, 1.959_966_356_814_107),
        ] {
            close(students_t_quantile(0.975, df), t, 1e-9);
            close(students_t_quantile(0.025, df), -t, 1e-9);
            close(students_t_cdf(t, df), 0.975, 1e-10);
        }
        // 95% one-sided and 99.5%, and a fractional ν as Welch gives.
        close(students_t_quantile(0.95, 7.0), 1.894_578_605_090_007, 1e-9);
        close(students_t_quantile(0.995, 4.0), 4.604_094_871_349_992, 1e-9);
        close(students_t_quantile(0.975, 2.5), 3.574_654_842_003_682, 1e-8);
        assert_eq!(students_t_quantile(0.5, 3.0), 0.0);
        assert!(students_t_quantile(1.0, 3.0).is_nan());
        assert!(students_t_quantile(0.9, 0.0).is_nan());
        close(students_t_cdf(0.0, 9.0), 0.5, 1e-15);
    }

    #[test]
    fn ln_gamma_of_known_values() {
        close(ln_gamma(1.0), 0.0, 1e-14);
        close(ln_gamma(0.5), std::f64::consts::PI.sqrt().ln(), 1e-14);
        close(ln_gamma(10.0), (362_880f64).ln(), 1e-14);
        close(ln_gamma(500_000.5), 6_061_182.607_640_614, 1e-12);
    }

    #[test]
    fn a_running_sample_matches_the_textbook_formulas() {
        let values = [3.0, 7.0, 7.0, 19.0, 24.0];
        let sample: Sample = values.iter().copied().collect();
        assert_eq!(sample.n(), 5);
        close(sample.mean().unwrap(), 12.0, 1e-15);
        // Σ(x − 12)² = 81 + 25 + 25 + 49 + 144 = 324, over 4.
        close(sample.variance().unwrap(), 81.0, 1e-14);
        assert_eq!(Sample::default().mean(), None);
        assert_eq!([1.0].into_iter().collect::<Sample>().variance(), None);
    }

    #[test]
    fn welch_matches_a_worked_example() {
        // t.test(c(27.5,21,19,23.6,17,17.9,16.9,20.1,21.9,22.6,23.1,19.6,19,21.7,21.4),
        //            c(27.1,22,20.8,23.4,23.4,23.5,25.8,22,24.8,20.2,21.9,22.1,22.9,20.5,24.4))
        // t = -2.4554, df = 24.989, 95 percent CI -3.9841 -0.3492 (mpmath).
        let a: Sample = [
            27.5, 21.0, 19.0, 23.6, 17.0, 17.9, 16.9, 20.1, 21.9, 22.6, 23.1, 19.6, 19.0, 21.7,
            21.4,
        ]
        .into_iter()
        .collect();
        let b: Sample = [
            27.1, 22.0, 20.8, 23.4, 23.4, 23.5, 25.8, 22.0, 24.8, 20.2, 21.9, 22.1, 22.9, 20.5,
            24.4,
        ]
        .into_iter()
        .collect();
        let interval = welch(&a, &b, 0.95).unwrap();
        close(interval.df, 24.988_529_290_231, 1e-9);
        close(
            interval.difference / interval.std_error,
            -2.455_356_398_286,
            1e-9,
        );
        close(interval.low, -3.984_096_267_141, 1e-9);
        close(interval.high, -0.349_237_066_192, 1e-9);
        let total = interval.scaled(100.0);
        close(total.margin(), interval.margin() * 100.0, 1e-12);
        assert!(interval.contains(interval.difference));
    }

    #[test]
    fn no_interval_without_variance_to_go_on() {
        let one: Sample = [5.0].into_iter().collect();
        let many: Sample = [1.0, 2.0, 3.0].into_iter().collect();
        assert!(welch(&one, &many, 0.95).is_none());
        assert!(welch(&many, &Sample::default(), 0.95).is_none());
        let flat: Sample = [0.0; 50].into_iter().collect();
        assert!(
            welch(&flat, &flat, 0.95).is_none(),
            "nobody bought in either"
        );
        // One group flat, the other not: ν is the other's n − 1.
        let interval = welch(&flat, &many, 0.95).unwrap();
        close(interval.df, 2.0, 1e-12);
    }
}
