//! The deflated Sharpe ratio (Bailey and Lopez de Prado, "The Deflated Sharpe Ratio", 2014): the probability
//! that a strategy's true Sharpe ratio is above zero once two things are accounted for: the best of N tried
//! configurations looks good by chance alone (the expected maximum of N Sharpe ratios whose true value is
//! zero), and returns that are skewed or fat-tailed make a Sharpe estimate less certain. A sweep's winner with
//! a deflated Sharpe of 0.5 is as likely luck as skill.
//!
//! Every Sharpe here is per observation (daily, not annualized), as the paper's formulas take them.

use super::metrics::{daily_sharpe, sample_variance};

/// The Euler-Mascheroni constant (the paper's gamma in the expected maximum).
const EULER_GAMMA: f64 = 0.577_215_664_901_532_9;

/// The standard normal distribution function.
pub fn norm_cdf(x: f64) -> f64 {
    0.5 * libm::erfc(-x / std::f64::consts::SQRT_2)
}

/// The standard normal quantile for `p` in (0, 1): Acklam's rational approximation (relative error
/// 1.15e-9) polished by one Halley step on the distribution function, which takes it to full precision.
pub fn norm_ppf(p: f64) -> Option<f64> {
    if !(p > 0.0 && p < 1.0) {
        return None;
    }
    const A: [f64; 6] = [
        -3.969_683_028_665_376e1,
        2.209_460_984_245_205e2,
        -2.759_285_104_469_687e2,
        1.383_577_518_672_69e2,
        -3.066_479_806_614_716e1,
        2.506_628_277_459_239,
    ];
    const B: [f64; 5] = [
        -5.447_609_879_822_406e1,
        1.615_858_368_580_409e2,
        -1.556_989_798_598_866e2,
        6.680_131_188_771_972e1,
        -1.328_068_155_288_572e1,
    ];
    const C: [f64; 6] = [
        -7.784_894_002_430_293e-3,
        -3.223_964_580_411_365e-1,
        -2.400_758_277_161_838,
        -2.549_732_539_343_734,
        4.374_664_141_464_968,
        2.938_163_982_698_783,
    ];
    const D: [f64; 4] = [
        7.784_695_709_041_462e-3,
        3.224_671_290_700_398e-1,
        2.445_134_137_142_996,
        3.754_408_661_907_416,
    ];
    let tail = |q: f64| {
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    };
    let x = if p < 0.024_25 {
        tail((-2.0 * p.ln()).sqrt())
    } else if p > 1.0 - 0.024_25 {
        -tail((-2.0 * (1.0 - p).ln()).sqrt())
    } else {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    };
    let e = norm_cdf(x) - p;
    let u = e * (2.0 * std::f64::consts::PI).sqrt() * (x * x / 2.0).exp();
    Some(x - u / (1.0 + x * u / 2.0))
}

/// The Sharpe ratio the best of `trials` independent strategies with true Sharpe zero is expected to show,
/// given the variance of the trials' estimated Sharpe ratios (the paper's SR0).
pub fn expected_max_sharpe(trial_variance: f64, trials: usize) -> Option<f64> {
    if trial_variance.is_nan() || trial_variance < 0.0 {
        return None;
    }
    if trials < 2 {
        return Some(0.0);
    }
    let n = trials as f64;
    let z1 = norm_ppf(1.0 - 1.0 / n)?;
    let z2 = norm_ppf(1.0 - 1.0 / (n * std::f64::consts::E))?;
    Some(trial_variance.sqrt() * ((1.0 - EULER_GAMMA) * z1 + EULER_GAMMA * z2))
}

/// The probabilistic Sharpe ratio of an estimate `sharpe` over `observations` returns with skewness `skew`
/// and (non-excess) kurtosis `kurtosis`, against the benchmark Sharpe `benchmark`.
pub fn probabilistic_sharpe(
    sharpe: f64,
    benchmark: f64,
    observations: usize,
    skew: f64,
    kurtosis: f64,
) -> Option<f64> {
    if observations < 2 {
        return None;
    }
    let spread = 1.0 - skew * sharpe + (kurtosis - 1.0) / 4.0 * sharpe * sharpe;
    if spread.is_nan() || spread <= 0.0 {
        return None;
    }
    let z = (sharpe - benchmark) * ((observations - 1) as f64).sqrt() / spread.sqrt();
    z.is_finite().then(|| norm_cdf(z))
}

/// Skewness and non-excess kurtosis (population moments) of `xs`; None under three values or no spread.
pub fn moments(xs: &[f64]) -> Option<(f64, f64)> {
    if xs.len() < 3 {
        return None;
    }
    let n = xs.len() as f64;
    let m = xs.iter().sum::<f64>() / n;
    let central = |k: i32| xs.iter().map(|x| (x - m).powi(k)).sum::<f64>() / n;
    let m2 = central(2);
    if m2.is_nan() || m2 <= 0.0 {
        return None;
    }
    Some((central(3) / m2.powf(1.5), central(4) / (m2 * m2)))
}

