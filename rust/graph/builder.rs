//! `FlowBuilder`: floDl's fluent graph builder. Errors accumulate and surface
//! at `build()`, as in floDl, so a chain never throws half-way.

use std::collections::HashSet;
use std::sync::Arc;

use super::composite::{GateModule, LoopKind, LoopModule, MapMode, MapModule, SwitchModule};
use super::exec::{Graph, GraphSpec};
use super::node::{Node, NodeOp, Port, Source};
use crate::nn::{Identity, Module};
use crate::{Error, Result};

/// How `.merge()` combines the open streams.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MergeOp {
    Add,
    Mean,
}

/// What `.using()` wires refs into.
#[derive(Clone, Debug)]
enum Target {
    None,
    Node(usize),
    /// Every open branch after `.split()`.
    Branches(Vec<usize>),
}

pub struct FlowBuilder {
    nodes: Vec<Node>,
    /// (from node, from port, to node, to port) in creation order (hashed).
    edges: Vec<(usize, String, usize, String)>,
    /// Open streams (node indices); most constructs need exactly one.
    current: Vec<usize>,
    on_target: Target,
    /// Set by `.fork()`; the next `.tag()` names it (and clears it).
    fork_target: Option<usize>,
    /// Tags in definition order: (name, node index).
    tags: Vec<(String, usize)>,
    internal: HashSet<String>,
    /// Forward refs waiting for their tag.
    pending: Vec<String>,
    /// Tags read by forward refs: their output is kept for the next call.
    state_tags: HashSet<String>,
    /// Extra graph inputs from `.input()` (graph input k+1 is names[k]).
    input_names: Vec<String>,
    label: Option<String>,
    /// `tag_group` names and their members (observation expands them).
    groups: Vec<(String, Vec<String>)>,
    /// Ids handed out so far; floDl's counter counts every node from 1.
    counter: usize,
    errors: Vec<String>,
}

impl FlowBuilder {
    /// The entry node: `m` reads graph input 0.
    pub fn from_module(m: Arc<dyn Module>) -> Self {
        let mut b = FlowBuilder {
            nodes: Vec::new(),
            edges: Vec::new(),
            current: Vec::new(),
            on_target: Target::None,
            fork_target: None,
            tags: Vec::new(),
            internal: HashSet::new(),
            pending: Vec::new(),
            state_tags: HashSet::new(),
            input_names: Vec::new(),
            label: None,
            groups: Vec::new(),
            counter: 0,
            errors: Vec::new(),
        };
        let prefix = m.name().to_string();
        let idx = b.push(
            &prefix,
            NodeOp::Module(m),
            vec![Port::main("input", Source::Input(0))],
        );
        b.current = vec![idx];
        b.on_target = Target::Node(idx);
        b
    }

    /// `FlowBuilder::new()` = `from(Identity)`.
    pub fn new() -> Self {
        Self::from_module(Arc::new(Identity))
    }

    fn push(&mut self, prefix: &str, op: NodeOp, inputs: Vec<Port>) -> usize {
        self.counter += 1;
        let idx = self.nodes.len();
        for p in &inputs {
            if let Source::Node(from) = p.source {
                self.edges
                    .push((from, "output".into(), idx, p.name.clone()));
            }
        }
        self.nodes.push(Node {
            id: format!("{prefix}_{}", self.counter),
            op,
            inputs,
            checkpoint: false,
        });
        idx
    }

    fn push_module(&mut self, prefix: Option<&str>, m: Arc<dyn Module>, from: usize) -> usize {
        let prefix = prefix
            .map(str::to_string)
            .unwrap_or_else(|| m.name().to_string());
        self.push(
            &prefix,
            NodeOp::Module(m),
            vec![Port::main("input", Source::Node(from))],
        )
    }

    /// The single open stream, or a recorded error naming the method.
    fn single(&mut self, method: &str) -> Option<usize> {
        if self.current.len() == 1 {
            Some(self.current[0])
        } else {
            self.errors.push(format!(
                "{method} requires a single stream, but {} are open (call merge first)",
                self.current.len()
            ));
            None
        }
    }

