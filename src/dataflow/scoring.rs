//! (tokens, post) -> one scored mention per token. The lexicon score is computed once per post (the expensive
//! part) on the worker that ingested it, unless the post was scored upstream (`social.scored`); the influence
//! weight comes from reach and engagement.

use super::records::{Authors, Counters, Mention};
use super::token_extraction::ExtractedPost;
use crate::config::SentimentConfig;
use crate::sentiment::LexiconScorer;
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

pub fn scoring<'s>(
    posts: Stream<'s, u64, Vec<ExtractedPost>>,
    cfg: SentimentConfig,
    counters: Arc<Counters>,
) -> Stream<'s, u64, Vec<Mention>> {
    posts.unary::<CapacityContainerBuilder<Vec<Mention>>, _, _, _>(
        Pipeline,
        "Scoring",
        move |_cap, _info| {
            let scorer = LexiconScorer::shared();
            let mut authors = Authors::default();
            move |input, output| {
                input.for_each_stamp(|cap, data| {
                    let mut session = output.session(&cap);
                    for batch in data {
                        for post in batch.drain(..) {
                            let t = &post.tweet;
                            let score = post.score.unwrap_or_else(|| scorer.score(&t.text));
                            let weight = influence_weight(
                                t.followers,
                                t.engagement.weighted(),
                                cfg.engagement_weight,
                            );
                            Counters::add(&counters.mentions, post.tokens.len() as u64);
                            let author = authors.label(t);
                            for token in post.tokens {
                                session.give(Mention {
                                    token,
                                    time: t.created_at,
                                    seq: post.seq,
                                    score,
                                    weight,
                                    author: author.clone(),
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
