//! Nodes of a graph: what runs, and where each input port reads from.

use std::sync::Arc;

use crate::nn::Module;

/// Where an input port takes its value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// The graph's k-th input.
    Input(usize),
    /// The output of node i.
    Node(usize),
}

/// One input port: floDl's port name (`input`, `input_i`, `ref_<tag>`),
/// its source, and the tag when it is a ref port.
#[derive(Clone, Debug)]
pub struct Port {
    pub name: String,
    pub source: Source,
    pub ref_tag: Option<String>,
}

impl Port {
    pub fn main(name: &str, source: Source) -> Self {
        Port {
            name: name.to_string(),
            source,
            ref_tag: None,
        }
    }
    pub fn reference(tag: &str, source: Source) -> Self {
        Port {
            name: format!("ref_{tag}"),
            source,
            ref_tag: Some(tag.to_string()),
        }
    }
}

/// What a node computes.
#[derive(Clone)]
pub enum NodeOp {
    /// A module (layers, nested graphs, loops, gates, switches, maps).
    Module(Arc<dyn Module>),
    /// The sum of the main ports in order (also, merge Add), plus refs.
    Add,
    /// The mean of the main ports (merge Mean: sum × 1/n), plus refs.
    Mean,
    /// Graph input k passed through (`.input(name)`).
    Input(usize),
    /// The previous forward's output of a tag (forward refs).
    StateRead(String),
}

/// One node: its floDl id (`linear_1`), op and input ports.
#[derive(Clone)]
pub struct Node {
    pub id: String,
    pub op: NodeOp,
    pub inputs: Vec<Port>,
    /// Run under gradient checkpointing (`.checkpoint()`): activations are
    /// recomputed in backward. Not hashed, not part of any name.
    pub checkpoint: bool,
}

impl Node {
    pub fn module(&self) -> Option<&Arc<dyn Module>> {
        match &self.op {
            NodeOp::Module(m) => Some(m),
            _ => None,
        }
    }
}
