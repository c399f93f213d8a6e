//! `Graph`: a built, validated node DAG that runs in topological order,
//! with tagged outputs, forward-ref state and floDl's parameter naming.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Instant;

use tch::Tensor;

use super::node::{Node, NodeOp, Source};
use super::observe::Observe;
use super::profile::Profile;
use crate::nn::{Module, Parameter, TrainFlag};
use crate::{Error, Result};

/// What the builder hands over.
pub struct GraphSpec {
    pub nodes: Vec<Node>,
    pub edges: Vec<(usize, String, usize, String)>,
    pub tags: Vec<(String, usize)>,
    pub internal: HashSet<String>,
    pub state_tags: HashSet<String>,
    pub input_names: Vec<String>,
    pub output: usize,
    pub label: Option<String>,
    /// `tag_group` names and their member tags, in definition order.
    pub groups: Vec<(String, Vec<String>)>,
}

/// Mutable run state: tagged outputs of the last forward, forward-ref
/// buffers, counters.
#[derive(Default)]
struct State {
    tagged: HashMap<String, Tensor>,
    carried: HashMap<String, Tensor>,
    /// CUDA graph mode: fixed buffers the forward-ref state is copied into
    /// (`pin_carried`), so a replay reads the previous step's values.
    pinned: HashMap<String, Tensor>,
    step_count: u64,
    epoch_count: u64,
}

pub struct Graph {
    pub(crate) spec: GraphSpec,
    /// Execution order (Kahn's topological order; ties in discovery order).
    order: Vec<usize>,
    /// node index -> its first tag, the prefix of its parameter names.
    first_tag: HashMap<usize, String>,
    training: TrainFlag,
    state: Mutex<State>,
    hash: std::sync::OnceLock<String>,
    /// node index -> topological level (longest path from a source).
    levels: Vec<usize>,
    /// Metric buffers, epoch history, timing history (observe.rs).
    pub(crate) observe: Mutex<Observe>,
    /// Checked once per forward; off costs one relaxed atomic load.
    pub(crate) profiling: AtomicBool,
    pub(crate) last_profile: Mutex<Option<Profile>>,
    /// The first forward (or metric record): the origin of `eta`.
    pub(crate) started: OnceLock<Instant>,
    /// floDl's `step()` driving, set by the training side on first use
    /// (`train/graph_driver.rs`); execution never reads it.
    pub(crate) driver: OnceLock<Box<dyn StepDriver>>,
    /// `unique_modules`, built on first use (the spec never changes).
    unique: OnceLock<Vec<(usize, Arc<dyn Module>)>>,
    /// For each position in `order`: the nodes whose output no later node
    /// reads (and that no tag or the graph output needs): dropped right
    /// there, so a forward holds only live activations (autograd keeps
    /// what backward needs by itself).
    release: Vec<Vec<usize>>,
}

/// floDl's `Graph::step()` and its settings, as the training side gives them
/// (`train/graph_driver.rs`): the graph holds one so that floDl's loop finds
/// the optimizer on the graph, without graph/ depending on the training side.
pub trait StepDriver: Send + Sync {
    fn set_optimizer(&self, opt: Arc<Mutex<dyn crate::optim::Optimizer>>);
    fn set_scheduler(&self, s: Option<crate::sched::ArcSchedule>);
    fn set_process_group(&self, pg: Option<Arc<crate::dist::ProcessGroup>>);
    fn set_lr_scale(&self, f: f64);
    fn training_step(&self) -> u64;
    fn step(&self) -> Result<()>;
}

impl Graph {
    pub(crate) fn new(spec: GraphSpec) -> Result<Self> {
        let order = topo_order(&spec.nodes)?;
        let mut first_tag = HashMap::new();
        for (name, idx) in &spec.tags {
            first_tag.entry(*idx).or_insert_with(|| name.clone());
        }
        let levels = super::profile::node_levels(&spec.nodes, &order);
        let release = release_points(&spec, &order);
        Ok(Graph {
            spec,
            order,
            first_tag,
            training: TrainFlag::default(),
            state: Mutex::new(State::default()),
            hash: std::sync::OnceLock::new(),
            levels,
            observe: Mutex::new(Observe::default()),
            profiling: AtomicBool::new(false),
            last_profile: Mutex::new(None),
            started: OnceLock::new(),
            driver: OnceLock::new(),
            release,
            unique: OnceLock::new(),
        })
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // State holds caches only, so a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn nodes(&self) -> &[Node] {
        &self.spec.nodes
    }

    pub fn order(&self) -> &[usize] {
        &self.order
    }

