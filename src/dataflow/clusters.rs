//! Correlation clusters as connected components of the link graph, maintained by differential dataflow.
//!
//! Why differential here: links appear and disappear a few at a time as correlations cross the threshold,
//! and a component can merge or split on any one of them. Label propagation over the link collection is
//! incremental: each change costs work proportional to the labels it moves, not a recomputation, and the
//! output is exactly the (token, cluster) changes at the time they happen.

use super::correlation::LinkUpdate;
use differential_dataflow::algorithms::graphs::propagate::propagate;
use differential_dataflow::AsCollection;
use timely::dataflow::Stream;

/// ((token, cluster label), time, diff); the label is the smallest token id in the component.
pub type ClusterUpdate = ((u32, u32), u64, isize);

pub fn clusters<'s>(
    links: Stream<'s, u64, Vec<LinkUpdate>>,
) -> Stream<'s, u64, Vec<ClusterUpdate>> {
    let edges = links.as_collection();
    let nodes = edges.clone().filter(|(a, b)| a == b).map(|(a, _)| (a, a));
    propagate(edges, nodes).consolidate().inner
}
