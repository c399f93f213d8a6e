//! Profiling: per-node and per-level wall-clock times of the last forward,
//! recorded only while enabled (one atomic load per forward otherwise).

use std::fmt;
use std::sync::atomic::Ordering;
use std::time::Instant;

use super::exec::Graph;
use super::node::{Node, Source};

/// One node's run in a profiled forward.
pub(crate) struct NodeRun {
    pub node: usize,
    pub start: Instant,
    pub end: Instant,
}

/// The hook execution calls around each node while profiling is on; made
/// by [`crate::graph::Graph::forward_timer`], stored by `finish`.
pub(crate) struct ForwardTimer {
    t0: Instant,
    node_start: Instant,
    runs: Vec<NodeRun>,
}

impl ForwardTimer {
    pub fn node_start(&mut self) {
        self.node_start = Instant::now();
    }

    pub fn node_end(&mut self, node: usize) {
        self.runs.push(NodeRun {
            node,
            start: self.node_start,
            end: Instant::now(),
        });
    }

    pub fn finish(self, g: &Graph) {
        g.store_profile(self.t0, self.runs);
    }
}

/// A node's time in the last profiled forward.
#[derive(Clone, Debug)]
pub struct NodeTiming {
    pub id: String,
    /// The node's first tag, or "" when untagged.
    pub tag: String,
    /// Seconds.
    pub duration: f64,
    pub level: usize,
}

/// A topological level's time: from its first node's start to its last
/// node's end (nodes run one after another).
#[derive(Clone, Debug)]
pub struct LevelTiming {
    pub index: usize,
    /// Seconds.
    pub wall_clock: f64,
    /// Seconds, summed over the level's nodes.
    pub sum_nodes: f64,
    pub num_nodes: usize,
}

#[derive(Clone, Debug)]
pub struct Profile {
    /// Seconds for the whole forward's node loop.
    pub total: f64,
    pub levels: Vec<LevelTiming>,
    /// In execution order (which is level order).
    pub nodes: Vec<NodeTiming>,
}

impl Profile {
    /// Seconds of the node carrying `tag` as its first tag.
    pub fn timing(&self, tag: &str) -> Option<f64> {
        self.nodes.iter().find(|n| n.tag == tag).map(|n| n.duration)
    }
}

/// "850us", "1.25ms", "1.50s".
pub fn format_duration(secs: f64) -> String {
    if secs < 1e-3 {
        format!("{:.0}us", secs * 1e6)
    } else if secs < 1.0 {
        format!("{:.2}ms", secs * 1e3)
    } else {
        format!("{secs:.2}s")
    }
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "Forward: {} ({} levels, {} nodes)",
            format_duration(self.total),
            self.levels.len(),
            self.nodes.len()
        )?;
        for lv in &self.levels {
            write!(
                f,
                "\n  Level {}  {}",
                lv.index,
                format_duration(lv.wall_clock)
            )?;
            if lv.num_nodes > 1 {
                write!(f, "  {} nodes", lv.num_nodes)?;
            }
            writeln!(f)?;
            for n in self.nodes.iter().filter(|n| n.level == lv.index) {
                let label = if n.tag.is_empty() {
                    n.id.clone()
                } else {
                    format!("{} \"{}\"", n.id, n.tag)
                };
                writeln!(f, "    {label:<40} {}", format_duration(n.duration))?;
            }
        }
        Ok(())
    }
}

/// Longest-path level of each node (by index) given a topological order:
/// nodes without node inputs are level 0.
pub(crate) fn node_levels(nodes: &[Node], order: &[usize]) -> Vec<usize> {
    let mut level = vec![0usize; nodes.len()];
    for &i in order {
        level[i] = nodes[i]
            .inputs
            .iter()
            .filter_map(|p| match p.source {
                Source::Node(j) => Some(level[j] + 1),
                Source::Input(_) => None,
            })
            .max()
            .unwrap_or(0);
    }
    level
}

impl Graph {
    /// Times every node of the following forwards.
    pub fn enable_profiling(&self) {
        self.profiling.store(true, Ordering::Relaxed);
    }