    /// Topological level of each node (by node index): 0 for sources, else
    /// one more than its deepest input.
    pub fn node_levels(&self) -> &[usize] {
        &self.levels
    }

    /// The first tag defined on node i, if any.
    pub fn first_tag_of(&self, i: usize) -> Option<&str> {
        self.first_tag.get(&i).map(String::as_str)
    }

    /// Member tags of a `tag_group`.
    pub fn tag_group(&self, name: &str) -> Option<&[String]> {
        self.spec
            .groups
            .iter()
            .find(|(g, _)| g == name)
            .map(|(_, m)| m.as_slice())
    }

    pub fn output_node(&self) -> usize {
        self.spec.output
    }

    pub fn edges(&self) -> &[(usize, String, usize, String)] {
        &self.spec.edges
    }

    /// Node ids in execution order.
    pub fn node_ids(&self) -> Vec<String> {
        self.order
            .iter()
            .map(|&i| self.spec.nodes[i].id.clone())
            .collect()
    }

    pub fn num_inputs(&self) -> usize {
        1 + self.spec.input_names.len()
    }

    pub fn input_names(&self) -> &[String] {
        &self.spec.input_names
    }

    pub fn label(&self) -> Option<&str> {
        self.spec.label.as_deref()
    }

    pub fn tag_node(&self, tag: &str) -> Option<usize> {
        self.spec
            .tags
            .iter()
            .find(|(t, _)| t == tag)
            .map(|(_, i)| *i)
    }

    pub fn is_internal(&self, tag: &str) -> bool {
        tag.starts_with('_') || self.spec.internal.contains(tag)
    }

    /// CUDA graph mode: copies this step's forward-ref values into fixed
    /// buffers (allocated on first use) and carries those, so a captured
    /// step reads and writes the same memory on every replay.
    pub fn pin_carried(&self) -> Result<()> {
        let _g = tch::no_grad_guard();
        let mut st = self.state();
        let st = &mut *st;
        for (tag, t) in st.carried.iter_mut() {
            let v = t.f_detach()?;
            let buf = match st.pinned.get(tag) {
                Some(b)
                    if b.size() == v.size()
                        && b.f_kind()? == v.f_kind()?
                        && b.device() == v.device() =>
                {
                    if !crate::shim::is_same(b, &v) {
                        b.shallow_clone().f_copy_(&v)?;
                    }
                    b.shallow_clone()
                }
                _ => {
                    let b = crate::tensor::deep_copy(&v)?;
                    st.pinned.insert(tag.clone(), b.shallow_clone());
                    b
                }
            };
            *t = buf;
        }
        Ok(())
    }

    /// [`Graph::forward_multi`] with `subs` read in place of their originals
    /// (torch's `functional_call`), on this thread, for this call only.
    pub fn forward_with(
        &self,
        inputs: &[Tensor],
        subs: &crate::substitute::Substitutes,
    ) -> Result<Tensor> {
        subs.scope(|| self.forward_multi(inputs))
    }

    /// Runs the graph on its inputs (one per exposed input, in order).
    pub fn forward_multi(&self, inputs: &[Tensor]) -> Result<Tensor> {
        if inputs.len() != self.num_inputs() {
            return Err(Error::Value(format!(
                "graph expected {} input(s) ({}), got {}",
                self.num_inputs(),
                std::iter::once("input".to_string())
                    .chain(self.spec.input_names.iter().cloned())
                    .collect::<Vec<_>>()
                    .join(", "),
                inputs.len()
            )));
        }
        let carried: HashMap<String, Tensor> = self
            .state()
            .carried
            .iter()
            .map(|(k, v)| (k.clone(), v.shallow_clone()))
            .collect();
        self.started.get_or_init(Instant::now);
        let nodes = &self.spec.nodes;
        let mut slots: Vec<Option<Tensor>> = (0..nodes.len()).map(|_| None).collect();
        let mut timer = self.forward_timer();
        for (pos, &i) in self.order.iter().enumerate() {
            let node = &nodes[i];
            if let Some(t) = &mut timer {
                t.node_start();
            }
            let out = self
                .run_node(node, inputs, &slots, &carried)
                .map_err(|e| device_mismatch(node, inputs, &slots, e))?;
            if let Some(t) = &mut timer {
                t.node_end(i);
            }
            slots[i] = out;
            for &j in &self.release[pos] {
                slots[j] = None;
            }
        }
        if let Some(t) = timer {
            t.finish(self);
        }
        let mut st = self.state();
        st.tagged.clear();
        for (name, idx) in &self.spec.tags {
            if let Some(t) = &slots[*idx] {
                st.tagged.insert(name.clone(), t.shallow_clone());
                if self.spec.state_tags.contains(name) {
                    st.carried.insert(name.clone(), t.shallow_clone());
                }
            }
        }
        drop(st);
        slots[self.spec.output]
            .take()
            .ok_or_else(|| Error::Graph("graph output was not computed".into()))
    }

