//! Caps that hold while prices move: which open positions the portfolio trims at a bar close, and by how
//! much. Pure functions over a snapshot of the book, so the rules are tested without a dataflow; the
//! portfolio operator turns their answers into sell (and, for volatility targeting, buy) intents.

use crate::model::money::{Exact, Overflow};
use rust_decimal::Decimal;
use std::collections::BTreeMap;

/// One open position as the caps see it at a bar close.
#[derive(Clone, Debug)]
pub struct Held {
    pub token: u32,
    /// Value at the mark.
    pub value: Decimal,
    /// What it loses if its stop is hit ((entry - stop) x quantity; all of it without a stop).
    pub heat: Decimal,
    /// Its correlation cluster's label.
    pub cluster: u32,
}

/// The standing limits, as fractions of equity except `position_notional`.
#[derive(Clone, Debug)]
pub struct Limits {
    pub position_notional: Option<Decimal>,
    pub position_fraction: Decimal,
    /// 1 = no cluster cap.
    pub cluster_fraction: Decimal,
    pub heat_fraction: Decimal,
    /// A cap counts as breached beyond cap x (1 + tolerance).
    pub tolerance: Decimal,
}

/// Which cap asked for a trim: the reason is `rebalance:<cap>`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cap {
    Position,
    Cluster,
    Heat,
    Volatility,
}

impl Cap {
    pub fn reason(self) -> &'static str {
        match self {
            Cap::Position => "rebalance:position",
            Cap::Cluster => "rebalance:cluster",
            Cap::Heat => "rebalance:heat",
            Cap::Volatility => "rebalance:volatility",
        }
    }
}

/// The share of each breaching position to sell (in (0, 1]) and the cap that asked for the most. Every cap
/// is brought back to its level, not to the edge of its band: a position cap trims the position to the cap;
/// a cluster over its cap trims its members pro rata to their value; heat over its cap trims every position
/// with heat pro rata (selling a share of a position removes the same share of its heat). `pending_cluster`
/// holds the notional of buys not yet filled, per cluster: they count toward the cluster as at entry.
pub fn trims(
    held: &[Held],
    equity: Decimal,
    pending_cluster: &BTreeMap<u32, Decimal>,
    pending_heat: Decimal,
    lim: &Limits,
) -> Result<BTreeMap<u32, (Decimal, Cap)>, Overflow> {
    let mut out: BTreeMap<u32, (Decimal, Cap)> = BTreeMap::new();
    if equity <= Decimal::ZERO {
        return Ok(out);
    }
    let mut ask = |token: u32, share: Decimal, cap: Cap| {
        let share = share.min(Decimal::ONE);
        let e = out.entry(token).or_insert((Decimal::ZERO, cap));
        if share > e.0 {
            *e = (share, cap);
        }
    };
    let band = Decimal::ONE + lim.tolerance;
    let by_fraction = lim.position_fraction.times(equity, "a position cap")?;
    let position_cap = lim
        .position_notional
        .map_or(by_fraction, |n| n.min(by_fraction));
    for h in held {
        if h.value > position_cap.times(band, "a position cap")? {
            ask(
                h.token,
                (h.value - position_cap).over(h.value, "a trim")?,
                Cap::Position,
            );
        }
    }
    if lim.cluster_fraction < Decimal::ONE {
        let cap = lim.cluster_fraction.times(equity, "a cluster cap")?;
        let mut clusters: BTreeMap<u32, Decimal> = BTreeMap::new();
        for h in held {
            let v = clusters.entry(h.cluster).or_default();
            *v = v.plus(h.value, "a cluster's exposure")?;
        }
        for (label, open) in clusters {
            let pending = pending_cluster.get(&label).copied().unwrap_or_default();
            let exposure = open.plus(pending, "a cluster's exposure")?;
            if open > Decimal::ZERO && exposure > cap.times(band, "a cluster cap")? {
                let share = (exposure - cap).over(open, "a trim")?;
                for h in held.iter().filter(|h| h.cluster == label) {
                    ask(h.token, share, Cap::Cluster);
                }
            }
        }
    }
    let open_heat = crate::model::money::sum_exact(held.iter().map(|h| Ok(h.heat)), "the heat")?;
    let heat = open_heat.plus(pending_heat, "the heat")?;
    let heat_cap = lim.heat_fraction.times(equity, "a heat cap")?;
    if open_heat > Decimal::ZERO && heat > heat_cap.times(band, "a heat cap")? {
        let share = (heat - heat_cap).over(open_heat, "a trim")?;
        for h in held.iter().filter(|h| h.heat > Decimal::ZERO) {
            ask(h.token, share, Cap::Heat);
        }
    }
    Ok(out)
}

