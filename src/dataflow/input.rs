//! The pipeline's input: the events every source (history files, topic replays, the live run) hands the
//! dataflow, the dead letters it hands back, and the one set of record checks they all apply, so a record is
//! accepted or refused for the same reason whichever way it arrived.

use super::records::{BarRec, OrderState, TickRec, TweetRec};
use crate::model::limits::{check_price_volume, check_time};
use crate::model::{Invalid, TokenTable};
use crate::model::{Millis, ScoredMention, Tweet};
use rust_decimal::Decimal;
use serde::Serialize;
use timely::dataflow::operators::vec::{Map, Partition};
use timely::dataflow::Stream;

/// A rejected record and why.
#[derive(Clone, Debug, Serialize)]
pub struct DeadLetter {
    pub file: String,
    pub line: u64,
    pub reason: String,
    pub raw: String,
}

#[derive(Clone, Debug)]
pub enum InputEvent {
    Tick(TickRec),
    Bar(BarRec),
    Tweet(TweetRec),
    /// Read back from the order topics by a live run whose positions follow the executor's fills.
    Order(OrderState),
}

impl InputEvent {
    /// When the record became knowable: a bar only at its close.
    pub fn time(&self) -> Millis {
        match self {
            InputEvent::Tick(t) => t.time,
            InputEvent::Bar(b) => b.close_time(),
            InputEvent::Tweet(t) => t.tweet.created_at,
            InputEvent::Order(o) => o.time().unwrap_or(Millis::MIN),
        }
    }

    /// Places the record in the replay's total order (ties between equal event times).
    pub fn set_seq(&mut self, seq: u64) {
        match self {
            InputEvent::Tick(t) => t.seq = seq,
            InputEvent::Tweet(t) => t.seq = seq,
            InputEvent::Bar(_) | InputEvent::Order(_) => {}
        }
    }
}

/// A price tick's checks: a token of the universe (its dense id is returned), a price and a volume in range,
/// a time from 1970 to 2100.
pub fn check_tick(
    token: &str,
    price: Decimal,
    volume: Decimal,
    event_time: Millis,
    table: &TokenTable,
) -> Result<u32, Invalid> {
    let id = table
        .id(token)
        .ok_or_else(|| Invalid(format!("token {token} is not in the pipeline's universe")))?;
    if price <= Decimal::ZERO {
        return Err(Invalid(format!("price {price} is not positive")));
    }
    if volume < Decimal::ZERO {
        return Err(Invalid(format!("volume {volume} is negative")));
    }
    check_price_volume(price, volume)?;
    check_time("event_time", event_time)?;
    Ok(id)
}

/// A post's checks: an id, a time not before 1970.
pub fn check_post(t: &Tweet) -> Result<(), Invalid> {
    if t.id.trim().is_empty() {
        return Err(Invalid("tweet has an empty id".into()));
    }
    check_time("created_at", t.created_at)
}

/// A scored mention's checks: the post's id, a score in [-1, 1], a time not before 1970.
pub fn check_scored(m: &ScoredMention) -> Result<(), Invalid> {
    if m.tweet_id.trim().is_empty() {
        return Err(Invalid("scored mention has an empty tweet_id".into()));
    }
    if !(-1.0..=1.0).contains(&m.score) {
        return Err(Invalid(format!("score {} is outside [-1, 1]", m.score)));
    }
    check_time("created_at", m.created_at)
}

/// The pipeline's inputs: ticks, bars, posts and, for a live run that follows the executor, the order
/// lifecycle read back from the order topics.
pub struct Inputs<'s> {
    pub ticks: Stream<'s, u64, Vec<TickRec>>,
    pub bars: Stream<'s, u64, Vec<BarRec>>,
    pub tweets: Stream<'s, u64, Vec<TweetRec>>,
    pub orders: Option<Stream<'s, u64, Vec<OrderState>>>,
}

/// Splits one stream of decoded input events (as a topic source produces them) into the pipeline's inputs.
pub fn split_events<'s>(events: Stream<'s, u64, Vec<InputEvent>>) -> Inputs<'s> {
    let mut parts = events.partition(4, |e| {
        let k = match &e {
            InputEvent::Tick(_) => 0,
            InputEvent::Bar(_) => 1,
            InputEvent::Tweet(_) => 2,
            InputEvent::Order(_) => 3,
        };
        (k, e)
    });
    let orders = parts.pop().map(|s| {
        s.flat_map(|e| match e {
            InputEvent::Order(o) => Some(o),
            _ => None,
        })
    });
    let tweets = parts.pop().map(|s| {
        s.flat_map(|e| match e {
            InputEvent::Tweet(t) => Some(t),
            _ => None,
        })
    });
    let bars = parts.pop().map(|s| {
        s.flat_map(|e| match e {
            InputEvent::Bar(b) => Some(b),
            _ => None,
        })
    });
    let ticks = parts.pop().map(|s| {
        s.flat_map(|e| match e {
            InputEvent::Tick(t) => Some(t),
            _ => None,
        })
    });
    match (ticks, bars, tweets, orders) {
        (Some(ticks), Some(bars), Some(tweets), orders) => Inputs {
            ticks,
            bars,
            tweets,
            orders,
        },
        _ => unreachable!("partition(4) returns four streams"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::pipeline::Universe;

    fn table() -> TokenTable {
        let u: Universe = toml::from_str("tokens = [\"AXL\"]").expect("a universe");
        u.token_table()
    }

    #[test]
    fn every_source_refuses_the_same_records_for_the_same_reasons() {
        let t = table();
        let one = Decimal::ONE;
        assert_eq!(check_tick("AXL", one, one, 0, &t), Ok(0));
        for (token, price, volume, time, why) in [
            ("ZZZ", one, one, 0, "not in the pipeline's universe"),
            ("AXL", Decimal::ZERO, one, 0, "not positive"),
            ("AXL", one, -one, 0, "negative"),
            ("AXL", one, one, -1, "before 1970"),
        ] {
            let e = check_tick(token, price, volume, time, &t).unwrap_err();
            assert!(e.0.contains(why), "{e}");
        }
        let mut post: Tweet = serde_json::from_str(
            r#"{"id":"1","author_id":"2","text":"$AXL","created_at":"2025-03-01T00:00:00Z"}"#,
        )
        .expect("a post");
        assert_eq!(check_post(&post), Ok(()));
        post.created_at = -5;
        assert!(check_post(&post).unwrap_err().0.contains("before 1970"));
        post.created_at = 0;
        post.id = " ".into();
        assert!(check_post(&post).unwrap_err().0.contains("empty id"));
    }
}