    fn run_node(
        &self,
        node: &Node,
        inputs: &[Tensor],
        slots: &[Option<Tensor>],
        carried: &HashMap<String, Tensor>,
    ) -> Result<Option<Tensor>> {
        let read = |s: &Source| -> Option<Tensor> {
            match *s {
                Source::Input(k) => inputs.get(k).map(|t| t.shallow_clone()),
                Source::Node(j) => slots[j].as_ref().map(|t| t.shallow_clone()),
            }
        };
        let mains: Vec<&super::node::Port> =
            node.inputs.iter().filter(|p| p.ref_tag.is_none()).collect();
        let primary = || -> Result<Tensor> {
            mains
                .first()
                .and_then(|p| read(&p.source))
                .ok_or_else(|| Error::Graph("its main input has no value".into()))
        };
        // Ref ports without a value (a forward ref before its first write) are
        // zero-filled like the primary input, as floDl does.
        let refs = |x: &Tensor| -> Result<Vec<(String, Tensor)>> {
            node.inputs
                .iter()
                .filter_map(|p| p.ref_tag.as_ref().map(|t| (t, p)))
                .map(|(t, p)| {
                    let v = match read(&p.source) {
                        Some(v) => v,
                        None => x.f_zeros_like()?,
                    };
                    Ok((t.clone(), v))
                })
                .collect()
        };
        Ok(match &node.op {
            NodeOp::Input(k) => Some(inputs[*k].shallow_clone()),
            NodeOp::StateRead(tag) => carried.get(tag).map(|t| t.shallow_clone()),
            NodeOp::Module(m) => {
                let x = primary()?;
                let r = refs(&x)?;
                Some(if node.checkpoint {
                    crate::grad_checkpoint::checkpoint_node(m, &x, &r)?
                } else if r.is_empty() {
                    m.forward(&x)?
                } else {
                    m.forward_named(&x, &r)?
                })
            }
            NodeOp::Add | NodeOp::Mean => {
                let vals = mains
                    .iter()
                    .map(|p| {
                        read(&p.source)
                            .ok_or_else(|| Error::Graph(format!("port '{}' has no value", p.name)))
                    })
                    .collect::<Result<Vec<_>>>()?;
                let mut acc = vals[0].shallow_clone();
                for (p, v) in mains.iter().zip(&vals).skip(1) {
                    if v.size() != acc.size() {
                        return Err(Error::Shape(format!(
                            "cannot combine shapes {:?} and {:?} (port '{}')",
                            acc.size(),
                            v.size(),
                            p.name
                        )));
                    }
                    acc = acc.f_add(v)?;
                }
                if matches!(node.op, NodeOp::Mean) {
                    acc = acc.f_mul_scalar(1.0 / vals.len() as f64)?;
                }
                for (t, r) in refs(&acc)? {
                    if r.size() != acc.size() {
                        return Err(Error::Shape(format!(
                            "ref '{t}' has shape {:?}, the merge {:?}",
                            r.size(),
                            acc.size()
                        )));
                    }
                    acc = acc.f_add(&r)?;
                }
                Some(acc)
            }
        })
    }

    /// The output of a tagged node in the last forward (`None` before one).
    pub fn tagged(&self, tag: &str) -> Result<Option<Tensor>> {
        if self.tag_node(tag).is_none() {
            return Err(Error::Key(format!(
                "unknown tag '{tag}'; known tags: {:?}",
                self.tag_names()
            )));
        }
        Ok(self.state().tagged.get(tag).map(|t| t.shallow_clone()))
    }

    /// Tag names, sorted.
    pub fn tag_names(&self) -> Vec<String> {
        let mut v: Vec<String> = self.spec.tags.iter().map(|(t, _)| t.clone()).collect();
        v.sort();
        v
    }

    /// Modules in execution order, each once (a module used twice counts once).
    /// Computed once: every step's `end_step` walks them.
    pub(crate) fn unique_modules(&self) -> &[(usize, Arc<dyn Module>)] {
        self.unique.get_or_init(|| {
            let mut seen = HashSet::new();
            let mut out = Vec::new();
            for &i in &self.order {
                if let Some(m) = self.spec.nodes[i].module() {
                    if seen.insert(Arc::as_ptr(m) as *const () as usize) {
                        out.push((i, m.clone()));
                    }
                }
            }
            out
        })
    }

