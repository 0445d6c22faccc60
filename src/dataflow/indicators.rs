//! Per-token indicators over bar closes: ATR (Wilder), EWMA realized volatility of log returns, simple moving
//! averages and momentum. ATR is a price distance that becomes a stop price, so it stays in `Decimal`.

use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;
use std::collections::VecDeque;

/// Average true range with Wilder's smoothing; the first value is the mean of the first `period` ranges.
#[derive(Clone, Debug)]
pub struct Atr {
    period: usize,
    prev_close: Option<Decimal>,
    seed: Vec<Decimal>,
    value: Option<Decimal>,
}

impl Atr {
    pub fn new(period: usize) -> Self {
        Atr {
            period: period.max(1),
            prev_close: None,
            seed: Vec::new(),
            value: None,
        }
    }
    pub fn update(&mut self, high: Decimal, low: Decimal, close: Decimal) -> Option<Decimal> {
        let tr = match self.prev_close {
            Some(pc) => (high - low).max((high - pc).abs()).max((low - pc).abs()),
            None => high - low,
        };
        self.prev_close = Some(close);
        let n = Decimal::from(self.period as u64);
        self.value = match self.value {
            Some(atr) => Some(((atr * (n - Decimal::ONE) + tr) / n).round_dp(12)),
            None => {
                self.seed.push(tr);
                if self.seed.len() == self.period {
                    let sum: Decimal = self.seed.iter().sum();
                    self.seed.clear();
                    Some((sum / n).round_dp(12))
                } else {
                    None
                }
            }
        };
        self.value
    }
    pub fn value(&self) -> Option<Decimal> {
        self.value
    }
}

/// RiskMetrics-style EWMA of squared log returns; reports the per-bar standard deviation.
#[derive(Clone, Debug)]
pub struct EwmaVol {
    lambda: f64,
    var: Option<f64>,
}

impl EwmaVol {
    pub fn new(lambda: f64) -> Self {
        EwmaVol { lambda, var: None }
    }
    pub fn update(&mut self, log_return: f64) -> f64 {
        let r2 = log_return * log_return;
        let v = match self.var {
            Some(v) => self.lambda * v + (1.0 - self.lambda) * r2,
            None => r2,
        };
        self.var = Some(v);
        v.sqrt()
    }
}

/// Rolling window of closes serving SMAs and momentum.
#[derive(Clone, Debug)]
pub struct Closes {
    cap: usize,
    closes: VecDeque<Decimal>,
}

impl Closes {
    pub fn new(cap: usize) -> Self {
        Closes {
            cap: cap.max(2),
            closes: VecDeque::with_capacity(cap.max(2) + 1),
        }
    }
    pub fn push(&mut self, c: Decimal) {
        self.closes.push_back(c);
        while self.closes.len() > self.cap {
            self.closes.pop_front();
        }
    }
    /// SMA of the `n` closes ending `back` bars ago (0 = including the latest).
    pub fn sma(&self, n: usize, back: usize) -> Option<Decimal> {
        let len = self.closes.len();
        if n == 0 || len < n + back {
            return None;
        }
        let end = len - back;
        let sum: Decimal = self.closes.range(end - n..end).sum();
        Some(sum / Decimal::from(n as u64))
    }
    /// Fractional change of the close over the last `n` bars.
    pub fn momentum(&self, n: usize) -> Option<f64> {
        let len = self.closes.len();
        if len < n + 1 {
            return None;
        }
        let now = self.closes[len - 1];
        let then = self.closes[len - 1 - n];
        if then.is_zero() {
            return None;
        }
        (now / then - Decimal::ONE).to_f64()
    }
}

pub fn log_return(prev: Decimal, now: Decimal) -> Option<f64> {
    let r = (now / prev).to_f64()?;
    (r > 0.0).then(|| r.ln())
}

#[cfg(test)]
mod tests {
    use super::*;
    fn d(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    #[test]
    fn atr_hand_computed() {
        let mut a = Atr::new(3);
        // TRs: 2 (h-l), max(3, |13-11|, |10-11|)=3, max(2,|12-12|... )
        assert_eq!(a.update(d("12"), d("10"), d("11")), None); // tr 2
        assert_eq!(a.update(d("13"), d("10"), d("12")), None); // tr 3
        assert_eq!(a.update(d("15"), d("11"), d("14")), Some(d("3"))); // tr 4 -> (2+3+4)/3
                                                                       // tr = max(1, |14-14|, |13-14|) = 1 -> (3*2 + 1)/3
        assert_eq!(
            a.update(d("14"), d("13"), d("13.5")),
            Some((d("7") / d("3")).round_dp(12))
        );
    }

    #[test]
    fn sma_and_momentum() {
        let mut c = Closes::new(5);
        for x in ["1", "2", "3", "4", "5", "6"] {
            c.push(d(x));
        }
        assert_eq!(c.sma(3, 0), Some(d("5")));
        assert_eq!(c.sma(3, 1), Some(d("4")));
        assert_eq!(c.sma(5, 1), None);
        assert!((c.momentum(2).unwrap() - 0.5).abs() < 1e-12);
    }

    #[test]
    fn ewma_vol() {
        let mut v = EwmaVol::new(0.5);
        assert!((v.update(0.02) - 0.02).abs() < 1e-15);
        // 0.5*0.0004 + 0.5*0 = 0.0002
        assert!((v.update(0.0) - 0.0002f64.sqrt()).abs() < 1e-15);
    }
}
