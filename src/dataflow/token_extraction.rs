//! Posts -> (tokens, post): which universe tokens a post names. Runs on the worker that ingested the post
//! (no exchange); posts naming no universe token, from accounts below the follower floor or (with an
//! influencer list) off the list stop here and are counted.

use super::records::{Counters, TweetRec};
use crate::config::InfluencerBook;
use crate::model::TokenTable;
use crate::model::Tweet;
use crate::sentiment::extract;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::Stream;

/// A post with the universe tokens it names, in first-mention order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ExtractedPost {
    pub seq: u64,
    pub tokens: Vec<u32>,
    pub tweet: Tweet,
    /// The upstream score of a scored mention (then `tokens` is its one token).
    pub score: Option<f64>,
}

pub fn token_extraction<'s>(
    tweets: Stream<'s, u64, Vec<TweetRec>>,
    table: Arc<TokenTable>,
    min_followers: u64,
    influencers: Option<Arc<InfluencerBook>>,
    counters: Arc<Counters>,
) -> Stream<'s, u64, Vec<ExtractedPost>> {
    tweets.unary::<CapacityContainerBuilder<Vec<ExtractedPost>>, _, _, _>(
        Pipeline,
        "TokenExtraction",
        move |_cap, _info| {
            move |input, output| {
                input.for_each_stamp(|cap, data| {
                    let mut session = output.session(&cap);
                    for batch in data {
                        for mut rec in batch.drain(..) {
                            Counters::add(&counters.tweets, 1);
                            if let Some(book) = &influencers {
                                let t = &mut rec.tweet;
                                match book.followers(&t.author_id, &t.author_handle) {
                                    None => {
                                        Counters::add(&counters.tweets_not_influencer, 1);
                                        continue;
                                    }
                                    // the post's own count is fresher than the list's
                                    Some(listed) if t.followers == 0 => t.followers = listed,
                                    Some(_) => {}
                                }
                            }
                            if rec.tweet.followers < min_followers {
                                Counters::add(&counters.tweets_below_followers, 1);
                                continue;
                            }
                            if let Some((symbol, score)) = rec.scored {
                                match table.id(&symbol) {
                                    Some(token) => session.give(ExtractedPost {
                                        seq: rec.seq,
                                        tokens: vec![token],
                                        tweet: rec.tweet,
                                        score: Some(score),
                                    }),
                                    None => Counters::add(&counters.unknown_token_mentions, 1),
                                }
                                continue;
                            }
                            let found = extract(&rec.tweet.text, &table);
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
                            session.give(ExtractedPost {
                                seq: rec.seq,
                                tokens: found.tokens,
                                tweet: rec.tweet,
                                score: None,
                            });
                        }
                    }
                });
            }
        },
    )
}
