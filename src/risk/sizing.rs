//! How much to buy. Volatility sizing risks a fixed fraction of equity between the entry and an ATR-based
//! stop, so a volatile token gets a smaller position than a calm one for the same risk.

use rust_decimal::Decimal;

/// Notional for risking `risk_fraction` of `equity` with the stop `stop_distance` below `price`. A stop a
/// hair below the price asks for more than a decimal holds: that is more than any cap allows, so it reads as
/// the largest decimal and the caps (cash first of all) cut it.
pub fn volatility_notional(
    equity: Decimal,
    risk_fraction: Decimal,
    price: Decimal,
    stop_distance: Decimal,
) -> Option<Decimal> {
    if stop_distance <= Decimal::ZERO || price <= Decimal::ZERO {
        return None;
    }
    let notional = equity
        .checked_mul(risk_fraction)
        .and_then(|r| r.checked_div(stop_distance))
        .and_then(|q| q.checked_mul(price));
    Some(notional.unwrap_or(Decimal::MAX))
}

/// Why an entry was cut or dropped; counted in the summary.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Skip {
    DrawdownPause,
    MaxOpenPositions,
    NoAtrYet,
    ClusterCap,
    InsufficientCash,
    BelowMinNotional,
    PortfolioHeat,
}

impl Skip {
    pub fn name(self) -> &'static str {
        match self {
            Skip::DrawdownPause => "drawdown_pause",
            Skip::PortfolioHeat => "portfolio_heat",
            Skip::MaxOpenPositions => "max_open_positions",
            Skip::NoAtrYet => "no_atr_yet",
            Skip::ClusterCap => "cluster_cap",
            Skip::InsufficientCash => "insufficient_cash",
            Skip::BelowMinNotional => "below_min_notional",
        }
    }
}

/// Applies the caps in order and returns the notional allowed, or why none is.
pub struct Caps {
    pub max_position_notional: Option<Decimal>,
    pub cluster_room: Decimal,
    pub free_cash: Decimal,
    pub fee_rate: Decimal,
    pub gas: Decimal,
    pub min_notional: Decimal,
}

impl Caps {
    pub fn apply(&self, wanted: Decimal) -> Result<Decimal, Skip> {
        let mut n = wanted;
        if let Some(m) = self.max_position_notional {
            n = n.min(m);
        }
        if self.cluster_room < n {
            if self.cluster_room < self.min_notional {
                return Err(Skip::ClusterCap);
            }
            n = self.cluster_room;
        }
        // cash must cover notional + fee + gas
        let affordable = (self.free_cash - self.gas) / (Decimal::ONE + self.fee_rate);
        if affordable < n {
            if affordable < self.min_notional {
                return Err(Skip::InsufficientCash);
            }
            n = affordable;
        }
        if n < self.min_notional {
            return Err(Skip::BelowMinNotional);
        }
        Ok(n.round_dp(8))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    fn d(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    #[test]
    fn two_percent_risk_with_atr_stop() {
        // equity 10,000, risk 2% = 200; stop 2 x ATR 2.5 = 5 below 100 -> 40 units -> 4,000 notional
        assert_eq!(
            volatility_notional(d("10000"), d("0.02"), d("100"), d("5")),
            Some(d("4000"))
        );
        assert_eq!(
            volatility_notional(d("10000"), d("0.02"), d("100"), d("0")),
            None
        );
    }

    #[test]
    fn caps_cut_in_order() {
        let caps = Caps {
            max_position_notional: Some(d("3000")),
            cluster_room: d("2000"),
            free_cash: d("10000"),
            fee_rate: d("0.001"),
            gas: d("0"),
            min_notional: d("10"),
        };
        assert_eq!(caps.apply(d("4000")), Ok(d("2000")));
        let caps = Caps {
            cluster_room: d("5"),
            ..caps
        };
        assert_eq!(caps.apply(d("4000")), Err(Skip::ClusterCap));
        let caps = Caps {
            cluster_room: d("5000"),
            free_cash: d("1001"),
            ..caps
        };
        assert_eq!(caps.apply(d("4000")), Ok(d("1000")));
    }

    #[test]
    fn a_stop_a_hair_below_the_price_wants_everything_and_the_caps_cut_it() {
        let wanted = volatility_notional(
            d("1000000000000"),
            d("0.02"),
            d("1000000000000"),
            d("0.0000000001"),
        );
        assert_eq!(wanted, Some(Decimal::MAX));
        let caps = Caps {
            max_position_notional: None,
            cluster_room: Decimal::MAX,
            free_cash: d("1000"),
            fee_rate: d("0.001"),
            gas: Decimal::ZERO,
            min_notional: d("1"),
        };
        assert_eq!(caps.apply(Decimal::MAX), Ok(d("999.00099900")));
    }
}