    /// The prefix of node i's parameter names: its first tag, else its id.
    pub fn node_prefix(&self, i: usize) -> String {
        self.first_tag
            .get(&i)
            .cloned()
            .unwrap_or_else(|| self.spec.nodes[i].id.clone())
    }

    /// The modules the nodes run, each once, in execution order, under the
    /// prefix their parameters are named by (the module tree's names).
    pub fn node_modules(&self) -> Vec<(String, Arc<dyn Module>)> {
        self.unique_modules()
            .iter()
            .map(|(i, m)| (self.node_prefix(*i), m.clone()))
            .collect()
    }

    /// floDl naming: `{first tag or node id}/{raw name}`.
    fn named(&self, buffers: bool) -> Vec<Parameter> {
        let mut out = Vec::new();
        for (i, m) in self.unique_modules() {
            let prefix = self.node_prefix(*i);
            let ps = if buffers { m.buffers() } else { m.parameters() };
            for p in dedup_names(ps) {
                out.push(Parameter {
                    name: format!("{prefix}/{}", p.name),
                    tensor: p.tensor,
                });
            }
        }
        out
    }

    pub fn named_parameters(&self) -> Vec<Parameter> {
        self.named(false)
    }

    pub fn named_buffers(&self) -> Vec<Parameter> {
        self.named(true)
    }

    pub fn is_training(&self) -> bool {
        self.training.get()
    }

    pub fn step_count(&self) -> u64 {
        self.state().step_count
    }

    pub fn epoch_count(&self) -> u64 {
        self.state().epoch_count
    }

    /// True when forward-ref buffers hold values from a previous pass.
    pub fn has_state(&self) -> bool {
        !self.state().carried.is_empty()
    }

    /// Forgets forward-ref buffers (next pass reads zeros), as floDl's
    /// `reset_state` / `end_sequence`.
    pub fn reset_state(&self) {
        let mut st = self.state();
        // Pinned buffers (CUDA graph mode) are zeroed in place instead, so
        // a captured step keeps reading the memory it was captured with.
        let _g = tch::no_grad_guard();
        if !st.pinned.is_empty()
            && st
                .pinned
                .values()
                .all(|b| b.shallow_clone().f_zero_().is_ok())
        {
            return;
        }
        st.carried.clear();
    }

    /// floDl's `end_epoch`: flushes every metric (recursing into labeled
    /// children), flushes timings when profiling, advances the epoch counter.
    pub fn end_epoch(&self) {
        self.flush(&[]);
        if self.profiling() {
            self.flush_timings(&[]);
        }
        self.state().epoch_count += 1;
    }
}

/// Raw names repeated within one module become `name_0, name_1, ...`.
pub(crate) fn dedup_names(ps: Vec<Parameter>) -> Vec<Parameter> {
    let mut counts: HashMap<String, usize> = HashMap::new();
    for p in &ps {
        *counts.entry(p.name.clone()).or_default() += 1;
    }
    let mut seen: HashMap<String, usize> = HashMap::new();
    ps.into_iter()
        .map(|p| {
            if counts[&p.name] > 1 {
                let k = seen.entry(p.name.clone()).or_default();
                *k += 1;
                Parameter {
                    name: format!("{}_{}", p.name, *k - 1),
                    tensor: p.tensor,
                }
            } else {
                p
            }
        })
        .collect()
}

impl Module for Graph {
    fn name(&self) -> &str {
        "graph"
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.forward_multi(std::slice::from_ref(x))
    }

    fn parameters(&self) -> Vec<Parameter> {
        self.unique_modules()
            .iter()
            .flat_map(|(_, m)| m.parameters())
            .collect()
    }

    fn buffers(&self) -> Vec<Parameter> {
        self.unique_modules()
            .iter()
            .flat_map(|(_, m)| m.buffers())
            .collect()
    }

    fn set_training(&self, on: bool) -> Result<()> {
        self.training.set(on);
        for (_, m) in self.unique_modules() {
            m.set_training(on)?;
        }
        Ok(())
    }

    /// Detaches forward-ref buffers and tagged outputs from the autograd
    /// graph, and top-level node modules' own state (floDl: nested graphs'
    /// state is theirs to detach).
    fn detach_state(&self) {
        let mut st = self.state();
        for t in st.tagged.values_mut() {
            *t = t.detach();
        }
        for t in st.carried.values_mut() {
            *t = t.detach();
        }
        drop(st);
        for (_, m) in self.unique_modules() {
            if m.as_graph().is_none() {
                m.detach_state();
            }
        }
    }