    fn tag_index(&self, name: &str) -> Option<usize> {
        self.tags.iter().find(|(t, _)| t == name).map(|(_, i)| *i)
    }

    /// stream -> m -> stream.
    pub fn through(&mut self, m: Arc<dyn Module>) -> &mut Self {
        if let Some(s) = self.single("through") {
            let idx = self.push_module(None, m, s);
            self.current = vec![idx];
            self.on_target = Target::Node(idx);
        }
        self
    }

    /// Residual: out = stream + m(stream), through nodes `m` and `add_N`.
    pub fn also(&mut self, m: Arc<dyn Module>) -> &mut Self {
        if let Some(s) = self.single("also") {
            let main = self.push_module(None, m, s);
            let add = self.push(
                "add",
                NodeOp::Add,
                vec![
                    Port::main("input_0", Source::Node(s)),
                    Port::main("input_1", Source::Node(main)),
                ],
            );
            self.current = vec![add];
            self.on_target = Target::Node(main);
        }
        self
    }

    /// out = skip(stream) + main(stream).
    pub fn also_with(&mut self, skip: Arc<dyn Module>, main: Arc<dyn Module>) -> &mut Self {
        if let Some(s) = self.single("also_with") {
            let a = self.push_module(None, skip, s);
            let b = self.push_module(None, main, s);
            let add = self.push(
                "add",
                NodeOp::Add,
                vec![
                    Port::main("input_0", Source::Node(a)),
                    Port::main("input_1", Source::Node(b)),
                ],
            );
            self.current = vec![add];
            self.on_target = Target::Node(b);
        }
        self
    }

    /// Runs m on the stream as a side branch; the stream is unchanged and the
    /// next `.tag()` names m's output.
    pub fn fork(&mut self, m: Arc<dyn Module>) -> &mut Self {
        if let Some(s) = self.single("fork") {
            let idx = self.push_module(None, m, s);
            self.on_target = Target::Node(idx);
            self.fork_target = Some(idx);
        }
        self
    }

    /// Opens one stream per module, each fed the current stream.
    pub fn split(&mut self, ms: Vec<Arc<dyn Module>>) -> &mut Self {
        if ms.len() < 2 {
            self.errors
                .push(format!("split needs at least 2 branches, got {}", ms.len()));
            return self;
        }
        if let Some(s) = self.single("split") {
            let idx: Vec<usize> = ms
                .into_iter()
                .map(|m| self.push_module(None, m, s))
                .collect();
            self.current = idx.clone();
            self.on_target = Target::Branches(idx);
        }
        self
    }

    /// Joins the open streams (Add: sum in branch order; Mean: sum × 1/n).
    pub fn merge(&mut self, op: MergeOp) -> &mut Self {
        if self.current.len() < 2 {
            self.errors.push(format!(
                "merge needs at least 2 open streams, got {}",
                self.current.len()
            ));
            return self;
        }
        let ports = self
            .current
            .iter()
            .enumerate()
            .map(|(i, &s)| Port::main(&format!("input_{i}"), Source::Node(s)))
            .collect();
        let idx = self.push(
            "merge",
            if op == MergeOp::Add {
                NodeOp::Add
            } else {
                NodeOp::Mean
            },
            ports,
        );
        self.current = vec![idx];
        self.on_target = Target::Node(idx);
        self
    }

    fn define_tag(&mut self, name: &str, idx: usize) {
        if name.is_empty() {
            self.errors.push("tag: the name must not be empty".into());
        } else if name.contains('.') {
            self.errors.push(format!(
                "tag '{name}': names must not contain '.' (it separates path segments)"
            ));
        } else if self.tag_index(name).is_some() {
            self.errors.push(format!("duplicate tag '{name}'"));
        } else {
            self.tags.push((name.to_string(), idx));
            if let Some(pos) = self.pending.iter().position(|t| t == name) {
                self.pending.remove(pos);
                self.state_tags.insert(name.to_string());
            }
        }
    }