/// Volatility targeting: the trade that brings a position worth `value` to `target` when it is outside the
/// band target x (1 +/- tolerance): a positive notional to buy, a negative one to sell, None inside the band.
pub fn toward_target(value: Decimal, target: Decimal, tolerance: Decimal) -> Option<Decimal> {
    let hi = target.checked_mul(Decimal::ONE + tolerance)?;
    let lo = target.checked_mul(Decimal::ONE - tolerance)?;
    (value > hi || value < lo).then(|| target - value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    fn held(token: u32, value: &str, heat: &str, cluster: u32) -> Held {
        Held {
            token,
            value: d(value),
            heat: d(heat),
            cluster,
        }
    }

    fn limits() -> Limits {
        Limits {
            position_notional: None,
            position_fraction: d("0.25"),
            cluster_fraction: d("0.2"),
            heat_fraction: d("0.06"),
            tolerance: d("0.1"),
        }
    }

    #[test]
    fn a_position_that_ran_up_is_trimmed_back_to_its_cap_and_one_inside_the_band_is_not() {
        let none = BTreeMap::new();
        let lim = Limits {
            cluster_fraction: Decimal::ONE,
            ..limits()
        };
        // equity 1000: cap 250, band to 275
        let t = trims(
            &[held(0, "400", "0", 0), held(1, "270", "0", 1)],
            d("1000"),
            &none,
            d("0"),
            &lim,
        )
        .unwrap();
        assert_eq!(t.len(), 1);
        assert_eq!(t[&0], (d("150") / d("400"), Cap::Position));
    }

    #[test]
    fn a_cluster_over_its_cap_is_trimmed_pro_rata_and_pending_buys_count() {
        let lim = Limits {
            position_fraction: Decimal::ONE,
            ..limits()
        };
        let hs = [
            held(0, "150", "0", 7),
            held(1, "150", "0", 7),
            held(2, "150", "0", 2),
        ];
        // cluster 7 holds 300 + 40 pending against a cap of 200: sell 140 of its 300, 7/15 of each member
        let pending = BTreeMap::from([(7, d("40"))]);
        let t = trims(&hs, d("1000"), &pending, d("0"), &lim).unwrap();
        assert_eq!(t[&0], (d("140") / d("300"), Cap::Cluster));
        assert_eq!(t[&1], t[&0]);
        assert!(!t.contains_key(&2), "cluster 2 is inside its cap");
    }

    #[test]
    fn heat_over_its_cap_trims_every_position_with_heat_and_the_largest_ask_wins() {
        let lim = Limits {
            cluster_fraction: Decimal::ONE,
            position_fraction: d("0.3"),
            ..limits()
        };
        // heat 100 against 60: sell 40% of each position with heat; the 400 position also breaks its 300 cap
        let hs = [
            held(0, "400", "50", 0),
            held(1, "100", "50", 1),
            held(2, "100", "0", 2),
        ];
        let t = trims(&hs, d("1000"), &BTreeMap::new(), d("0"), &lim).unwrap();
        assert_eq!(
            t[&0],
            (d("0.4"), Cap::Heat),
            "0.4 of heat beats 0.25 of the position cap"
        );
        assert_eq!(t[&1], (d("0.4"), Cap::Heat));
        assert!(!t.contains_key(&2));
    }

    #[test]
    fn the_volatility_target_trades_only_outside_its_band() {
        assert_eq!(toward_target(d("100"), d("200"), d("0.1")), Some(d("100")));
        assert_eq!(toward_target(d("400"), d("200"), d("0.1")), Some(d("-200")));
        assert_eq!(toward_target(d("210"), d("200"), d("0.1")), None);
    }
}