    /// Stops timing and drops the last profile.
    pub fn disable_profiling(&self) {
        self.profiling.store(false, Ordering::Relaxed);
        *self.prof_slot() = None;
    }

    pub fn profiling(&self) -> bool {
        self.profiling.load(Ordering::Relaxed)
    }

    fn prof_slot(&self) -> std::sync::MutexGuard<'_, Option<Profile>> {
        self.last_profile.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The last profiled forward's times (None before one).
    pub fn profile(&self) -> Option<Profile> {
        self.prof_slot().clone()
    }

    /// Seconds of a tagged node in the last profiled forward (0 if none).
    pub fn timing(&self, tag: &str) -> f64 {
        self.prof_slot()
            .as_ref()
            .and_then(|p| p.timing(tag))
            .unwrap_or(0.0)
    }

    /// A timer for one forward when profiling is on (one relaxed atomic
    /// load when it is off).
    pub(crate) fn forward_timer(&self) -> Option<ForwardTimer> {
        self.profiling.load(Ordering::Relaxed).then(|| {
            let now = Instant::now();
            ForwardTimer {
                t0: now,
                node_start: now,
                runs: Vec::new(),
            }
        })
    }

    fn store_profile(&self, t0: Instant, runs: Vec<NodeRun>) {
        let total = t0.elapsed().as_secs_f64();
        let levels = self.node_levels();
        let n_levels = runs.iter().map(|r| levels[r.node] + 1).max().unwrap_or(0);
        let mut spans: Vec<Option<(Instant, Instant, f64, usize)>> = vec![None; n_levels];
        let mut nodes = Vec::with_capacity(runs.len());
        for r in &runs {
            let lv = levels[r.node];
            let d = r.end.duration_since(r.start).as_secs_f64();
            let s = spans[lv].get_or_insert((r.start, r.end, 0.0, 0));
            s.0 = s.0.min(r.start);
            s.1 = s.1.max(r.end);
            s.2 += d;
            s.3 += 1;
            nodes.push(NodeTiming {
                id: self.nodes()[r.node].id.clone(),
                tag: self.first_tag_of(r.node).unwrap_or("").to_string(),
                duration: d,
                level: lv,
            });
        }
        let levels = spans
            .into_iter()
            .enumerate()
            .filter_map(|(index, s)| {
                s.map(|(a, b, sum, n)| LevelTiming {
                    index,
                    wall_clock: b.duration_since(a).as_secs_f64(),
                    sum_nodes: sum,
                    num_nodes: n,
                })
            })
            .collect();
        *self.prof_slot() = Some(Profile {
            total,
            levels,
            nodes,
        });
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use tch::{Device, Kind, Tensor};

    use crate::graph::{FlowBuilder, MergeOp};
    use crate::nn::{Identity, Module};

    #[test]
    fn levels_and_profile() {
        let g = FlowBuilder::new()
            .tag("in")
            .split(vec![Arc::new(Identity), Arc::new(Identity)])
            .merge(MergeOp::Add)
            .tag("sum")
            .build()
            .expect("build");
        let lv: Vec<usize> = g.order().iter().map(|&i| g.node_levels()[i]).collect();
        assert_eq!(lv, [0, 1, 1, 2]);
        let x = Tensor::ones([1, 2], (Kind::Float, Device::Cpu));
        let _ = g.forward(&x).expect("forward");
        assert!(g.profile().is_none());
        g.enable_profiling();
        let _ = g.forward(&x).expect("forward");
        let p = g.profile().expect("profile");
        assert_eq!(p.nodes.len(), 4);
        assert_eq!(
            p.levels.iter().map(|l| l.num_nodes).collect::<Vec<_>>(),
            [1, 2, 1]
        );
        assert!(p.nodes.iter().all(|n| n.duration >= 0.0));
        assert_eq!(p.nodes[3].tag, "sum");
        assert!(g.timing("sum") > 0.0);
        assert!(p.to_string().contains("Level 1"));
        g.end_step();
        g.end_epoch();
        assert_eq!(g.timing_trend("sum").len(), 1);
        g.disable_profiling();
        assert!(g.profile().is_none() && g.timing("sum") == 0.0);
    }
}