    /// Names the current stream (or the pending fork output).
    pub fn tag(&mut self, name: &str) -> &mut Self {
        if let Some(f) = self.fork_target.take() {
            self.define_tag(name, f);
        } else if let Some(s) = self.single(&format!("tag '{name}'")) {
            self.define_tag(name, s);
        }
        self
    }

    /// Tags every open stream: `name_0`, `name_1`, ...
    pub fn tag_group(&mut self, name: &str) -> &mut Self {
        if self.current.len() < 2 {
            self.errors.push(format!(
                "tag_group '{name}' needs several open streams (use tag for one)"
            ));
            return self;
        }
        if self.groups.iter().any(|(g, _)| g == name) {
            self.errors.push(format!("duplicate tag_group '{name}'"));
            return self;
        }
        let mut members = Vec::new();
        for (i, s) in self.current.clone().into_iter().enumerate() {
            let tag = format!("{name}_{i}");
            self.define_tag(&tag, s);
            members.push(tag);
        }
        self.groups.push((name.to_string(), members));
        self
    }

    /// Declares auxiliary graph inputs, each a passthrough node tagged with
    /// its name; the graph then takes `1 + names.len()` inputs.
    pub fn input(&mut self, names: &[String]) -> &mut Self {
        for name in names {
            if self.input_names.contains(name) {
                self.errors.push(format!("duplicate input '{name}'"));
                continue;
            }
            self.input_names.push(name.clone());
            let k = self.input_names.len();
            let idx = self.push(&format!("input_{name}"), NodeOp::Input(k), Vec::new());
            self.define_tag(name, idx);
        }
        self
    }

    /// Wires tagged outputs into the target node as named inputs. A tag
    /// already defined is read in the same pass; one defined later is a
    /// forward ref, read from the previous pass (zeros on the first).
    pub fn using(&mut self, refs: &[String]) -> &mut Self {
        if refs.is_empty() {
            self.errors
                .push("using: give at least one tag to wire in, got none".into());
            return self;
        }
        let targets = match self.on_target.clone() {
            Target::None => {
                self.errors
                    .push("using: nothing to wire refs into here".into());
                return self;
            }
            Target::Node(i) => vec![i],
            Target::Branches(v) => v,
        };
        for t in targets {
            let ok = match &self.nodes[t].op {
                NodeOp::Module(m) => m.accepts_refs(),
                NodeOp::Add | NodeOp::Mean => true,
                _ => false,
            };
            if !ok {
                let what = self.nodes[t]
                    .module()
                    .map(|m| m.describe())
                    .unwrap_or_default();
                self.errors.push(format!(
                    "using: node '{}' ({what}) cannot take refs (it is not a named-input module)",
                    self.nodes[t].id
                ));
                continue;
            }
            for tag in refs {
                if self.nodes[t]
                    .inputs
                    .iter()
                    .any(|p| p.ref_tag.as_deref() == Some(tag))
                {
                    self.errors.push(format!(
                        "using: node '{}' already reads '{tag}'",
                        self.nodes[t].id
                    ));
                    continue;
                }
                let src = match self.tag_index(tag) {
                    Some(i) => i,
                    None => {
                        if !self.pending.contains(tag) {
                            self.pending.push(tag.clone());
                        }
                        self.push(
                            &format!("state_read_{tag}"),
                            NodeOp::StateRead(tag.clone()),
                            Vec::new(),
                        )
                    }
                };
                let port = Port::reference(tag, Source::Node(src));
                self.edges
                    .push((src, "output".into(), t, port.name.clone()));
                self.nodes[t].inputs.push(port);
            }
        }
        self
    }

    /// A loop node over `body` (`for_n`, `while_cond`, `until_cond`).
    pub fn loop_body(&mut self, body: Arc<dyn Module>, kind: LoopKind) -> &mut Self {
        match LoopModule::new(body, kind) {
            Ok(l) => self.composite("loop", Arc::new(l)),
            Err(e) => {
                self.errors.push(e.to_string());
                self
            }
        }
    }

