//! What the dataflow decides (signals, intents) and what execution reports back (fills, trades).

use super::time::{rfc3339, Millis};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    Buy,
    Sell,
}

impl Side {
    pub fn as_str(self) -> &'static str {
        match self {
            Side::Buy => "buy",
            Side::Sell => "sell",
        }
    }
}

/// A per-token trading opinion at a bar close; the portfolio decides whether it becomes an intent.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Signal {
    /// Open a long position. `strength` ranks competing entries at the same time (higher first).
    Enter { strength: f64, reason: String },
    /// Close the long position, if any.
    Exit { reason: String },
}

/// Protective exit attached to an entry: a distance from the fill (or, for a trailing stop, from the high
/// since entry), not a price, because the fill price is not known when the intent is made. The wire names
/// say so (`fraction_of_fill`, `price_distance`); the names of earlier releases (`fraction`, `absolute`) are
/// still read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "value")]
pub enum Distance {
    /// Fraction of the fill price (0.05 = 5% below or above it).
    #[serde(rename = "fraction_of_fill", alias = "fraction")]
    Fraction(Decimal),
    /// A distance in quote units (e.g. k x ATR at decision time).
    #[serde(rename = "price_distance", alias = "absolute")]
    Absolute(Decimal),
}

impl Distance {
    pub fn below(self, price: Decimal) -> Decimal {
        match self {
            Distance::Fraction(f) => price * (Decimal::ONE - f),
            Distance::Absolute(d) => price - d,
        }
    }
    pub fn above(self, price: Decimal) -> Decimal {
        match self {
            Distance::Fraction(f) => price * (Decimal::ONE + f),
            Distance::Absolute(d) => price + d,
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Protection {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_loss: Option<Distance>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub take_profit: Option<Distance>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trailing_stop: Option<Distance>,
    /// Scale-out legs, lowest first: sell `fraction` of the entry quantity when the price reaches `at` above
    /// the entry, each leg its own fill.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scale_out: Vec<ScaleOut>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScaleOut {
    pub at: Distance,
    pub fraction: Decimal,
}

/// An order the dataflow wants executed. Exactly one of `quantity` (base units) or `notional` (quote units) is set.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderIntent {
    pub id: String,
    pub pipeline_id: String,
    pub token: String,
    pub side: Side,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quantity: Option<Decimal>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notional: Option<Decimal>,
    /// Reference price at decision time (the bar close); the fill will differ.
    pub reference_price: Decimal,
    pub max_slippage_bps: Decimal,
    #[serde(default)]
    pub protection: Protection,
    pub reason: String,
    #[serde(with = "rfc3339")]
    pub decision_time: Millis,
    pub inputs_version: String,
    /// A protective exit (or the end-of-data close) the dataflow saw happen inside a bar: a venue that
    /// models the market (paper) fills it where the backtest does; a venue without resting orders (on chain)
    /// sells at the market when it arrives.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub triggered: Option<Trigger>,
}

/// Where and when a triggered exit happened, in the backtest's fill convention.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trigger {
    /// The trigger price: the stop level (or the open it gapped through), the take-profit, the last open.
    pub price: Decimal,
    /// The open time of the bar it happened in (what a backtest fill is stamped with).
    #[serde(with = "rfc3339")]
    pub time: Millis,
    /// A take-profit fills at its price; every other exit pays the sell slippage on top.
    #[serde(default)]
    pub exact: bool,
}

impl OrderIntent {
    /// DESIGN principle 3: the id depends only on what was decided and from which inputs, so replays,
    /// restarts and any number of workers reproduce it and the executor can execute each id at most once.
    pub fn make_id(
        pipeline_id: &str,
        token: &str,
        side: Side,
        decision_time: Millis,
        inputs_version: &str,
    ) -> String {
        let mut h = Sha256::new();
        for part in [
            pipeline_id,
            token,
            side.as_str(),
            &decision_time.to_string(),
            inputs_version,
        ] {
            h.update((part.len() as u64).to_le_bytes());
            h.update(part.as_bytes());
        }
        let digest = h.finalize();
        digest[..16].iter().map(|b| format!("{b:02x}")).collect()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FillStatus {
    Filled,
    Rejected,
}

/// What a venue did with an intent (or with a protective order attached to one).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fill {
    pub intent_id: String,
    pub venue: String,
    pub token: String,
    pub side: Side,
    pub quantity: Decimal,
    pub price: Decimal,
    pub fee: Decimal,
    pub gas: Decimal,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tx_hash: Option<String>,
    pub status: FillStatus,
    pub reason: String,
    #[serde(with = "rfc3339")]
    pub fill_time: Millis,
    /// The venue's price for the trade just before it went out (the router's quote on chain, the latest
    /// tick on paper): realized slippage is measured against it. None in a backtest and for a refusal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quoted_price: Option<Decimal>,
}

impl Fill {
    /// A refusal: nothing traded, with the reason.
    pub fn refusal(
        intent_id: &str,
        venue: &str,
        token: &str,
        side: Side,
        reason: String,
        time: Millis,
    ) -> Fill {
        Fill {
            intent_id: intent_id.into(),
            venue: venue.into(),
            token: token.into(),
            side,
            quantity: Decimal::ZERO,
            price: Decimal::ZERO,
            fee: Decimal::ZERO,
            gas: Decimal::ZERO,
            tx_hash: None,
            status: FillStatus::Rejected,
            reason,
            fill_time: time,
            quoted_price: None,
        }
    }
}

/// A closed round trip. pnl = proceeds - cost - fees (gas included in fees); return = pnl / cost.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trade {
    pub token: String,
    pub side: String,
    pub entry_time: Millis,
    pub entry_price: Decimal,
    pub exit_time: Millis,
    pub exit_price: Decimal,
    pub quantity: Decimal,
    pub fees: Decimal,
    pub pnl: Decimal,
    #[serde(rename = "return")]
    pub ret: Decimal,
    pub exit_reason: String,
    /// A round trip sold in parts (trims, scale-out legs) lists them; its prices are then quantity-weighted
    /// averages and its exit time and reason the last part's. A trade sold at once has none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub legs: Vec<ExitLeg>,
}

/// One part of a round trip's exit: its own fill, its share of the entry costs in `fees`, and its profit.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExitLeg {
    pub time: Millis,
    pub price: Decimal,
    pub quantity: Decimal,
    pub fees: Decimal,
    pub pnl: Decimal,
    pub reason: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intent_ids_are_deterministic_and_sensitive() {
        let a = OrderIntent::make_id("p", "ETH", Side::Buy, 1000, "v1");
        assert_eq!(a, OrderIntent::make_id("p", "ETH", Side::Buy, 1000, "v1"));
        assert_eq!(a.len(), 32);
        assert_ne!(a, OrderIntent::make_id("p", "ETH", Side::Sell, 1000, "v1"));
        assert_ne!(a, OrderIntent::make_id("p", "ETH", Side::Buy, 1001, "v1"));
        assert_ne!(a, OrderIntent::make_id("p", "ETH", Side::Buy, 1000, "v2"));
        // length-prefixing keeps ("ab","c") and ("a","bc") apart
        assert_ne!(
            OrderIntent::make_id("ab", "c", Side::Buy, 1, "v"),
            OrderIntent::make_id("a", "bc", Side::Buy, 1, "v")
        );
    }

    #[test]
    fn distances_are_named_as_distances_and_the_old_names_still_read() {
        let d: Distance = serde_json::from_str(r#"{"kind":"absolute","value":"0.5"}"#).unwrap();
        assert_eq!(d, Distance::Absolute(Decimal::new(5, 1)));
        let f: Distance = serde_json::from_str(r#"{"kind":"fraction","value":"0.05"}"#).unwrap();
        assert_eq!(f, Distance::Fraction(Decimal::new(5, 2)));
        assert_eq!(
            serde_json::to_string(&d).unwrap(),
            r#"{"kind":"price_distance","value":"0.5"}"#
        );
        assert_eq!(
            serde_json::to_string(&f).unwrap(),
            r#"{"kind":"fraction_of_fill","value":"0.05"}"#
        );
    }

    #[test]
    fn distances() {
        let p = Decimal::from(100);
        assert_eq!(
            Distance::Fraction(Decimal::new(5, 2)).below(p),
            Decimal::from(95)
        );
        assert_eq!(
            Distance::Absolute(Decimal::from(3)).above(p),
            Decimal::from(103)
        );
    }
}
