//! Market and social events as they enter the system. Field names are the on-disk/on-topic format.

use super::money::lenient;
use super::time::{rfc3339, Millis};
use super::Invalid;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Engagement {
    #[serde(default, alias = "like_count")]
    pub likes: u64,
    #[serde(default, alias = "retweet_count", alias = "repost_count")]
    pub retweets: u64,
    #[serde(default, alias = "reply_count")]
    pub replies: u64,
    #[serde(default, alias = "quote_count")]
    pub quotes: u64,
}

impl Engagement {
    /// Reposts and quotes spread a message further than a like, so they count more.
    pub fn weighted(&self) -> f64 {
        self.likes as f64
            + 2.0 * self.retweets as f64
            + self.replies as f64
            + 2.0 * self.quotes as f64
    }
}

/// A follower count; scraped data writes -1 (or null) for "unknown", which reads as 0: no reach known, the
/// smallest weight, rather than a whole post refused.
fn followers_or_unknown<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    // a binary form (records between timely processes) holds what was written: the plain count
    if !d.is_human_readable() {
        return u64::deserialize(d);
    }
    Ok(Option::<i64>::deserialize(d)?.map_or(0, |n| u64::try_from(n).unwrap_or(0)))
}

/// A post as ingested. `created_at` is when it became knowable, so it is the event time.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Tweet {
    pub id: String,
    pub author_id: String,
    #[serde(default)]
    pub author_handle: String,
    #[serde(default, deserialize_with = "followers_or_unknown")]
    pub followers: u64,
    pub text: String,
    #[serde(with = "rfc3339")]
    pub created_at: Millis,
    #[serde(default)]
    pub engagement: Engagement,
}

/// One (post, token) score as the scoring stage wrote it to `social.scored`: which model gave it (an LLM, or
/// the lexicon it fell back to), with the post's reach so the pipeline can weigh it without the post itself.
/// Backtests replay these, so a run over history sees exactly the scores the live run saw.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScoredMention {
    pub tweet_id: String,
    /// The universe symbol.
    pub token: String,
    /// In [-1, 1].
    pub score: f64,
    /// In [0, 1]; the lexicon, which has no notion of it, writes 1.
    pub confidence: f64,
    pub model: String,
    #[serde(with = "rfc3339")]
    pub created_at: Millis,
    pub author_id: String,
    #[serde(default, deserialize_with = "followers_or_unknown")]
    pub followers: u64,
    #[serde(default)]
    pub engagement: Engagement,
}

/// A trade or quote observation for a token, priced in the pipeline's quote currency.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PriceTick {
    pub token: String,
    #[serde(deserialize_with = "lenient")]
    pub price: Decimal,
    #[serde(default, deserialize_with = "lenient")]
    pub volume: Decimal,
    #[serde(default)]
    pub source: String,
    #[serde(with = "rfc3339")]
    pub event_time: Millis,
}

/// A `PriceTick` read in place from its JSON: the same fields and rules, but the strings borrowed, since the
/// Kafka source only looks the token up and drops the rest.
#[derive(Debug, Deserialize)]
pub struct PriceTickRef<'a> {
    #[serde(borrow)]
    pub token: std::borrow::Cow<'a, str>,
    #[serde(deserialize_with = "lenient")]
    pub price: Decimal,
    #[serde(default, deserialize_with = "lenient")]
    pub volume: Decimal,
    #[serde(default, borrow)]
    pub source: std::borrow::Cow<'a, str>,
    #[serde(deserialize_with = "rfc3339::deserialize")]
    pub event_time: Millis,
}

/// OHLCV over `[open_time, open_time + interval)`. It only becomes knowable at its close time.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bar {
    pub token: String,
    #[serde(with = "rfc3339")]
    pub open_time: Millis,
    pub interval_ms: i64,
    pub open: Decimal,
    pub high: Decimal,
    pub low: Decimal,
    pub close: Decimal,
    pub volume: Decimal,
}

impl Bar {
    pub fn close_time(&self) -> Millis {
        self.open_time + self.interval_ms
    }

