//! Posts -> scored (token, post) mentions. Runs on the worker that ingested the post (no exchange): scoring is
//! the expensive part and parallelizes with the input.

use super::records::{Counters, Mention, TweetRec};
use crate::config::{SentimentConfig, TokenTable};
use crate::sentiment::{extract, LexiconScorer};
use std::sync::Arc;
use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::Stream;

/// Influence of one post: reach (followers, log-scaled so one mega-account does not drown everyone) times a
/// milder factor for engagement.
pub fn influence_weight(followers: u64, engagement: f64, engagement_weight: f64) -> f64 {
    (1.0 + followers as f64).log10()
        * (1.0 + engagement_weight * (1.0 + engagement.max(0.0)).log10())
}

pub fn mentions<'s>(
    tweets: Stream<'s, u64, Vec<TweetRec>>,
    table: Arc<TokenTable>,
    cfg: SentimentConfig,
    counters: Arc<Counters>,
) -> Stream<'s, u64, Vec<Mention>> {
    tweets.unary::<CapacityContainerBuilder<Vec<Mention>>, _, _, _>(
        Pipeline,
        "Mentions",
        move |_cap, _info| {
            let scorer = LexiconScorer::shared();
            move |input, output| {
                input.for_each_stamp(|cap, data| {
                    let mut session = output.session(&cap);
                    for batch in data {
                        for rec in batch.drain(..) {
                            Counters::add(&counters.tweets, 1);
                            let t = &rec.tweet;
                            if t.followers < cfg.min_followers {
                                Counters::add(&counters.tweets_below_followers, 1);
                                continue;
                            }
                            let found = extract(&t.text, &table);
                            if found.unknown > 0 {
                                Counters::add(
                                    &counters.unknown_token_mentions,
                                    found.unknown as u64,
                                );
                            }
                            if found.tokens.is_empty() {
                                Counters::add(&counters.tweets_without_token, 1);
                                continue;
                            }
                            let score = scorer.score(&t.text);
                            let weight = influence_weight(
                                t.followers,
                                t.engagement.weighted(),
                                cfg.engagement_weight,
                            );
                            Counters::add(&counters.mentions, found.tokens.len() as u64);
                            for token in found.tokens {
                                session.give(Mention {
                                    token,
                                    time: t.created_at,
                                    seq: rec.seq,
                                    score,
                                    weight,
                                });
                            }
                        }
                    }
                });
            }
        },
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn weight_grows_with_reach_and_engagement() {
        let w = super::influence_weight;
        assert!(w(1_000_000, 0.0, 0.25) > w(1_000, 0.0, 0.25));
        assert!(w(1_000, 500.0, 0.25) > w(1_000, 0.0, 0.25));
        assert_eq!(w(0, 0.0, 0.25), 0.0);
    }
}
