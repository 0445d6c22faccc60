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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};
    use timely::container::CapacityContainerBuilder;
    use timely::dataflow::channels::pact::Pipeline;
    use timely::dataflow::operators::generic::Operator;
    use timely::dataflow::operators::Probe;
    use timely::dataflow::{InputHandle, ProbeHandle};

    /// Net (token, label) membership after each time, from the differential output.
    #[test]
    fn components_merge_and_split_incrementally() {
        let seen: Arc<Mutex<Vec<ClusterUpdate>>> = Arc::new(Mutex::new(Vec::new()));
        let s2 = seen.clone();
        timely::execute_directly(move |worker| {
            let mut input: InputHandle<u64, CapacityContainerBuilder<Vec<LinkUpdate>>> =
                InputHandle::new();
            let probe = ProbeHandle::new();
            let sink = s2.clone();
            worker.dataflow::<u64, _, _>(|scope| {
                clusters(input.to_stream(scope)).probe_with(&probe).sink(
                    Pipeline,
                    "c",
                    move |(inp, _)| {
                        inp.for_each_stamp(|_, data| {
                            for b in data {
                                sink.lock().unwrap().append(b);
                            }
                        })
                    },
                );
            });
            // time 1: tokens 0..4, links 1-2 and 2-3 -> {0}, {1,2,3}, {4}
            for t in 0..5u32 {
                input.send(((t, t), 1, 1));
            }
            for (a, b) in [(1, 2), (2, 3)] {
                input.send(((a, b), 1, 1));
                input.send(((b, a), 1, 1));
            }
            input.advance_to(2);
            // time 2: link 1-2 goes -> {1}, {2,3}
            input.send(((1, 2), 2, -1));
            input.send(((2, 1), 2, -1));
            input.advance_to(3);
            while probe.less_than(&3) {
                worker.step();
            }
        });
        let all = seen.lock().unwrap().clone();
        let at = |time: u64| {
            let mut m = std::collections::BTreeMap::new();
            for ((tok, label), t, d) in &all {
                if *t <= time {
                    *m.entry((*tok, *label)).or_insert(0isize) += d;
                }
            }
            m.into_iter()
                .filter(|(_, d)| *d > 0)
                .map(|(k, _)| k)
                .collect::<Vec<_>>()
        };
        assert_eq!(at(1), vec![(0, 0), (1, 1), (2, 1), (3, 1), (4, 4)]);
        assert_eq!(at(2), vec![(0, 0), (1, 1), (2, 2), (3, 2), (4, 4)]);
        // incremental: at time 2 only the moved labels change
        let changes_at_2 = all.iter().filter(|(_, t, _)| *t == 2).count();
        assert_eq!(changes_at_2, 4, "{all:?}");
    }
}
