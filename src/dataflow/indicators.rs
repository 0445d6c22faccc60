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
    /// Returns seen so far (saturating): a caller may ignore the first few.
    pub seen: usize,
}

impl EwmaVol {
    pub fn new(lambda: f64) -> Self {
        EwmaVol {
            lambda,
            var: None,
            seen: 0,
        }
    }
    pub fn update(&mut self, log_return: f64) -> f64 {
        self.seen = self.seen.saturating_add(1);
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

/// Exponential moving average seeded with the simple average of its first `n` inputs (the common
/// convention, TA-Lib's among others), then `alpha = 2 / (n + 1)`.
#[derive(Clone, Debug)]
pub struct Ema {
    n: usize,
    seed: f64,
    seen: usize,
    value: Option<f64>,
}

impl Ema {
    pub fn new(n: usize) -> Self {
        Ema {
            n: n.max(1),
            seed: 0.0,
            seen: 0,
            value: None,
        }
    }
    /// An EMA that starts from `value` (its seed computed elsewhere).
    pub fn seeded(n: usize, value: f64) -> Self {
        Ema {
            n: n.max(1),
            seed: 0.0,
            seen: n.max(1),
            value: Some(value),
        }
    }
    pub fn update(&mut self, x: f64) -> Option<f64> {
        self.value = match self.value {
            Some(v) => Some(v + 2.0 / (self.n as f64 + 1.0) * (x - v)),
            None => {
                self.seed += x;
                self.seen += 1;
                (self.seen == self.n).then(|| self.seed / self.n as f64)
            }
        };
        self.value
    }
}

/// Wilder's RSI: the first average gain and loss are the means of the first `n` changes, later ones
/// `(avg * (n - 1) + x) / n`; a window without any change reads 50.
#[derive(Clone, Debug)]
pub struct Rsi {
    n: usize,
    prev: Option<f64>,
    seen: usize,
    gain: f64,
    loss: f64,
}

impl Rsi {
    pub fn new(n: usize) -> Self {
        Rsi {
            n: n.max(1),
            prev: None,
            seen: 0,
            gain: 0.0,
            loss: 0.0,
        }
    }
    pub fn update(&mut self, close: f64) -> Option<f64> {
        let prev = self.prev.replace(close)?;
        let (up, down) = ((close - prev).max(0.0), (prev - close).max(0.0));
        let n = self.n as f64;
        if self.seen < self.n {
            self.gain += up / n;
            self.loss += down / n;
            self.seen += 1;
            if self.seen < self.n {
                return None;
            }
        } else {
            self.gain = (self.gain * (n - 1.0) + up) / n;
            self.loss = (self.loss * (n - 1.0) + down) / n;
        }
        let total = self.gain + self.loss;
        Some(if total > 0.0 {
            100.0 * self.gain / total
        } else {
            50.0
        })
    }
}

/// MACD: the line is EMA(fast) - EMA(slow), the signal an EMA of the line. As in TA-Lib, both EMAs start
/// at the same bar: the fast one is seeded, when the slow one is, with the mean of the `fast` closes ending
/// there (not of the first `fast` closes), so the line's first values match the reference's.
#[derive(Clone, Debug)]
pub struct Macd {
    recent: Window,
    fast: Option<Ema>,
    fast_n: usize,
    slow: Ema,
    signal: Ema,
}

/// One bar's MACD values (the signal and histogram only once the signal EMA has its seed).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MacdValue {
    pub line: f64,
    pub signal: Option<f64>,
}

impl Macd {
    pub fn new(fast: usize, slow: usize, signal: usize) -> Self {
        Macd {
            recent: Window::new(fast),
            fast: None,
            fast_n: fast,
            slow: Ema::new(slow),
            signal: Ema::new(signal),
        }
    }
    pub fn update(&mut self, close: f64) -> Option<MacdValue> {
        self.recent.push(close);
        let slow = self.slow.update(close)?;
        let fast = match self.fast.as_mut() {
            Some(f) => f.update(close)?,
            None => {
                let (seed, _) = self.recent.mean_sd()?;
                self.fast = Some(Ema::seeded(self.fast_n, seed));
                seed
            }
        };
        let line = fast - slow;
        Some(MacdValue {
            line,
            signal: self.signal.update(line),
        })
    }
}

/// The last `n` values, for rolling means, deviations and weighted averages. Sums are recomputed over the
/// window at each read (n is bounded), so no running sum drifts over a long history.
#[derive(Clone, Debug)]
pub struct Window {
    n: usize,
    values: VecDeque<f64>,
}

impl Window {
    pub fn new(n: usize) -> Self {
        Window {
            n: n.max(1),
            values: VecDeque::with_capacity(n.max(1) + 1),
        }
    }
    pub fn push(&mut self, x: f64) {
        self.values.push_back(x);
        if self.values.len() > self.n {
            self.values.pop_front();
        }
    }
    pub fn full(&self) -> bool {
        self.values.len() == self.n
    }
    pub fn iter(&self) -> impl Iterator<Item = &f64> {
        self.values.iter()
    }
    /// (mean, population standard deviation) once the window is full.
    pub fn mean_sd(&self) -> Option<(f64, f64)> {
        if !self.full() {
            return None;
        }
        let n = self.n as f64;
        let mean = self.values.iter().sum::<f64>() / n;
        let var = self
            .values
            .iter()
            .map(|x| (x - mean) * (x - mean))
            .sum::<f64>()
            / n;
        Some((mean, var.sqrt()))
    }
    pub fn last(&self) -> Option<f64> {
        self.values.back().copied()
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
    fn ema_is_seeded_by_the_sma_then_smoothed() {
        let mut e = Ema::new(3);
        assert_eq!(e.update(1.0), None);
        assert_eq!(e.update(2.0), None);
        assert_eq!(e.update(3.0), Some(2.0));
        assert_eq!(e.update(6.0), Some(4.0)); // 2 + 0.5 * (6 - 2)
    }

    #[test]
    fn rsi_hand_computed_and_flat_reads_fifty() {
        let mut r = Rsi::new(2);
        assert_eq!(r.update(10.0), None);
        assert_eq!(r.update(11.0), None); // +1
        assert_eq!(r.update(10.0), Some(50.0)); // gains 0.5, losses 0.5
                                                // gain (0.5 + 2) / 2 = 1.25, loss 0.5 / 2 = 0.25 -> 100 * 1.25 / 1.5
        assert!((r.update(12.0).unwrap() - 250.0 / 3.0).abs() < 1e-12);
        let mut flat = Rsi::new(3);
        let v: Vec<_> = (0..5).map(|_| flat.update(7.0)).collect();
        assert_eq!(v[3..], [Some(50.0), Some(50.0)]);
    }

    #[test]
    fn window_mean_and_population_sd() {
        let mut w = Window::new(4);
        for x in [9.0, 2.0, 4.0, 4.0] {
            assert_eq!(w.mean_sd(), None);
            w.push(x);
        }
        w.push(4.0); // drops 9
        w.push(5.0); // drops 2: window 4 4 4 5
        let (m, sd) = w.mean_sd().unwrap();
        assert!((m - 4.25).abs() < 1e-12 && (sd - 0.1875f64.sqrt()).abs() < 1e-12);
    }

    #[test]
    fn ewma_vol() {
        let mut v = EwmaVol::new(0.5);
        assert!((v.update(0.02) - 0.02).abs() < 1e-15);
        // 0.5*0.0004 + 0.5*0 = 0.0002
        assert!((v.update(0.0) - 0.0002f64.sqrt()).abs() < 1e-15);
    }
}