    fn composite(&mut self, prefix: &str, m: Arc<dyn Module>) -> &mut Self {
        if let Some(s) = self.single(prefix) {
            let idx = self.push_module(Some(prefix), m, s);
            self.current = vec![idx];
            self.on_target = Target::Node(idx);
        }
        self
    }

    /// Soft routing: out = Σ_i w_i · expert_i(x), w = router(x).
    pub fn gate(&mut self, router: Arc<dyn Module>, experts: Vec<Arc<dyn Module>>) -> &mut Self {
        if experts.len() < 2 {
            self.errors.push(format!(
                "gate needs at least 2 experts, got {}",
                experts.len()
            ));
            return self;
        }
        self.composite("gate", Arc::new(GateModule { router, experts }))
    }

    /// Hard routing: only branch router(x) runs.
    pub fn switch(&mut self, router: Arc<dyn Module>, branches: Vec<Arc<dyn Module>>) -> &mut Self {
        if branches.len() < 2 {
            self.errors.push(format!(
                "switch needs at least 2 branches, got {}",
                branches.len()
            ));
            return self;
        }
        self.composite("switch", Arc::new(SwitchModule { router, branches }))
    }

    /// A map node: `body` per row, batched, or over slices; `over` reads a
    /// tagged (already defined) node instead of the stream.
    pub fn map(&mut self, body: Arc<dyn Module>, mode: MapMode, over: Option<&str>) -> &mut Self {
        if let MapMode::Slices { n, .. } = mode {
            if n < 1 {
                self.errors
                    .push(format!("map.slices: n must be at least 1, got {n}"));
                return self;
            }
        }
        let m: Arc<dyn Module> = Arc::new(MapModule { body, mode });
        match over {
            None => self.composite("map", m),
            Some(tag) => {
                let Some(src) = self.tag_index(tag) else {
                    self.errors.push(format!(
                        "map.over: tag '{tag}' must be defined before the map (a backward ref)"
                    ));
                    return self;
                };
                if self.current.len() != 1 {
                    self.errors.push("map.over requires a single stream".into());
                    return self;
                }
                let idx = self.push_module(Some("map"), m, src);
                self.current = vec![idx];
                self.on_target = Target::Node(idx);
                self
            }
        }
    }

    /// Names the graph for trees and paths (not hashed).
    pub fn label(&mut self, name: &str) -> &mut Self {
        if name.is_empty() || name.contains('.') {
            self.errors.push(format!(
                "label '{name}': must be non-empty and contain no '.'"
            ));
        } else {
            self.label = Some(name.to_string());
        }
        self
    }

    /// Marks the node the last construct added (what `.using()` would wire
    /// to: the module of `through`/`also`/`fork`, a loop, gate, switch or map,
    /// every branch after `split`) for gradient checkpointing: its
    /// activations are not kept but recomputed in backward, with the
    /// forward's RNG state. Names, the structural hash and checkpoint files
    /// are unchanged (floDl has no such construct).
    pub fn checkpoint(&mut self) -> &mut Self {
        let targets = match &self.on_target {
            Target::Node(i) => vec![*i],
            Target::Branches(bs) => bs.clone(),
            Target::None => Vec::new(),
        };
        if targets.is_empty() {
            self.errors
                .push("checkpoint: no module node to mark (add one first)".into());
        }
        for i in targets {
            let node = &mut self.nodes[i];
            if node.module().is_none() {
                self.errors.push(format!(
                    "checkpoint: node '{}' has no module to recompute (mark a module node)",
                    node.id
                ));
            } else if node
                .module()
                .and_then(|m| m.as_graph())
                .is_some_and(|g| !g.spec.state_tags.is_empty())
            {
                // The recompute would read the state the forward just wrote.
                self.errors.push(format!(
                    "checkpoint: node '{}' is a graph with forward refs (state carried \
                     between calls), which a recompute cannot replay",
                    node.id
                ));
            } else {
                node.checkpoint = true;
            }
        }
        self
    }