    /// Structural checks a bar must pass before it is used.
    pub fn validate(&self) -> Result<(), Invalid> {
        if self.interval_ms <= 0 || self.interval_ms > 7 * 86_400_000 {
            return Err(Invalid(format!(
                "bar interval {} ms must be positive and at most a week",
                self.interval_ms
            )));
        }
        for (name, v) in [
            ("open", self.open),
            ("high", self.high),
            ("low", self.low),
            ("close", self.close),
        ] {
            if v <= Decimal::ZERO {
                return Err(Invalid(format!("{name} price {v} is not positive")));
            }
        }
        if self.volume < Decimal::ZERO {
            return Err(Invalid(format!("volume {} is negative", self.volume)));
        }
        for p in [self.open, self.high, self.low, self.close] {
            super::limits::check_price_volume(p, self.volume)?;
        }
        super::limits::check_time("open time", self.open_time)?;
        if self.high < self.low {
            return Err(Invalid(format!("high {} < low {}", self.high, self.low)));
        }
        if self.open > self.high
            || self.open < self.low
            || self.close > self.high
            || self.close < self.low
        {
            return Err(Invalid(format!(
                "open {} / close {} outside the bar's range [{}, {}]",
                self.open, self.close, self.low, self.high
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_borrowed_tick_reads_what_the_owned_one_does() {
        for text in [
            r#"{"token":"AXL","price":"1.50","volume":2,"source":"cg","event_time":"2024-01-01T00:00:00.250Z"}"#,
            r#"{"token":"AXL","price":1.5,"event_time":1704067200250}"#,
            r#"{"token":"A\u0058L","price":"1e-3","event_time":"2024-01-01T01:00:00+01:00"}"#,
        ] {
            let owned: PriceTick = serde_json::from_str(text).unwrap();
            let view: PriceTickRef = serde_json::from_str(text).unwrap();
            assert_eq!(
                (
                    view.token.as_ref(),
                    view.price,
                    view.volume,
                    view.source.as_ref(),
                    view.event_time
                ),
                (
                    owned.token.as_str(),
                    owned.price,
                    owned.volume,
                    owned.source.as_str(),
                    owned.event_time
                ),
                "{text}"
            );
        }
        for bad in [
            r#"{"token":7,"price":1,"event_time":1}"#,
            r#"{"token":"AXL","event_time":1}"#,
            r#"{"token":"AXL","price":1,"source":3,"event_time":1}"#,
            r#"{"token":"AXL","price":"x","event_time":1}"#,
            r#"{"token":"AXL","price":1,"event_time":"yesterday"}"#,
        ] {
            assert!(serde_json::from_str::<PriceTick>(bad).is_err(), "{bad}");
            assert!(serde_json::from_str::<PriceTickRef>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn tweet_accepts_both_engagement_generations() {
        let a: Tweet = serde_json::from_str(
            r#"{"id":"1","author_id":"9","text":"hi","created_at":"2024-01-01T00:00:00Z","engagement":{"retweet_count":3}}"#,
        )
        .unwrap();
        let b: Tweet = serde_json::from_str(
            r#"{"id":"1","author_id":"9","text":"hi","created_at":1704067200000,"engagement":{"repost_count":3}}"#,
        )
        .unwrap();
        assert_eq!(a, b);
        assert_eq!(a.engagement.retweets, 3);
    }

    #[test]
    fn tick_prices_from_numbers_or_strings() {
        let t: PriceTick = serde_json::from_str(
            r#"{"token":"ETH","price":0.1,"volume":"2.5","event_time":"2024-01-01T00:00:00Z"}"#,
        )
        .unwrap();
        assert_eq!(t.price.to_string(), "0.1");
        assert_eq!(t.volume.to_string(), "2.5");
    }

    #[test]
    fn bar_validation() {
        let mut b = Bar {
            token: "X".into(),
            open_time: 0,
            interval_ms: 60_000,
            open: Decimal::from(10),
            high: Decimal::from(12),
            low: Decimal::from(9),
            close: Decimal::from(11),
            volume: Decimal::ONE,
        };
        assert!(b.validate().is_ok());
        assert_eq!(b.close_time(), 60_000);
        b.low = Decimal::from(13);
        assert!(b.validate().unwrap_err().0.contains("high"));
    }
}