    /// floDl: detach_state, (when profiling) collect every tagged node's
    /// timing, step_count += 1.
    fn end_step(&self) {
        self.detach_state();
        if self.profiling() {
            self.collect_timings(&[]);
        }
        self.state().step_count += 1;
    }

    fn capture_blocker(&self) -> Option<String> {
        self.profiling()
            .then(|| "profiling is on (it times every node on the host)".into())
    }

    fn describe(&self) -> String {
        match &self.spec.label {
            Some(l) => format!("Graph '{l}' ({} nodes)", self.spec.nodes.len()),
            None => format!("Graph({} nodes)", self.spec.nodes.len()),
        }
    }

    fn sub_modules(&self) -> Vec<Arc<dyn Module>> {
        self.unique_modules()
            .iter()
            .map(|(_, m)| m.clone())
            .collect()
    }

    fn as_graph(&self) -> Option<&Graph> {
        Some(self)
    }

    fn into_graph(self: Arc<Self>) -> Option<Arc<Graph>> {
        Some(self)
    }
}

impl Graph {
    /// SHA-256 over floDl's structural byte sequence, as 64 hex chars.
    pub fn structural_hash(&self) -> String {
        self.hash
            .get_or_init(|| super::hash::structural_hash(self))
            .clone()
    }
}

/// Kahn's algorithm; a cycle is a build error naming the nodes on it.
/// `Graph::release`: for each position in `order`, the nodes read for the
/// last time there. Tagged nodes and the output stay until the end.
fn release_points(spec: &GraphSpec, order: &[usize]) -> Vec<Vec<usize>> {
    let mut keep = vec![false; spec.nodes.len()];
    keep[spec.output] = true;
    for (_, idx) in &spec.tags {
        keep[*idx] = true;
    }
    let mut last: Vec<Option<usize>> = vec![None; spec.nodes.len()];
    for (pos, &i) in order.iter().enumerate() {
        for p in &spec.nodes[i].inputs {
            if let Source::Node(j) = p.source {
                last[j] = Some(last[j].map_or(pos, |q| q.max(pos)));
            }
        }
    }
    let mut out = vec![Vec::new(); order.len()];
    for (j, l) in last.iter().enumerate() {
        if let (Some(pos), false) = (l, keep[j]) {
            out[*pos].push(j);
        }
    }
    out
}

fn topo_order(nodes: &[Node]) -> Result<Vec<usize>> {
    let n = nodes.len();
    let mut indeg = vec![0usize; n];
    let mut users: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (i, node) in nodes.iter().enumerate() {
        for p in &node.inputs {
            if let Source::Node(j) = p.source {
                if j >= n {
                    return Err(Error::Graph(format!(
                        "node '{}' reads a node that does not exist",
                        node.id
                    )));
                }
                indeg[i] += 1;
                users[j].push(i);
            }
        }
    }
    let mut queue: VecDeque<usize> = (0..n).filter(|&i| indeg[i] == 0).collect();
    let mut order = Vec::with_capacity(n);
    while let Some(i) = queue.pop_front() {
        order.push(i);
        for &u in &users[i] {
            indeg[u] -= 1;
            if indeg[u] == 0 {
                queue.push_back(u);
            }
        }
    }
    if order.len() != n {
        let stuck: Vec<&str> = (0..n)
            .filter(|&i| indeg[i] > 0)
            .map(|i| nodes[i].id.as_str())
            .collect();
        return Err(Error::Graph(format!(
            "cycle detected through nodes {stuck:?}"
        )));
    }
    Ok(order)
}

/// A node's failure, named; a torch device error becomes a DeviceError that
/// names the node, its input's device and its parameters' device.
fn device_mismatch(node: &Node, inputs: &[Tensor], slots: &[Option<Tensor>], e: Error) -> Error {
    let at = format!("node '{}'", node.id);
    let is_device = matches!(&e, Error::Torch(m) if m.contains("device"));
    let NodeOp::Module(m) = &node.op else {
        return e.context(&at);
    };
    let input = node.inputs.iter().find_map(|p| match p.source {
        Source::Input(k) => inputs.get(k).map(crate::shim::device_str),
        Source::Node(j) => slots
            .get(j)
            .and_then(|s| s.as_ref())
            .map(crate::shim::device_str),
    });
    let param = m
        .parameters()
        .first()
        .map(|p| crate::shim::device_str(&p.tensor));
    match (is_device, input, param) {
        (true, Some(i), Some(p)) if i != p => Error::Device(format!(
            "{at}: the input is on {} but the parameters of {} are on {}; move the batch or the model \
             (Trainer(device=...) moves batches)",
            i,
            m.describe(),
            p
        )),
        _ => e.context(&at),
    }
}