    /// Hides a tag from path resolution in parent graphs.
    pub fn internal(&mut self, tag: &str) -> &mut Self {
        self.internal.insert(tag.to_string());
        self
    }

    /// Checks everything recorded so far and returns the graph.
    pub fn build(&self) -> Result<Graph> {
        let mut errors = self.errors.clone();
        if !self.pending.is_empty() {
            errors.push(format!(
                "unresolved forward refs: {:?} (no tag defines them)",
                self.pending
            ));
        }
        let mut unknown: Vec<&String> = self
            .internal
            .iter()
            .filter(|t| self.tag_index(t).is_none())
            .collect();
        unknown.sort();
        for t in unknown {
            errors.push(format!(
                "internal('{t}'): no tag of that name is defined in this graph"
            ));
        }
        if self.current.len() != 1 {
            errors.push(format!(
                "{} open streams: call merge before build",
                self.current.len()
            ));
        }
        if !errors.is_empty() {
            return Err(Error::Graph(format!(
                "cannot build graph: {}",
                errors.join("; ")
            )));
        }
        Graph::new(GraphSpec {
            nodes: self.nodes.clone(),
            edges: self.edges.clone(),
            tags: self.tags.clone(),
            internal: self.internal.clone(),
            state_tags: self.state_tags.clone(),
            input_names: self.input_names.clone(),
            output: self.current[0],
            label: self.label.clone(),
            groups: self.groups.clone(),
        })
    }
}

impl Default for FlowBuilder {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::{Activation, Linear, Module, Parameter};
    use tch::{Device, Tensor};

    fn lin(i: i64, o: i64) -> Arc<dyn Module> {
        Arc::new(Linear::new(i, o, true, Device::Cpu).expect("linear"))
    }

    #[test]
    fn ids_count_every_node() {
        let mut b = FlowBuilder::from_module(lin(2, 2));
        b.through(Arc::new(Activation::Relu))
            .also(lin(2, 2))
            .through(lin(2, 1));
        let g = b.build().expect("build");
        assert_eq!(
            g.node_ids(),
            ["linear_1", "relu_2", "linear_3", "add_4", "linear_5"]
        );
    }

    #[test]
    fn tagged_prefix_and_duplicate_raw_names() {
        /// A module yielding two parameters with the same raw name.
        struct Twice(crate::tensor::SharedTensor);
        impl Module for Twice {
            fn name(&self) -> &str {
                "twice"
            }
            fn forward(&self, x: &Tensor) -> Result<Tensor> {
                Ok(x.shallow_clone())
            }
            fn parameters(&self) -> Vec<Parameter> {
                (0..2)
                    .map(|_| Parameter {
                        name: "w".into(),
                        tensor: self.0.handle(),
                    })
                    .collect()
            }
        }
        let mut b = FlowBuilder::from_module(lin(2, 2));
        b.tag("enc")
            .through(Arc::new(Twice(crate::tensor::SharedTensor::new(
                Tensor::zeros([1], (tch::Kind::Float, Device::Cpu)),
            ))));
        let names: Vec<String> = b
            .build()
            .expect("build")
            .named_parameters()
            .into_iter()
            .map(|p| p.name)
            .collect();
        assert_eq!(
            names,
            ["enc/weight", "enc/bias", "twice_2/w_0", "twice_2/w_1"]
        );
    }

    #[test]
    fn errors_surface_at_build() {
        let mut b = FlowBuilder::from_module(lin(2, 2));
        b.tag("x").tag("x").tag("a.b").using(&["later".to_string()]);
        let err = b.build().err().expect("error").to_string();
        assert!(
            err.contains("duplicate tag 'x'") && err.contains("'a.b'"),
            "{err}"
        );
        assert!(err.contains("cannot take refs"), "{err}");
    }
}
