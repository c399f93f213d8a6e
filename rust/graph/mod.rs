//! Graphs: `FlowBuilder` (floDl's fluent builder), `Graph` (execution),
//! composite nodes, built-in nodes, the structural hash, graph trees,
//! observation and trends, profiling and Graphviz output.

mod builder;
pub mod builtins;
mod capture;
pub mod composite;
mod dot;
mod exec;
mod hash;
mod node;
mod observe;
mod profile;
mod repr;
mod tree;
mod trend;

pub use builder::{FlowBuilder, MergeOp};
pub use capture::{capture_blocker, pin_state};
pub use composite::{LoopKind, MapMode};
pub use dot::{format_count, render_svg};
pub use exec::{Graph, StepDriver};
pub use node::{NodeOp, Port, Source};
pub use observe::Reduce;
pub use profile::{format_duration, LevelTiming, NodeTiming, Profile};
pub use tree::{PathKind, Resolved};
pub use trend::{Trend, TrendGroup};