/// What a sweep's chosen run looks like once deflated for the number of runs tried.
#[derive(Clone, Debug, PartialEq)]
pub struct Deflated {
    /// The chosen run's Sharpe per observation (daily).
    pub sharpe: f64,
    /// The best Sharpe per observation N zero-skill trials would show (SR0).
    pub expected_max: f64,
    pub trials: usize,
    pub observations: usize,
    /// Probability that the true Sharpe is above zero after selection (0 to 1).
    pub probability: f64,
}

/// The deflated Sharpe of a chosen run from its daily `returns`, given every trial's daily Sharpe ratio
/// (`trial_sharpes`, the chosen one among them; trials without a Sharpe still count in `trials`).
pub fn deflated_sharpe(returns: &[f64], trial_sharpes: &[f64], trials: usize) -> Option<Deflated> {
    let n = returns.len();
    if n < 3 {
        return None;
    }
    let sharpe = daily_sharpe(returns)?;
    let variance = sample_variance(trial_sharpes).unwrap_or(0.0);
    let expected_max = expected_max_sharpe(variance, trials.max(1))?;
    let (skew, kurtosis) = moments(returns)?;
    let probability = probabilistic_sharpe(sharpe, expected_max, n, skew, kurtosis)?;
    Some(Deflated {
        sharpe,
        expected_max,
        trials: trials.max(1),
        observations: n,
        probability,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normal_quantiles_invert_the_distribution_function() {
        // published quantiles: 0.975 -> 1.959964, 0.99 -> 2.326348, 0.999 -> 3.090232
        for (p, z) in [
            (0.975, 1.959_963_985),
            (0.99, 2.326_347_874),
            (0.999, 3.090_232_306),
        ] {
            assert!((norm_ppf(p).unwrap() - z).abs() < 1e-8, "{p}");
            assert!((norm_ppf(1.0 - p).unwrap() + z).abs() < 1e-8, "{p}");
        }
        for p in [1e-12, 0.01, 0.3, 0.5, 0.77, 0.999_999] {
            assert!((norm_cdf(norm_ppf(p).unwrap()) - p).abs() < 1e-14 * p.max(1e-3) * 1e3);
        }
        assert_eq!(norm_ppf(0.0), None);
        assert_eq!(norm_ppf(1.0), None);
        assert_eq!(norm_ppf(f64::NAN), None);
    }

    #[test]
    fn the_papers_worked_example() {
        // Bailey and Lopez de Prado (2014), section 4: an annualized Sharpe of 2.5 over 1,250 daily returns
        // (250 a year), skewness -3, kurtosis 10, the best of 100 trials whose annualized Sharpe ratios have
        // variance 0.5. The paper gives SR0 = 0.1132 (daily) and a deflated Sharpe of 0.9004.
        let sr = 2.5 / 250f64.sqrt();
        let sr0 = expected_max_sharpe(0.5 / 250.0, 100).unwrap();
        assert!((sr0 - 0.1132).abs() < 5e-5, "{sr0}");
        let dsr = probabilistic_sharpe(sr, sr0, 1250, -3.0, 10.0).unwrap();
        assert!((dsr - 0.9004).abs() < 5e-4, "{dsr}");
        // one trial is no selection: the benchmark is zero
        assert_eq!(expected_max_sharpe(0.5, 1), Some(0.0));
        // more trials, a higher bar
        assert!(expected_max_sharpe(0.002, 1000).unwrap() > sr0);
    }

    #[test]
    fn moments_of_known_samples() {
        let (s, k) = moments(&[1.0, 2.0, 3.0, 4.0, 5.0]).unwrap();
        assert!(s.abs() < 1e-12);
        assert!((k - 1.7).abs() < 1e-12);
        let (s, _) = moments(&[0.0, 0.0, 0.0, 10.0]).unwrap();
        assert!(s > 1.0, "a right tail is positive skew");
        assert_eq!(moments(&[1.0, 1.0, 1.0]), None);
    }

    #[test]
    fn selection_from_many_trials_lowers_the_probability() {
        let returns: Vec<f64> = (0..200)
            .map(|i| 0.002 + 0.01 * ((i * 37 % 11) as f64 - 5.0) / 5.0)
            .collect();
        let alone = deflated_sharpe(&returns, &[], 1).unwrap();
        let spread: Vec<f64> = (0..50).map(|i| (i as f64 - 25.0) / 200.0).collect();
        let picked = deflated_sharpe(&returns, &spread, 50).unwrap();
        assert!(alone.probability > picked.probability);
        assert_eq!(alone.expected_max, 0.0);
        assert!(picked.expected_max > 0.0);
        assert_eq!(
            deflated_sharpe(&[0.01; 10], &[], 1),
            None,
            "no spread, no Sharpe"
        );
    }
}
